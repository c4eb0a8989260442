//! Tunables of the chat plane, with defaults that run on a laptop.

use crate::auth::Limit;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Node id stamped into snowflakes (0–1023); distinct per node in a cluster.
    pub node_id: u16,
    /// Lifetime of a login session, seconds.
    pub session_ttl_secs: u64,
    /// Largest HTTP request body, bytes; never below what a longest message needs
    /// (`api::validate::MIN_BODY_BYTES`, ~28 KiB).
    pub max_body_bytes: usize,
    /// Largest gateway frame, bytes.
    pub max_frame_bytes: usize,
    pub heartbeat_interval_ms: u64,
    /// How long a dropped gateway session stays resumable (its user shows offline meanwhile).
    pub resume_window_secs: u64,
    /// Dispatches kept per session for RESUME.
    pub replay_buffer: usize,
    /// Dispatches queued per socket before the reader counts as too slow.
    pub outbound_queue: usize,
    pub max_gateway_connections: usize,
    /// Guilds with more members are "large": READY carries only the user's own member entry and
    /// presence updates go only to sessions that asked for the members (op 8), as Discord does.
    pub large_guild_threshold: usize,
    /// Frames per minute a gateway client may send.
    pub gateway_frames_per_minute: u32,
    /// Login attempts per account, per IP: burst, then one more every `*_refill_secs`.
    pub login_burst_per_account: u32,
    pub login_refill_secs_per_account: u64,
    pub login_burst_per_ip: u32,
    pub login_refill_secs_per_ip: u64,
    /// Messages one user may post (any channel): a burst, then one more every
    /// `message_refill_ms_per_user`.
    pub message_burst_per_user: u32,
    pub message_refill_ms_per_user: u64,
    /// Password hashes (logins, signups) run at once; 0: one per core. Each holds 19 MiB.
    pub password_hash_concurrency: usize,
    /// How long a login waits for a hashing slot before it gets 503 and Retry-After.
    pub password_queue_ms: u64,
    /// Secret that signs voice tokens; every node of a cluster needs the same one. Unset: a random
    /// secret per process (fine for one node).
    pub voice_token_secret: Option<String>,
    /// Lifetime of a voice token, seconds; RESUME on the voice gateway needs it still valid.
    pub voice_token_ttl_secs: u64,
    /// Where attachments are stored (the file system blob store); created when missing.
    pub attachments_dir: String,
    /// Largest attachment, bytes (each of up to 10 per message).
    pub max_attachment_bytes: u64,
    /// Uploads received at once; more wait (each streams to disk, so memory stays small).
    pub max_concurrent_uploads: usize,
    /// Resolve bearer tokens through the per-node login cache (invalidated on every node when a
    /// login ends). Off only to measure what it saves: every request then reads the store.
    pub auth_cache: bool,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            node_id: 0,
            session_ttl_secs: 30 * 24 * 3600,
            max_body_bytes: 32 * 1024,
            max_frame_bytes: 4096,
            heartbeat_interval_ms: 41_250,
            resume_window_secs: 60,
            replay_buffer: 500,
            outbound_queue: 1024,
            max_gateway_connections: 100_000,
            large_guild_threshold: 250,
            gateway_frames_per_minute: 120,
            login_burst_per_account: 5,
            login_refill_secs_per_account: 60,
            login_burst_per_ip: 20,
            login_refill_secs_per_ip: 3,
            message_burst_per_user: 10,
            message_refill_ms_per_user: 500,
            password_hash_concurrency: 0,
            password_queue_ms: 5000,
            voice_token_secret: None,
            voice_token_ttl_secs: 3600,
            attachments_dir: "data/attachments".into(),
            max_attachment_bytes: 25 * 1024 * 1024,
            max_concurrent_uploads: 16,
            auth_cache: true,
        }
    }
}

impl ChatConfig {
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms.max(1))
    }

    pub fn resume_window(&self) -> Duration {
        Duration::from_secs(self.resume_window_secs)
    }

    pub fn gateway_rate(&self) -> Limit {
        let n = self.gateway_frames_per_minute.max(1);
        Limit { burst: n, per: Duration::from_secs(60) / n }
    }

    pub fn login_account_limit(&self) -> Limit {
        Limit {
            burst: self.login_burst_per_account.max(1),
            per: Duration::from_secs(self.login_refill_secs_per_account),
        }
    }

    pub fn message_limit(&self) -> Limit {
        Limit { burst: self.message_burst_per_user.max(1), per: Duration::from_millis(self.message_refill_ms_per_user) }
    }

    pub fn login_ip_limit(&self) -> Limit {
        Limit { burst: self.login_burst_per_ip.max(1), per: Duration::from_secs(self.login_refill_secs_per_ip) }
    }
}

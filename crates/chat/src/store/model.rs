//! Plain data of the chat plane, as stored and as served (ids serialise as strings).

use crate::id::Id;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub created_at: i64,
    /// Shown instead of the username when set.
    pub display_name: Option<String>,
    /// The hash of their avatar image (`/api/avatars/{id}/{hash}.png`), if they set one.
    pub avatar: Option<String>,
}

impl User {
    /// A new account: no display name, no avatar.
    pub fn new(id: Id, username: String, created_at: i64) -> User {
        User { id, username, created_at, display_name: None, avatar: None }
    }
}

/// A login session; only the SHA-256 of the bearer token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: Id,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Guild {
    pub id: Id,
    pub name: String,
    pub owner_id: Id,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub guild_id: Id,
    pub user_id: Id,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar: Option<String>,
    pub joined_at: i64,
    /// Role ids beyond `@everyone`.
    pub roles: Vec<Id>,
    /// Timed out until then (unix ms), if ever; past times mean nothing.
    pub timeout_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invite {
    pub code: String,
    pub guild_id: Id,
    pub creator_id: Id,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub max_uses: Option<i64>,
    pub uses: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Text,
    Voice,
    /// A live stream ("Live Now") and its chat.
    Live,
    /// A direct message channel: no guild, 2 to 10 recipients.
    Dm,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Text => "text",
            ChannelKind::Voice => "voice",
            ChannelKind::Live => "live",
            ChannelKind::Dm => "dm",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(ChannelKind::Text),
            "voice" => Some(ChannelKind::Voice),
            "live" => Some(ChannelKind::Live),
            "dm" => Some(ChannelKind::Dm),
            _ => None,
        }
    }

    /// Text channels, a live stream's chat and DMs hold messages.
    pub fn has_messages(self) -> bool {
        matches!(self, ChannelKind::Text | ChannelKind::Live | ChannelKind::Dm)
    }
}

/// How a voice channel's room carries media. Benchmarkers compare the three on the same work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoiceMode {
    /// Audio forwarded by the SFU, video composited by the MCU.
    #[default]
    Hybrid,
    /// Audio and video forwarded; each client receives one video track per camera.
    Sfu,
    /// Audio mixed (mix-minus) and video composited.
    Mcu,
}

impl VoiceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VoiceMode::Hybrid => "hybrid",
            VoiceMode::Sfu => "sfu",
            VoiceMode::Mcu => "mcu",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hybrid" => Some(VoiceMode::Hybrid),
            "sfu" => Some(VoiceMode::Sfu),
            "mcu" => Some(VoiceMode::Mcu),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    pub id: Id,
    /// `None` for a DM.
    pub guild_id: Option<Id>,
    pub name: String,
    pub kind: ChannelKind,
    pub position: i64,
    pub created_at: i64,
    /// Voice channels only (`null` for text channels).
    pub voice_mode: Option<VoiceMode>,
    /// Text channels: seconds a member waits between two messages (0: off; the owner is exempt).
    #[serde(default)]
    pub slow_mode_secs: i64,
    /// Shown under its name (empty: none).
    #[serde(default)]
    pub topic: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: Id,
    pub channel_id: Id,
    pub author_id: Id,
    pub content: String,
    /// Users mentioned with `<@id>`, recorded for notifications.
    pub mentions: Vec<Id>,
    pub edited_at: Option<i64>,
    /// Files sent with it (at most 10).
    pub attachments: Vec<Attachment>,
    /// The message it answers (in the same channel).
    pub reply_to: Option<Id>,
    /// Reactions, by emoji in the order first used.
    pub reactions: Vec<Reaction>,
}

/// One emoji's reactions to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    /// Who reacted, in order (the first 100).
    pub users: Vec<Id>,
}

/// A file sent with a message. Its bytes are in the blob store ([`Attachment::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub id: Id,
    pub filename: String,
    /// What it is served as: an image type browsers show inline, else `application/octet-stream`.
    pub content_type: String,
    pub size: i64,
    /// Images: their size in pixels.
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// Where to fetch it, and its preview (images): signed, expiring URLs, set when served.
    pub url: String,
    pub thumbnail_url: Option<String>,
    /// A preview is stored (`<key>.thumb`).
    #[serde(skip)]
    pub thumbnail: bool,
}

impl Attachment {
    /// Its blob's key, under its channel.
    pub fn key(&self, channel: Id) -> String {
        format!("{channel}/{}", self.id)
    }
}

impl Message {
    pub fn created_at(&self) -> i64 {
        self.id.timestamp_ms()
    }
}

/// A cursor page of channel history. Results are always newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The newest `limit` messages.
    Latest { limit: u32 },
    /// The `limit` newest messages with id < `id`.
    Before { id: Id, limit: u32 },
    /// The `limit` oldest messages with id > `id` (still returned newest first).
    After { id: Id, limit: u32 },
}

/// Read position and unread counters of one user in one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadState {
    pub channel_id: Id,
    pub last_read_id: Id,
    /// Messages by others after `last_read_id`.
    pub unread_count: i64,
    /// Of those, how many mention the user.
    pub mention_count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Open,
    /// Resolved by deleting the message.
    Deleted,
    Dismissed,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Open => "open",
            ReportStatus::Deleted => "deleted",
            ReportStatus::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(ReportStatus::Open),
            "deleted" => Some(ReportStatus::Deleted),
            "dismissed" => Some(ReportStatus::Dismissed),
            _ => None,
        }
    }
}

/// What a report is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportSubject {
    #[default]
    Message,
    /// A live channel's stream: `message_id` is 0, `message_author` the streamer (the guild's
    /// owner), `message_content` the stream's title.
    Stream,
}

impl ReportSubject {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportSubject::Message => "message",
            ReportSubject::Stream => "stream",
        }
    }
}

/// A member's report of a message (or of a stream). The message is copied so moderators see it
/// even once deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub id: Id,
    pub subject: ReportSubject,
    pub guild_id: Id,
    pub channel_id: Id,
    pub message_id: Id,
    pub message_author: Id,
    pub message_content: String,
    pub reporter_id: Id,
    pub reason: String,
    pub status: ReportStatus,
    pub created_at: i64,
    pub resolved_by: Option<Id>,
    pub resolved_at: Option<i64>,
}

/// A live channel's stream settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSettings {
    /// Anyone may watch, signed in or not (chat still needs an account).
    pub public: bool,
    pub title: String,
}

/// A DM channel as its recipients see it: who is in it, and what they have not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dm {
    #[serde(flatten)]
    pub channel: Channel,
    /// Everyone in it, the caller included.
    pub recipients: Vec<User>,
    pub last_message_id: Option<Id>,
    pub unread_count: i64,
    pub mention_count: i64,
}

/// A guild role. The guild's `@everyone` role has the guild's id and position 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    pub id: Id,
    pub guild_id: Id,
    pub name: String,
    pub permissions: crate::perms::Permissions,
    pub position: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ban {
    pub guild_id: Id,
    pub user_id: Id,
    pub username: String,
    pub moderator_id: Id,
    pub reason: String,
    pub created_at: i64,
}

/// One moderation or management action (`action`: e.g. `member_ban`, `channel_delete`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: Id,
    pub guild_id: Id,
    pub actor_id: Id,
    pub action: String,
    pub target_id: Option<Id>,
    pub reason: String,
    pub created_at: i64,
}

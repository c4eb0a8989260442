//! Gateway wire format: Discord-style frames `{op, d, s, t}` as JSON text.
//!
//! | op | name | direction |
//! |----|------|-----------|
//! | 0  | DISPATCH | server → client, with `s` (per-session sequence) and `t` (event name) |
//! | 1  | HEARTBEAT | client → server (`d`: last seq seen or null) |
//! | 2  | IDENTIFY | client → server, `d: {token}` |
//! | 3  | PRESENCE_UPDATE | client → server, `d: {status: online | idle | dnd | offline}` (offline = invisible) |
//! | 6  | RESUME | client → server, `d: {token, session_id, seq}` |
//! | 8  | REQUEST_GUILD_MEMBERS | client → server, `d: {guild_id, after?, limit?}`: a page of members as GUILD_MEMBERS_CHUNK, and the guild's presence updates from then on |
//! | 9  | INVALID_SESSION | server → client, `d: false`: resume refused, identify again |
//! | 10 | HELLO | server → client, `d: {heartbeat_interval}` (ms) |
//! | 11 | HEARTBEAT_ACK | server → client |
//!
//! Dispatch events (`t`): READY, RESUMED, MESSAGE_CREATE, MESSAGE_UPDATE, MESSAGE_DELETE,
//! TYPING_START, PRESENCE_UPDATE, PRESENCE_UPDATE_BULK, GUILD_CREATE, GUILD_MEMBER_ADD,
//! GUILD_MEMBERS_CHUNK, CHANNEL_CREATE, CHANNEL_UPDATE, REPORT_CREATE, VOICE_STATE_UPDATE.
//!
//! Large guilds (more members than `large_guild_threshold`) are lazy, as Discord's: READY carries
//! only the user's own member entry (`large: true`, `member_count`), and presence updates of the
//! guild reach only sessions that asked for its members with op 8. Presence changes are coalesced:
//! what changed within ~100 ms goes out as one PRESENCE_UPDATE (one user) or one
//! PRESENCE_UPDATE_BULK `{guild_id, presences: [{user_id, status}]}` per guild.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

pub mod op {
    pub const DISPATCH: u8 = 0;
    pub const HEARTBEAT: u8 = 1;
    pub const IDENTIFY: u8 = 2;
    pub const PRESENCE_UPDATE: u8 = 3;
    pub const RESUME: u8 = 6;
    pub const REQUEST_GUILD_MEMBERS: u8 = 8;
    pub const INVALID_SESSION: u8 = 9;
    pub const HELLO: u8 = 10;
    pub const HEARTBEAT_ACK: u8 = 11;
}

/// WebSocket close codes the gateway uses, with what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1002: the WebSocket framing itself was broken.
    ProtocolError,
    /// 1007: a text frame that is not UTF-8.
    InvalidPayload,
    /// 1009: a frame exceeded the size limit.
    TooBig,
    /// 1011: the server failed (e.g. storage unavailable); reconnect later.
    Internal,
    /// 4001: an op the gateway does not know, or one only the server sends.
    UnknownOpcode,
    /// 4002: the frame was not valid JSON or its payload had the wrong shape.
    DecodeError,
    /// 4003: a payload was sent before IDENTIFY.
    NotAuthenticated,
    /// 4004: the token in IDENTIFY/RESUME is invalid or expired, or the login behind an identified
    /// session was revoked (logout, password change) or expired.
    AuthenticationFailed,
    /// 4005: IDENTIFY or RESUME on an already identified connection.
    AlreadyAuthenticated,
    /// 4008: too many frames too fast.
    RateLimited,
    /// 4009: no heartbeat (or no IDENTIFY) in time.
    SessionTimedOut,
    /// 4010: the client read too slowly and its outbound queue overflowed; it may RESUME.
    SlowConsumer,
    /// 4011: the session was resumed on another connection.
    SessionReplaced,
}

impl CloseCode {
    pub fn from_code(code: u16) -> Option<CloseCode> {
        [
            CloseCode::GoingAway,
            CloseCode::ProtocolError,
            CloseCode::InvalidPayload,
            CloseCode::TooBig,
            CloseCode::Internal,
            CloseCode::UnknownOpcode,
            CloseCode::DecodeError,
            CloseCode::NotAuthenticated,
            CloseCode::AuthenticationFailed,
            CloseCode::AlreadyAuthenticated,
            CloseCode::RateLimited,
            CloseCode::SessionTimedOut,
            CloseCode::SlowConsumer,
            CloseCode::SessionReplaced,
        ]
        .into_iter()
        .find(|c| c.code() == code)
    }

    pub fn code(self) -> u16 {
        match self {
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::InvalidPayload => 1007,
            CloseCode::TooBig => 1009,
            CloseCode::Internal => 1011,
            CloseCode::UnknownOpcode => 4001,
            CloseCode::DecodeError => 4002,
            CloseCode::NotAuthenticated => 4003,
            CloseCode::AuthenticationFailed => 4004,
            CloseCode::AlreadyAuthenticated => 4005,
            CloseCode::RateLimited => 4008,
            CloseCode::SessionTimedOut => 4009,
            CloseCode::SlowConsumer => 4010,
            CloseCode::SessionReplaced => 4011,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::GoingAway => "server shutting down",
            CloseCode::ProtocolError => "websocket protocol error",
            CloseCode::InvalidPayload => "text frame is not utf-8",
            CloseCode::TooBig => "frame too large",
            CloseCode::Internal => "internal error",
            CloseCode::UnknownOpcode => "unknown opcode",
            CloseCode::DecodeError => "decode error",
            CloseCode::NotAuthenticated => "not authenticated",
            CloseCode::AuthenticationFailed => "authentication failed",
            CloseCode::AlreadyAuthenticated => "already authenticated",
            CloseCode::RateLimited => "rate limited",
            CloseCode::SessionTimedOut => "session timed out",
            CloseCode::SlowConsumer => "slow consumer",
            CloseCode::SessionReplaced => "session resumed elsewhere",
        }
    }
}

/// A frame as received: `d` is kept raw and parsed per op.
#[derive(Debug, Deserialize)]
pub struct Inbound<'a> {
    pub op: u8,
    #[serde(borrow, default)]
    pub d: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct Identify {
    pub token: String,
}

#[derive(Debug, Deserialize)]
pub struct Resume {
    pub token: String,
    pub session_id: String,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RequestMembers {
    pub guild_id: crate::id::Id,
    /// Members with a user id above this one (the last of the previous chunk).
    #[serde(default)]
    pub after: Option<crate::id::Id>,
    /// At most this many (and at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Online,
    Idle,
    Dnd,
    Offline,
}

#[derive(Debug, Deserialize)]
pub struct PresenceUpdate {
    pub status: Status,
}

/// A dispatch event, serialised once and shared by every session it reaches.
#[derive(Debug)]
pub struct Event {
    pub name: &'static str,
    /// The JSON of `d`.
    pub data: Box<RawValue>,
}

impl Event {
    pub fn new(name: &'static str, data: &impl Serialize) -> Arc<Event> {
        let json = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
        let data = RawValue::from_string(json).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Arc::new(Event { name, data })
    }

    /// An event received from another node: its name (interned, so the set of names stays
    /// bounded whatever arrives) and its data as sent. `None` for a name past the bound.
    pub fn from_wire(name: &str, data: Box<RawValue>) -> Option<Arc<Event>> {
        Some(Arc::new(Event { name: intern(name)?, data }))
    }

    /// The full frame for one session's sequence number.
    pub fn frame(&self, seq: u64) -> String {
        let d = self.data.get();
        let mut s = String::with_capacity(d.len() + self.name.len() + 40);
        s.push_str("{\"op\":0,\"d\":");
        s.push_str(d);
        s.push_str(",\"s\":");
        s.push_str(&seq.to_string());
        s.push_str(",\"t\":\"");
        s.push_str(self.name);
        s.push_str("\"}");
        s
    }
}

/// A non-dispatch frame (`s` and `t` null).
pub fn control(op: u8, d: impl Serialize) -> String {
    serde_json::json!({ "op": op, "d": d, "s": null, "t": null }).to_string()
}

/// Event names are a small fixed set in the code; names from the bus are mapped onto leaked
/// copies, at most [`MAX_NAMES`] of them.
fn intern(name: &str) -> Option<&'static str> {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = names.iter().find(|n| **n == name) {
        return Some(n);
    }
    if names.len() >= MAX_NAMES || name.len() > 64 {
        return None;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(leaked);
    Some(leaked)
}

const MAX_NAMES: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_frame_is_valid_json() {
        let ev = Event::new("MESSAGE_CREATE", &serde_json::json!({"content": "hi \"there\""}));
        let v: serde_json::Value = serde_json::from_str(&ev.frame(7)).unwrap();
        assert_eq!(v["op"], 0);
        assert_eq!(v["s"], 7);
        assert_eq!(v["t"], "MESSAGE_CREATE");
        assert_eq!(v["d"]["content"], "hi \"there\"");
    }

    #[test]
    fn inbound_keeps_payload_raw() {
        let f: Inbound = serde_json::from_str(r#"{"op":2,"d":{"token":"x"}}"#).unwrap();
        assert_eq!(f.op, 2);
        let id: Identify = serde_json::from_str(f.d.unwrap().get()).unwrap();
        assert_eq!(id.token, "x");
        let f: Inbound = serde_json::from_str(r#"{"op":1}"#).unwrap();
        assert!(f.d.is_none());
    }
}

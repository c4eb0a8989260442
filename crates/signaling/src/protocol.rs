//! The voice gateway protocol (`/voice`, WebSocket, JSON text frames). These types are shared with
//! clients (the testbed uses them as they are), so they are the contract: change them only in ways
//! old clients survive.
//!
//! Every frame is `{"op": "<name>", "d": {…}}`.
//!
//! ## Flow
//! 1. Server → `hello {heartbeat_interval}`; the client heartbeats every `heartbeat_interval` ms.
//! 2. Client → `identify {token}` with the voice token from `POST /api/channels/{id}/voice`.
//! 3. Server → `ready {session_id, user_id, room_id, mode, audio_slots, video_slots,
//!    participants}`.
//! 4. Client → `offer {sdp}`, its m-lines in this order:
//!    - one `sendonly` audio m-line (its microphone), Opus, with the RFC 6464 audio-level extension;
//!    - `audio_slots` `recvonly` audio m-lines;
//!    - optionally one `sendonly` video m-line (its camera), VP8;
//!    - optionally `video_slots` `recvonly` video m-lines, VP8 (a client that shows no video offers
//!      none).
//!
//!    Server → `answer {sdp}`. That is the only SDP exchange: what flows into which receive m-line
//!    changes by reassigning slots, never by renegotiating.
//! 5. Server → `slots {slots: [{mid, user_id, kind}]}` whenever which participant flows into which
//!    receive m-line changes; `speaking`, `dominant_speaker`, `participant_join/leave/update` as the
//!    room changes.
//!
//! ## Room modes ([`RoomMode`])
//! - `hybrid` (default): each audio slot carries one speaker (the last-N loudest, forwarded); the one
//!   video slot carries the room's composite: every camera decoded, tiled into one grid (a
//!   placeholder with initials for a participant without camera, a border on the dominant speaker)
//!   and encoded once.
//! - `sfu`: audio as in hybrid; each video slot carries one other participant's camera, forwarded.
//! - `mcu`: one audio slot carrying the mix of everyone else (mix-minus), one video slot carrying the
//!   composite.
//!
//! Slots whose content is the room's mix or composite name no user (`user_id: null`). If the room's
//! video pipeline fails, the server sends `video_ended` and the call goes on without video.
//! 6. After a dropped socket: a new socket, `hello`, then `resume {token, session_id}` → `resumed`
//!    plus a fresh `ready`; the media session (ICE, DTLS) is untouched.
//!
//! Errors that leave the connection usable come as `error {code, message}`; the rest close the
//! socket with one of [`close`]'s codes.

use serde::{Deserialize, Serialize};

/// A user or room id (snowflake), as a string on the wire like the chat API's ids.
pub type Id = String;

/// Frames from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "d", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientMsg {
    Identify {
        token: String,
    },
    Resume {
        token: String,
        session_id: String,
    },
    Heartbeat {
        nonce: u64,
    },
    Offer {
        sdp: String,
    },
    /// Self-mute: the server stops forwarding this client's audio. Self-deafen: it also stops
    /// sending this client any audio (others see both).
    Mute {
        self_mute: bool,
        #[serde(default)]
        self_deaf: bool,
    },
    /// Server-mute another participant (guild owner only).
    ServerMute {
        user_id: Id,
        mute: bool,
    },
    /// Camera on or off (a participant whose offer has a camera m-line starts with it on). Off:
    /// the composite shows its placeholder; in `sfu` rooms its video slot is freed.
    Camera {
        on: bool,
    },
    /// Screen share on or off (the offer's share m-line; see the module docs).
    Share {
        on: bool,
    },
    Leave {},
}

/// How a room carries media (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomMode {
    #[default]
    Hybrid,
    Sfu,
    Mcu,
}

/// What a receive slot carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    #[default]
    Audio,
    Video,
    /// Someone's screen share.
    Share,
}

/// Frames from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "d", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMsg {
    Hello {
        heartbeat_interval: u64,
    },
    Ready {
        session_id: String,
        user_id: Id,
        room_id: Id,
        #[serde(default)]
        mode: RoomMode,
        /// Receive audio m-lines to offer.
        audio_slots: usize,
        /// Receive video m-lines to offer, at most (hybrid and mcu: 1, the composite).
        #[serde(default)]
        video_slots: usize,
        /// Receive screen-share m-lines to offer, after the share m-line (every mode).
        #[serde(default)]
        share_slots: usize,
        /// Cap the share's sender at this bitrate (bits/s).
        #[serde(default)]
        share_max_bitrate: u32,
        participants: Vec<Participant>,
        /// STUN/TURN servers for the peer connection (`RTCConfiguration.iceServers`), with
        /// credentials minted for this join; empty when the server offers none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    Resumed {},
    Answer {
        sdp: String,
    },
    HeartbeatAck {
        nonce: u64,
    },
    ParticipantJoin {
        participant: Participant,
    },
    ParticipantLeave {
        user_id: Id,
    },
    /// Mute state changed.
    ParticipantUpdate {
        participant: Participant,
    },
    Speaking {
        user_id: Id,
        speaking: bool,
    },
    DominantSpeaker {
        user_id: Option<Id>,
    },
    Slots {
        slots: Vec<Slot>,
    },
    /// The room's video (composite) failed and has ended; audio goes on.
    VideoEnded {
        message: String,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub user_id: Id,
    pub username: String,
    pub self_mute: bool,
    pub server_mute: bool,
    /// Deafened themselves: hears nobody.
    #[serde(default)]
    pub self_deaf: bool,
    /// Sharing a screen.
    #[serde(default)]
    pub share: bool,
    pub speaking: bool,
    /// Publishing a camera (offered a camera m-line and has not turned it off).
    #[serde(default)]
    pub camera: bool,
}

/// Which participant flows into the receive m-line `mid`. `None`: an unused slot, or one carrying
/// the room's mix (mcu audio) or composite (hybrid and mcu video).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub mid: String,
    pub user_id: Option<Id>,
    #[serde(default)]
    pub kind: SlotKind,
}

/// Why a request failed without closing the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The SDP did not parse, or lacks the required m-lines.
    BadSdp,
    /// The offer has no Opus audio.
    NoOpus,
    /// An offer was already answered; renegotiation is not needed in this protocol.
    AlreadyNegotiated,
    /// The request needs a privilege the client lacks (e.g. server-mute as a non-owner).
    Forbidden,
    /// The request names a participant not in the room.
    UnknownParticipant,
    /// The media engine refused (room full, server overloaded).
    Unavailable,
    /// ICE and DTLS did not complete: the client could not reach the media port (UDP blocked,
    /// and no TURN relay, or the relay failed too). The socket closes with 4014 after it.
    MediaUnreachable,
}

/// One entry of `RTCConfiguration.iceServers`, as browsers take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// WebSocket close codes of the voice gateway.
pub mod close {
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame exceeded the size limit.
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const UNKNOWN_OP: u16 = 4001;
    /// Not JSON, a binary frame, or a payload of the wrong shape.
    pub const DECODE_ERROR: u16 = 4002;
    /// A request before `identify`.
    pub const NOT_AUTHENTICATED: u16 = 4003;
    /// The voice token is invalid, expired, or for another room; or, later, the chat login it
    /// was minted for ended (logout, password change, expiry).
    pub const AUTHENTICATION_FAILED: u16 = 4004;
    /// `identify` or `resume` twice on one connection.
    pub const ALREADY_AUTHENTICATED: u16 = 4005;
    /// `resume` of an unknown or ended session.
    pub const SESSION_NO_LONGER_VALID: u16 = 4006;
    pub const RATE_LIMITED: u16 = 4008;
    /// No heartbeat (or no identify) in time.
    pub const SESSION_TIMEOUT: u16 = 4009;
    /// Sent to the old connection when the same user joins the room again (another tab, a reloaded
    /// page, another device): the new join replaced it.
    pub const REPLACED: u16 = 4011;
    /// The participant left (its own `leave`), was removed, its media connection died, or the
    /// room was closed.
    pub const DISCONNECTED: u16 = 4014;

    /// A short reason sent with each code.
    pub fn reason(code: u16) -> &'static str {
        match code {
            GOING_AWAY => "server shutting down",
            1002 => "websocket protocol error",
            1007 => "text frame is not utf-8",
            TOO_BIG => "frame too large",
            INTERNAL => "internal error",
            UNKNOWN_OP => "unknown op",
            DECODE_ERROR => "decode error",
            NOT_AUTHENTICATED => "identify first",
            AUTHENTICATION_FAILED => "authentication failed",
            ALREADY_AUTHENTICATED => "already identified",
            SESSION_NO_LONGER_VALID => "session no longer valid",
            RATE_LIMITED => "rate limited",
            SESSION_TIMEOUT => "session timed out",
            REPLACED => "replaced by a newer join",
            DISCONNECTED => "disconnected",
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let m: ClientMsg = serde_json::from_str(r#"{"op":"identify","d":{"token":"t"}}"#).unwrap();
        assert_eq!(m, ClientMsg::Identify { token: "t".into() });
        let m: ClientMsg = serde_json::from_str(r#"{"op":"leave","d":{}}"#).unwrap();
        assert_eq!(m, ClientMsg::Leave {});
        let s = serde_json::to_string(&ServerMsg::Speaking { user_id: "1".into(), speaking: true }).unwrap();
        assert_eq!(s, r#"{"op":"speaking","d":{"user_id":"1","speaking":true}}"#);
        let m: ClientMsg = serde_json::from_str(r#"{"op":"camera","d":{"on":false}}"#).unwrap();
        assert_eq!(m, ClientMsg::Camera { on: false });
        // Fields added after the first release default, so frames of older servers still parse.
        let old =
            r#"{"op":"ready","d":{"session_id":"s","user_id":"1","room_id":"2","audio_slots":5,"participants":[]}}"#;
        assert!(matches!(
            serde_json::from_str::<ServerMsg>(old).unwrap(),
            ServerMsg::Ready { mode: RoomMode::Hybrid, video_slots: 0, .. }
        ));
        let slot: Slot = serde_json::from_str(r#"{"mid":"3","user_id":null}"#).unwrap();
        assert_eq!(slot.kind, SlotKind::Audio);
        let s = serde_json::to_string(&ServerMsg::Error { code: ErrorCode::NoOpus, message: "x".into() }).unwrap();
        assert_eq!(s, r#"{"op":"error","d":{"code":"no_opus","message":"x"}}"#);
        assert!(serde_json::from_str::<ClientMsg>(r#"{"op":"dance","d":{}}"#).is_err());
        assert!(serde_json::from_str::<ClientMsg>(r#"{"op":"mute","d":{"self_mute":"yes"}}"#).is_err());
    }
}

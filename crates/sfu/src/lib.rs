//! # sfu — confab's media engine
//!
//! Every peer is one [str0m](https://docs.rs/str0m) `Rtc` (ICE-lite, DTLS-SRTP); the engine runs
//! on `workers` threads, each one tokio task with its own UDP socket (and ICE-TCP listener), a
//! room's peers on one worker; [`Sfu`] is the cheap handle the signaling crate calls. What happens to media depends on the room's [`MediaMode`]:
//! - audio is forwarded without decoding (last-N, below), or in `mcu` rooms mixed by an
//!   [`AudioMixer`] (mix-minus: everyone hears everyone but themselves on one m-line);
//! - video is forwarded camera by camera in `sfu` rooms (one receive slot per camera, PLIs relayed
//!   to the publisher), or in `hybrid` and `mcu` rooms composited by a [`VideoMixer`] into one VP8
//!   stream written to every participant.
//!
//! The mixers live in the `mcu` crate, which links GStreamer; this crate only defines the traits
//! ([`mixer`]) and the binary injects them ([`Mixers`]) when it starts the engine.
//!
//! ## Module map
//! - [`lib.rs`](self): the public types — [`SfuConfig`], [`SfuEvent`], [`SfuError`]; `handle`: the
//!   [`Sfu`] handle (offers prepared in the caller's task, commands routed to a peer's worker).
//! - `offer`: validates a client offer and builds the peer's `Rtc` and SDP answer (in the caller's
//!   task, so the engine loop never parses SDP); `sdp_text`: what is read and completed on the
//!   SDP as text (the microphone's codecs; candidates in every m-section of the answer).
//! - [`ingest`]: publishers in no room (WHIP): their offer checked and answered like `offer`'s,
//!   their depacketised frames handed to an [`IngestSink`] instead of a room; `broadcast`: their
//!   WHEP viewers, written each frame untouched; `feed`: sources that are not peers (a transcoded
//!   RTMP stream) whose frames the caller pushes ([`Sfu::feed`]) to WHEP viewers.
//! - `workers`: the threads, their ports, which worker holds each room and peer, merged stats.
//! - `tcp`: ICE over TCP on each worker's port (RFC 4571 framing).
//! - `engine`: the task — socket reads, commands, the per-peer timer heap; the peers a datagram
//!   was forwarded to are drained and their copies sent (`udp`: one `sendmmsg`) before the next
//!   datagram is read (every few under a deep backlog).
//! - `lifecycle`: peers joining, leaving, timing out or failing; housekeeping; the stats snapshot.
//! - `peer`: one peer's `Rtc` and how it is drained (`poll_output` until `Timeout`).
//! - `direct`: forwarded media written through str0m's direct API (`write_rtp`: no packetizer per
//!   copy; a video frame packetised once by its source, its packets shared by every copy), what
//!   each step of that path bought, and where the end-to-end packet goes.
//! - `forward`: audio fan-out (or into the room's mixer), speaker events and `Slots` updates.
//! - `video`: camera frames forwarded (`sfu`) or into the compositor; the composite and the audio
//!   mix written out. `keyframes`: keyframe requests both ways, rate-limited per publisher.
//! - [`mixer`]: the traits the MCU is reached through.
//! - `demux`: which peer a datagram belongs to: by source address, else by the STUN USERNAME's
//!   server ufrag (confirmed by `Rtc::accepts`); no scan over peers.
//! - `room` (sans-IO): membership, mute, camera, slot assignment per kind (last-N audio, cameras).
//! - `slots` (sans-IO): sticky slot filling and RTP timestamp rebasing.
//! - [`speaker`] (sans-IO): speaking / dominant-speaker detection from RFC 6464 audio levels.
//! - [`stats`]: counters and the [`SfuStats`] snapshot; [`histogram`]: forwarding latency.
//!
//! ## Last-N over fixed receive slots
//! A client offers one `sendonly` audio m-line (its microphone) and K `recvonly` m-lines, its
//! receive *slots*; the server never renegotiates. Which speaker flows into which slot is
//! announced out of band with [`SfuEvent::Slots`].
//!
//! Per room, candidates are ranked: the speaker detector's ranking (current speakers first, then
//! smoothed loudness), then members never heard, in join order; muted members are left out. Each
//! listener is forwarded the first `min(last_n, K)` candidates other than itself. Assignment is
//! sticky: a source keeps its slot while it stays in the listener's set, and only freed slots
//! take newcomers, so a client's slot-to-speaker mapping churns as little as possible. The
//! assignment is recomputed on joins, leaves, mutes, speaking starts/stops, and every 250 ms
//! (loudness order drifts); a `Slots` event goes to each listener whose slots changed (and to a
//! joining peer, always).
//!
//! Each slot has one outgoing SSRC (str0m's), so when its source changes the RTP timestamp is
//! rebased: the new source's timeline continues from where the old one stopped plus the
//! wall-clock gap. Sequence numbers are str0m's own per slot, so they stay continuous too.

mod broadcast;
mod demux;
mod direct;
mod engine;
mod feed;
mod forward;
mod handle;
#[doc(hidden)]
pub mod harness;
pub mod histogram;
pub mod ingest;
mod keyframes;
mod lifecycle;
pub mod mixer;
mod offer;
mod peer;
mod room;
mod sdp_text;
mod slots;
pub mod speaker;
pub mod stats;
mod tcp;
mod udp;
mod video;
mod workers;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use feed::FeedMedia;
pub use handle::Sfu;
pub use ingest::{IngestCodec, IngestMedia, IngestSink};
pub use mixer::{AudioMixer, Mixed, Mixers, VideoMixer, VideoOut, VideoSink};
pub use speaker::SpeakerConfig;
pub use stats::{Counters, PeerStats, RoomStats, SfuStats, Totals};

pub type RoomId = u64;
pub type PeerId = u64;

#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The one UDP socket all peers share.
    pub bind: SocketAddr,
    /// Advertised in the host candidate instead of the bound IP (NAT, or a 0.0.0.0 bind).
    pub public_ip: Option<IpAddr>,
    /// At most this many speakers are forwarded to each listener.
    pub last_n: usize,
    /// Cap on the receive (`recvonly`) audio m-lines honoured per peer.
    pub max_slots: usize,
    /// Cap on the receive video m-lines honoured per peer (one camera each in `sfu` rooms).
    pub max_video_slots: usize,
    /// Cap on the receive screen-share m-lines honoured per peer.
    pub max_share_slots: usize,
    /// A peer that sends nothing (not even ICE consent checks) for this long is removed, and so
    /// is one not connected (ICE + DTLS) this long after it was added.
    pub peer_timeout: Duration,
    pub max_peers: usize,
    pub speaker: SpeakerConfig,
    /// ICE over TCP as well: a passive TCP candidate on the same address and port number, for
    /// clients whose network passes no UDP ([`tcp`]).
    pub ice_tcp: bool,
    /// Engine threads, each with its own socket (the bound port, then the next ones); 0: one per
    /// core available ([`workers`]).
    pub workers: usize,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_ip: None,
            last_n: 5,
            max_slots: 16,
            max_video_slots: 25,
            max_share_slots: 4,
            peer_timeout: Duration::from_secs(10),
            max_peers: 10_000,
            speaker: SpeakerConfig::default(),
            ice_tcp: true,
            workers: 1,
        }
    }
}

/// How a room carries media. Fixed when the room's first peer joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaMode {
    /// Audio forwarded, video composited.
    #[default]
    Hybrid,
    /// Audio and video forwarded.
    Sfu,
    /// Audio mixed (mix-minus), video composited.
    Mcu,
}

impl MediaMode {
    pub fn mixes_audio(self) -> bool {
        self == MediaMode::Mcu
    }

    pub fn composites_video(self) -> bool {
        self != MediaMode::Sfu
    }
}

/// What the engine needs to know of a joining peer besides its offer.
#[derive(Debug, Clone, Default)]
pub struct PeerOptions {
    /// The room's mode; a room keeps the mode of its first peer.
    pub mode: MediaMode,
    /// Shown on the peer's placeholder tile in a composite (its initials are drawn).
    pub label: String,
}

/// The engine's answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub sdp: String,
    /// The offer had a camera (a `sendonly` video m-line with VP8).
    pub camera: bool,
}

/// One receive m-line of a listener and the source flowing into it (`None`: unused, or the
/// room's mix or composite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    pub mid: String,
    pub source: Option<PeerId>,
    pub video: bool,
    /// A screen-share slot (then `video` is true too).
    pub share: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GoneReason {
    /// No datagram for `peer_timeout`.
    Timeout,
    /// The client closed DTLS.
    Closed,
    /// ICE/DTLS failed after connecting, or str0m gave up on the peer.
    Failed,
    /// ICE and DTLS never completed within `peer_timeout`: the peer's network cannot reach the
    /// media port (UDP blocked and no TURN relay, or the relay failed too).
    Unreachable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SfuEvent {
    /// ICE and DTLS are up: media can flow.
    PeerConnected {
        room: RoomId,
        peer: PeerId,
    },
    /// The engine dropped the peer on its own (not sent for [`Sfu::remove_peer`]).
    PeerGone {
        room: RoomId,
        peer: PeerId,
        reason: GoneReason,
    },
    Speaking {
        room: RoomId,
        peer: PeerId,
        speaking: bool,
    },
    DominantSpeaker {
        room: RoomId,
        peer: Option<PeerId>,
    },
    /// Listener `peer`: the source flowing into each of its receive m-lines, audio then video,
    /// each in offer order.
    Slots {
        peer: PeerId,
        slots: Vec<SlotInfo>,
    },
    /// The room's video composite failed or could not start; the room goes on without video.
    VideoEnded {
        room: RoomId,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    #[error("{0}")]
    BadSdp(String),
    #[error("the offer has no Opus audio")]
    NoOpus,
    #[error("the offer has no sendonly/sendrecv audio m-line")]
    NoSendAudio,
    #[error("the offer's video m-lines have no VP8")]
    NoVp8,
    #[error("the offer has no video m-line for this stream")]
    NoVideo,
    #[error("no such live source (the stream is not published now)")]
    NoSource,
    #[error("the offer's video m-line has no H.264 (packetization-mode 1), which this stream is sent in")]
    NoH264,
    #[error("this server cannot mix audio (no MCU)")]
    NoMixer,
    #[error("peer already added")]
    DuplicatePeer,
    #[error("the media engine is full")]
    Full,
    #[error("the media engine has stopped")]
    EngineGone,
}

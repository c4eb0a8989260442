//! Counters kept by the engine and the snapshot [`crate::Sfu::stats`] returns.

use std::ops::AddAssign;

use serde::Serialize;

use crate::histogram::LatencySummary;
use crate::{MediaMode, PeerId, RoomId};

/// Traffic of one peer, or the sum over a room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// UDP datagrams (STUN, DTLS, SRTP, SRTCP) received from the peer, and their bytes.
    pub packets_in: u64,
    pub bytes_in: u64,
    /// UDP datagrams sent to the peer, and their bytes.
    pub packets_out: u64,
    pub bytes_out: u64,
    /// Audio frames received from the peer's microphone m-line.
    pub frames_in: u64,
    /// Audio frames forwarded (or mixed) to the peer (all its slots).
    pub frames_out: u64,
    /// Video frames received from the peer's camera.
    pub video_frames_in: u64,
    /// Video frames written to the peer: forwarded cameras, or the composite.
    pub video_frames_out: u64,
    /// Keyframe requests (PLI/FIR) the peer sent for what it receives, and that were sent to it.
    pub keyframe_requests_in: u64,
    pub keyframe_requests_out: u64,
    /// Frames of the peer dropped because it is muted.
    pub dropped_muted: u64,
    /// Frames or datagrams for the peer lost to write/send errors, and inputs str0m rejected.
    pub dropped_errors: u64,
    /// Microphone packets lost on the way in (estimated from the loss fraction of the RTCP
    /// receiver reports we send): forwarding renumbers packets, so receivers cannot see it.
    pub uplink_lost: u64,
}

impl AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.packets_in += o.packets_in;
        self.bytes_in += o.bytes_in;
        self.packets_out += o.packets_out;
        self.bytes_out += o.bytes_out;
        self.frames_in += o.frames_in;
        self.frames_out += o.frames_out;
        self.video_frames_in += o.video_frames_in;
        self.video_frames_out += o.video_frames_out;
        self.keyframe_requests_in += o.keyframe_requests_in;
        self.keyframe_requests_out += o.keyframe_requests_out;
        self.dropped_muted += o.dropped_muted;
        self.dropped_errors += o.dropped_errors;
        self.uplink_lost += o.uplink_lost;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerStats {
    pub peer: PeerId,
    pub room: RoomId,
    /// ICE and DTLS are up.
    pub connected: bool,
    pub muted: bool,
    /// Receive slots honoured for this peer (audio, video).
    pub slots: usize,
    pub video_slots: usize,
    /// Offered a camera, and has it on.
    pub camera: bool,
    #[serde(flatten)]
    pub counters: Counters,
    /// Latest round-trip time str0m measured (RTCP receiver reports or TWCC), in milliseconds.
    pub rtt_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomStats {
    pub room: RoomId,
    /// The engine worker the room lives on.
    pub worker: usize,
    pub mode: MediaMode,
    pub peers: usize,
    /// The composite runs now.
    pub video: bool,
    /// Composite frames (and keyframes among them) written out, and audio mix ticks run.
    pub composite_frames: u64,
    pub composite_keyframes: u64,
    pub mix_ticks: u64,
    /// Current members' counters plus those of members who left.
    #[serde(flatten)]
    pub counters: Counters,
}

/// Everything counted since the engine started, closed rooms included: what monotonic counters
/// (Prometheus) are made of, where a room's own counters vanish with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    #[serde(flatten)]
    pub counters: Counters,
    pub composite_frames: u64,
    pub mix_ticks: u64,
}

impl AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        self.counters += o.counters;
        self.composite_frames += o.composite_frames;
        self.mix_ticks += o.mix_ticks;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SfuStats {
    /// Sorted by peer id.
    pub peers: Vec<PeerStats>,
    /// Sorted by room id.
    pub rooms: Vec<RoomStats>,
    /// Datagrams that matched no peer (junk, unknown STUN), dropped.
    pub garbage_datagrams: u64,
    /// Since the engine started, over every room there has been.
    pub totals: Totals,
    /// Forwarded audio: from the kernel queueing a packet on the socket (its wait there included)
    /// to its copy leaving for a listener (decrypt, route, encrypt, send), per copy, since the
    /// engine started.
    pub forward_latency: LatencySummary,
}

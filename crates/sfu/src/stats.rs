//! Counters kept by the engine and the snapshot [`crate::Sfu::stats`] returns.

use std::ops::AddAssign;

use serde::Serialize;

use crate::{PeerId, RoomId};

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
    /// Audio frames forwarded to the peer (all its slots).
    pub frames_out: u64,
    /// Frames of the peer dropped because it is muted.
    pub dropped_muted: u64,
    /// Frames or datagrams for the peer lost to write/send errors, and inputs str0m rejected.
    pub dropped_errors: u64,
}

impl AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.packets_in += o.packets_in;
        self.bytes_in += o.bytes_in;
        self.packets_out += o.packets_out;
        self.bytes_out += o.bytes_out;
        self.frames_in += o.frames_in;
        self.frames_out += o.frames_out;
        self.dropped_muted += o.dropped_muted;
        self.dropped_errors += o.dropped_errors;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerStats {
    pub peer: PeerId,
    pub room: RoomId,
    /// ICE and DTLS are up.
    pub connected: bool,
    pub muted: bool,
    /// Receive slots honoured for this peer.
    pub slots: usize,
    #[serde(flatten)]
    pub counters: Counters,
    /// Latest round-trip time str0m measured (RTCP receiver reports or TWCC), in milliseconds.
    pub rtt_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomStats {
    pub room: RoomId,
    pub peers: usize,
    /// Current members' counters plus those of members who left.
    #[serde(flatten)]
    pub counters: Counters,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SfuStats {
    /// Sorted by peer id.
    pub peers: Vec<PeerStats>,
    /// Sorted by room id.
    pub rooms: Vec<RoomStats>,
    /// Datagrams that matched no peer (junk, unknown STUN), dropped.
    pub garbage_datagrams: u64,
}

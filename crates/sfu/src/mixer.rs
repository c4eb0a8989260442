//! The hooks through which the engine reaches media processing it does not own: the MCU's video
//! compositor and audio mix-minus live in the `mcu` crate, which links GStreamer, so this crate
//! only defines what it needs of them and the binary injects an implementation ([`Mixers`]) when
//! it starts the engine.
//!
//! The engine calls these from its one task, so implementations must return quickly: a video
//! mixer hands frames to threads of its own; an audio mixer is a sans-IO state machine ticked by
//! the engine every 20 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{PeerId, RoomId};

/// What a room's video mixer produces.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum VideoOut {
    /// One encoded VP8 frame of the composite, for every participant.
    Frame {
        data: Arc<[u8]>,
        keyframe: bool,
        /// Since the mixer started, strictly increasing (the RTP timestamp is `pts` at 90 kHz).
        pts: Duration,
    },
    /// This publisher's decoder needs a keyframe: send it a PLI.
    KeyframeNeeded(PeerId),
    /// The room's video has ended (its pipeline failed); no more output follows.
    Failed(String),
}

/// Where a room's video mixer delivers [`VideoOut`]. Called from the mixer's own threads; it
/// never blocks.
pub type VideoSink = Box<dyn Fn(VideoOut) + Send + Sync>;

/// One room's video composite: every publisher's camera decoded into one grid, encoded once.
pub trait VideoMixer: Send {
    /// A participant's tile appears (a placeholder labelled `label` until its camera decodes).
    fn add_source(&mut self, peer: PeerId, label: &str);
    fn remove_source(&mut self, peer: PeerId);
    /// One depacketised VP8 frame of `peer`'s camera. `contiguous` is false when frames were
    /// lost before it: the decoder must then wait for a keyframe.
    fn push_vp8(&mut self, peer: PeerId, frame: Arc<[u8]>, keyframe: bool, contiguous: bool);
    fn set_camera(&mut self, peer: PeerId, on: bool);
    /// Marks the dominant speaker's tile.
    fn set_dominant(&mut self, peer: Option<PeerId>);
    /// A receiver joined or lost the composite: a keyframe soon (rate-limited by the mixer).
    fn request_keyframe(&mut self);
}

/// One tick of a room's audio mix: a 20 ms Opus packet per participant.
#[derive(Debug)]
pub struct Mixed {
    /// Frame index since the mixer started: the RTP timestamp is `frame * 960` at 48 kHz.
    pub frame: u64,
    pub packets: Vec<(PeerId, Arc<[u8]>)>,
}

/// One room's audio mix-minus: each participant receives everyone but itself, re-encoded.
pub trait AudioMixer: Send {
    fn add(&mut self, peer: PeerId) -> Result<(), String>;
    fn remove(&mut self, peer: PeerId);
    /// One received Opus packet; `seq` is its extended RTP sequence number.
    fn push(&mut self, peer: PeerId, seq: u64, opus: &[u8]);
    fn set_muted(&mut self, peer: PeerId, muted: bool);
    /// When [`AudioMixer::tick`] is next due.
    fn poll_timeout(&self) -> Instant;
    /// The next 20 ms of output if due at `now`, else `None`; call until `None` to catch up.
    fn tick(&mut self, now: Instant) -> Option<Mixed>;
}

/// Makes the mixers of a room. Injected by the binary with [`crate::Sfu::start`].
pub trait Mixers: Send + Sync {
    /// A video compositor for `room`, delivering to `sink`. An error names what is missing.
    fn video(&self, room: RoomId, sink: VideoSink) -> Result<Box<dyn VideoMixer>, String>;
    /// An audio mix-minus for `room`, its first tick due at `now`.
    fn audio(&self, room: RoomId, now: Instant) -> Result<Box<dyn AudioMixer>, String>;
}

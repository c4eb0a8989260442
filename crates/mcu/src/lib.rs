//! # mcu — confab's GStreamer MCU
//!
//! The only crate that links GStreamer (the room compositor and mix, and live streaming's ladder). It knows nothing of WebSockets, tokens or the store: the
//! SFU hands it depacketised frames and writes what it produces to peers.
//!
//! ## Video compositor
//! One [`Compositor`] per room: each publisher's VP8 frames are decoded, scaled into a grid tile
//! and composited; the grid is encoded once to VP8 and every peer receives that one stream
//! ([`CompositorEvent::Frame`]).
//!
//! - A source appears with [`Compositor::add_source`] as a placeholder (a colour from its id and
//!   the initials of its label) until its first frame decodes; [`Compositor::set_camera`]`(id,
//!   false)` shows the placeholder again. Tiles are laid out by join order ([`layout`]); sources
//!   beyond [`CompositorConfig::max_tiles`] are not shown and their frames are not decoded until
//!   a shown source leaves.
//! - Keyframes: a source's decoder waits for a keyframe after it starts, after corrupt input and
//!   after any dropped frame, and says so with [`CompositorEvent::KeyframeNeeded`] (send the
//!   publisher a PLI). Peers that join or lose the composite call
//!   [`Compositor::request_keyframe`] (rate-limited, deferred rather than lost).
//! - Failure isolation: corrupt input from one publisher is a decoder warning (its frames are
//!   dropped until a keyframe); an error inside one source's branch rebuilds that branch; only an
//!   error elsewhere in the pipeline ends the room's video with [`CompositorEvent::Failed`].
//!   Nothing panics or aborts the process.
//!
//! ## Module map
//! - [`lib.rs`](self): the public types — [`CompositorConfig`], [`CompositorEvent`],
//!   [`EncodedFrame`], [`McuError`].
//! - `compositor`: the [`Compositor`] handle and its API.
//! - `room`: the state behind it (join order, tiles, branches, dominant speaker) and how it is
//!   reconciled with the layout.
//! - `bus`: the bus thread; errors and warnings mapped to a source (restart, keyframe) or to
//!   the room (`Failed`).
//! - `pipeline`: the fixed part of the pipeline (compositor → encoder → appsink, the border).
//! - `source`: one source's branch (appsrc → vp8dec → scale → compositor pad, plus its
//!   placeholder), adding and removing it while playing.
//! - [`ladder`]: live streaming's transcode ladder: one H.264 input decoded once, scaled and
//!   re-encoded with x264 per rendition, keyframes aligned across renditions; its input H.264
//!   (RTMP, WHIP) or VP8 (WHIP).
//! - [`aac`]: Opus to AAC for live streams published over WebRTC (WHIP); [`opus`]: the reverse,
//!   AAC to Opus, for WebRTC viewers (WHEP) of streams published over RTMP.
//! - [`layout`] (sans-IO): the grid.
//! - [`mixminus`] (sans-IO): audio mix-minus for all-MCU rooms (Opus decode, mix, each listener
//!   re-encoded without its own voice; silent listeners share one stream).
//! - `keyframe` (sans-IO): the encoder's keyframe rate limit and the per-source keyframe gate.
//! - [`vp8`] (sans-IO): the frame header check that refuses invalid and oversized input.
//! - [`placeholder`]: placeholder and border pictures, drawn in Rust (no pango).
//! - [`elements`]: the elements needed, the Debian package of each, [`check_elements`].

pub mod aac;
mod bus;
mod compositor;
pub mod elements;
mod keyframe;
pub mod ladder;
pub mod layout;
pub mod mixminus;
pub mod opus;
mod pipeline;
pub mod placeholder;
mod room;
mod source;
pub mod vp8;

use std::sync::Arc;
use std::time::Duration;

pub use compositor::{Compositor, MAX_FRAME_BYTES};
pub use elements::{COMPOSITOR_ELEMENTS, check_elements, debian_package};
pub use layout::{Rect, Tile};

/// A publisher, as the caller numbers them (the SFU's peer id).
pub type SourceId = u64;

pub(crate) type Sink = Arc<dyn Fn(CompositorEvent) + Send + Sync>;

#[derive(Clone, Debug)]
pub struct CompositorConfig {
    /// Output size (even numbers).
    pub width: u32,
    pub height: u32,
    /// Output frame rate; sources may send at any rate (their last frame is repeated).
    pub fps: u32,
    /// The encoder's constant bitrate target.
    pub bitrate_kbps: u32,
    /// At most this many tiles; later joiners are not shown until someone leaves.
    pub max_tiles: usize,
    /// At most one forced keyframe per interval, and one `KeyframeNeeded` per source.
    pub keyframe_min_interval: Duration,
    /// A keyframe at least this often even if nobody asks (bounds a lost request's damage).
    pub keyframe_max_interval: Duration,
    /// The dominant speaker's border colour (RGB).
    pub border_rgb: [u8; 3],
    /// The VP8 encoder element (overridable for tests; vp8enc's properties are set only if the
    /// element has them).
    pub encoder: String,
}

/// 1280x720@30, 1.5 Mbit/s, 9 tiles. Measured on 2 cores (`benches/composite.rs`, nine
/// 640x360@30 publishers): ~0.6 core per room at 720p, ~0.4 at 640x360, where a 3x3 grid's
/// tiles are too small (~190x110) to be worth the saving; decoding is ~0.02–0.03 core per
/// publisher either way.
impl Default for CompositorConfig {
    fn default() -> Self {
        CompositorConfig {
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 1500,
            max_tiles: 9,
            keyframe_min_interval: Duration::from_millis(500),
            keyframe_max_interval: Duration::from_secs(10),
            border_rgb: [0x23, 0xA5, 0x5A],
            encoder: "vp8enc".to_owned(),
        }
    }
}

impl CompositorConfig {
    /// Whether the pipeline can be built with these settings (the encoder's presence aside).
    pub fn validate(&self) -> Result<(), McuError> {
        let bad = |why: &str| Err(McuError::InvalidConfig(why.to_owned()));
        if self.width < 64 || self.height < 64 || self.width > 3840 || self.height > 2160 {
            return bad("width and height must be within 64..=3840 x 64..=2160");
        }
        if !self.width.is_multiple_of(2) || !self.height.is_multiple_of(2) {
            return bad("width and height must be even (I420)");
        }
        if !(1..=60).contains(&self.fps) {
            return bad("fps must be within 1..=60");
        }
        if self.bitrate_kbps == 0 || self.max_tiles == 0 {
            return bad("bitrate_kbps and max_tiles must be positive");
        }
        Ok(())
    }
}

/// One encoded VP8 frame of the composite, to be written to every peer.
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    pub data: bytes::Bytes,
    pub keyframe: bool,
    /// Presentation time since the compositor started, strictly increasing (derive the RTP
    /// timestamp from it: `pts * 90 kHz`).
    pub pts: Duration,
    pub duration: Duration,
}

#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CompositorEvent {
    Frame(EncodedFrame),
    /// This publisher's decoder needs a keyframe (it started, or lost or rejected frames).
    KeyframeNeeded(SourceId),
    /// The pipeline failed: this room's video has ended (the compositor is stopped).
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McuError {
    #[error("GStreamer element `{element}` is missing (Debian package: {package})")]
    MissingElement { element: String, package: &'static str },
    #[error("invalid compositor config: {0}")]
    InvalidConfig(String),
    #[error("GStreamer: {0}")]
    Gst(String),
}

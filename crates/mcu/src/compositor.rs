//! [`Compositor`]: the handle callers hold. The room's state lives in `room`, bus handling in
//! `bus`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::keyframe::{KeyframeLimiter, Verdict};
use crate::layout::Tile;
use crate::room::{Inner, Source, lock};
use crate::source::{MAX_QUEUED_FRAMES, Shared};
use crate::vp8::{self, FrameKind};
use crate::{CompositorConfig, CompositorEvent, McuError, Sink, SourceId, bus, pipeline};

/// Largest VP8 frame accepted from a publisher (a 1080p keyframe is well under 1 MiB).
pub const MAX_FRAME_BYTES: usize = 2 << 20;

/// One room's video compositor: one GStreamer pipeline. Cheap to call from any thread; dropping
/// it shuts the pipeline down.
pub struct Compositor {
    inner: Arc<Inner>,
    bus_thread: Mutex<Option<JoinHandle<()>>>,
}

impl Compositor {
    /// Builds and starts the pipeline. `sink` receives every [`CompositorEvent`]. It is called
    /// from GStreamer threads, the bus thread and the threads calling this handle's methods
    /// (never with a lock of ours held), so it must be quick and must not block: hand the event
    /// to a channel. It must not own this `Compositor` (a cycle: the pipeline owns the sink).
    pub fn new(
        cfg: CompositorConfig,
        sink: impl Fn(CompositorEvent) + Send + Sync + 'static,
    ) -> Result<Self, McuError> {
        cfg.validate()?;
        gst::init().map_err(|e| McuError::Gst(format!("gst::init: {e}")))?;
        let sink: Sink = Arc::new(sink);
        let parts = pipeline::build(&cfg, sink.clone())?;
        let bus = parts.pipeline.bus().ok_or_else(|| McuError::Gst("pipeline without a bus".into()))?;
        let inner = Arc::new(Inner {
            keyframes: Mutex::new(KeyframeLimiter::new(cfg.keyframe_min_interval)),
            cfg,
            parts,
            state: Mutex::default(),
            sink,
            stopped: AtomicBool::new(false),
        });
        if let Err(e) = inner.parts.pipeline.set_state(gst::State::Playing) {
            let _ = inner.parts.pipeline.set_state(gst::State::Null);
            return Err(McuError::Gst(format!("starting the pipeline: {e}")));
        }
        let weak = Arc::downgrade(&inner);
        let thread = std::thread::Builder::new()
            .name("mcu-bus".into())
            .spawn(move || bus::bus_loop(weak, bus))
            .map_err(|e| {
                let _ = inner.parts.pipeline.set_state(gst::State::Null);
                McuError::Gst(format!("spawning the bus thread: {e}"))
            })?;
        Ok(Compositor { inner, bus_thread: Mutex::new(Some(thread)) })
    }

    /// A participant's tile appears (placeholder until its frames decode). Unknown ids only.
    pub fn add_source(&self, id: SourceId, label: &str) {
        let inner = &self.inner;
        let Some(mut state) = inner.lock_running() else { return };
        if state.sources.contains_key(&id) {
            return;
        }
        let shared = Shared::new(inner.cfg.keyframe_min_interval);
        state.order.push(id);
        state.sources.insert(id, Source { label: label.to_owned(), shared, branch: None, generation: 0 });
        let events = inner.reconcile(&mut state);
        drop(state);
        inner.emit_all(events);
    }

    /// One depacketised VP8 frame from `id`'s publisher, timestamped on arrival. `keyframe` is
    /// the depacketiser's flag; the frame's own header decides (see `vp8`). Dropped, and a
    /// keyframe asked for, while the source's decoder waits for a keyframe, lags, or the frame
    /// is invalid or oversized; dropped silently when the source is unknown, not shown, or its
    /// camera is off.
    pub fn push_vp8(&self, id: SourceId, frame: &[u8], keyframe: bool) {
        let inner = &self.inner;
        let Some((vp8, shared)) = inner.lock_running().and_then(|state| {
            let source = state.sources.get(&id)?;
            Some((source.branch.as_ref()?.vp8.clone(), source.shared.clone()))
        }) else {
            return;
        };
        if !shared.camera_on.load(Ordering::Acquire) || frame.is_empty() || frame.len() > MAX_FRAME_BYTES {
            return;
        }
        let (now, kind) = (Instant::now(), vp8::inspect(frame));
        if matches!(kind, FrameKind::Key { .. }) != keyframe {
            tracing::trace!(source = id, ?kind, keyframe, "keyframe flag disagrees with the frame header");
        }
        let verdict = {
            let mut gate = lock(&shared.gate);
            match kind {
                // Dropping a frame breaks the reference chain: restart at a keyframe. So does
                // a decoder that lags by a second.
                FrameKind::Invalid => Verdict::Drop { ask: gate.lost(now) },
                _ if vp8.current_level_buffers() >= MAX_QUEUED_FRAMES => Verdict::Drop { ask: gate.lost(now) },
                FrameKind::Key { .. } => gate.frame(true, now),
                FrameKind::Delta => gate.frame(false, now),
            }
        };
        match verdict {
            Verdict::Drop { ask } => {
                if ask {
                    inner.emit(CompositorEvent::KeyframeNeeded(id));
                }
            }
            Verdict::Decode => {
                let mut buffer = gst::Buffer::from_slice(frame.to_vec());
                if kind == FrameKind::Delta
                    && let Some(b) = buffer.get_mut()
                {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
                // Fails only while the branch or pipeline is being torn down.
                let _ = vp8.push_buffer(buffer);
            }
        }
    }

    /// Frames of `id` were lost before its next one (a gap in the publisher's stream): its decoder
    /// waits for a keyframe, which is asked for (rate-limited).
    pub fn source_lost(&self, id: SourceId) {
        let inner = &self.inner;
        let Some(shared) = inner.lock_running().and_then(|s| s.sources.get(&id).map(|s| s.shared.clone())) else {
            return;
        };
        if lock(&shared.gate).lost(Instant::now()) {
            inner.emit(CompositorEvent::KeyframeNeeded(id));
        }
    }

    /// Camera off: the placeholder shows again and frames are ignored. Camera on: frames are
    /// decoded again from the next keyframe (asked for), and the video shows once one decodes.
    pub fn set_camera(&self, id: SourceId, on: bool) {
        let inner = &self.inner;
        let Some(state) = inner.lock_running() else { return };
        let Some(source) = state.sources.get(&id) else { return };
        if source.shared.camera_on.swap(on, Ordering::AcqRel) == on {
            return;
        }
        let mut ask = false;
        if let Some(branch) = &source.branch {
            if on {
                ask = lock(&source.shared.gate).lost(Instant::now());
            } else {
                source.shared.showing.store(false, Ordering::Release);
                branch.hide_video();
            }
        }
        drop(state);
        if ask {
            inner.emit(CompositorEvent::KeyframeNeeded(id));
        }
    }

    /// The participant left: its tile goes and the layout re-flows (a source beyond
    /// `max_tiles` may take the freed place).
    pub fn remove_source(&self, id: SourceId) {
        let inner = &self.inner;
        let Some(mut state) = inner.lock_running() else { return };
        let Some(source) = state.sources.remove(&id) else { return };
        state.order.retain(|&s| s != id);
        if state.dominant == Some(id) {
            state.dominant = None;
        }
        if let Some(branch) = source.branch {
            branch.remove(&inner.parts.pipeline, &inner.parts.compositor);
        }
        let events = inner.reconcile(&mut state);
        drop(state);
        inner.emit_all(events);
    }

    /// Draws the border around this source's tile (none for `None` or a source not shown).
    pub fn set_dominant(&self, id: Option<SourceId>) {
        let inner = &self.inner;
        let Some(mut state) = inner.lock_running() else { return };
        state.dominant = id;
        inner.update_border(&mut state);
    }

    /// Asks the encoder for a keyframe (a peer joined or lost the stream): forced at once, or,
    /// within `keyframe_min_interval` of the last one, when that interval ends.
    pub fn request_keyframe(&self) {
        if !self.inner.is_stopped() && lock(&self.inner.keyframes).request(Instant::now()) {
            self.inner.force_keyframe();
        }
    }

    /// The tiles shown now, in join order.
    pub fn layout(&self) -> Vec<Tile> {
        lock(&self.inner.state).tiles.clone()
    }

    /// Stops the pipeline and the bus thread; every later call is a no-op. Must not be called
    /// from the sink while it runs on a GStreamer streaming thread (a `Frame` event).
    pub fn shutdown(&self) {
        if !self.inner.stopped.swap(true, Ordering::AcqRel) {
            let _ = self.inner.parts.pipeline.set_state(gst::State::Null);
        }
        let handle = lock(&self.bus_thread).take();
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
    }
}

/// For tests: fault injection (what a broken stream or a failing pipeline would post on the
/// bus) and a census of the pipeline.
#[doc(hidden)]
impl Compositor {
    /// Posts an error from `id`'s decoder, as a stream it cannot handle would.
    pub fn simulate_source_error(&self, id: SourceId) {
        let state = lock(&self.inner.state);
        let decoder = state
            .sources
            .get(&id)
            .and_then(|s| s.branch.as_ref())
            .and_then(|b| b.bin.by_name(crate::source::DECODER_NAME));
        if let Some(dec) = decoder {
            gst::element_error!(dec, gst::StreamError::Decode, ["simulated decoder failure"]);
        }
    }

    /// Posts an error from the compositor element itself: the room's video fails.
    pub fn simulate_pipeline_error(&self) {
        gst::element_error!(self.inner.parts.compositor, gst::CoreError::Failed, ["simulated pipeline failure"]);
    }

    /// (elements in the pipeline, compositor sink pads): leak checks for add/remove.
    pub fn census(&self) -> (usize, usize) {
        let parts = &self.inner.parts;
        (parts.pipeline.children().len(), parts.compositor.sink_pads().len())
    }
}

impl Drop for Compositor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

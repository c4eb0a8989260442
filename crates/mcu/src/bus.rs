//! The bus thread and what each message does. No glib main loop: the bus is drained with
//! `timed_pop` on a thread of its own, which also fires deferred keyframe requests.
//!
//! Errors are isolated per source where GStreamer lets us tell where they came from: a message
//! from inside a source's bin (`src-<id>-<generation>`) concerns that publisher only.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::room::{Inner, lock};
use crate::source;
use crate::{CompositorEvent, SourceId};

/// How often the bus thread wakes with no message (deferred keyframes, shutdown).
const BUS_TICK: Duration = Duration::from_millis(50);

/// The bus thread. Holds the compositor weakly so dropping the handle ends it.
pub(crate) fn bus_loop(inner: Weak<Inner>, bus: gst::Bus) {
    loop {
        let msg = bus.timed_pop(gst::ClockTime::from_nseconds(BUS_TICK.as_nanos() as u64));
        let Some(inner) = inner.upgrade() else { return };
        if inner.is_stopped() {
            return;
        }
        if let Some(msg) = msg
            && !inner.on_message(&msg)
        {
            return;
        }
        inner.poll_keyframe(Instant::now());
    }
}

impl Inner {
    /// Handles one bus message; false once the pipeline has failed (the bus thread ends).
    pub fn on_message(&self, msg: &gst::Message) -> bool {
        use gst::MessageView;
        let origin = source::origin(msg);
        match msg.view() {
            MessageView::Error(err) => {
                let from = msg.src().map(|s| s.path_string()).unwrap_or_default();
                let text = match err.debug() {
                    Some(debug) => format!("{from}: {} ({debug})", err.error()),
                    None => format!("{from}: {}", err.error()),
                };
                // One publisher's broken stream must not end the room: rebuild its branch.
                if let Some((id, generation)) = origin {
                    tracing::warn!(source = id, "source branch failed, restarting it: {text}");
                    self.restart_source(id, generation);
                    return true;
                }
                self.fail(text);
                false
            }
            MessageView::Warning(w) => {
                // vp8dec reports corrupt input as warnings (max-errors = -1): wait for a keyframe.
                let from_decoder = msg.src().is_some_and(|s| s.name() == source::DECODER_NAME);
                match origin.filter(|_| from_decoder) {
                    Some((id, generation)) => self.decoder_lost(id, generation),
                    None => tracing::debug!("GStreamer warning: {}", w.error()),
                }
                true
            }
            MessageView::Eos(_) => {
                self.fail("unexpected end of stream".into());
                false
            }
            _ => true,
        }
    }

    /// A source's decoder rejected a frame: drop its frames until a keyframe, and ask for one.
    fn decoder_lost(&self, id: SourceId, generation: u64) {
        tracing::debug!(source = id, "decoder lost its reference");
        let ask = lock(&self.state)
            .sources
            .get(&id)
            .filter(|s| s.generation == generation)
            .is_some_and(|s| lock(&s.shared.gate).lost(Instant::now()));
        if ask {
            self.emit(CompositorEvent::KeyframeNeeded(id));
        }
    }

    /// Replaces a failed source branch with a fresh one (a new decoder, a keyframe request).
    /// An error from an older generation (already replaced or removed) is ignored.
    fn restart_source(&self, id: SourceId, generation: u64) {
        let Some(mut state) = self.lock_running() else { return };
        let Some(source) = state.sources.get_mut(&id).filter(|s| s.generation == generation) else { return };
        if let Some(branch) = source.branch.take() {
            branch.remove(&self.parts.pipeline, &self.parts.compositor);
        }
        let events = self.reconcile(&mut state);
        drop(state);
        self.emit_all(events);
    }

    fn fail(&self, message: String) {
        tracing::error!("video compositor failed: {message}");
        if !self.stopped.swap(true, Ordering::AcqRel) {
            let _ = self.parts.pipeline.set_state(gst::State::Null);
            self.emit(CompositorEvent::Failed(message));
        }
    }
}

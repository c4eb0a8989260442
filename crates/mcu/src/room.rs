//! The room's video state behind the [`Compositor`](crate::Compositor) handle: join order,
//! tiles, branches, the dominant speaker, and how they are brought in line with the layout.
//!
//! Locking: `state` is taken by API calls and the bus thread, never by a streaming thread (those
//! see only each source's atomics and the sink). Events are emitted after `state` is released,
//! so a sink may call back into the compositor from a thread of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use crate::keyframe::KeyframeLimiter;
use crate::layout::{self, Tile};
use crate::pipeline::Parts;
use crate::placeholder::I420;
use crate::source::{self, Branch, Shared};
use crate::{CompositorConfig, CompositorEvent, Sink, SourceId};

pub(crate) struct Inner {
    pub cfg: CompositorConfig,
    pub parts: Parts,
    pub state: Mutex<State>,
    pub keyframes: Mutex<KeyframeLimiter>,
    pub sink: Sink,
    pub stopped: AtomicBool,
}

#[derive(Default)]
pub(crate) struct State {
    /// Join order: decides tile positions and who is shown when over `max_tiles`.
    pub order: Vec<SourceId>,
    pub sources: HashMap<SourceId, Source>,
    pub tiles: Vec<Tile>,
    pub dominant: Option<SourceId>,
    pub border_size: Option<(u32, u32)>,
    pub next_generation: u64,
}

pub(crate) struct Source {
    pub label: String,
    pub shared: Arc<Shared>,
    /// Only sources with a tile have a branch (and decode).
    pub branch: Option<Branch>,
    pub generation: u64,
}

impl Inner {
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub fn lock_running(&self) -> Option<MutexGuard<'_, State>> {
        let state = lock(&self.state);
        (!self.is_stopped()).then_some(state)
    }

    pub fn emit(&self, event: CompositorEvent) {
        (self.sink)(event);
    }

    pub fn emit_all(&self, events: Vec<CompositorEvent>) {
        events.into_iter().for_each(|e| self.emit(e));
    }

    /// Brings branches and geometry in line with the join order: shown sources get a branch
    /// (and a keyframe request), moved ones are re-placed, ones pushed off the grid lose theirs.
    pub fn reconcile(&self, state: &mut State) -> Vec<CompositorEvent> {
        let (cfg, now) = (&self.cfg, Instant::now());
        let tiles = layout::grid(&state.order, cfg.width, cfg.height, cfg.max_tiles);
        let mut events = Vec::new();
        for &id in &state.order {
            let tile = tiles.iter().find(|t| t.source == id);
            let Some(source) = state.sources.get_mut(&id) else { continue };
            match (tile, source.branch.as_mut()) {
                (Some(tile), Some(branch)) => branch.place(tile.rect, id, &source.label),
                (Some(tile), None) => {
                    state.next_generation += 1;
                    source.generation = state.next_generation;
                    source.shared.showing.store(false, Ordering::Release);
                    let (parts, names) = (&self.parts, (id, source.generation, source.label.as_str()));
                    match Branch::new(&parts.pipeline, &parts.compositor, names, tile.rect, source.shared.clone()) {
                        Ok(branch) => {
                            source.branch = Some(branch);
                            if lock(&source.shared.gate).lost(now) {
                                events.push(CompositorEvent::KeyframeNeeded(id));
                            }
                        }
                        Err(e) => tracing::error!(source = id, "cannot build the source branch: {e}"),
                    }
                }
                (None, Some(_)) => {
                    if let Some(branch) = source.branch.take() {
                        branch.remove(&self.parts.pipeline, &self.parts.compositor);
                    }
                }
                (None, None) => {}
            }
        }
        state.tiles = tiles;
        self.update_border(state);
        events
    }

    pub fn update_border(&self, state: &mut State) {
        let pad = &self.parts.border_pad;
        let tile = state.dominant.and_then(|d| state.tiles.iter().find(|t| t.source == d));
        let Some(tile) = tile else {
            pad.set_property("alpha", 0.0f64);
            return;
        };
        let outer = tile.rect.expand(layout::border_width(self.cfg.height));
        if state.border_size != Some((outer.width, outer.height)) {
            state.border_size = Some((outer.width, outer.height));
            source::push_still(&self.parts.border, I420::solid(outer.width, outer.height, self.cfg.border_rgb));
        }
        source::set_geometry(pad, outer);
        pad.set_property("alpha", 1.0f64);
    }

    pub fn force_keyframe(&self) {
        let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
        if let Some(pad) = self.parts.encoder.static_pad("src") {
            pad.send_event(event);
        }
    }

    pub fn poll_keyframe(&self, now: Instant) {
        if lock(&self.keyframes).poll(now) {
            self.force_keyframe();
        }
    }
}

/// A poisoned lock only means a sink panicked elsewhere; the data is still consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! The streams being served: per stream, its packager (behind a lock held only to push a frame or
//! read a playlist, part or segment) and a generation counter that wakes blocked playlist and
//! part requests whenever a part is cut.

use crate::flv::{Audio, Video};
use crate::package::Packager;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// LL-HLS settings of every stream.
#[derive(Debug, Clone, Copy)]
pub struct HlsConfig {
    /// Segment length aimed at (the publisher's GOP decides in the end), seconds.
    pub segment_secs: f64,
    pub part_secs: f64,
    /// Segments kept per rendition.
    pub window: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig { segment_secs: 2.0, part_secs: 1.0 / 3.0, window: 12 }
    }
}

pub struct Stream {
    pkg: Mutex<Packager>,
    /// Counts parts cut (and the end): request handlers wait for it to move.
    parts: watch::Sender<u64>,
}

impl Stream {
    pub fn packager(&self) -> MutexGuard<'_, Packager> {
        self.pkg.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that sees every part cut from now on.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.parts.subscribe()
    }
}

#[derive(Default)]
pub struct Streams {
    cfg: HlsConfig,
    by_id: Mutex<HashMap<String, Arc<Stream>>>,
}

impl Streams {
    pub fn new(cfg: HlsConfig) -> Streams {
        Streams { cfg, by_id: Mutex::default() }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Stream>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new publish of `id`: a fresh packager replaces what an earlier one left.
    pub fn start(&self, id: &str) {
        let c = self.cfg;
        let stream = Stream {
            pkg: Mutex::new(Packager::new(c.segment_secs, c.part_secs, c.window)),
            parts: watch::Sender::new(0),
        };
        self.map().insert(id.to_string(), Arc::new(stream));
    }

    pub fn get(&self, id: &str) -> Option<Arc<Stream>> {
        self.map().get(id).cloned()
    }

    /// Pushes a frame; `true` when that cut the stream's very first part (it is now playable).
    pub fn video(&self, id: &str, ts_ms: u32, video: Video) -> bool {
        self.with(id, |p| {
            if let Err(e) = p.video(ts_ms, video) {
                tracing::warn!(stream = id, error = %e, "video config refused");
            }
        })
    }

    pub fn audio(&self, id: &str, ts_ms: u32, audio: Audio) -> bool {
        self.with(id, |p| {
            if let Err(e) = p.audio(ts_ms, audio) {
                tracing::warn!(stream = id, error = %e, "audio config refused");
            }
        })
    }

    /// The publisher stopped: the playlist ends (EXT-X-ENDLIST) and waiting requests wake.
    pub fn end(&self, id: &str) {
        self.with(id, Packager::end);
    }

    fn with(&self, id: &str, f: impl FnOnce(&mut Packager)) -> bool {
        let Some(stream) = self.get(id) else { return false };
        let (before, after) = {
            let mut p = stream.packager();
            let before = p.playlist().parts_cut();
            f(&mut p);
            (before, p.playlist().parts_cut() + u64::from(p.playlist().is_ended()))
        };
        if after != before {
            stream.parts.send_modify(|n| *n += 1);
        }
        before == 0 && after > 0
    }
}

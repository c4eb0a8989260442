//! The streams being served: per stream, its packager (behind a lock held only to push a frame or
//! read a playlist, part or segment) and a generation counter that wakes blocked playlist and
//! part requests whenever a part is cut.

use crate::flv::{Audio, Video};
use crate::package::Packager;
use crate::record::{Record, Recorder};
use crate::viewers::Viewers;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long the source may play alone before the stream is ready without the ladder.
pub const LADDER_GRACE: Duration = Duration::from_secs(3);

/// Viewers counted at once, over every stream.
const MAX_VIEWERS: usize = 200_000;

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

/// What [`Streams::gauges`] reports of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGauges {
    pub id: String,
    pub viewers: u64,
    /// The slowest rendition's lag behind the source (ms of media); `None` before any rendition.
    pub lag_ms: Option<u32>,
}

/// One rendition: its name and packager.
pub struct Rendition {
    pub name: String,
    pkg: Mutex<Packager>,
    /// Its media playlist as last rendered, per (delta update, URI suffix): answered to every
    /// request until the next part is cut.
    rendered: Mutex<Vec<Rendered>>,
    /// Counts its parts cut (and its end): requests blocked on it wait for this to move (only
    /// this rendition's, so a crowd on one rendition is not woken by another's parts).
    parts: watch::Sender<u64>,
}

struct Rendered {
    version: u64,
    skip: bool,
    suffix: String,
    body: bytes::Bytes,
    etag: String,
}

/// Variants of a playlist kept rendered (delta or not, × this hour's and last hour's tokens).
const RENDERED: usize = 4;

impl Rendition {
    pub fn packager(&self) -> MutexGuard<'_, Packager> {
        self.pkg.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that sees every part cut from now on.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.parts.subscribe()
    }

    /// The media playlist (`skip`: a delta update) with `suffix` on its URIs, rendered only when
    /// a part was cut since (`finish` turns the text into the body and its ETag).
    pub fn rendered(
        &self,
        skip: bool,
        suffix: &str,
        finish: impl FnOnce(String) -> (bytes::Bytes, String),
    ) -> (bytes::Bytes, String) {
        let (version, text) = {
            let p = self.packager();
            let version = p.playlist().parts_cut() * 2 + u64::from(p.playlist().is_ended());
            let mut cache = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = cache.iter().find(|r| r.version == version && r.skip == skip && r.suffix == suffix) {
                return (r.body.clone(), r.etag.clone());
            }
            cache.retain(|r| r.version == version);
            (version, p.playlist().render(skip))
        };
        let (body, etag) = finish(crate::http::tokenize(&text, suffix));
        let mut cache = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= RENDERED {
            cache.remove(0);
        }
        cache.push(Rendered { version, skip, suffix: suffix.to_string(), body: body.clone(), etag: etag.clone() });
        (body, etag)
    }
}

pub struct Stream {
    cfg: HlsConfig,
    /// Tells this publish from earlier ones of the same stream (unix ms at its start): every URL
    /// of its playlists carries it, so caches never mix two publishes.
    pub session: u64,
    /// `source` (the publisher's own H.264) first, then the ladder's as they start.
    renditions: Mutex<Vec<Arc<Rendition>>>,
    /// The audio config, for renditions added after it came.
    audio_config: Mutex<Option<Audio>>,
    /// When the source's first part was cut.
    first_part: Mutex<Option<Instant>>,
}

impl Stream {
    pub fn rendition(&self, name: &str) -> Option<Arc<Rendition>> {
        self.renditions.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|r| r.name == name).cloned()
    }

    pub fn renditions(&self) -> Vec<Arc<Rendition>> {
        self.renditions.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds a rendition (the ladder's), empty until its frames come.
    pub fn add_rendition(&self, name: &str) {
        let c = self.cfg;
        let mut pkg = Packager::new(c.segment_secs, c.part_secs, c.window);
        if let Some(config) = self.audio_config.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            let _ = pkg.audio(0, config);
        }
        let r = Rendition {
            name: name.to_string(),
            pkg: Mutex::new(pkg),
            rendered: Mutex::default(),
            parts: watch::Sender::new(0),
        };
        self.renditions.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::new(r));
    }

    /// Whether players may start: every rendition has a part (a master playlist lists them all,
    /// and players do not reload it), or the source has had one for [`LADDER_GRACE`] (a rendition
    /// that never comes must not hold the stream back).
    pub fn ready(&self, now: Instant) -> bool {
        let Some(first) = *self.first_part.lock().unwrap_or_else(|p| p.into_inner()) else { return false };
        now.saturating_duration_since(first) >= LADDER_GRACE
            || self.renditions().iter().all(|r| r.packager().playlist().parts_cut() > 0)
    }
}

/// Who may fetch a stream's LL-HLS: the binary checks a watch token (`?a=`) or the stream's being
/// public. Without one, everyone may.
pub trait Access: Send + Sync {
    fn allows(&self, stream: &str, token: Option<&str>) -> bool;
}

pub struct Streams {
    cfg: HlsConfig,
    by_id: Mutex<HashMap<String, Arc<Stream>>>,
    recorder: Option<Recorder>,
    access: Option<Arc<dyn Access>>,
    viewers: Mutex<Viewers>,
    /// Streams other nodes ingest, served from them (a cluster's).
    edge: std::sync::OnceLock<Arc<crate::edge::Edge>>,
}

impl Default for Streams {
    fn default() -> Self {
        Streams::new(HlsConfig::default())
    }
}

impl Streams {
    pub fn new(cfg: HlsConfig) -> Streams {
        Streams {
            cfg,
            by_id: Mutex::default(),
            recorder: None,
            access: None,
            viewers: Mutex::new(Viewers::new(MAX_VIEWERS)),
            edge: std::sync::OnceLock::new(),
        }
    }

    /// LL-HLS requests are checked by `access`.
    pub fn with_access(mut self, access: Arc<dyn Access>) -> Streams {
        self.access = Some(access);
        self
    }

    /// Streams not ingested here are served from the nodes that ingest them, through `edge`.
    pub fn set_edge(&self, edge: Arc<crate::edge::Edge>) {
        let _ = self.edge.set(edge);
    }

    /// The edge serving `id` and the origin it serves it from, when another node ingests it.
    pub fn edge_for(&self, id: &str) -> Option<(&Arc<crate::edge::Edge>, String)> {
        let edge = self.edge.get()?;
        Some((edge, edge.origin(id)?))
    }

    pub fn allows(&self, id: &str, token: Option<&str>) -> bool {
        self.access.as_ref().is_none_or(|a| a.allows(id, token))
    }

    pub fn viewers(&self) -> MutexGuard<'_, Viewers> {
        self.viewers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Players watching `id` now (expired ones dropped first).
    pub fn viewer_count(&self, id: &str) -> u64 {
        let mut v = self.viewers();
        v.expire(std::time::Instant::now());
        v.count(id)
    }

    /// Every closed segment also goes to `recorder`.
    pub fn with_recorder(mut self, recorder: Recorder) -> Streams {
        self.recorder = Some(recorder);
        self
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Stream>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new publish of `id`: a fresh `source` rendition replaces what an earlier one left.
    pub fn start(&self, id: &str) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let previous = self.get(id).map_or(0, |s| s.session);
        let stream = Stream {
            cfg: self.cfg,
            session: (now.as_millis() as u64).max(previous + 1),
            renditions: Mutex::default(),
            audio_config: Mutex::default(),
            first_part: Mutex::default(),
        };
        stream.add_rendition(crate::http::SOURCE);
        self.map().insert(id.to_string(), Arc::new(stream));
    }

    /// Per stream: its viewers and how far (ms of media) its slowest transcoded rendition trails
    /// the source, for metrics.
    pub fn gauges(&self) -> Vec<StreamGauges> {
        let streams: Vec<(String, Arc<Stream>)> = self.map().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut viewers = self.viewers();
        viewers.expire(Instant::now());
        (streams.into_iter())
            .map(|(id, s)| {
                let last: Vec<(String, Option<u32>)> =
                    s.renditions().iter().map(|r| (r.name.clone(), r.packager().last_video_ms())).collect();
                let source = last.iter().find(|(n, _)| n == crate::http::SOURCE).and_then(|(_, t)| *t);
                let lag_ms = (last.iter())
                    .filter(|(n, _)| n != crate::http::SOURCE)
                    .filter_map(|(_, t)| Some(source?.saturating_sub((*t)?)))
                    .max();
                StreamGauges { viewers: viewers.count(&id), lag_ms, id }
            })
            .collect()
    }

    /// Streams held (being published, or ended and still served).
    pub fn count(&self) -> usize {
        self.map().len()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Stream>> {
        self.map().get(id).cloned()
    }

    /// Whether players may start on the stream ([`Stream::ready`]).
    pub fn playable(&self, id: &str) -> bool {
        self.get(id).is_some_and(|s| s.ready(Instant::now()))
    }

    /// Pushes a frame into one rendition; `true` when that cut the source's very first part
    /// (the stream is now playable).
    pub fn video(&self, id: &str, rendition: &str, ts_ms: u32, video: Video) -> bool {
        self.with(id, Some(rendition), |p| {
            if let Err(e) = p.video(ts_ms, video.clone()) {
                tracing::warn!(stream = id, error = %e, "video config refused");
            }
        })
    }

    /// Audio goes to every rendition: the source's AAC, as it came.
    pub fn audio(&self, id: &str, ts_ms: u32, audio: Audio) -> bool {
        if let (Audio::AacConfig(_), Some(stream)) = (&audio, self.get(id)) {
            *stream.audio_config.lock().unwrap_or_else(|p| p.into_inner()) = Some(audio.clone());
        }
        self.with(id, None, |p| {
            if let Err(e) = p.audio(ts_ms, audio.clone()) {
                tracing::warn!(stream = id, error = %e, "audio config refused");
            }
        })
    }

    /// The publisher stopped: the playlists end (EXT-X-ENDLIST) and waiting requests wake.
    pub fn end(&self, id: &str) {
        self.with(id, None, Packager::end);
        if let Some(rec) = &self.recorder {
            rec.record(Record::End { stream: id.to_string() });
        }
    }

    /// Runs `f` on one rendition's packager (`None`: each); wakes waiters when parts were cut.
    fn with(&self, id: &str, rendition: Option<&str>, mut f: impl FnMut(&mut Packager)) -> bool {
        let Some(stream) = self.get(id) else { return false };
        let mut first = false;
        for r in stream.renditions().iter().filter(|r| rendition.is_none_or(|n| n == r.name)) {
            let mut p = r.packager();
            let before = p.playlist().parts_cut() + u64::from(p.playlist().is_ended());
            f(&mut p);
            let after = p.playlist().parts_cut() + u64::from(p.playlist().is_ended());
            if let Some(rec) = self.recorder.as_ref().filter(|_| after != before) {
                if before == 0
                    && let Some(init) = p.init()
                {
                    rec.record(Record::Init { stream: id.to_string(), rendition: r.name.clone(), data: init });
                }
                for (msn, duration, data) in p.take_closed() {
                    let (stream, rendition) = (id.to_string(), r.name.clone());
                    rec.record(Record::Segment { stream, rendition, msn, duration, data });
                }
            }
            if after != before {
                r.parts.send_modify(|n| *n += 1);
            }
            first |= r.name == crate::http::SOURCE && before == 0 && after > 0;
        }
        if first {
            *stream.first_part.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
        first
    }
}

//! The MCU plugged into the media engine: `sfu` defines what it needs of a mixer ([`sfu::Mixers`])
//! and must not link GStreamer, `mcu` provides the compositor and the mix-minus and knows nothing
//! of the engine; this module is the glue.
//!
//! A room's [`Compositor`] lives on a thread of its own, fed through a bounded queue: building,
//! reshaping and stopping a GStreamer pipeline takes milliseconds, which the engine's one task
//! (forwarding everyone's audio) must never wait for. The audio mix-minus is sans-IO and cheap
//! per tick, so the engine runs it itself.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use mcu::mixminus::{MixConfig, MixMinus};
use mcu::{Compositor, CompositorConfig, CompositorEvent};
use sfu::{AudioMixer, Mixed, Mixers, PeerId, RoomId, VideoMixer, VideoOut, VideoSink};

/// Commands queued for a compositor thread (~2 s of frames from a few publishers); a full queue
/// drops frames, and the next frame of that publisher is marked as following a gap.
const VIDEO_COMMANDS: usize = 256;

/// A room's compositor once its thread has built it.
type Slot = Mutex<Option<Arc<Compositor>>>;

/// Makes the rooms' mixers from the `[video]` configuration, or a room's own settings.
pub struct McuMixers {
    video: CompositorConfig,
    /// Rooms whose composite differs from `video` (size, rate, bitrate, tiles).
    rooms: Mutex<HashMap<RoomId, CompositorConfig>>,
    audio: MixConfig,
    /// Compositors by room, for tests that inject faults.
    live: Mutex<Vec<(RoomId, Weak<Slot>)>>,
}

impl McuMixers {
    pub fn new(video: CompositorConfig) -> McuMixers {
        McuMixers { video, rooms: Mutex::default(), audio: MixConfig::default(), live: Mutex::default() }
    }

    /// The server's composite settings, which a room's own start from.
    pub fn defaults(&self) -> &CompositorConfig {
        &self.video
    }

    /// Gives `room` its own composite settings (`None`: back to the server's), from its next
    /// compositor on: a room's pipeline starts with its first camera and stops when nobody sends
    /// or receives video. Refused when the settings are invalid.
    pub fn set_room_video(&self, room: RoomId, cfg: Option<CompositorConfig>) -> Result<(), mcu::McuError> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        match cfg {
            Some(cfg) => {
                cfg.validate()?;
                rooms.insert(room, cfg);
            }
            None => {
                rooms.remove(&room);
            }
        }
        Ok(())
    }

    /// Video composite pipelines running now.
    pub fn pipelines(&self) -> usize {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        (live.iter().filter_map(|(_, s)| s.upgrade()))
            .filter(|s| s.lock().unwrap_or_else(|e| e.into_inner()).is_some())
            .count()
    }

    /// For tests: makes `room`'s pipeline fail as a GStreamer error would. False if it has none.
    #[doc(hidden)]
    pub fn simulate_pipeline_error(&self, room: RoomId) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let slot = live.iter().filter(|(r, _)| *r == room).find_map(|(_, s)| s.upgrade());
        let compositor = slot.and_then(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone());
        compositor.map(|c| c.simulate_pipeline_error()).is_some()
    }
}

impl Mixers for McuMixers {
    fn video(&self, room: RoomId, sink: VideoSink) -> Result<Box<dyn VideoMixer>, String> {
        let (tx, rx) = sync_channel(VIDEO_COMMANDS);
        let own = self.rooms.lock().unwrap_or_else(|e| e.into_inner()).get(&room).cloned();
        let (cfg, slot) = (own.unwrap_or_else(|| self.video.clone()), Arc::new(Slot::default()));
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|(_, s)| s.strong_count() > 0);
        live.push((room, Arc::downgrade(&slot)));
        drop(live);
        std::thread::Builder::new()
            .name(format!("mcu-room-{room}"))
            .spawn(move || run_compositor(cfg, sink, rx, slot))
            .map_err(|e| format!("cannot start the compositor thread: {e}"))?;
        Ok(Box::new(RoomVideo { tx, gaps: HashSet::new() }))
    }

    fn audio(&self, _room: RoomId, now: Instant) -> Result<Box<dyn AudioMixer>, String> {
        let mix = MixMinus::new(self.audio, now).map_err(|e| e.to_string())?;
        Ok(Box::new(RoomAudio(mix)))
    }
}

enum Cmd {
    Add(PeerId, String),
    Remove(PeerId),
    Frame { peer: PeerId, data: Arc<[u8]>, keyframe: bool, contiguous: bool },
    Camera(PeerId, bool),
    Dominant(Option<PeerId>),
    Keyframe,
}

/// The engine's handle on one room's compositor thread. Dropping it ends the thread (the
/// pipeline stops there, not in the engine).
struct RoomVideo {
    tx: SyncSender<Cmd>,
    /// Publishers that lost a frame to a full queue.
    gaps: HashSet<PeerId>,
}

impl RoomVideo {
    fn send(&mut self, cmd: Cmd) {
        match self.tx.try_send(cmd) {
            Ok(()) => {}
            Err(TrySendError::Full(Cmd::Frame { peer, .. })) => {
                self.gaps.insert(peer);
            }
            // Control commands are rare: wait for room rather than lose a join or leave.
            Err(TrySendError::Full(cmd)) => {
                let _ = self.tx.send(cmd);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl VideoMixer for RoomVideo {
    fn add_source(&mut self, peer: PeerId, label: &str) {
        self.send(Cmd::Add(peer, label.to_owned()));
    }

    fn remove_source(&mut self, peer: PeerId) {
        self.gaps.remove(&peer);
        self.send(Cmd::Remove(peer));
    }

    fn push_vp8(&mut self, peer: PeerId, data: Arc<[u8]>, keyframe: bool, contiguous: bool) {
        let contiguous = contiguous && !self.gaps.remove(&peer);
        self.send(Cmd::Frame { peer, data, keyframe, contiguous });
    }

    fn set_camera(&mut self, peer: PeerId, on: bool) {
        self.send(Cmd::Camera(peer, on));
    }

    fn set_dominant(&mut self, peer: Option<PeerId>) {
        self.send(Cmd::Dominant(peer));
    }

    fn request_keyframe(&mut self) {
        self.send(Cmd::Keyframe);
    }
}

/// The compositor thread: builds the pipeline, applies commands in order, stops the pipeline
/// when the engine drops its handle.
fn run_compositor(cfg: CompositorConfig, sink: VideoSink, rx: Receiver<Cmd>, slot: Arc<Slot>) {
    let sink = Arc::new(sink);
    let events = sink.clone();
    let compositor = match Compositor::new(cfg, move |e| events(map_event(e))) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            sink(VideoOut::Failed(e.to_string()));
            return;
        }
    };
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(compositor.clone());
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Cmd::Add(peer, label) => compositor.add_source(peer, &label),
            Cmd::Remove(peer) => compositor.remove_source(peer),
            Cmd::Frame { peer, data, keyframe, contiguous } => {
                if !contiguous && !keyframe {
                    compositor.source_lost(peer);
                }
                compositor.push_vp8(peer, &data, keyframe);
            }
            Cmd::Camera(peer, on) => compositor.set_camera(peer, on),
            Cmd::Dominant(peer) => compositor.set_dominant(peer),
            Cmd::Keyframe => compositor.request_keyframe(),
        }
    }
    slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    compositor.shutdown();
}

fn map_event(e: CompositorEvent) -> VideoOut {
    match e {
        CompositorEvent::Frame(f) => VideoOut::Frame { data: Arc::from(&f.data[..]), keyframe: f.keyframe, pts: f.pts },
        CompositorEvent::KeyframeNeeded(source) => VideoOut::KeyframeNeeded(source),
        CompositorEvent::Failed(message) => VideoOut::Failed(message),
        other => VideoOut::Failed(format!("unexpected compositor event {other:?}")),
    }
}

/// The mix-minus as the engine's audio mixer.
struct RoomAudio(MixMinus<PeerId>);

impl AudioMixer for RoomAudio {
    fn add(&mut self, peer: PeerId) -> Result<(), String> {
        self.0.add(peer).map_err(|e| e.to_string())
    }

    fn remove(&mut self, peer: PeerId) {
        self.0.remove(&peer);
    }

    fn push(&mut self, peer: PeerId, seq: u64, opus: &[u8]) {
        self.0.push(&peer, seq, opus);
    }

    fn set_muted(&mut self, peer: PeerId, muted: bool) {
        self.0.set_muted(&peer, muted);
    }

    fn poll_timeout(&self) -> Instant {
        self.0.poll_timeout()
    }

    fn tick(&mut self, now: Instant) -> Option<Mixed> {
        self.0.tick(now).map(|m| Mixed { frame: m.frame, packets: m.packets })
    }
}

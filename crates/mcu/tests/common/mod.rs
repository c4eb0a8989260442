//! Test harness: VP8 input made with GStreamer, live feeders, and a decoder for the composite
//! that keeps the latest decoded picture so tests can sample pixels.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use mcu::{Compositor, CompositorConfig, CompositorEvent, SourceId};

pub const RED: [u8; 3] = [255, 0, 0];
pub const GREEN: [u8; 3] = [0, 255, 0];
pub const BLUE: [u8; 3] = [0, 0, 255];

/// Small and quick: tests share two cores, and many pipelines run at once.
pub fn test_config() -> CompositorConfig {
    CompositorConfig { width: 640, height: 360, fps: 15, bitrate_kbps: 1500, ..CompositorConfig::default() }
}

/// `n` VP8 frames (320x180 at 15 fps) of a solid colour; a keyframe first, then deltas.
pub fn vp8_frames(rgb: [u8; 3], n: usize) -> Vec<(Vec<u8>, bool)> {
    let colour = u32::from_be_bytes([0xff, rgb[0], rgb[1], rgb[2]]);
    encode(&format!("videotestsrc pattern=solid-color foreground-color={colour} num-buffers={n}"), 320, 180, 15)
}

/// Encodes `n` frames from a raw source description (e.g. a moving test pattern) to VP8.
pub fn encode(src: &str, width: u32, height: u32, fps: u32) -> Vec<(Vec<u8>, bool)> {
    gst::init().unwrap();
    let desc = format!(
        "{src} ! video/x-raw,width={width},height={height},framerate={fps}/1 ! videoconvert ! \
         vp8enc deadline=1 cpu-used=8 keyframe-max-dist=100000 target-bitrate=600000 ! appsink name=out sync=false"
    );
    let pipeline = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = pipeline.by_name("out").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buf = sample.buffer().unwrap();
        let key = !buf.flags().contains(gst::BufferFlags::DELTA_UNIT);
        frames.push((buf.map_readable().unwrap().to_vec(), key));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(frames[0].1, "the first frame is a keyframe");
    frames
}

/// Pushes `frames` for `id` in a loop at `fps` (a live publisher) until dropped.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Feeder {
    pub fn start(c: &Arc<Compositor>, id: SourceId, frames: Vec<(Vec<u8>, bool)>, fps: u32) -> Feeder {
        let (c, stop) = (c.clone(), Arc::new(AtomicBool::new(false)));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let period = Duration::from_secs(1) / fps;
            let mut next = Instant::now();
            for (frame, key) in frames.iter().cycle() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                c.push_vp8(id, frame, *key);
                next += period;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        Feeder { stop, thread: Some(thread) }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A decoded RGB picture.
#[derive(Clone)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Picture {
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Mean colour of the 5x5 block around (x, y).
    pub fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let mut sum = [0u32; 3];
        for dy in 0..5 {
            for dx in 0..5 {
                let (px, py) = ((x as usize + dx).saturating_sub(2), (y as usize + dy).saturating_sub(2));
                let i = (py.min(self.height - 1) * self.width + px.min(self.width - 1)) * 3;
                for (c, s) in sum.iter_mut().enumerate() {
                    *s += self.rgb[i + c] as u32;
                }
            }
        }
        sum.map(|s| (s / 25) as u8)
    }

    /// Saves raw RGB to `$MCU_TEST_DUMP/<name>.rgb` when that variable is set (for a human look:
    /// `gst-launch-1.0 filesrc location=X.rgb ! rawvideoparse width=W height=H format=rgb !
    /// videoconvert ! pngenc ! filesink location=X.png`).
    pub fn dump(&self, name: &str) {
        if let Some(dir) = std::env::var_os("MCU_TEST_DUMP") {
            let _ = std::fs::write(std::path::Path::new(&dir).join(format!("{name}.rgb")), &self.rgb);
        }
    }

    pub fn near(&self, x: u32, y: u32, rgb: [u8; 3], tolerance: u8) -> bool {
        near(self.at(x, y), rgb, tolerance)
    }
}

pub fn near(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(&a, b)| a.abs_diff(b) <= tolerance)
}

/// What the test observed of the compositor's events.
#[derive(Default)]
pub struct Seen {
    pub latest: Option<Picture>,
    pub frames: usize,
    pub keyframes: Vec<Instant>,
    pub keyframe_needed: Vec<SourceId>,
    pub failed: Vec<String>,
    /// Decoding started at this output keyframe (a late joiner starts at a later one).
    pub started_at: Option<Instant>,
}

/// A compositor with a consumer that decodes its output like a peer would. The decoder starts
/// at the first keyframe after `join` is called (at once by default).
pub struct Room {
    pub c: Arc<Compositor>,
    pub seen: Arc<Mutex<Seen>>,
    join: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Room {
    pub fn new(cfg: CompositorConfig) -> Room {
        Room::with_decoder(cfg, true)
    }

    pub fn with_decoder(cfg: CompositorConfig, join_now: bool) -> Room {
        let (tx, rx) = mpsc::sync_channel::<CompositorEvent>(1024);
        let c = Arc::new(Compositor::new(cfg, move |ev| drop(tx.try_send(ev))).unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let join = Arc::new(AtomicBool::new(join_now));
        let (seen2, join2) = (seen.clone(), join.clone());
        let thread = std::thread::spawn(move || consume(rx, seen2, join2));
        Room { c, seen, join, thread: Some(thread) }
    }

    /// The test decoder joins: it decodes from the next keyframe on.
    pub fn join(&self) {
        self.join.store(true, Ordering::SeqCst);
    }

    pub fn picture(&self) -> Option<Picture> {
        self.seen.lock().unwrap().latest.clone()
    }

    /// Waits up to `timeout` for the latest picture to satisfy `check`; returns the last picture.
    pub fn wait_for(&self, timeout: Duration, check: impl Fn(&Picture) -> bool) -> Result<Picture, Option<Picture>> {
        let deadline = Instant::now() + timeout;
        loop {
            let pic = self.picture();
            if let Some(p) = &pic
                && check(p)
            {
                return Ok(p.clone());
            }
            if Instant::now() > deadline {
                return Err(pic);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.c.shutdown();
        // The event channel's sender lives in the pipeline; the consumer ends when it is freed.
        drop(self.thread.take());
    }
}

fn consume(rx: mpsc::Receiver<CompositorEvent>, seen: Arc<Mutex<Seen>>, join: Arc<AtomicBool>) {
    let desc = "appsrc name=in is-live=false format=time caps=video/x-vp8 ! vp8dec ! videoconvert ! \
                video/x-raw,format=RGB ! appsink name=out sync=false";
    let pipeline = gst::parse::launch(desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let src = pipeline.by_name("in").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let sink = pipeline.by_name("out").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut started = false;
    while let Ok(ev) = rx.recv() {
        match ev {
            CompositorEvent::Frame(f) => {
                let mut s = seen.lock().unwrap();
                s.frames += 1;
                if f.keyframe {
                    s.keyframes.push(Instant::now());
                }
                if !started && f.keyframe && join.load(Ordering::SeqCst) {
                    started = true;
                    s.started_at = Some(Instant::now());
                }
                drop(s);
                if !started {
                    continue;
                }
                let mut buf = gst::Buffer::from_slice(f.data);
                buf.get_mut().unwrap().set_pts(gst::ClockTime::from_nseconds(f.pts.as_nanos() as u64));
                let _ = src.push_buffer(buf);
                // One decoded picture per frame; keep the newest.
                let mut last = sink.try_pull_sample(gst::ClockTime::from_mseconds(200));
                while let Some(more) = sink.try_pull_sample(gst::ClockTime::ZERO) {
                    last = Some(more);
                }
                if let Some(sample) = last {
                    seen.lock().unwrap().latest = Some(picture(&sample));
                }
            }
            CompositorEvent::KeyframeNeeded(id) => seen.lock().unwrap().keyframe_needed.push(id),
            CompositorEvent::Failed(msg) => seen.lock().unwrap().failed.push(msg),
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
}

fn picture(sample: &gst::Sample) -> Picture {
    let info = gstreamer_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let (w, h, stride) = (info.width() as usize, info.height() as usize, info.stride()[0] as usize);
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let rgb = (0..h).flat_map(|row| &map[row * stride..row * stride + w * 3]).copied().collect();
    Picture { width: w, height: h, rgb }
}

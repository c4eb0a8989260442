//! Quick CPU measurement of the video compositor (not a benchmark; no assertions):
//! 9 live 640x360@30 VP8 publishers in a 3x3 grid, composited and encoded at each output size.
//!
//! `cargo run -p mcu --example composite_cpu [WxH ...]` (default: 640x360 1280x720). Prints the
//! process CPU time (user + system, all threads) over a 5 s window, in cores.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use mcu::{Compositor, CompositorConfig, CompositorEvent};

const SOURCES: u64 = 9;
const FPS: u32 = 30;
const WINDOW: Duration = Duration::from_secs(5);

/// A publisher's frames: (VP8 frame, keyframe).
type Stream = Arc<Vec<(Vec<u8>, bool)>>;

fn main() {
    let sizes: Vec<String> = std::env::args().skip(1).collect();
    let sizes = if sizes.is_empty() { vec!["640x360".into(), "1280x720".into()] } else { sizes };
    gst::init().expect("gst init");
    println!("encoding 9 inputs (640x360@30, moving test patterns)...");
    let inputs: Vec<Stream> = (0..SOURCES).map(|i| Arc::new(input(i))).collect();
    for size in sizes {
        let (w, h) = size.split_once('x').expect("WxH");
        measure(w.parse().expect("width"), h.parse().expect("height"), &inputs);
    }
}

/// 3 s of a moving pattern, one keyframe at the start (looped by the feeder).
fn input(i: u64) -> Vec<(Vec<u8>, bool)> {
    let pattern =
        if i.is_multiple_of(2) { "ball motion=wavy".to_owned() } else { format!("smpte horizontal-speed={}", 2 + i) };
    let desc = format!(
        "videotestsrc pattern={pattern} num-buffers=90 ! video/x-raw,width=640,height=360,framerate={FPS}/1 ! \
         vp8enc deadline=1 cpu-used=8 keyframe-max-dist=1000 target-bitrate=800000 ! appsink name=out sync=false"
    );
    let pipeline = gst::parse::launch(&desc).expect("pipeline").downcast::<gst::Pipeline>().expect("pipeline");
    let sink = pipeline.by_name("out").expect("sink").downcast::<gst_app::AppSink>().expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("play");
    let mut frames = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        let b = s.buffer().expect("buffer");
        frames.push((b.map_readable().expect("map").to_vec(), !b.flags().contains(gst::BufferFlags::DELTA_UNIT)));
    }
    let _ = pipeline.set_state(gst::State::Null);
    frames
}

/// CPU time (user + system) from a /proc stat file (USER_HZ = 100 on Linux), and its name.
fn stat(path: &std::path::Path) -> Option<(String, Duration)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (head, tail) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((name, Duration::from_millis(ticks * 10)))
}

fn cpu_time() -> Duration {
    stat("/proc/self/stat".as_ref()).expect("/proc/self/stat").1
}

/// CPU time per thread name (GStreamer names streaming threads after their pad: `vp8:src` is a
/// decoder branch, `enc-queue:src` the encoder, `compositor:src` the compositing).
fn cpu_by_thread() -> BTreeMap<String, Duration> {
    let mut by_name = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
        if let Some((name, t)) = stat(&task.path().join("stat")) {
            *by_name.entry(name).or_default() += t;
        }
    }
    by_name
}

fn measure(width: u32, height: u32, inputs: &[Stream]) {
    let (frames, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (f, b) = (frames.clone(), bytes.clone());
    let cfg = CompositorConfig { width, height, fps: FPS, ..CompositorConfig::default() };
    let c = Arc::new(
        Compositor::new(cfg, move |ev| {
            if let CompositorEvent::Frame(frame) = ev {
                f.fetch_add(1, Ordering::Relaxed);
                b.fetch_add(frame.data.len() as u64, Ordering::Relaxed);
            }
        })
        .expect("compositor"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let feeders: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let (c, input, stop) = (c.clone(), input.clone(), stop.clone());
            c.add_source(i as u64, &format!("Publisher {i}"));
            std::thread::spawn(move || {
                let (period, mut next) = (Duration::from_secs(1) / FPS, Instant::now());
                for (frame, key) in input.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    c.push_vp8(i as u64, frame, *key);
                    next += period;
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2)); // warm-up: decoders start, layout settles
    let (cpu0, t0, n0, b0) =
        (cpu_time(), Instant::now(), frames.load(Ordering::Relaxed), bytes.load(Ordering::Relaxed));
    let threads0 = cpu_by_thread();
    std::thread::sleep(WINDOW);
    let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
    let threads = cpu_by_thread();
    let (n, b) = (frames.load(Ordering::Relaxed) - n0, bytes.load(Ordering::Relaxed) - b0);
    stop.store(true, Ordering::Relaxed);
    feeders.into_iter().for_each(|t| drop(t.join()));
    c.shutdown();
    println!(
        "3x3 of 640x360@30 -> {width}x{height}@{FPS}: {:.2} cores, {:.1} frames/s out, {:.0} kbit/s",
        cpu.as_secs_f64() / wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        b as f64 * 8.0 / 1000.0 / wall.as_secs_f64()
    );
    for (name, t) in threads {
        let share = t.saturating_sub(threads0.get(&name).copied().unwrap_or_default()).as_secs_f64();
        if share / wall.as_secs_f64() >= 0.01 {
            println!("    {name:<16} {:.2} cores", share / wall.as_secs_f64());
        }
    }
}

//! The composite per frame: 9 live 640x360@30 VP8 publishers (moving test patterns) decoded,
//! scaled into a 3x3 grid, composited and encoded once, at each output size. The pipeline is
//! live (one frame per 1/30 s whatever the machine does), so what is timed is the process CPU
//! time (user + system, every thread) per output frame, not the wall clock: at 30 fps, 33 ms of
//! CPU per frame is one core.
//!
//! `cargo bench -p mcu --bench composite`; after each size it prints the CPU in cores and per
//! GStreamer streaming thread (`vp8:src` a decoder branch, `enc-queue:src` the encoder,
//! `compositor:src` the compositing).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use mcu::{Compositor, CompositorConfig, CompositorEvent};

const SOURCES: u64 = 9;
const FPS: u32 = 30;

/// A publisher's frames: (VP8 frame, keyframe).
type Stream = Arc<Vec<(Vec<u8>, bool)>>;

fn composite(c: &mut Criterion) {
    gst::init().expect("gst init");
    let inputs: Vec<Stream> = (0..SOURCES).map(|i| Arc::new(input(i))).collect();
    let mut group = c.benchmark_group("composite_3x3_640x360_in");
    group.sample_size(10).measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(2));
    for (width, height) in [(640, 360), (1280, 720)] {
        let room = Room::start(width, height, &inputs);
        group.bench_function(format!("{width}x{height}@{FPS}"), |b| b.iter_custom(|frames| room.cpu_per(frames)));
        room.stop();
    }
    group.finish();
}

criterion_group!(benches, composite);
criterion_main!(benches);

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

/// This process's CPU time, precise to the nanosecond (not /proc's 10 ms ticks).
fn cpu_time() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0;
    assert!(ok, "clock_gettime");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
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

/// A compositor fed by nine live publishers.
struct Room {
    c: Arc<Compositor>,
    frames: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    feeders: Vec<std::thread::JoinHandle<()>>,
    size: (u32, u32),
}

impl Room {
    fn start(width: u32, height: u32, inputs: &[Stream]) -> Room {
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
        let feeders = inputs
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
        std::thread::sleep(Duration::from_secs(2)); // decoders start, layout settles
        Room { c, frames, bytes, stop, feeders, size: (width, height) }
    }

    /// Waits for `n` output frames; returns the process CPU time they took.
    fn cpu_per(&self, n: u64) -> Duration {
        let (cpu0, n0) = (cpu_time(), self.frames.load(Ordering::Relaxed));
        while self.frames.load(Ordering::Relaxed) - n0 < n {
            std::thread::sleep(Duration::from_millis(2));
        }
        cpu_time() - cpu0
    }

    /// Reports cores (overall and per thread) over a few seconds, then stops the room.
    fn stop(self) {
        let window = Duration::from_secs(3);
        let (cpu0, t0, threads0, b0) =
            (cpu_time(), Instant::now(), cpu_by_thread(), self.bytes.load(Ordering::Relaxed));
        let f0 = self.frames.load(Ordering::Relaxed);
        std::thread::sleep(window);
        let (cpu, wall, threads) = (cpu_time() - cpu0, t0.elapsed(), cpu_by_thread());
        let (n, b) = (self.frames.load(Ordering::Relaxed) - f0, self.bytes.load(Ordering::Relaxed) - b0);
        let (width, height) = self.size;
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
        self.stop.store(true, Ordering::Relaxed);
        self.feeders.into_iter().for_each(|t| drop(t.join()));
        self.c.shutdown();
    }
}

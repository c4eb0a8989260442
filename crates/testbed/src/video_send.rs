//! The synthetic camera: a solid colour, VP8-encoded at a fixed frame rate and written to the camera
//! track as webrtc-rs samples (which packetises them). It answers keyframe requests — PLI/FIR from
//! the peer, surfaced on the track by [`KeyframeRequests`](crate::feedback::KeyframeRequests) — and
//! sends a keyframe every `keyframe_interval` regardless, so a receiver that missed a request still
//! recovers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rtc::media::Sample;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use crate::camera_loop::{self, CameraLoop};
use crate::capture_time;
use crate::feedback::asks_keyframe_of;
use crate::pattern::SwitchLog;
use crate::peer::Camera;
use crate::picture::I420;
use crate::vp8::Vp8Encoder;

/// What the camera shows and how it is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraOptions {
    pub colour: [u8; 3],
    /// Even numbers (I420).
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// The safety-net keyframe period, on top of the ones requested.
    pub keyframe_interval: Duration,
    /// Share of the picture (its bottom rows) redrawn with fresh grey noise every frame, so the
    /// encoder spends its bitrate as it would on a real camera; 0: a solid colour, which VP8
    /// codes in a few bytes per frame.
    pub noise: f32,
    /// Replay a pre-encoded loop of this camera ([`camera_loop`](crate::camera_loop)) instead of
    /// encoding every frame: for load, where live encoding would take the server's CPU.
    pub replay: bool,
}

impl Default for CameraOptions {
    fn default() -> Self {
        Self {
            colour: [128, 128, 128],
            width: 320,
            height: 180,
            fps: 15,
            bitrate_kbps: 300,
            keyframe_interval: Duration::from_secs(3),
            noise: 0.0,
            replay: false,
        }
    }
}

impl CameraOptions {
    /// Defaults, showing `colour`.
    pub fn colour(colour: [u8; 3]) -> Self {
        Self { colour, ..Self::default() }
    }
}

/// Switches and counters of the camera, shared with the client.
#[derive(Debug)]
pub struct CameraControl {
    /// Send frames at all (off: nothing is sent, as a client whose camera is off).
    on: AtomicBool,
    /// 0x00RRGGBB, so it can change without a lock.
    colour: AtomicU32,
    keyframe_wanted: AtomicBool,
    pub frames_sent: AtomicU64,
    pub keyframes_sent: AtomicU64,
    /// PLI/FIR received for this camera's SSRC.
    pub keyframe_requests: AtomicU64,
    pub send_errors: AtomicU64,
    /// Write `abs-capture-time` (only if the answer accepted it).
    pub capture_time: AtomicBool,
    /// When each colour change went out: 0 for the probe's first colour, 1 for its second.
    pub switches: SwitchLog,
    /// The probe's two colours, for labelling `switches`.
    pub probe_colours: Option<[[u8; 3]; 2]>,
}

impl CameraControl {
    pub fn new(colour: [u8; 3]) -> Self {
        Self {
            on: AtomicBool::new(true),
            colour: AtomicU32::new(pack(colour)),
            keyframe_wanted: AtomicBool::new(false),
            frames_sent: AtomicU64::new(0),
            keyframes_sent: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            capture_time: AtomicBool::new(false),
            switches: SwitchLog::default(),
            probe_colours: None,
        }
    }

    /// Labels colour switches to these two colours as a latency probe's.
    pub fn with_probe(mut self, colours: Option<[[u8; 3]; 2]>) -> Self {
        self.probe_colours = colours;
        self
    }

    /// Turning the camera back on starts with a keyframe, so receivers need not ask for one.
    pub fn set_on(&self, on: bool) {
        if on && !self.on.swap(true, Ordering::Relaxed) {
            self.request_keyframe();
        }
        self.on.store(on, Ordering::Relaxed);
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    pub fn set_colour(&self, colour: [u8; 3]) {
        self.colour.store(pack(colour), Ordering::Relaxed);
    }

    pub fn colour(&self) -> [u8; 3] {
        let c = self.colour.load(Ordering::Relaxed).to_be_bytes();
        [c[1], c[2], c[3]]
    }

    /// Makes the next frame a keyframe.
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.store(true, Ordering::Relaxed);
    }
}

impl Default for CameraControl {
    fn default() -> Self {
        Self::new(CameraOptions::default().colour)
    }
}

fn pack([r, g, b]: [u8; 3]) -> u32 {
    u32::from_be_bytes([0, r, g, b])
}

/// Where frames come from: a live encoder of the picture, or a pre-encoded loop.
enum Frames {
    Live { encoder: Vp8Encoder, picture: I420, seed: u64 },
    Replay { frames: Arc<CameraLoop>, pos: usize },
}

impl Frames {
    async fn new(opts: &CameraOptions, colour: [u8; 3], seed: u64) -> anyhow::Result<Self> {
        Ok(if opts.replay {
            Frames::Replay { frames: camera_loop::get(opts, colour).await?, pos: 0 }
        } else {
            let encoder = Vp8Encoder::new(opts.width, opts.height, opts.fps, opts.bitrate_kbps)?;
            Frames::Live { encoder, picture: I420::solid(opts.width, opts.height, colour), seed }
        })
    }

    /// Now showing `colour` (a loop restarts at its keyframe).
    async fn show(&mut self, opts: &CameraOptions, colour: [u8; 3]) -> anyhow::Result<()> {
        match self {
            Frames::Live { picture, .. } => *picture = I420::solid(opts.width, opts.height, colour),
            Frames::Replay { frames, pos } => (*frames, *pos) = (camera_loop::get(opts, colour).await?, 0),
        }
        Ok(())
    }

    /// The next frame(s) and whether each is a keyframe.
    fn next(&mut self, keyframe: bool, noise: f32) -> anyhow::Result<Vec<(Bytes, bool)>> {
        match self {
            Frames::Live { encoder, picture, seed } => {
                picture.add_noise(noise, seed);
                if keyframe {
                    encoder.force_keyframe();
                }
                Ok(encoder.encode(picture)?.into_iter().map(|(data, key)| (Bytes::from(data), key)).collect())
            }
            Frames::Replay { frames, pos } => {
                if keyframe {
                    *pos = 0;
                }
                let frame = frames.frames.get(*pos).cloned();
                *pos = (*pos + 1) % frames.frames.len().max(1);
                Ok(frame.into_iter().collect())
            }
        }
    }
}

/// Sends frames until aborted. Fails (logged) only if the encoder cannot be built or VP8 was not
/// negotiated.
pub fn spawn_camera(camera: Camera, opts: CameraOptions, ctl: Arc<CameraControl>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut shown = ctl.colour();
        let setup = async {
            let frames = Frames::new(&opts, shown, u64::from(camera.ssrc) | 1).await?;
            anyhow::Ok((camera.payload_type().await?, frames))
        };
        let (pt, mut frames) = match setup.await {
            Ok(s) => s,
            Err(e) => return tracing::warn!("camera not started: {e:#}"),
        };
        let frame = Duration::from_secs(1) / opts.fps;
        let mut tick = camera.frame_ticker(frame);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut feedback_open = true;
        let mut last_keyframe: Option<Instant> = None;
        loop {
            tokio::select! {
                event = camera.track.poll(), if feedback_open => match event {
                    Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                        if packets.iter().any(|p| asks_keyframe_of(p.as_ref(), camera.ssrc)) {
                            ctl.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                            ctl.request_keyframe();
                        }
                    }
                    Some(_) => {}
                    // Unbound or closed: no more feedback; keep sending (a closed connection makes
                    // writes fail, which is counted).
                    None => feedback_open = false,
                },
                _ = tick.tick() => {
                    if !ctl.is_on() {
                        continue;
                    }
                    let switched = ctl.colour() != shown;
                    if switched {
                        shown = ctl.colour();
                        if let Err(e) = frames.show(&opts, shown).await {
                            tracing::debug!("camera colour change failed: {e:#}");
                            ctl.send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let now = Instant::now();
                    let due = last_keyframe.is_none_or(|t| now.duration_since(t) >= opts.keyframe_interval);
                    let keyframe = ctl.keyframe_wanted.swap(false, Ordering::Relaxed) || due;
                    match frames.next(keyframe, opts.noise) {
                        Ok(out) => send_frames(&camera, pt, out, frame, &ctl, &mut last_keyframe).await,
                        Err(e) => {
                            tracing::debug!("camera encode failed: {e:#}");
                            ctl.send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let which = ctl.probe_colours.and_then(|p| p.iter().position(|c| *c == shown));
                    if let (true, Some(which)) = (switched, which) {
                        ctl.switches.push(now, which as u8);
                    }
                }
            }
        }
    })
}

async fn send_frames(
    camera: &Camera,
    pt: u8,
    frames: Vec<(Bytes, bool)>,
    duration: Duration,
    ctl: &CameraControl,
    last_keyframe: &mut Option<Instant>,
) {
    let (now, wall) = (Instant::now(), SystemTime::now());
    for (data, keyframe) in frames {
        let sample = Sample { data, duration, ..Sample::new(now) };
        let capture = ctl.capture_time.load(Ordering::Relaxed).then(|| capture_time::extension(wall));
        if camera.track.write_sample(camera.ssrc, pt, &sample, capture.as_slice()).await.is_err() {
            ctl.send_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        ctl.frames_sent.fetch_add(1, Ordering::Relaxed);
        if keyframe {
            ctl.keyframes_sent.fetch_add(1, Ordering::Relaxed);
            *last_keyframe = Some(now);
        }
    }
}

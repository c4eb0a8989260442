//! The microphone of a synthetic participant: a task that speaks every 20 ms (a tone or silence,
//! Opus, with its RFC 6464 level and its `abs-capture-time`). The tone can change while it runs;
//! each change is logged when its first frame goes out, for pattern latency. Load clients replay
//! a pre-encoded second of each tone instead of encoding every frame, which is what lets hundreds
//! of them share a small machine with the server.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use rtc::media::Sample;
use rtc::rtp::extension::audio_level_extension::AudioLevelExtension;
use tokio::task::JoinHandle;

use crate::capture_time;
use crate::opus_io::Encoder;
use crate::pattern::SwitchLog;
use crate::peer::Mic;
use crate::tone::{FRAME_SAMPLES, ToneGenerator, audio_level_dbov};

const FRAME: Duration = Duration::from_millis(20);
/// Frames in a replayed loop: one second, a whole number of periods of any integer-Hz tone.
const LOOP_FRAMES: usize = 50;
/// Frames encoded and thrown away before a loop, so it starts from a settled encoder.
const LOOP_WARMUP: usize = 10;

/// Switches of the send loop, shared with the client.
#[derive(Debug, Default)]
pub struct SendControl {
    /// Send nothing at all, as a muted client does.
    pub muted: AtomicBool,
    /// Keep sending, but silence (level 127) instead of the tone.
    pub silent: AtomicBool,
    /// The tone in Hz as f32 bits; 0: silence. Set by the client before the loop starts.
    tone_bits: AtomicU32,
    pub frames_sent: AtomicU64,
    pub send_errors: AtomicU64,
    /// Write `abs-capture-time` (only if the answer accepted it).
    pub capture_time: AtomicBool,
    /// When each tone change went out: 0 for the probe's first tone, 1 for its second.
    pub switches: SwitchLog,
    /// The probe's two tones, for labelling `switches`.
    pub probe_tones: Option<[f32; 2]>,
}

impl SendControl {
    pub fn new(tone_hz: Option<f32>, probe_tones: Option<[f32; 2]>) -> Self {
        let ctl = Self { probe_tones, ..Self::default() };
        ctl.set_tone(tone_hz);
        ctl
    }

    /// Changes the tone from the next frame on (`None`: silence).
    pub fn set_tone(&self, hz: Option<f32>) {
        self.tone_bits.store(hz.unwrap_or(0.0).to_bits(), Ordering::Relaxed);
    }

    pub fn tone(&self) -> Option<f32> {
        Some(f32::from_bits(self.tone_bits.load(Ordering::Relaxed))).filter(|hz| *hz > 0.0)
    }
}

/// Where frames come from: a live generator and encoder, or pre-encoded loops per tone.
enum Source {
    Live { encoder: Encoder, generator: Option<ToneGenerator> },
    Loops { encoder: Encoder, loops: HashMap<u32, Vec<(Vec<u8>, u8)>>, pos: usize },
}

impl Source {
    /// The next frame of `tone` (silence when `None` or `silent`) as an Opus packet and its level.
    fn next(&mut self, tone: Option<f32>, silent: bool, dbfs: f32) -> Result<(Vec<u8>, u8)> {
        match self {
            Source::Live { encoder, generator } => {
                if generator.as_ref().map(ToneGenerator::freq) != tone.map(f64::from) {
                    *generator = tone.map(|hz| ToneGenerator::new(hz, dbfs));
                }
                // The generator runs even while silent, so unsilencing resumes the same sine.
                let frame = generator.as_mut().map(ToneGenerator::next_frame);
                let pcm = frame.filter(|_| !silent).unwrap_or([0; FRAME_SAMPLES]);
                Ok((encoder.encode(&pcm)?, audio_level_dbov(&pcm)))
            }
            Source::Loops { encoder, loops, pos } => {
                let tone = tone.filter(|_| !silent);
                let key = tone.unwrap_or(0.0).to_bits();
                if let std::collections::hash_map::Entry::Vacant(slot) = loops.entry(key) {
                    let mut generator = tone.map(|hz| ToneGenerator::new(hz.round(), dbfs));
                    let mut frames = Vec::with_capacity(LOOP_FRAMES);
                    for i in 0..LOOP_WARMUP + LOOP_FRAMES {
                        let pcm = generator.as_mut().map_or([0; FRAME_SAMPLES], ToneGenerator::next_frame);
                        let packet = encoder.encode(&pcm)?;
                        if i >= LOOP_WARMUP {
                            frames.push((packet, audio_level_dbov(&pcm)));
                        }
                    }
                    slot.insert(frames);
                }
                *pos = (*pos + 1) % LOOP_FRAMES;
                let frames = loops.get(&key).map(Vec::as_slice).unwrap_or_default();
                frames.get(*pos).cloned().ok_or_else(|| anyhow::anyhow!("empty loop"))
            }
        }
    }
}

/// Speaks into `mic` every 20 ms until aborted, at `dbfs` peak level; `replay` picks pre-encoded
/// loops over live encoding.
pub fn spawn_sender(mic: Mic, dbfs: f32, replay: bool, ctl: Arc<SendControl>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let setup = async { anyhow::Ok((mic.payload_type().await?, Encoder::new()?)) };
        let (pt, encoder) = match setup.await {
            Ok(s) => s,
            Err(e) => return tracing::warn!("sender not started: {e:#}"),
        };
        let mut source = if replay {
            Source::Loops { encoder, loops: HashMap::new(), pos: 0 }
        } else {
            Source::Live { encoder, generator: None }
        };
        let mut last_tone = None;
        // The default (burst) catch-up keeps the long-run rate at exactly 50 frames/s after a stall.
        let mut tick = mic.frame_ticker(FRAME);
        loop {
            tick.tick().await;
            if ctl.muted.load(Ordering::Relaxed) {
                continue;
            }
            let silent = ctl.silent.load(Ordering::Relaxed);
            let tone = ctl.tone();
            let (now, wall) = (Instant::now(), SystemTime::now());
            let sent = match source.next(tone, silent, dbfs) {
                Ok((packet, level)) => {
                    let sample = Sample { data: packet.into(), duration: FRAME, ..Sample::new(now) };
                    let ext = AudioLevelExtension { level, voice: level < 127 };
                    let mut writer = mic.track.sample_writer(mic.ssrc, pt).with_audio_level(ext);
                    if ctl.capture_time.load(Ordering::Relaxed) {
                        writer = writer.with_extension(capture_time::extension(wall));
                    }
                    writer.write_sample(&sample).await.is_ok()
                }
                Err(_) => false,
            };
            let tone = tone.filter(|_| !silent);
            if tone != last_tone {
                last_tone = tone;
                let which = ctl.probe_tones.and_then(|p| p.iter().position(|hz| Some(*hz) == tone));
                if let Some(which) = which {
                    ctl.switches.push(now, which as u8);
                }
            }
            let counter = if sent { &ctl.frames_sent } else { &ctl.send_errors };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    })
}

//! Audio mix-minus for all-MCU rooms: decode every participant's Opus, sum, and send each participant
//! the mix of everyone but themselves, re-encoded. Sans-IO: fed packets, ticked with an explicit
//! `Instant` every 20 ms, no threads or sockets; deterministic under a test clock.
//!
//! Each tick takes one frame per input from its jitter buffer (decoded, concealed, or nothing) and
//! sums in `i32` the inputs that are *in the mix*: louder than a noise gate within the last
//! `hangover_frames` ticks. A listener in the mix gets `total − own`, clipped to `i16`; everyone
//! else gets the same full mix. The gate is what makes sharing pay: browsers send packets through
//! silence, so "sent a packet" would put everyone in the mix; it also keeps N idle microphones'
//! noise out of it.
//!
//! Encoders are stateful (each packet is predicted from the ones before, and the listener's decoder
//! tracks that history), so a shared stream needs an encoder of its own: one `shared` encoder
//! encodes the full mix every tick for all listeners not in the mix, and each participant owns an
//! encoder used while it is in the mix. Moving a listener between the two splices its stream:
//! - into the mix: its encoder is reset and fed the last [`PRIME_FRAMES`] full mixes (output
//!   discarded), so its state matches what the listener's decoder has been following;
//! - out of the mix: only after the hangover, during which its encoder was fed nearly the full mix
//!   (the listener was quiet), so the two encoders' states have converged.
//!
//! Measured with tones at 32 kbit/s (SNR of the decoded stream against its input over the 5 frames
//! from the splice): unswitched ~29 dB; switching in with 2 priming frames ~25 dB (none: 19, one:
//! 13); switching out after a hangover of 2+ frames ~29 dB four times in five, 11–20 dB otherwise
//! (hangover 0 or 1: 4–14 dB). Every encoder is pinned to `Signal::Voice`: the automatic
//! speech/music detector has seconds of memory and left two encoders fed the same audio in
//! different modes, which no hangover fixed. The shared encoder runs every tick, listened to or
//! not, so it is never stale when someone moves onto it.
//!
//! Cost per tick: a decode per sending input, one shared encode, and one encode per participant in
//! the mix (plus [`PRIME_FRAMES`] when one enters it). Packets are [`Arc`]s: the shared one is
//! encoded once and cloned to every listener (str0m's `Writer::write` takes `Into<Arc<[u8]>>`).

mod input;
mod jitter;
mod output;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use jitter::{JitterBuffer, Push, Slot};

use input::Input;
use output::{Outputs, Own};

/// Opus' native rate; every stream here is 48 kHz mono.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per 20 ms tick.
pub const FRAME: usize = 960;
pub const TICK: Duration = Duration::from_millis(20);
/// Full mixes a personal encoder is primed with when its listener enters the mix (measured in the
/// module docs: fewer is audibly worse, the encoder's analysis reaches back past one frame).
pub const PRIME_FRAMES: usize = 2;
/// Largest packet accepted or produced (one MTU; a 20 ms Opus frame is at most 1275 bytes).
const MAX_PACKET: usize = 1500;
/// Further behind than this, `tick` skips frames rather than catching up.
const MAX_LAG: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
pub struct MixConfig {
    /// Bitrate of every output stream, bit/s.
    pub bitrate: i32,
    /// Opus encoder complexity, 0..=10: encoding is most of the cost.
    pub complexity: i32,
    /// Playout delay per input, in ticks after the first packet of a talk spurt: absorbs that much
    /// arrival jitter.
    pub jitter_frames: usize,
    /// Packets held per input (at least `jitter_frames + 1`); beyond it the oldest are dropped.
    pub max_buffered: usize,
    /// Missing frames concealed (FEC or PLC) before an input counts as silent.
    pub plc_frames: usize,
    /// Frames quieter than this many -dBov (RMS against full scale) are silence. 55 is 5 dB under
    /// the SFU's speaking threshold, so anyone it calls speaking is mixed.
    pub gate_dbov: u8,
    /// Ticks an input stays in the mix after its last frame above the gate (≥ 2: see module docs).
    pub hangover_frames: u32,
    pub max_participants: usize,
}

impl Default for MixConfig {
    fn default() -> Self {
        MixConfig {
            bitrate: 32_000,
            complexity: 10,
            jitter_frames: 2,
            max_buffered: 8,
            plc_frames: 3,
            gate_dbov: 55,
            hangover_frames: 10,
            max_participants: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MixError {
    #[error("participant already in the mix")]
    AlreadyPresent,
    #[error("the mix is full ({0} participants)")]
    Full(usize),
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
}

/// Counters since creation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MixStats {
    pub ticks: u64,
    /// Frames skipped because `tick` was called more than 100 ms late.
    pub skipped_ticks: u64,
    pub packets_in: u64,
    pub decoded: u64,
    /// Frames rebuilt by FEC or PLC.
    pub concealed: u64,
    /// Packets rejected at push or failing to decode as 20 ms Opus (each a lost frame).
    pub malformed: u64,
    pub dropped_late: u64,
    pub dropped_duplicate: u64,
    /// Dropped at the buffer cap, or skipped to shorten a queue a burst left deep.
    pub dropped_overflow: u64,
    pub dropped_muted: u64,
    pub dropped_unknown: u64,
    pub encoded_shared: u64,
    pub encoded_personal: u64,
    /// Encodes spent priming personal encoders (output discarded).
    pub encoded_priming: u64,
    pub encode_errors: u64,
    /// Listeners moved from the shared stream to their own, and back.
    pub switches_in: u64,
    pub switches_out: u64,
}

/// One tick's output.
#[derive(Debug)]
pub struct Mixed<K> {
    /// Index of this 20 ms frame since creation, skipped frames included: RTP time = base + 960 × frame.
    pub frame: u64,
    /// One packet per participant, in key order; listeners not in the mix share one allocation.
    pub packets: Vec<(K, Arc<[u8]>)>,
}

struct Participant {
    input: Input,
    own: Own,
    /// In the mix this tick.
    mixed: bool,
}

pub struct MixMinus<K> {
    cfg: MixConfig,
    /// `gate_dbov` as a sum of squares over a frame.
    gate: u64,
    parts: BTreeMap<K, Participant>,
    outputs: Outputs,
    total: Box<[i32; FRAME]>,
    deadline: Instant,
    frame: u64,
    stats: MixStats,
}

impl<K: Ord + Clone> MixMinus<K> {
    /// The first tick is due at `now`.
    pub fn new(cfg: MixConfig, now: Instant) -> Result<Self, MixError> {
        let gate = FRAME as f64 * 32768f64.powi(2) * 10f64.powf(-f64::from(cfg.gate_dbov) / 10.0);
        Ok(MixMinus {
            cfg,
            gate: gate as u64,
            parts: BTreeMap::new(),
            outputs: Outputs::new(&cfg)?,
            total: Box::new([0; FRAME]),
            deadline: now,
            frame: 0,
            stats: MixStats::default(),
        })
    }

    /// Adds a participant with its own decoder and encoder; it hears the shared mix until it speaks.
    pub fn add(&mut self, k: K) -> Result<(), MixError> {
        if self.parts.contains_key(&k) {
            return Err(MixError::AlreadyPresent);
        }
        if self.parts.len() >= self.cfg.max_participants {
            return Err(MixError::Full(self.cfg.max_participants));
        }
        self.parts.insert(k, Participant { input: Input::new(&self.cfg)?, own: Own::new(&self.cfg)?, mixed: false });
        Ok(())
    }

    /// Removes a participant and frees its state; false if unknown.
    pub fn remove(&mut self, k: &K) -> bool {
        self.parts.remove(k).is_some()
    }

    /// One received 20 ms Opus packet of `k`. `seq` is the RTP sequence number extended past 16 bits
    /// (str0m's `SeqNo`): packets are played in `seq` order, late and duplicate ones dropped.
    pub fn push(&mut self, k: &K, seq: u64, opus: &[u8]) -> Push {
        let s = &mut self.stats;
        s.packets_in += 1;
        let outcome = match self.parts.get_mut(k) {
            None => Push::Unknown,
            Some(_) if opus.is_empty() || opus.len() > MAX_PACKET => Push::Malformed,
            Some(p) if p.input.muted => Push::Muted,
            Some(p) => p.input.jitter.push(seq, opus),
        };
        match outcome {
            Push::Unknown => s.dropped_unknown += 1,
            Push::Malformed => s.malformed += 1,
            Push::Muted => s.dropped_muted += 1,
            Push::Late => s.dropped_late += 1,
            Push::Duplicate => s.dropped_duplicate += 1,
            Push::Overflow(n) => s.dropped_overflow += n as u64,
            Push::Queued => {}
        }
        outcome
    }

    /// A muted input contributes nothing and its packets are dropped unread; false if unknown.
    pub fn set_muted(&mut self, k: &K, muted: bool) -> bool {
        let Some(p) = self.parts.get_mut(k) else { return false };
        self.stats.dropped_muted += p.input.set_muted(muted) as u64;
        true
    }

    /// Runs one 20 ms frame if it is due (`now >= poll_timeout()`), else returns `None`. Call again
    /// while it returns `Some` to catch up; more than 100 ms behind, the missed frames are skipped.
    pub fn tick(&mut self, now: Instant) -> Option<Mixed<K>> {
        let behind = now.checked_duration_since(self.deadline)?;
        if behind >= MAX_LAG {
            let skip = behind.as_nanos() / TICK.as_nanos();
            self.deadline = now - Duration::from_nanos((behind.as_nanos() % TICK.as_nanos()) as u64);
            self.frame += skip as u64;
            self.stats.skipped_ticks += skip as u64;
        }
        let frame = self.frame;
        self.frame += 1;
        self.deadline += TICK;
        self.stats.ticks += 1;
        if self.parts.is_empty() {
            return Some(Mixed { frame, packets: Vec::new() });
        }

        let (cfg, stats, total) = (&self.cfg, &mut self.stats, &mut self.total);
        total.fill(0);
        for p in self.parts.values_mut() {
            p.mixed = p.input.tick(frame, cfg, self.gate, stats);
            if p.mixed {
                total.iter_mut().zip(p.input.pcm.iter()).for_each(|(t, &s)| *t += i32::from(s));
            }
        }

        let shared = self.outputs.shared(total, stats);
        let mut packets = Vec::with_capacity(self.parts.len());
        for (k, p) in &mut self.parts {
            let packet = if p.mixed {
                self.outputs.own(&mut p.own, total, &p.input.pcm, stats)
            } else {
                Outputs::leave(&mut p.own, stats);
                shared.clone()
            };
            if let Some(packet) = packet {
                packets.push((k.clone(), packet));
            }
        }
        self.outputs.finish();
        Some(Mixed { frame, packets })
    }

    /// When the next frame is due.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }

    pub fn stats(&self) -> MixStats {
        self.stats
    }

    /// Whether `k`'s audio was in the last tick's mix (it got its own mix-minus stream).
    pub fn is_mixed(&self, k: &K) -> bool {
        self.parts.get(k).is_some_and(|p| p.mixed)
    }

    pub fn contains(&self, k: &K) -> bool {
        self.parts.contains_key(k)
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

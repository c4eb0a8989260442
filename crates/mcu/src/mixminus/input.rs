//! One participant's incoming audio: jitter buffer, Opus decoder, concealment and the noise gate
//! that decides whether this tick's frame goes into the mix.

use opus::{Channels, Decoder};

use super::jitter::{JitterBuffer, Slot};
use super::{FRAME, MixConfig, MixStats, SAMPLE_RATE};

pub(super) struct Input {
    pub jitter: JitterBuffer,
    decoder: Decoder,
    pub muted: bool,
    /// This tick's audio; meaningful when [`Input::tick`] returned true.
    pub pcm: Box<[i16; FRAME]>,
    /// Consecutive ticks without a decodable packet.
    lost: usize,
    /// Last tick whose frame was louder than the gate.
    last_loud: Option<u64>,
}

impl Input {
    pub fn new(cfg: &MixConfig) -> Result<Self, opus::Error> {
        Ok(Input {
            jitter: JitterBuffer::new(cfg.max_buffered, cfg.jitter_frames, cfg.plc_frames),
            decoder: Decoder::new(SAMPLE_RATE, Channels::Mono)?,
            muted: false,
            pcm: Box::new([0; FRAME]),
            lost: 0,
            last_loud: None,
        })
    }

    /// Takes this tick's frame (decoded, concealed or none) into `pcm`; returns whether it belongs in
    /// the mix: audio louder than `gate` (a sum of squares over the frame) at most `hangover` ticks
    /// ago. The hangover keeps word tails and short pauses in, and spaces out encoder switches.
    pub fn tick(&mut self, tick: u64, cfg: &MixConfig, gate: u64, stats: &mut MixStats) -> bool {
        if self.muted {
            return false;
        }
        let (decoder, pcm, lost) = (&mut self.decoder, &mut self.pcm[..], &mut self.lost);
        let heard = match self.jitter.pop() {
            Slot::Idle => false,
            Slot::Packet(p) if decode(decoder, &p, false, pcm) => {
                stats.decoded += 1;
                *lost = 0;
                true
            }
            Slot::Packet(_) => {
                // Not decodable as one 20 ms Opus frame: a lost one.
                stats.malformed += 1;
                conceal(decoder, None, pcm, lost, cfg.plc_frames, stats)
            }
            Slot::Missing { next } => conceal(decoder, next, pcm, lost, cfg.plc_frames, stats),
        };
        if heard && sum_of_squares(&self.pcm[..]) >= gate {
            self.last_loud = Some(tick);
        }
        heard && self.last_loud.is_some_and(|t| tick - t <= u64::from(cfg.hangover_frames))
    }

    pub fn set_muted(&mut self, muted: bool) -> usize {
        self.muted = muted;
        self.last_loud = None;
        if muted { self.jitter.clear() } else { 0 }
    }
}

/// Decodes one 20 ms packet into `pcm` (960 samples). Other durations would not fit the tick.
fn decode(decoder: &mut Decoder, packet: &[u8], fec: bool, pcm: &mut [i16]) -> bool {
    opus::packet::get_nb_samples(packet, SAMPLE_RATE).is_ok_and(|n| n == FRAME)
        && decoder.decode(packet, pcm, fec).is_ok_and(|n| n == FRAME)
}

/// A frame for a missing packet: rebuilt from the next packet's in-band FEC if it is here, else
/// extrapolated by Opus PLC; after `plc_frames` in a row, nothing (PLC would only drone on).
fn conceal(
    decoder: &mut Decoder,
    next: Option<&[u8]>,
    pcm: &mut [i16],
    lost: &mut usize,
    plc_frames: usize,
    stats: &mut MixStats,
) -> bool {
    *lost = lost.saturating_add(1);
    if *lost > plc_frames {
        return false;
    }
    let ok = next.is_some_and(|p| decode(decoder, p, true, pcm))
        || decoder.decode(&[], pcm, false).is_ok_and(|n| n == FRAME);
    if ok {
        stats.concealed += 1;
    }
    ok
}

fn sum_of_squares(pcm: &[i16]) -> u64 {
    pcm.iter().map(|&s| u64::from(s.unsigned_abs()).pow(2)).sum()
}

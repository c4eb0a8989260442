//! Test signals and what a receiver can tell about them: sine tones, Goertzel tone detection and the
//! RFC 6464 level of a frame. Each synthetic speaker sends its own frequency, so a listener can say
//! *who* it hears from decoded PCM alone.

use std::f64::consts::TAU;

/// Sample rate of everything the testbed sends and decodes (Opus' native rate).
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms mono frame at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
/// Goertzel block length. One 20 ms frame gives 50 Hz bins: tones 100+ Hz apart separate cleanly,
/// and short blocks tolerate the phase jumps that lost or concealed packets cause.
const BLOCK: usize = FRAME_SAMPLES;
/// Default share of the signal's energy a candidate must hold to count as present: low enough for
/// ~15 equal tones in one mix, far above what Opus artefacts or noise put into a 50 Hz bin.
pub const DEFAULT_MIN_FRACTION: f32 = 0.05;
/// Below this mean square (about -70 dBFS RMS) a signal is treated as silence.
const SILENCE_MEAN_SQUARE: f64 = 32768.0 * 32768.0 * 1e-7;

/// A phase-continuous sine generator producing 20 ms frames of 48 kHz mono `i16` PCM.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    freq: f64,
    amplitude: f64,
    phase: f64,
}

impl ToneGenerator {
    /// `level_dbfs` is the peak level: 0 dBFS is a full-scale sine (whose RFC 6464 level is 3 dBov).
    pub fn new(freq_hz: f32, level_dbfs: f32) -> Self {
        let amplitude = 32767.0 * 10f64.powf(f64::from(level_dbfs.min(0.0)) / 20.0);
        Self { freq: f64::from(freq_hz), amplitude, phase: 0.0 }
    }

    pub fn freq(&self) -> f64 {
        self.freq
    }

    /// The next 20 ms; the phase carries over, so consecutive frames join without a click.
    pub fn next_frame(&mut self) -> [i16; FRAME_SAMPLES] {
        let mut out = [0i16; FRAME_SAMPLES];
        self.fill(&mut out);
        out
    }

    /// Fills `out` with the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        let step = TAU * self.freq / f64::from(SAMPLE_RATE);
        for s in out {
            *s = (self.amplitude * self.phase.sin()).round() as i16;
            // Wrapping keeps precision over hours of samples.
            self.phase = (self.phase + step) % TAU;
        }
    }
}

/// Goertzel power of `freq` in `samples`: |X(f)|² of the DFT evaluated at that exact frequency (it
/// need not be a bin centre). A full-block sine of amplitude A gives about (A·N/2)².
pub fn goertzel_power(samples: &[i16], freq: f32, rate: f32) -> f32 {
    let coeff = 2.0 * (TAU * f64::from(freq) / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) as f32
}

/// Share of the signal's energy at `freq` (0..≈1), computed per [`BLOCK`] and pooled. `None` when
/// the signal is silence, so silence never "contains" a tone.
pub fn tone_fraction(samples: &[i16], freq: f32, rate: f32) -> Option<f32> {
    let (mut tone, mut total) = (0.0f64, 0.0f64);
    for block in samples.chunks(BLOCK).filter(|b| b.len() >= BLOCK / 2) {
        let energy: f64 = block.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        // 2·P/N turns Goertzel power into the energy of the sinusoid it measured.
        tone += 2.0 * f64::from(goertzel_power(block, freq, rate)) / block.len() as f64;
        total += energy;
    }
    let blocks_len = samples.len().max(1) as f64;
    if total / blocks_len < SILENCE_MEAN_SQUARE {
        return None;
    }
    Some((tone / total) as f32)
}

/// Which `candidates` are present in 48 kHz `samples`, using [`DEFAULT_MIN_FRACTION`].
pub fn detect_tones(samples: &[i16], candidates: &[f32]) -> Vec<f32> {
    detect_tones_with(samples, candidates, SAMPLE_RATE as f32, DEFAULT_MIN_FRACTION)
}

/// Which `candidates` hold at least `min_fraction` of the signal's energy.
pub fn detect_tones_with(samples: &[i16], candidates: &[f32], rate: f32, min_fraction: f32) -> Vec<f32> {
    candidates.iter().copied().filter(|&f| tone_fraction(samples, f, rate).is_some_and(|r| r >= min_fraction)).collect()
}

/// RFC 6464 level of a frame in -dBov (0 = loudest, 127 = silence), computed as libwebrtc does:
/// RMS relative to a full-scale square wave, rounded, clamped to 0..=127.
pub fn audio_level_dbov(samples: &[i16]) -> u8 {
    if samples.is_empty() {
        return 127;
    }
    let mean_square = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / samples.len() as f64;
    if mean_square <= 0.0 {
        return 127;
    }
    let level = -10.0 * (mean_square / (32768.0 * 32768.0)).log10();
    level.round().clamp(0.0, 127.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANDIDATES: [f32; 4] = [440.0, 660.0, 880.0, 1320.0];

    fn tone(freq: f32, dbfs: f32, frames: usize) -> Vec<i16> {
        let mut g = ToneGenerator::new(freq, dbfs);
        (0..frames).flat_map(|_| g.next_frame()).collect()
    }

    #[test]
    fn single_tone_is_detected_only_at_its_frequency() {
        let pcm = tone(440.0, -20.0, 25);
        assert_eq!(detect_tones(&pcm, &CANDIDATES), vec![440.0]);
        let at = tone_fraction(&pcm, 440.0, 48_000.0).unwrap();
        assert!(at > 0.9, "440 Hz holds {at} of the energy");
        assert!(tone_fraction(&pcm, 660.0, 48_000.0).unwrap() < 0.01);
    }

    #[test]
    fn two_tone_mix_detects_both() {
        let (a, b) = (tone(440.0, -20.0, 25), tone(880.0, -20.0, 25));
        let mix: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x.saturating_add(*y)).collect();
        assert_eq!(detect_tones(&mix, &CANDIDATES), vec![440.0, 880.0]);
    }

    #[test]
    fn silence_detects_nothing() {
        assert!(detect_tones(&[0i16; 48_000], &CANDIDATES).is_empty());
        assert!(detect_tones(&[], &CANDIDATES).is_empty());
        // A few LSBs of noise is silence too, not a weak tone.
        let dither: Vec<i16> = (0..48_000).map(|i| (i % 3) as i16 - 1).collect();
        assert!(detect_tones(&dither, &CANDIDATES).is_empty());
    }

    #[test]
    fn generator_is_phase_continuous() {
        let mut g = ToneGenerator::new(440.0, 0.0);
        let (a, b) = (g.next_frame(), g.next_frame());
        let mut whole = [0i16; 2 * FRAME_SAMPLES];
        ToneGenerator::new(440.0, 0.0).fill(&mut whole);
        assert_eq!(&whole[..FRAME_SAMPLES], &a[..]);
        assert_eq!(&whole[FRAME_SAMPLES..], &b[..]);
    }

    #[test]
    fn rfc6464_levels() {
        assert_eq!(audio_level_dbov(&[0; FRAME_SAMPLES]), 127);
        assert_eq!(audio_level_dbov(&[i16::MAX; FRAME_SAMPLES]), 0);
        // A sine's RMS is 3 dB under its peak.
        assert_eq!(audio_level_dbov(&tone(440.0, 0.0, 1)), 3);
        assert_eq!(audio_level_dbov(&tone(440.0, -20.0, 1)), 23);
        assert_eq!(audio_level_dbov(&tone(440.0, -60.0, 1)), 63);
    }

    #[test]
    fn opus_round_trip_preserves_detection() {
        let mut enc = crate::opus_io::Encoder::new().unwrap();
        let mut dec = crate::opus_io::Decoder::new().unwrap();
        let (mut a, mut b) = (ToneGenerator::new(660.0, -20.0), ToneGenerator::new(1320.0, -26.0));
        let mut decoded = Vec::new();
        for _ in 0..50 {
            let (fa, fb) = (a.next_frame(), b.next_frame());
            let mix: Vec<i16> = fa.iter().zip(&fb).map(|(x, y)| x.saturating_add(*y)).collect();
            let packet = enc.encode(&mix).unwrap();
            decoded.extend_from_slice(dec.decode(&packet).unwrap());
        }
        // Skip the codec's start-up (look-ahead and ramp), as a listener's window would.
        assert_eq!(detect_tones(&decoded[FRAME_SAMPLES * 10..], &CANDIDATES), vec![660.0, 1320.0]);
        let mut silent = Vec::new();
        for _ in 0..25 {
            silent.extend_from_slice(dec.decode(&enc.encode(&[0; FRAME_SAMPLES]).unwrap()).unwrap());
        }
        assert!(detect_tones(&silent[FRAME_SAMPLES * 10..], &CANDIDATES).is_empty());
    }
}

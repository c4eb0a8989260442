//! Latency through the paths that re-encode (mixed audio, the composite), where no capture time
//! survives: a probe sender switches between two known tones (or camera colours) and logs when
//! each switch went out; receivers that decode log when they first see the new one. Matching the
//! two logs gives the latency, to about one frame (20 ms audio, one video frame).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::picture::{I420, colour_close};
use crate::tone::{SAMPLE_RATE, tone_fraction};

/// Events kept per log; a probe switches about once a second, so this is minutes of history.
const LOG_CAP: usize = 2048;
/// Share of a frame's energy the probe tone must hold; others' tones share a mix with it.
const MIN_TONE_FRACTION: f32 = 0.05;
/// Per channel, after VP8 twice and scaling.
const COLOUR_TOLERANCE: u8 = 48;
/// A detection later than this after the switch is not matched to it (a stall, or a missed one).
const MAX_MATCH: Duration = Duration::from_secs(2);

/// A bounded, shared log of `(when, which)` events: `which` is 0 or 1 (the pattern's two states).
#[derive(Debug, Default)]
pub struct SwitchLog(Mutex<VecDeque<(Instant, u8)>>);

impl SwitchLog {
    pub fn push(&self, at: Instant, which: u8) {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() >= LOG_CAP {
            log.pop_front();
        }
        log.push_back((at, which));
    }

    pub fn events(&self) -> Vec<(Instant, u8)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Watches decoded audio for which of two tones dominates; reports changes.
#[derive(Debug, Clone)]
pub struct ToneWatch {
    tones: [f32; 2],
    current: Option<u8>,
}

impl ToneWatch {
    pub fn new(tones: [f32; 2]) -> Self {
        Self { tones, current: None }
    }

    /// Feeds one decoded 20 ms frame; `Some(i)` when tone `i` just became the one heard.
    pub fn on_frame(&mut self, pcm: &[i16]) -> Option<u8> {
        let rate = SAMPLE_RATE as f32;
        let f = |hz| tone_fraction(pcm, hz, rate).unwrap_or(0.0);
        let (a, b) = (f(self.tones[0]), f(self.tones[1]));
        let now = match (a >= MIN_TONE_FRACTION, b >= MIN_TONE_FRACTION) {
            (true, false) => 0,
            (false, true) => 1,
            (true, true) if a > 2.0 * b => 0,
            (true, true) if b > 2.0 * a => 1,
            _ => return None,
        };
        (self.current.replace(now) != Some(now)).then_some(now)
    }
}

/// Watches decoded pictures for which of two colours appears anywhere (a lattice of small blocks,
/// dense enough to hit every tile of a 3x3 grid); reports changes.
#[derive(Debug, Clone)]
pub struct ColourWatch {
    colours: [[u8; 3]; 2],
    current: Option<u8>,
}

impl ColourWatch {
    pub fn new(colours: [[u8; 3]; 2]) -> Self {
        Self { colours, current: None }
    }

    pub fn on_picture(&mut self, p: &I420) -> Option<u8> {
        const STEPS: u32 = 8;
        let (mut seen_a, mut seen_b) = (false, false);
        for j in 0..STEPS {
            for i in 0..STEPS {
                let x = p.width * (2 * i + 1) / (2 * STEPS);
                let y = p.height * (2 * j + 1) / (2 * STEPS);
                let Some(c) = p.mean_rgb(x.saturating_sub(2), y.saturating_sub(2), 4, 4) else { continue };
                seen_a |= colour_close(c, self.colours[0], COLOUR_TOLERANCE);
                seen_b |= colour_close(c, self.colours[1], COLOUR_TOLERANCE);
            }
        }
        let now = match (seen_a, seen_b) {
            (true, false) => 0,
            (false, true) => 1,
            _ => return None,
        };
        (self.current.replace(now) != Some(now)).then_some(now)
    }
}

/// Latencies of `detections` (one receiver's, or one track's) against the probe's `switches`:
/// each detection is matched to the latest switch to the same state before it, and only the
/// first detection after a given switch counts.
pub fn match_switches(switches: &[(Instant, u8)], detections: &[(Instant, u8)]) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut used: Option<Instant> = None;
    for &(seen, which) in detections {
        let Some(&(sent, _)) = switches.iter().rev().find(|(at, w)| *w == which && *at <= seen) else { continue };
        // A later switch to the other state before `seen` means this detection is stale.
        let superseded = switches.iter().any(|(at, w)| *w != which && *at > sent && *at <= seen);
        let lat = seen.duration_since(sent);
        if superseded || lat > MAX_MATCH || used == Some(sent) {
            continue;
        }
        used = Some(sent);
        out.push(lat);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::ToneGenerator;

    #[test]
    fn tone_switches_are_seen_once() {
        let mut w = ToneWatch::new([700.0, 1100.0]);
        let mut a = ToneGenerator::new(700.0, -20.0);
        let mut b = ToneGenerator::new(1100.0, -20.0);
        let mut other = ToneGenerator::new(300.0, -20.0);
        let mix = |x: [i16; 960], y: [i16; 960]| -> Vec<i16> { x.iter().zip(y).map(|(p, q)| p / 2 + q / 2).collect() };
        assert_eq!(w.on_frame(&mix(a.next_frame(), other.next_frame())), Some(0));
        assert_eq!(w.on_frame(&mix(a.next_frame(), other.next_frame())), None);
        assert_eq!(w.on_frame(&mix(b.next_frame(), other.next_frame())), Some(1));
        assert_eq!(w.on_frame(&[0; 960]), None, "silence changes nothing");
    }

    #[test]
    fn colour_switches() {
        let mut w = ColourWatch::new([[255, 0, 0], [0, 0, 255]]);
        let mut p = I420::solid(640, 360, [90, 90, 90]);
        assert_eq!(w.on_picture(&p), None);
        p.fill_rect(426, 240, 214, 120, [255, 0, 0]);
        assert_eq!(w.on_picture(&p), Some(0));
        p.fill_rect(426, 240, 214, 120, [0, 0, 255]);
        assert_eq!(w.on_picture(&p), Some(1));
    }

    #[test]
    fn matching() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let switches = [(ms(0), 1), (ms(1000), 0), (ms(2000), 1)];
        let seen = [(ms(30), 1), (ms(50), 1), (ms(1045), 0), (ms(2500), 0), (ms(2060), 1)];
        let got: Vec<u64> = match_switches(&switches, &seen).iter().map(|d| d.as_millis() as u64).collect();
        assert_eq!(got, [30, 45, 60]);
    }
}

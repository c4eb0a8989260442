//! Per received RTP stream, sans-IO: packets, bytes, frames (marker bits), loss from sequence gaps,
//! RFC 3550 interarrival jitter, and end-to-end latency from the sender's `abs-capture-time`. This
//! is all a load client keeps when it does not decode.

use std::time::{Duration, Instant, SystemTime};

use crate::capture_time;
use crate::hist::Histogram;

/// What one received stream delivered so far.
#[derive(Debug, Clone)]
pub struct RtpStats {
    /// RTP clock rate (48 kHz Opus, 90 kHz VP8), for jitter in seconds.
    clock_rate: u32,
    pub packets: u64,
    pub bytes: u64,
    /// Packets with the marker bit: whole video frames (audio senders set it rarely).
    pub frames: u64,
    /// Packets missing from the sequence, not counting reordering.
    pub lost: u64,
    /// RFC 3550 jitter estimate, in RTP timestamp units.
    jitter: f64,
    last_seq: Option<u16>,
    last_transit: Option<f64>,
    /// Ages of the packets that carried a capture time (now − capture), since the last reset.
    pub latency: Histogram,
    pub first_packet_at: Option<Instant>,
    pub last_packet_at: Option<Instant>,
    /// Arrival clock origin for the transit times.
    epoch: Instant,
}

impl RtpStats {
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            packets: 0,
            bytes: 0,
            frames: 0,
            lost: 0,
            jitter: 0.0,
            last_seq: None,
            last_transit: None,
            latency: Histogram::default(),
            first_packet_at: None,
            last_packet_at: None,
            epoch: Instant::now(),
        }
    }

    /// Accounts one packet arriving `now` (wall clock `wall`), with its header fields and the raw
    /// `abs-capture-time` payload if it had one.
    #[allow(clippy::too_many_arguments)]
    pub fn on_packet(
        &mut self,
        now: Instant,
        wall: SystemTime,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload_len: usize,
        capture: Option<&[u8]>,
    ) {
        self.packets += 1;
        self.bytes += payload_len as u64;
        self.frames += u64::from(marker);
        self.first_packet_at.get_or_insert(now);
        self.last_packet_at = Some(now);
        // A forward jump under 1000 counts as loss; anything else is reordering or a new source.
        let gap = self.last_seq.map_or(0, |last| seq.wrapping_sub(last).wrapping_sub(1));
        if gap < 1000 {
            self.lost += u64::from(gap);
        }
        if gap < 1000 || self.last_seq.is_none() {
            self.last_seq = Some(seq);
        }
        // RFC 3550 §6.4.1: J += (|D| − J)/16, D the change in transit time.
        let arrival = now.duration_since(self.epoch).as_secs_f64() * f64::from(self.clock_rate);
        let transit = arrival - f64::from(timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            // A jump of more than a second is a new source behind the slot, not jitter.
            if d < f64::from(self.clock_rate) {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
        if let Some(at) = capture.and_then(capture_time::parse) {
            self.latency.record(wall.duration_since(at).unwrap_or_default());
        }
    }

    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64(self.jitter / f64::from(self.clock_rate.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_jitter_and_latency() {
        let mut s = RtpStats::new(48_000);
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let cap = capture_time::to_ntp(wall - Duration::from_millis(3)).to_be_bytes();
        for (i, seq) in [1u16, 2, 3, 5, 6].into_iter().enumerate() {
            // Evenly paced: no jitter.
            let at = t0 + Duration::from_millis(20 * i as u64);
            s.on_packet(at, wall, seq, 960 * i as u32, false, 100, Some(&cap));
        }
        assert_eq!((s.packets, s.lost, s.bytes), (5, 1, 500));
        assert!(s.jitter() < Duration::from_micros(100), "{:?}", s.jitter());
        let p50 = s.latency.quantile(0.5).unwrap();
        assert!(p50 >= Duration::from_micros(2900) && p50 <= Duration::from_micros(3100), "{p50:?}");
        // A late packet raises jitter; a wrapped sequence is not a loss.
        s.on_packet(t0 + Duration::from_millis(130), wall, 7, 960 * 5, false, 100, None);
        assert!(s.jitter() > Duration::from_micros(500));
        let mut w = RtpStats::new(90_000);
        w.on_packet(t0, wall, u16::MAX, 0, true, 10, None);
        w.on_packet(t0, wall, 0, 0, true, 10, None);
        assert_eq!((w.lost, w.frames), (0, 2));
    }
}

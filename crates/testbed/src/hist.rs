//! A fixed-size log-linear histogram of durations (microseconds), for latency and join-time
//! distributions: exact below 64 µs, then 32 buckets per octave (≤ 3% error), up to ~1 hour in
//! 896 buckets, so memory stays bounded however many samples a run records.

use std::time::Duration;

use serde::{Deserialize, Serialize};

const EXACT: u64 = 64;
const PER_OCTAVE: usize = 32;
const BUCKETS: usize = 896;

#[derive(Clone, Serialize, Deserialize)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_us: u128,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS], total: 0, sum_us: 0, max_us: 0 }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram(n={}, p50={:?}, max={}us)", self.total, self.quantile(0.5), self.max_us)
    }
}

fn index(us: u64) -> usize {
    if us < EXACT {
        return us as usize;
    }
    let msb = 63 - us.leading_zeros();
    let shift = msb - 5;
    let top = (us >> shift) as usize; // 32..64: the six most significant bits
    (EXACT as usize + (shift as usize - 1) * PER_OCTAVE + (top - PER_OCTAVE)).min(BUCKETS - 1)
}

/// The middle of bucket `i`, in microseconds.
fn value(i: usize) -> u64 {
    if i < EXACT as usize {
        return i as u64;
    }
    let k = i - EXACT as usize;
    let shift = (k / PER_OCTAVE + 1) as u32;
    let top = (k % PER_OCTAVE + PER_OCTAVE) as u64;
    (top << shift) + (1u64 << shift) / 2
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[index(us)] += 1;
        self.total += 1;
        self.sum_us += u128::from(us);
        self.max_us = self.max_us.max(us);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum_us += other.sum_us;
        self.max_us = self.max_us.max(other.max_us);
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn mean(&self) -> Option<Duration> {
        (self.total > 0).then(|| Duration::from_micros((self.sum_us / u128::from(self.total)) as u64))
    }

    pub fn max(&self) -> Option<Duration> {
        (self.total > 0).then(|| Duration::from_micros(self.max_us))
    }

    /// The value below which a share `q` (0..=1) of the samples fall; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Duration::from_micros(value(i).min(self.max_us)));
            }
        }
        self.max()
    }

    /// (value in ms, cumulative share) per non-empty bucket: the distribution's CDF, for plots.
    pub fn cdf_ms(&self) -> Vec<(f64, f64)> {
        let mut seen = 0;
        let mut out = Vec::new();
        for (i, &c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            seen += c;
            out.push((value(i).min(self.max_us) as f64 / 1000.0, seen as f64 / self.total as f64));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for us in [0u64, 1, 63, 64, 65, 100, 127, 128, 1000, 12_345, 999_999, 3_600_000_000] {
            let i = index(us);
            assert!(i >= last, "{us}");
            last = i;
            let v = value(i) as f64;
            assert!((v - us as f64).abs() <= us as f64 * 0.04 + 1.0, "{us} -> {v}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile(0.5).unwrap().as_secs_f64() * 1e3;
        let p99 = h.quantile(0.99).unwrap().as_secs_f64() * 1e3;
        assert!((p50 - 50.0).abs() < 2.0, "{p50}");
        assert!((p99 - 99.0).abs() < 3.5, "{p99}");
        assert_eq!(h.max(), Some(Duration::from_millis(100)));
        let mut g = Histogram::default();
        g.merge(&h);
        assert_eq!(g.count(), 100);
        assert_eq!(g.cdf_ms().last().map(|p| p.1), Some(1.0));
    }
}

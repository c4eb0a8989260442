//! A fixed-size latency histogram (sans-IO, no allocation per sample): log-linear buckets, eight
//! per power of two of microseconds, so any percentile is known within 12.5%. Recording is an
//! integer log and an increment, cheap enough for every forwarded packet.

use serde::Serialize;
use std::time::Duration;

/// Sub-buckets per power of two.
const SUB: usize = 8;
/// Powers of two covered: up to 2^24 µs (~16.8 s); slower samples land in the last bucket.
const POWERS: usize = 24;
pub const BUCKETS: usize = SUB * POWERS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    max_us: u64,
    sum_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: Box::new([0; BUCKETS]), count: 0, max_us: 0, sum_us: 0 }
    }
}

/// The bucket of `us` microseconds: values below 8 µs map one to one, above that eight buckets
/// split each power of two.
fn bucket(us: u64) -> usize {
    if us < SUB as u64 {
        return us as usize;
    }
    let power = 63 - us.leading_zeros() as usize; // ≥ 3
    let sub = ((us >> (power - 3)) & (SUB as u64 - 1)) as usize;
    ((power - 2) * SUB + sub).min(BUCKETS - 1)
}

/// The largest value (µs) bucket `i` holds.
pub fn upper_bound_us(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let (power, sub) = (i / SUB + 2, (i % SUB) as u64);
    ((SUB as u64 + sub + 1) << (power - 3)) - 1
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.counts[bucket(us)] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
        self.sum_us = self.sum_us.saturating_add(us);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value (µs, a bucket's upper bound) at or below which a `q` share of samples fall.
    pub fn percentile_us(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_bound_us(i).min(self.max_us);
            }
        }
        self.max_us
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count,
            p50_us: self.percentile_us(0.50),
            p95_us: self.percentile_us(0.95),
            p99_us: self.percentile_us(0.99),
            max_us: self.max_us,
            sum_us: self.sum_us,
            counts: self.counts.to_vec(),
        }
    }
}

impl LatencySummary {
    /// The summary of several histograms' samples together (the engine's workers).
    pub fn merge(parts: &[LatencySummary]) -> LatencySummary {
        let mut h = Histogram::default();
        for p in parts {
            for (i, c) in p.counts.iter().enumerate().take(BUCKETS) {
                h.counts[i] += c;
            }
            h.count += p.count;
            h.max_us = h.max_us.max(p.max_us);
            h.sum_us = h.sum_us.saturating_add(p.sum_us);
        }
        h.summary()
    }
}

/// Percentiles of a [`Histogram`], plus its raw bucket counts (bucket `i` holds values up to
/// [`upper_bound_us`]`(i)`), so a client can subtract two snapshots to look at one interval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Every sample added up (for a mean, or Prometheus's `_sum`).
    pub sum_us: u64,
    pub counts: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounds_hold_their_values() {
        for us in [0, 1, 7, 8, 9, 15, 16, 17, 100, 999, 1000, 1023, 1024, 123_456, 10_000_000] {
            let b = bucket(us);
            assert!(us <= upper_bound_us(b), "{us} in bucket {b} (≤ {})", upper_bound_us(b));
            assert!(b == 0 || us > upper_bound_us(b - 1), "{us} belongs lower than {b}");
        }
        for i in 1..BUCKETS {
            assert!(upper_bound_us(i) > upper_bound_us(i - 1));
        }
    }

    #[test]
    fn percentiles_within_an_eighth() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.percentile_us(0.5);
        assert!((500..=563).contains(&p50), "{p50}");
        let p99 = h.percentile_us(0.99);
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(h.summary().max_us, 1000);
        assert_eq!(Histogram::default().percentile_us(0.99), 0);
    }
}

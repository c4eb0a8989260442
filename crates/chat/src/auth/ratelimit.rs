//! A sans-IO token-bucket rate limiter keyed by anything hashable, fed an explicit `Instant`.
//!
//! Used per account and per IP for logins, and per connection for gateway events. The key map is
//! bounded: full (idle) buckets are pruned first, then the least recently seen.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// `burst` events at once, refilled at one per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: u32,
    pub per: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: Limit,
    max_keys: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(limit: Limit, max_keys: usize) -> Self {
        RateLimiter { limit, max_keys: max_keys.max(1), buckets: HashMap::new() }
    }

    /// Takes one token for `key`; `Err(retry_after)` when none is left.
    pub fn check(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            self.prune(now);
        }
        let limit = self.limit;
        let b = self.buckets.entry(key.clone()).or_insert(Bucket { tokens: f64::from(limit.burst), at: now });
        let per = limit.per.as_secs_f64().max(f64::EPSILON);
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed / per).min(f64::from(limit.burst));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) * per))
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn prune(&mut self, now: Instant) {
        let full = self.limit.per * self.limit.burst;
        self.buckets.retain(|_, b| now.saturating_duration_since(b.at) < full);
        if self.buckets.len() >= self.max_keys {
            // Still full of active keys: forget the older half rather than grow.
            let mut ages: Vec<Instant> = self.buckets.values().map(|b| b.at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.buckets.retain(|_, b| b.at > cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(Limit { burst: 3, per: Duration::from_secs(10) }, 100);
        for _ in 0..3 {
            assert!(rl.check(&"a", t0).is_ok());
        }
        let wait = rl.check(&"a", t0).unwrap_err();
        assert!(wait > Duration::from_secs(9) && wait <= Duration::from_secs(10));
        assert!(rl.check(&"b", t0).is_ok(), "keys are independent");
        assert!(rl.check(&"a", t0 + Duration::from_secs(10)).is_ok());
        assert!(rl.check(&"a", t0 + Duration::from_secs(10)).is_err());
    }

    #[test]
    fn key_map_is_bounded() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(Limit { burst: 1, per: Duration::from_secs(60) }, 10);
        for i in 0..1000u32 {
            let _ = rl.check(&i, t0 + Duration::from_millis(u64::from(i)));
            assert!(rl.len() <= 10);
        }
    }
}

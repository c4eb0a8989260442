//! Per-key cooldowns with a gap given at each check (slow mode: each channel sets its own).
//! Sans-IO and bounded like [`super::RateLimiter`].

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Cooldowns<K> {
    last: HashMap<K, Instant>,
    max_keys: usize,
    /// No gap is longer: older entries can be forgotten.
    max_gap: Duration,
}

impl<K: Hash + Eq + Clone> Cooldowns<K> {
    pub fn new(max_gap: Duration, max_keys: usize) -> Self {
        Cooldowns { last: HashMap::new(), max_keys: max_keys.max(1), max_gap }
    }

    /// `Ok` (and the cooldown restarts) when `gap` has passed since `key`'s last accepted event;
    /// otherwise `Err(time left)`.
    pub fn check(&mut self, key: &K, gap: Duration, now: Instant) -> Result<(), Duration> {
        if let Some(at) = self.last.get(key) {
            let since = now.saturating_duration_since(*at);
            if since < gap {
                return Err(gap - since);
            }
        } else if self.last.len() >= self.max_keys {
            self.prune(now);
        }
        self.last.insert(key.clone(), now);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    fn prune(&mut self, now: Instant) {
        let max_gap = self.max_gap;
        self.last.retain(|_, at| now.saturating_duration_since(*at) < max_gap);
        if self.last.len() >= self.max_keys {
            let mut ages: Vec<Instant> = self.last.values().copied().collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.last.retain(|_, at| *at > cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_per_key_and_bounded() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Cooldowns::new(Duration::from_secs(60), 4);
        assert!(c.check(&0u32, 5 * s, t0).is_ok());
        assert_eq!(c.check(&0, 5 * s, t0 + 2 * s), Err(3 * s));
        assert!(c.check(&1, 5 * s, t0 + 2 * s).is_ok(), "keys are independent");
        assert!(c.check(&0, 5 * s, t0 + 5 * s).is_ok());
        assert!(c.check(&0, 2 * s, t0 + 7 * s).is_ok(), "the gap is the caller's, per check");
        for i in 0..100u32 {
            let _ = c.check(&(i + 10), s, t0 + Duration::from_millis(u64::from(i)));
            assert!(c.len() <= 4);
        }
    }
}

//! Viewer counting (sans-IO): a player joins (gets an id), beats every few seconds while it plays
//! and leaves when it stops; one that stops beating is dropped after [`TTL`]. Each player session
//! counts once, however many renditions or requests it makes, and the count decays by itself when
//! a tab is closed without a goodbye.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A viewer is counted this long after its last heartbeat.
pub const TTL: Duration = Duration::from_secs(15);
/// How often players are asked to beat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Viewers {
    /// Viewer id → (stream, last beat).
    by_id: HashMap<u64, (String, Instant)>,
    per_stream: HashMap<String, u64>,
    /// At most this many viewers at once, over every stream: a flood of joins cannot grow the map
    /// without bound.
    max: usize,
}

impl Viewers {
    pub fn new(max: usize) -> Viewers {
        Viewers { by_id: HashMap::new(), per_stream: HashMap::new(), max }
    }

    /// A new viewer of `stream` with id `id` (random, chosen by the caller); false when full.
    pub fn join(&mut self, stream: &str, id: u64, now: Instant) -> bool {
        self.expire(now);
        if self.by_id.len() >= self.max || self.by_id.contains_key(&id) {
            return false;
        }
        self.by_id.insert(id, (stream.to_string(), now));
        *self.per_stream.entry(stream.to_string()).or_default() += 1;
        true
    }

    /// A heartbeat; false when the viewer is unknown (expired: it should join again).
    pub fn beat(&mut self, stream: &str, id: u64, now: Instant) -> bool {
        match self.by_id.get_mut(&id) {
            Some((s, last)) if s == stream => {
                *last = now;
                true
            }
            _ => false,
        }
    }

    pub fn leave(&mut self, stream: &str, id: u64) -> bool {
        if self.by_id.get(&id).is_none_or(|(s, _)| s != stream) {
            return false;
        }
        self.by_id.remove(&id);
        self.uncount(stream);
        true
    }

    /// Drops viewers silent for longer than [`TTL`].
    pub fn expire(&mut self, now: Instant) {
        let mut gone = Vec::new();
        self.by_id.retain(|_, (s, last)| {
            let keep = now.saturating_duration_since(*last) <= TTL;
            if !keep {
                gone.push(std::mem::take(s));
            }
            keep
        });
        for s in gone {
            self.uncount(&s);
        }
    }

    fn uncount(&mut self, stream: &str) {
        if let Some(n) = self.per_stream.get_mut(stream) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_stream.remove(stream);
            }
        }
    }

    /// Viewers of every stream.
    pub fn total(&self) -> u64 {
        self.by_id.len() as u64
    }

    pub fn count(&self, stream: &str) -> u64 {
        self.per_stream.get(stream).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_beat_leave_and_decay() {
        let t0 = Instant::now();
        let mut v = Viewers::new(3);
        assert!(v.join("a", 1, t0) && v.join("a", 2, t0) && v.join("b", 3, t0));
        assert!(!v.join("a", 4, t0), "full");
        assert!(!v.join("a", 1, t0), "an id joins once");
        assert_eq!((v.count("a"), v.count("b")), (2, 1));
        assert!(!v.beat("b", 1, t0), "a viewer beats for its own stream only");
        assert!(!v.leave("b", 1), "nor leaves another's");
        assert!(v.leave("a", 2));
        assert_eq!(v.count("a"), 1);
        // 1 keeps beating, 3 goes quiet and decays.
        let t1 = t0 + Duration::from_secs(10);
        assert!(v.beat("a", 1, t1));
        v.expire(t0 + TTL + Duration::from_secs(1));
        assert_eq!((v.count("a"), v.count("b")), (1, 0));
        assert!(!v.beat("b", 3, t1), "expired: join again");
        assert!(v.join("b", 5, t1), "room again");
    }
}

//! Speaker detection from RFC 6464 audio levels. Sans-IO: fed levels with an explicit `Instant`,
//! polled for events; deterministic under a test clock.
//!
//! A level is `0..=127`, meaning `-level` dBov (0 is loudest, 127 silence). A peer starts speaking
//! when its level stays at or above the threshold for `attack`, and stops after `hangover` without
//! a loud packet, so the gaps between words do not flap. Loudness is tracked as an exponential
//! moving average of linear amplitude; the dominant speaker is the loudest current speaker, and only
//! changes when a challenger is louder by a margin (no ping-pong between two similar voices).

use rustc_hash::FxHashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct SpeakerConfig {
    /// Levels at or below this many -dBov count as voice (e.g. 50 → louder than -50 dBov).
    pub threshold: u8,
    pub attack: Duration,
    pub hangover: Duration,
    /// Weight of a new sample in the loudness average (0..1].
    pub smoothing: f32,
    /// A challenger must be this many times louder to take dominance.
    pub dominance_margin: f32,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            threshold: 50,
            attack: Duration::from_millis(40),
            hangover: Duration::from_millis(500),
            smoothing: 0.2,
            dominance_margin: 1.5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpeakerEvent<K> {
    Started(K),
    Stopped(K),
    /// The dominant speaker changed (`None`: nobody speaks).
    Dominant(Option<K>),
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    speaking: bool,
    /// Start of the current run of loud packets.
    loud_since: Option<Instant>,
    last_loud: Option<Instant>,
    /// Smoothed linear amplitude (1.0 = 0 dBov).
    loudness: f32,
}

#[derive(Debug)]
pub struct SpeakerDetector<K> {
    cfg: SpeakerConfig,
    peers: FxHashMap<K, Peer>,
    dominant: Option<K>,
    events: Vec<SpeakerEvent<K>>,
}

fn amplitude(level: u8) -> f32 {
    10f32.powf(-f32::from(level.min(127)) / 20.0)
}

impl<K: Hash + Eq + Clone> SpeakerDetector<K> {
    pub fn new(cfg: SpeakerConfig) -> Self {
        SpeakerDetector { cfg, peers: FxHashMap::default(), dominant: None, events: Vec::new() }
    }

    /// One packet's audio level from `peer`.
    pub fn on_level(&mut self, peer: K, level: u8, now: Instant) {
        let cfg = self.cfg;
        let p = self.peers.entry(peer.clone()).or_insert(Peer {
            speaking: false,
            loud_since: None,
            last_loud: None,
            loudness: 0.0,
        });
        p.loudness += cfg.smoothing * (amplitude(level) - p.loudness);
        if level <= cfg.threshold {
            let since = *p.loud_since.get_or_insert(now);
            p.last_loud = Some(now);
            if !p.speaking && now.saturating_duration_since(since) >= cfg.attack {
                p.speaking = true;
                self.events.push(SpeakerEvent::Started(peer));
            }
        } else if p.last_loud.is_none_or(|t| now.saturating_duration_since(t) > cfg.hangover) {
            p.loud_since = None;
        }
        self.update(now);
    }

    /// Advances time without packets (a peer that went quiet or silent stops after the hangover).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.update(now);
    }

    /// Forgets a peer (it left); emits `Stopped` if it was speaking.
    pub fn remove(&mut self, peer: &K, now: Instant) {
        if self.peers.remove(peer).is_some_and(|p| p.speaking) {
            self.events.push(SpeakerEvent::Stopped(peer.clone()));
        }
        self.update(now);
    }

    /// Events since the last poll, in order.
    pub fn poll_events(&mut self) -> std::vec::Drain<'_, SpeakerEvent<K>> {
        self.events.drain(..)
    }

    pub fn is_speaking(&self, peer: &K) -> bool {
        self.peers.get(peer).is_some_and(|p| p.speaking)
    }

    pub fn dominant(&self) -> Option<&K> {
        self.dominant.as_ref()
    }

    /// Peers ranked for last-N forwarding: current speakers first, then by smoothed loudness.
    pub fn ranking(&self) -> Vec<K> {
        let mut v: Vec<(&K, &Peer)> = self.peers.iter().collect();
        v.sort_by(|a, b| b.1.speaking.cmp(&a.1.speaking).then(b.1.loudness.total_cmp(&a.1.loudness)));
        v.into_iter().map(|(k, _)| k.clone()).collect()
    }

    /// When [`SpeakerDetector::handle_timeout`] should next run, if anyone is speaking.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers.values().filter(|p| p.speaking).filter_map(|p| p.last_loud).min().map(|t| t + self.cfg.hangover)
    }

    fn update(&mut self, now: Instant) {
        for (k, p) in self.peers.iter_mut() {
            if p.speaking && p.last_loud.is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.hangover) {
                p.speaking = false;
                p.loud_since = None;
                self.events.push(SpeakerEvent::Stopped(k.clone()));
            }
        }
        let loudest =
            self.peers.iter().filter(|(_, p)| p.speaking).max_by(|a, b| a.1.loudness.total_cmp(&b.1.loudness));
        let current = self.dominant.as_ref().and_then(|d| self.peers.get(d).filter(|p| p.speaking).map(|p| p.loudness));
        let next = match (loudest, current) {
            (None, _) => None,
            (Some((k, _)), None) => Some(k.clone()),
            (Some((k, p)), Some(cur)) if p.loudness > cur * self.cfg.dominance_margin => Some(k.clone()),
            (Some(_), Some(_)) => self.dominant.clone(),
        };
        if next != self.dominant {
            self.dominant = next.clone();
            self.events.push(SpeakerEvent::Dominant(next));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds `level` for `peer` every 20 ms from `from` for `dur`.
    fn feed(d: &mut SpeakerDetector<&'static str>, peer: &'static str, level: u8, from: Instant, dur: Duration) {
        let mut t = from;
        while t < from + dur {
            d.on_level(peer, level, t);
            t += 20 * MS;
        }
    }

    #[test]
    fn loud_then_silent_starts_then_stops_once() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        feed(&mut d, "a", 20, t0, 1000 * MS);
        feed(&mut d, "a", 127, t0 + 1000 * MS, 2000 * MS);
        let ev: Vec<_> = d.poll_events().collect();
        assert_eq!(
            ev,
            vec![
                SpeakerEvent::Started("a"),
                SpeakerEvent::Dominant(Some("a")),
                SpeakerEvent::Stopped("a"),
                SpeakerEvent::Dominant(None)
            ]
        );
    }

    #[test]
    fn short_gaps_do_not_flap_and_blips_do_not_start() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        d.on_level("b", 10, t0); // a single loud packet: shorter than the attack
        d.handle_timeout(t0 + 100 * MS);
        assert!(d.poll_events().next().is_none());
        feed(&mut d, "a", 20, t0, 500 * MS);
        feed(&mut d, "a", 127, t0 + 500 * MS, 300 * MS); // a pause between words
        feed(&mut d, "a", 20, t0 + 800 * MS, 500 * MS);
        let starts = d.poll_events().filter(|e| matches!(e, SpeakerEvent::Started(_))).count();
        assert_eq!(starts, 1);
        assert!(d.is_speaking(&"a"));
    }

    #[test]
    fn silence_without_packets_times_out() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        feed(&mut d, "a", 20, t0, 200 * MS);
        let deadline = d.poll_timeout().unwrap();
        d.handle_timeout(deadline - MS);
        assert!(d.is_speaking(&"a"));
        d.handle_timeout(deadline);
        assert!(!d.is_speaking(&"a"));
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn dominance_needs_a_margin_and_ranking_orders_by_loudness() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        feed(&mut d, "a", 30, t0, 400 * MS);
        // b is slightly louder (-28 dBov vs -30): not enough to take over.
        let mut t = t0 + 400 * MS;
        while t < t0 + 1200 * MS {
            d.on_level("a", 30, t);
            d.on_level("b", 28, t);
            t += 20 * MS;
        }
        assert_eq!(d.dominant(), Some(&"a"));
        // c is much louder (-10 dBov): takes over.
        while t < t0 + 2000 * MS {
            d.on_level("a", 30, t);
            d.on_level("b", 28, t);
            d.on_level("c", 10, t);
            t += 20 * MS;
        }
        assert_eq!(d.dominant(), Some(&"c"));
        d.on_level("quiet", 127, t);
        assert_eq!(d.ranking(), vec!["c", "b", "a", "quiet"]);
        d.remove(&"c", t);
        assert!(d.poll_events().any(|e| e == SpeakerEvent::Stopped("c")));
        assert_ne!(d.dominant(), Some(&"c"));
    }
}

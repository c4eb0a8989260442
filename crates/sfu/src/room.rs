//! One room's forwarding state, sans-IO: membership, mute, last-N slot assignment and RTP
//! timestamp rebasing. Fed events with an explicit `Instant`; knows nothing of str0m or sockets.
//!
//! Slots are indices into a listener's receive m-lines; the engine maps them to mids.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::PeerId;
use crate::speaker::{SpeakerConfig, SpeakerDetector, SpeakerEvent};

/// Continuity of one outgoing slot's RTP timeline across source switches.
///
/// The receiver sees one SSRC per slot (str0m owns it), so when the source changes the timestamp
/// must keep advancing as if one speaker went on: the new source's timeline is shifted to start
/// where the old one stopped, plus the wall-clock gap (at least one 20 ms frame).
#[derive(Debug, Clone, Default)]
pub struct Rebase {
    source: Option<PeerId>,
    offset: u64,
    last: Option<(u64, Instant)>,
}

impl Rebase {
    /// The outgoing timestamp for a frame of `source` stamped `t_in` (in `rate` Hz units).
    pub fn map(&mut self, source: PeerId, t_in: u64, rate: u32, now: Instant) -> u64 {
        if self.source != Some(source) {
            self.source = Some(source);
            self.offset = match self.last {
                Some((t_out, at)) => {
                    let frame = u64::from(rate / 50);
                    let gap = (now.saturating_duration_since(at).as_micros() as u64).saturating_mul(u64::from(rate))
                        / 1_000_000;
                    t_out.wrapping_add(gap.max(frame)).wrapping_sub(t_in)
                }
                None => 0,
            };
        }
        let t_out = t_in.wrapping_add(self.offset);
        self.last = Some((t_out, now));
        t_out
    }
}

#[derive(Debug)]
struct Member {
    muted: bool,
    /// Source per receive slot, and that slot's timeline.
    slots: Vec<(Option<PeerId>, Rebase)>,
}

#[derive(Debug)]
pub struct Room {
    last_n: usize,
    members: HashMap<PeerId, Member>,
    /// Join order: the tie-break for members never heard.
    order: Vec<PeerId>,
    detector: SpeakerDetector<PeerId>,
    /// Source → (listener, slot) pairs it currently flows into; rebuilt on reassignment.
    routes: HashMap<PeerId, Vec<(PeerId, usize)>>,
    /// Membership, mute or speaking changed since the last [`Room::assign`].
    dirty: bool,
}

impl Room {
    pub fn new(last_n: usize, speaker: SpeakerConfig) -> Self {
        Room {
            last_n,
            members: HashMap::new(),
            order: Vec::new(),
            detector: SpeakerDetector::new(speaker),
            routes: HashMap::new(),
            dirty: false,
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn members(&self) -> &[PeerId] {
        &self.order
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Adds a listener/sender with `slots` receive m-lines.
    pub fn join(&mut self, peer: PeerId, slots: usize) {
        let slots = vec![(None, Rebase::default()); slots];
        if self.members.insert(peer, Member { muted: false, slots }).is_none() {
            self.order.push(peer);
        }
        self.dirty = true;
    }

    /// Removes `peer`; returns whether it was a member. Speaker events may follow.
    pub fn leave(&mut self, peer: PeerId, now: Instant) -> bool {
        if self.members.remove(&peer).is_none() {
            return false;
        }
        self.order.retain(|p| *p != peer);
        self.detector.remove(&peer, now);
        self.dirty = true;
        true
    }

    /// Returns whether the state changed. Muting forgets the peer's loudness (it stops speaking).
    pub fn set_muted(&mut self, peer: PeerId, muted: bool, now: Instant) -> bool {
        let Some(m) = self.members.get_mut(&peer) else { return false };
        if m.muted == muted {
            return false;
        }
        m.muted = muted;
        if muted {
            self.detector.remove(&peer, now);
        }
        self.dirty = true;
        true
    }

    pub fn is_muted(&self, peer: PeerId) -> bool {
        self.members.get(&peer).is_some_and(|m| m.muted)
    }

    /// One frame's level (0..=127, -dBov) from an unmuted member.
    pub fn on_level(&mut self, peer: PeerId, level: u8, now: Instant) {
        self.detector.on_level(peer, level, now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.detector.poll_timeout().is_some_and(|t| t <= now) {
            self.detector.handle_timeout(now);
        }
    }

    /// Speaker events since the last poll. Starts and stops mark the assignment dirty.
    pub fn poll_speaker_events(&mut self, out: &mut Vec<SpeakerEvent<PeerId>>) {
        for e in self.detector.poll_events() {
            self.dirty |= !matches!(e, SpeakerEvent::Dominant(_));
            out.push(e);
        }
    }

    /// Sources per slot of `listener`.
    pub fn slots(&self, listener: PeerId) -> impl Iterator<Item = Option<PeerId>> + '_ {
        self.members.get(&listener).into_iter().flat_map(|m| m.slots.iter().map(|s| s.0))
    }

    /// Recomputes every listener's forwarded set; pushes the listeners whose slots changed.
    ///
    /// Candidates: the detector's ranking, then members never heard in join order; muted peers
    /// are skipped. A listener gets the first `min(last_n, its slots)` candidates other than
    /// itself. Sticky: a source still wanted keeps its slot, newcomers fill freed slots.
    pub fn assign(&mut self, changed: &mut Vec<PeerId>) {
        self.dirty = false;
        let ranked = self.detector.ranking();
        let heard = |p: &PeerId| ranked.contains(p);
        let max_slots = self.members.values().map(|m| m.slots.len()).max().unwrap_or(0);
        // One more than anyone can take, since a listener skips itself.
        let take = self.last_n.min(max_slots) + 1;
        let top: Vec<PeerId> = ranked
            .iter()
            .chain(self.order.iter().filter(|p| !heard(p)))
            .filter(|p| self.members.get(p).is_some_and(|m| !m.muted))
            .take(take)
            .copied()
            .collect();
        for &listener in &self.order {
            let Some(m) = self.members.get_mut(&listener) else { continue };
            let n = self.last_n.min(m.slots.len());
            let want = || top.iter().copied().filter(|p| *p != listener).take(n);
            let mut moved = false;
            for slot in m.slots.iter_mut() {
                if slot.0.is_some_and(|s| !want().any(|w| w == s)) {
                    slot.0 = None;
                    moved = true;
                }
            }
            for w in want() {
                if m.slots.iter().any(|s| s.0 == Some(w)) {
                    continue;
                }
                if let Some(free) = m.slots.iter_mut().find(|s| s.0.is_none()) {
                    free.0 = Some(w);
                    moved = true;
                }
            }
            if moved {
                changed.push(listener);
            }
        }
        if !changed.is_empty() {
            self.rebuild_routes();
        }
    }

    fn rebuild_routes(&mut self) {
        self.routes.clear();
        for (&listener, m) in &self.members {
            for (i, (src, _)) in m.slots.iter().enumerate() {
                if let Some(src) = src {
                    self.routes.entry(*src).or_default().push((listener, i));
                }
            }
        }
    }

    /// Where a frame of `source` stamped `t_in` goes: (listener, slot, outgoing timestamp).
    /// Never back to the source; nothing for a muted source.
    pub fn targets(&mut self, source: PeerId, t_in: u64, rate: u32, now: Instant, out: &mut Vec<(PeerId, usize, u64)>) {
        let Some(routes) = self.routes.get(&source) else { return };
        if self.is_muted(source) {
            return;
        }
        for &(listener, slot) in routes {
            if listener == source {
                continue;
            }
            let Some(s) = self.members.get_mut(&listener).and_then(|m| m.slots.get_mut(slot)) else { continue };
            out.push((listener, slot, s.1.map(source, t_in, rate, now)));
        }
    }
}

/// How often the engine re-ranks rooms even without speaker events (loudness drifts).
pub const REASSIGN_INTERVAL: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn room(last_n: usize) -> Room {
        Room::new(last_n, SpeakerConfig::default())
    }

    fn sources(r: &Room, listener: PeerId) -> Vec<Option<PeerId>> {
        r.slots(listener).collect()
    }

    fn forwarded(r: &Room, listener: PeerId) -> Vec<PeerId> {
        let mut v: Vec<PeerId> = r.slots(listener).flatten().collect();
        v.sort();
        v
    }

    /// Every peer in `levels` sends its level every 20 ms for `dur`.
    fn talk(r: &mut Room, levels: &[(PeerId, u8)], from: Instant, dur: Duration) -> Instant {
        let mut t = from;
        while t < from + dur {
            for &(p, l) in levels {
                r.on_level(p, l, t);
            }
            t += 20 * MS;
        }
        r.poll_speaker_events(&mut Vec::new());
        t
    }

    #[test]
    fn eight_senders_n3_forwards_exactly_the_three_loudest() {
        let t0 = Instant::now();
        let mut r = room(3);
        for p in 1..=9 {
            r.join(p, 4); // 9 is the listener: silent, 4 slots (more than last_n)
        }
        let levels: Vec<(PeerId, u8)> =
            (1..=8).map(|p| (p, [40, 10, 70, 30, 90, 20, 60, 127][p as usize - 1])).collect();
        talk(&mut r, &levels, t0, 2000 * MS);
        r.assign(&mut Vec::new());
        assert_eq!(forwarded(&r, 9), vec![2, 4, 6]);
        assert_eq!(sources(&r, 9).iter().filter(|s| s.is_none()).count(), 1);
        // A sender hears the three loudest others.
        assert_eq!(forwarded(&r, 2), vec![1, 4, 6]);
        let mut out = Vec::new();
        for src in [1, 3, 5, 7, 8] {
            r.targets(src, 0, 48_000, t0, &mut out);
            assert!(out.iter().all(|(l, _, _)| *l != 9), "{src} must not reach the listener");
        }
    }

    #[test]
    fn assignment_is_sticky() {
        let t0 = Instant::now();
        let mut r = room(2);
        for p in 1..=4 {
            r.join(p, 2);
        }
        let t = talk(&mut r, &[(1, 10), (2, 20), (3, 60)], t0, 1000 * MS);
        r.assign(&mut Vec::new());
        let before = sources(&r, 4);
        assert_eq!(forwarded(&r, 4), vec![1, 2]);
        // 2 becomes louder than 1: same set, so nobody moves.
        let t = talk(&mut r, &[(1, 20), (2, 5), (3, 60)], t, 1000 * MS);
        let mut changed = Vec::new();
        r.assign(&mut changed);
        assert!(changed.is_empty());
        assert_eq!(sources(&r, 4), before);
        // 1 goes quiet, 3 takes over: 3 takes 1's slot, 2 stays where it was.
        talk(&mut r, &[(1, 127), (2, 5), (3, 10)], t, 2000 * MS);
        r.assign(&mut changed);
        assert!(changed.contains(&4));
        let after = sources(&r, 4);
        let slot_of = |v: &[Option<PeerId>], p| v.iter().position(|s| *s == Some(p));
        assert_eq!(slot_of(&after, 2), slot_of(&before, 2));
        assert_eq!(slot_of(&after, 3), slot_of(&before, 1));
    }

    #[test]
    fn never_heard_fill_in_join_order_without_self_or_muted() {
        let t0 = Instant::now();
        let mut r = room(5);
        for p in [7, 3, 5, 9] {
            r.join(p, 2);
        }
        r.set_muted(3, true, t0);
        let mut changed = Vec::new();
        r.assign(&mut changed);
        assert_eq!(sources(&r, 7), vec![Some(5), Some(9)]);
        assert_eq!(sources(&r, 3), vec![Some(7), Some(5)]);
        assert_eq!(sources(&r, 9), vec![Some(7), Some(5)]);
        let mut out = Vec::new();
        r.targets(3, 0, 48_000, t0, &mut out);
        assert!(out.is_empty(), "a muted source goes nowhere");
        r.targets(5, 0, 48_000, t0, &mut out);
        assert_eq!(out.iter().map(|t| t.0).collect::<Vec<_>>().len(), 3);
        assert!(out.iter().all(|t| t.0 != 5));
    }

    #[test]
    fn leave_and_mute_reassign() {
        let t0 = Instant::now();
        let mut r = room(1);
        for p in 1..=3 {
            r.join(p, 1);
        }
        r.assign(&mut Vec::new());
        assert_eq!(sources(&r, 3), vec![Some(1)]);
        r.leave(1, t0);
        let mut changed = Vec::new();
        r.assign(&mut changed);
        assert_eq!(sources(&r, 3), vec![Some(2)]);
        assert_eq!(sources(&r, 2), vec![Some(3)]);
        assert!(r.set_muted(2, true, t0));
        assert!(!r.set_muted(2, true, t0));
        changed.clear();
        r.assign(&mut changed);
        assert_eq!(changed, vec![3]);
        assert_eq!(sources(&r, 3), vec![None]);
    }

    #[test]
    fn rebase_keeps_slot_timeline_continuous() {
        let t0 = Instant::now();
        let mut rb = Rebase::default();
        assert_eq!(rb.map(1, 1000, 48_000, t0), 1000);
        assert_eq!(rb.map(1, 1960, 48_000, t0 + 20 * MS), 1960);
        // Switch to a source with an unrelated timeline 100 ms later.
        assert_eq!(rb.map(2, 9_000_000, 48_000, t0 + 120 * MS), 1960 + 4800);
        assert_eq!(rb.map(2, 9_000_960, 48_000, t0 + 140 * MS), 1960 + 4800 + 960);
        // Switching back right away still advances by at least a frame; lower input values wrap fine.
        let back = rb.map(1, 500, 48_000, t0 + 140 * MS);
        assert_eq!(back, 1960 + 4800 + 960 + 960);
        assert_eq!(rb.map(1, 1460, 48_000, t0 + 160 * MS), back + 960);
    }
}

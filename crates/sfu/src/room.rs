//! One room's forwarding state, sans-IO: membership, mute, camera, and which source flows into
//! which receive slot (last-N audio; cameras in `sfu` rooms). Fed events with an explicit
//! `Instant`; knows nothing of str0m or sockets.
//!
//! Slots are indices into a listener's receive m-lines of one kind; the engine maps them to mids.
//! In rooms that mix audio (`mcu`) no audio slot is assigned (the mixer writes slot 0), and in
//! rooms that composite video (`hybrid`, `mcu`) no video slot is (the composite goes to slot 0).
//! Screen shares are forwarded in every mode, each at its own resolution into share slots, never
//! composited: the earliest shares first.

use rustc_hash::FxHashMap;
use std::time::{Duration, Instant};

use crate::slots::{Slot, fill};
use crate::speaker::{SpeakerConfig, SpeakerDetector, SpeakerEvent};
use crate::{MediaMode, PeerId};

/// A kind of receive slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio = 0,
    Video = 1,
    Share = 2,
}

#[derive(Debug)]
struct Member {
    muted: bool,
    /// Deafened: hears nobody, so gets no audio at all (its slots stay empty, no mix is sent).
    deaf: bool,
    /// Publishes a camera: offered one and has not turned it off.
    camera: bool,
    /// Sharing a screen since this tick of the room's share clock.
    sharing: Option<u64>,
    /// Receive slots per kind.
    slots: [Vec<Slot>; 3],
}

#[derive(Debug)]
pub struct Room {
    mode: MediaMode,
    last_n: usize,
    members: FxHashMap<PeerId, Member>,
    /// Join order: the tie-break for members never heard.
    order: Vec<PeerId>,
    detector: SpeakerDetector<PeerId>,
    /// Per kind: source → (listener, slot) pairs it currently flows into; rebuilt on reassignment.
    routes: [FxHashMap<PeerId, Vec<(PeerId, usize)>>; 3],
    /// Orders shares by when they started.
    share_clock: u64,
    /// Shares that gained a listener at the last assignment: they owe it a keyframe.
    share_keyframes: Vec<PeerId>,
    /// Membership, mute, camera or speaking changed since the last [`Room::assign`].
    dirty: bool,
}

impl Room {
    pub fn new(mode: MediaMode, last_n: usize, speaker: SpeakerConfig) -> Self {
        Room {
            mode,
            last_n,
            members: FxHashMap::default(),
            order: Vec::new(),
            detector: SpeakerDetector::new(speaker),
            routes: Default::default(),
            share_clock: 0,
            share_keyframes: Vec::new(),
            dirty: false,
        }
    }

    pub fn mode(&self) -> MediaMode {
        self.mode
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

    /// Adds a member with `audio` and `video` receive m-lines, publishing a camera or not.
    #[cfg(test)]
    pub fn join(&mut self, peer: PeerId, audio: usize, video: usize, camera: bool) {
        self.join_with_shares(peer, (audio, video, 0), camera);
    }

    /// [`Room::join`] with `share` receive m-lines for screen shares too.
    pub fn join_with_shares(&mut self, peer: PeerId, (audio, video, share): (usize, usize, usize), camera: bool) {
        let slots = [vec![Slot::default(); audio], vec![Slot::default(); video], vec![Slot::default(); share]];
        let m = Member { muted: false, deaf: false, camera, sharing: None, slots };
        if self.members.insert(peer, m).is_none() {
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

    /// Deafen or undeafen a listener; returns whether the state changed.
    pub fn set_deaf(&mut self, peer: PeerId, deaf: bool) -> bool {
        let Some(m) = self.members.get_mut(&peer) else { return false };
        if m.deaf == deaf {
            return false;
        }
        m.deaf = deaf;
        self.dirty = true;
        true
    }

    pub fn is_deaf(&self, peer: PeerId) -> bool {
        self.members.get(&peer).is_some_and(|m| m.deaf)
    }

    pub fn is_muted(&self, peer: PeerId) -> bool {
        self.members.get(&peer).is_some_and(|m| m.muted)
    }

    /// Camera on or off; returns whether the state changed.
    pub fn set_camera(&mut self, peer: PeerId, on: bool) -> bool {
        let Some(m) = self.members.get_mut(&peer) else { return false };
        if m.camera == on {
            return false;
        }
        m.camera = on;
        self.dirty = true;
        true
    }

    /// Screen share on or off; returns whether the state changed.
    pub fn set_sharing(&mut self, peer: PeerId, on: bool) -> bool {
        let Some(m) = self.members.get_mut(&peer) else { return false };
        if m.sharing.is_some() == on {
            return false;
        }
        self.share_clock += 1;
        m.sharing = on.then_some(self.share_clock);
        self.dirty = true;
        true
    }

    pub fn is_sharing(&self, peer: PeerId) -> bool {
        self.members.get(&peer).is_some_and(|m| m.sharing.is_some())
    }

    /// The shares that gained a listener at the last [`Room::assign`] (each owes a keyframe).
    pub fn take_share_keyframes(&mut self) -> Vec<PeerId> {
        std::mem::take(&mut self.share_keyframes)
    }

    pub fn has_camera(&self, peer: PeerId) -> bool {
        self.members.get(&peer).is_some_and(|m| m.camera)
    }

    /// Someone's camera is on: a composite has something to show.
    pub fn any_camera(&self) -> bool {
        self.members.values().any(|m| m.camera)
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

    /// Sources per slot of `listener`, of one kind.
    pub fn slots(&self, listener: PeerId, kind: Kind) -> impl Iterator<Item = Option<PeerId>> + '_ {
        self.members.get(&listener).into_iter().flat_map(move |m| m.slots[kind as usize].iter().map(|s| s.source))
    }

    /// Recomputes every listener's forwarded sets; pushes the listeners whose slots changed, and
    /// the camera sources that gained a listener (they owe it a keyframe).
    ///
    /// Candidates: the detector's ranking, then members never heard in join order; for audio,
    /// muted peers are skipped, for video, peers without camera. A listener gets the first
    /// `min(last_n, its slots)` audio candidates and as many video candidates as it has video
    /// slots, never itself. Sticky: a source still wanted keeps its slot.
    pub fn assign(&mut self, changed: &mut Vec<PeerId>, keyframes: &mut Vec<PeerId>) {
        self.dirty = false;
        let ranked = self.detector.ranking();
        let heard = |p: &PeerId| ranked.contains(p);
        let by_rank: Vec<PeerId> = ranked.iter().chain(self.order.iter().filter(|p| !heard(p))).copied().collect();
        let mut moved = false;
        if !self.mode.mixes_audio() {
            let max = self.members.values().map(|m| m.slots[0].len()).max().unwrap_or(0);
            moved |= self.assign_kind(Kind::Audio, &by_rank, self.last_n.min(max), changed, &mut Vec::new());
        }
        if !self.mode.composites_video() {
            let max = self.members.values().map(|m| m.slots[1].len()).max().unwrap_or(0);
            moved |= self.assign_kind(Kind::Video, &by_rank, max, changed, keyframes);
        }
        let mut shares: Vec<(u64, PeerId)> =
            self.members.iter().filter_map(|(p, m)| m.sharing.map(|since| (since, *p))).collect();
        shares.sort_unstable();
        let by_start: Vec<PeerId> = shares.into_iter().map(|(_, p)| p).collect();
        let max = self.members.values().map(|m| m.slots[2].len()).max().unwrap_or(0);
        let mut share_keys = std::mem::take(&mut self.share_keyframes);
        moved |= self.assign_kind(Kind::Share, &by_start, max, changed, &mut share_keys);
        share_keys.sort_unstable();
        share_keys.dedup();
        self.share_keyframes = share_keys;
        keyframes.sort_unstable();
        keyframes.dedup();
        if moved {
            self.rebuild_routes();
        }
    }

    fn assign_kind(
        &mut self,
        kind: Kind,
        by_rank: &[PeerId],
        limit: usize,
        changed: &mut Vec<PeerId>,
        added: &mut Vec<PeerId>,
    ) -> bool {
        let eligible = |m: &Member| match kind {
            Kind::Audio => !m.muted,
            Kind::Video => m.camera,
            Kind::Share => m.sharing.is_some(),
        };
        // One more than anyone can take, since a listener skips itself.
        let top: Vec<PeerId> =
            by_rank.iter().filter(|p| self.members.get(p).is_some_and(eligible)).take(limit + 1).copied().collect();
        let mut any = false;
        let mut want = Vec::with_capacity(top.len());
        for &listener in &self.order {
            let Some(m) = self.members.get_mut(&listener) else { continue };
            let slots = &mut m.slots[kind as usize];
            let n = match kind {
                Kind::Audio if m.deaf => 0,
                Kind::Audio => self.last_n.min(slots.len()),
                Kind::Video | Kind::Share => slots.len(),
            };
            want.clear();
            want.extend(top.iter().copied().filter(|p| *p != listener).take(n));
            if fill(slots, &want, added) {
                any = true;
                if !changed.contains(&listener) {
                    changed.push(listener);
                }
            }
        }
        any
    }

    fn rebuild_routes(&mut self) {
        for kind in [Kind::Audio, Kind::Video, Kind::Share] {
            let routes = &mut self.routes[kind as usize];
            routes.clear();
            for (&listener, m) in &self.members {
                for (i, slot) in m.slots[kind as usize].iter().enumerate() {
                    if let Some(src) = slot.source {
                        routes.entry(src).or_default().push((listener, i));
                    }
                }
            }
        }
    }

    /// Where a frame of `source` stamped `t_in` goes: (listener, slot, outgoing timestamp).
    /// Never back to the source; no audio from a muted source, no video from a camera that is off;
    /// a video slot whose source just changed starts at a keyframe (`key`), as a decoder must.
    pub fn targets(
        &mut self,
        kind: Kind,
        source: PeerId,
        (t_in, rate, key): (u64, u32, bool),
        now: Instant,
        out: &mut Vec<(PeerId, usize, u64)>,
    ) {
        let Some(routes) = self.routes[kind as usize].get(&source) else { return };
        let off = match kind {
            Kind::Audio => self.is_muted(source),
            Kind::Video => !self.has_camera(source),
            Kind::Share => !self.is_sharing(source),
        };
        if off {
            return;
        }
        for &(listener, slot) in routes {
            if listener == source {
                continue;
            }
            let Some(s) = self.members.get_mut(&listener).and_then(|m| m.slots[kind as usize].get_mut(slot)) else {
                continue;
            };
            if kind != Kind::Audio && !s.keyed && !key {
                continue;
            }
            s.keyed = true;
            out.push((listener, slot, s.rebase.map(source, t_in, rate, now)));
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
        Room::new(MediaMode::Hybrid, last_n, SpeakerConfig::default())
    }

    fn sources(r: &Room, listener: PeerId) -> Vec<Option<PeerId>> {
        r.slots(listener, Kind::Audio).collect()
    }

    fn forwarded(r: &Room, listener: PeerId) -> Vec<PeerId> {
        let mut v: Vec<PeerId> = r.slots(listener, Kind::Audio).flatten().collect();
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
            r.join(p, 4, 0, false); // 9 is the listener: silent, 4 slots (more than last_n)
        }
        let levels: Vec<(PeerId, u8)> =
            (1..=8).map(|p| (p, [40, 10, 70, 30, 90, 20, 60, 127][p as usize - 1])).collect();
        talk(&mut r, &levels, t0, 2000 * MS);
        r.assign(&mut Vec::new(), &mut Vec::new());
        assert_eq!(forwarded(&r, 9), vec![2, 4, 6]);
        assert_eq!(sources(&r, 9).iter().filter(|s| s.is_none()).count(), 1);
        // A sender hears the three loudest others.
        assert_eq!(forwarded(&r, 2), vec![1, 4, 6]);
        let mut out = Vec::new();
        for src in [1, 3, 5, 7, 8] {
            r.targets(Kind::Audio, src, (0, 48_000, true), t0, &mut out);
            assert!(out.iter().all(|(l, _, _)| *l != 9), "{src} must not reach the listener");
        }
    }

    #[test]
    fn assignment_is_sticky() {
        let t0 = Instant::now();
        let mut r = room(2);
        for p in 1..=4 {
            r.join(p, 2, 0, false);
        }
        let t = talk(&mut r, &[(1, 10), (2, 20), (3, 60)], t0, 1000 * MS);
        r.assign(&mut Vec::new(), &mut Vec::new());
        let before = sources(&r, 4);
        assert_eq!(forwarded(&r, 4), vec![1, 2]);
        // 2 becomes louder than 1: same set, so nobody moves.
        let t = talk(&mut r, &[(1, 20), (2, 5), (3, 60)], t, 1000 * MS);
        let mut changed = Vec::new();
        r.assign(&mut changed, &mut Vec::new());
        assert!(changed.is_empty());
        assert_eq!(sources(&r, 4), before);
        // 1 goes quiet, 3 takes over: 3 takes 1's slot, 2 stays where it was.
        talk(&mut r, &[(1, 127), (2, 5), (3, 10)], t, 2000 * MS);
        r.assign(&mut changed, &mut Vec::new());
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
            r.join(p, 2, 0, false);
        }
        r.set_muted(3, true, t0);
        let mut changed = Vec::new();
        r.assign(&mut changed, &mut Vec::new());
        assert_eq!(sources(&r, 7), vec![Some(5), Some(9)]);
        assert_eq!(sources(&r, 3), vec![Some(7), Some(5)]);
        assert_eq!(sources(&r, 9), vec![Some(7), Some(5)]);
        let mut out = Vec::new();
        r.targets(Kind::Audio, 3, (0, 48_000, true), t0, &mut out);
        assert!(out.is_empty(), "a muted source goes nowhere");
        r.targets(Kind::Audio, 5, (0, 48_000, true), t0, &mut out);
        assert_eq!(out.iter().map(|t| t.0).collect::<Vec<_>>().len(), 3);
        assert!(out.iter().all(|t| t.0 != 5));
    }

    #[test]
    fn leave_and_mute_reassign() {
        let t0 = Instant::now();
        let mut r = room(1);
        for p in 1..=3 {
            r.join(p, 1, 0, false);
        }
        r.assign(&mut Vec::new(), &mut Vec::new());
        assert_eq!(sources(&r, 3), vec![Some(1)]);
        r.leave(1, t0);
        let mut changed = Vec::new();
        r.assign(&mut changed, &mut Vec::new());
        assert_eq!(sources(&r, 3), vec![Some(2)]);
        assert_eq!(sources(&r, 2), vec![Some(3)]);
        assert!(r.set_muted(2, true, t0));
        assert!(!r.set_muted(2, true, t0));
        changed.clear();
        r.assign(&mut changed, &mut Vec::new());
        assert_eq!(changed, vec![3]);
        assert_eq!(sources(&r, 3), vec![None]);
    }

    #[test]
    fn sfu_rooms_forward_cameras_and_ask_keyframes_for_new_listeners() {
        let t0 = Instant::now();
        let mut r = Room::new(MediaMode::Sfu, 5, SpeakerConfig::default());
        r.join(1, 2, 2, true);
        r.join(2, 2, 2, true);
        r.join(3, 2, 2, false); // no camera: watches only
        let (mut changed, mut keyframes) = (Vec::new(), Vec::new());
        r.assign(&mut changed, &mut keyframes);
        let video = |r: &Room, l| r.slots(l, Kind::Video).collect::<Vec<_>>();
        assert_eq!(video(&r, 3), [Some(1), Some(2)]);
        assert_eq!(video(&r, 1), [Some(2), None], "never its own camera");
        assert_eq!(keyframes, [1, 2]);
        let mut out = Vec::new();
        r.targets(Kind::Video, 1, (0, 90_000, false), t0, &mut out);
        assert!(out.is_empty(), "a new slot starts at a keyframe");
        r.targets(Kind::Video, 1, (0, 90_000, true), t0, &mut out);
        r.targets(Kind::Video, 1, (3000, 90_000, false), t0, &mut out);
        let mut to: Vec<PeerId> = out.iter().map(|t| t.0).collect();
        to.sort();
        assert_eq!(to, [2, 2, 3, 3], "then every frame, keyframe or not");
        // Camera off: its slots free up and nothing of it is forwarded.
        assert!(r.set_camera(1, false) && !r.set_camera(1, false));
        keyframes.clear();
        r.assign(&mut changed, &mut keyframes);
        assert_eq!(video(&r, 3), [None, Some(2)]);
        assert!(keyframes.is_empty());
        out.clear();
        r.targets(Kind::Video, 1, (0, 90_000, true), t0, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn mixed_and_composited_kinds_are_not_assigned() {
        let mut r = Room::new(MediaMode::Mcu, 5, SpeakerConfig::default());
        r.join(1, 1, 1, true);
        r.join(2, 1, 1, true);
        r.assign(&mut Vec::new(), &mut Vec::new());
        assert_eq!(r.slots(1, Kind::Audio).collect::<Vec<_>>(), [None]);
        assert_eq!(r.slots(1, Kind::Video).collect::<Vec<_>>(), [None]);
        let mut r = Room::new(MediaMode::Hybrid, 5, SpeakerConfig::default());
        r.join(1, 1, 1, true);
        r.join(2, 1, 1, true);
        r.assign(&mut Vec::new(), &mut Vec::new());
        assert_eq!(r.slots(1, Kind::Audio).collect::<Vec<_>>(), [Some(2)]);
        assert_eq!(r.slots(1, Kind::Video).collect::<Vec<_>>(), [None]);
    }

    #[test]
    fn a_deafened_listener_gets_no_audio_and_is_still_heard() {
        let t0 = Instant::now();
        let mut r = room(3);
        let (a, b) = (1, 2);
        r.join(a, 2, 0, false);
        r.join(b, 2, 0, false);
        r.assign(&mut Vec::new(), &mut Vec::new());
        assert_eq!(forwarded(&r, a), vec![b]);
        assert!(r.set_deaf(a, true) && !r.set_deaf(a, true));
        let mut changed = Vec::new();
        r.assign(&mut changed, &mut Vec::new());
        assert_eq!(changed, vec![a]);
        assert!(forwarded(&r, a).is_empty(), "a hears nobody");
        assert_eq!(forwarded(&r, b), vec![a], "a is still heard");
        let mut out = Vec::new();
        r.targets(Kind::Audio, b, (0, 48_000, false), t0, &mut out);
        assert!(out.is_empty(), "nothing of b goes to a");
        r.set_deaf(a, false);
        r.assign(&mut Vec::new(), &mut Vec::new());
        assert_eq!(forwarded(&r, a), vec![b]);
    }

    #[test]
    fn shares_go_to_share_slots_in_every_mode_earliest_first() {
        let t0 = Instant::now();
        for mode in [MediaMode::Hybrid, MediaMode::Sfu, MediaMode::Mcu] {
            let mut r = Room::new(mode, 3, SpeakerConfig::default());
            let (a, b, c) = (1, 2, 3);
            for p in [a, b, c] {
                r.join_with_shares(p, (2, 1, 1), true);
            }
            r.assign(&mut Vec::new(), &mut Vec::new());
            assert!(r.slots(a, Kind::Share).all(|s| s.is_none()), "no share yet");
            assert!(r.set_sharing(b, true) && !r.set_sharing(b, true));
            r.assign(&mut Vec::new(), &mut Vec::new());
            assert_eq!(r.take_share_keyframes(), vec![b], "{mode:?}: b owes its new viewers a keyframe");
            assert_eq!(r.slots(a, Kind::Share).collect::<Vec<_>>(), vec![Some(b)]);
            assert_eq!(r.slots(b, Kind::Share).collect::<Vec<_>>(), vec![None], "never back to the sharer");
            // A later share waits for the slot; the earlier one keeps it.
            r.set_sharing(c, true);
            r.assign(&mut Vec::new(), &mut Vec::new());
            assert_eq!(r.slots(a, Kind::Share).collect::<Vec<_>>(), vec![Some(b)]);
            assert_eq!(r.slots(b, Kind::Share).collect::<Vec<_>>(), vec![Some(c)]);
            // Frames go only where they are wanted, from a keyframe on.
            let mut out = Vec::new();
            r.targets(Kind::Share, b, (0, 90_000, false), t0, &mut out);
            assert!(out.is_empty(), "a delta before the first keyframe is held back");
            r.targets(Kind::Share, b, (0, 90_000, true), t0, &mut out);
            let mut to: Vec<(PeerId, usize)> = out.iter().map(|(l, s, _)| (*l, *s)).collect();
            to.sort_unstable();
            assert_eq!(to, vec![(a, 0), (c, 0)], "everyone but b (c shares too, and watches b)");
            r.set_sharing(b, false);
            r.assign(&mut Vec::new(), &mut Vec::new());
            assert_eq!(r.slots(a, Kind::Share).collect::<Vec<_>>(), vec![Some(c)], "{mode:?}");
        }
    }
}

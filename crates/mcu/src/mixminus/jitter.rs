//! One input's jitter buffer, ordered by RTP sequence number (extended to `u64`, as str0m's `SeqNo`
//! is). Playout is clock-driven: each tick takes the next sequence number whether it arrived or not,
//! so a missing packet is concealed once and a packet arriving after its tick is late. Playout starts
//! `delay` ticks after the first packet of a talk spurt (the margin that absorbs arrival jitter) and
//! starts over that way after the input ran dry, so pauses (DTX, a stalled sender) need no
//! sequence-number arithmetic against wall time.

use std::collections::VecDeque;

/// A packet this far behind the playout point is not late but a new stream (the sender restarted).
const RESTART_GAP: u64 = 64;
/// Ticks the queue may stay deeper than the delay needs before a frame is skipped to shorten it.
const DRAIN_AFTER: usize = 50;

/// What became of a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Push {
    /// Queued for playout.
    Queued,
    /// Queued, but the buffer was full: this many older packets were dropped and playout skips them.
    Overflow(usize),
    /// Its tick has passed (or it was played already): dropped.
    Late,
    /// That sequence number is already queued: dropped.
    Duplicate,
    /// Not a usable packet (empty or larger than any 20 ms Opus packet): dropped.
    Malformed,
    /// The input is muted: dropped.
    Muted,
    /// No such participant.
    Unknown,
}

/// What one tick takes from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Slot<'a> {
    /// The packet due now.
    Packet(Vec<u8>),
    /// The packet due now is missing. `next` is the one after it if already queued: Opus in-band
    /// FEC can rebuild the missing frame from it.
    Missing { next: Option<&'a [u8]> },
    /// Not playing: nothing queued, or still waiting out the playout delay.
    Idle,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// No packet yet: any sequence number is welcome.
    Fresh,
    /// Ran dry: waits for packets at or above `floor` (below it is late).
    Idle { floor: u64 },
    /// Plays `next` on the next tick.
    Playing { next: u64 },
}

/// A bounded, sequence-ordered packet queue with a fixed playout delay.
#[derive(Debug)]
pub struct JitterBuffer {
    /// Sorted by sequence number, all at or above the floor.
    queue: VecDeque<(u64, Vec<u8>)>,
    state: State,
    capacity: usize,
    delay: usize,
    give_up: usize,
    /// Ticks the head of an idle buffer has waited.
    waited: usize,
    /// Consecutive missing ticks while playing.
    misses: usize,
    /// Consecutive ticks the queue was deeper than the delay needs.
    deep: usize,
}

impl JitterBuffer {
    /// Holds at most `capacity` packets (at least `delay + 1`); starts playing `delay` ticks after the
    /// first packet; stops (back to idle) after `give_up` missing ticks with nothing queued.
    pub fn new(capacity: usize, delay: usize, give_up: usize) -> Self {
        let capacity = capacity.max(delay + 1);
        JitterBuffer {
            queue: VecDeque::new(),
            state: State::Fresh,
            capacity,
            delay,
            give_up,
            waited: 0,
            misses: 0,
            deep: 0,
        }
    }

    /// Lowest sequence number still accepted.
    fn floor(&self) -> Option<u64> {
        match self.state {
            State::Fresh => None,
            State::Idle { floor } => Some(floor),
            State::Playing { next } => Some(next),
        }
    }

    pub fn push(&mut self, seq: u64, packet: &[u8]) -> Push {
        if let Some(floor) = self.floor()
            && seq < floor
        {
            if floor - seq <= RESTART_GAP {
                return Push::Late;
            }
            self.queue.clear();
            self.state = State::Fresh;
            self.waited = 0;
        }
        let at = self.queue.partition_point(|(s, _)| *s < seq);
        if self.queue.get(at).is_some_and(|(s, _)| *s == seq) {
            return Push::Duplicate;
        }
        self.queue.insert(at, (seq, packet.to_vec()));
        // Keep the newest `capacity` sequence numbers: latency stays bounded when a sender runs fast
        // or bursts after a stall; playout jumps over what is dropped.
        let mut dropped = 0;
        if let State::Playing { next } = self.state {
            let newest = self.queue.back().map_or(seq, |(s, _)| *s);
            let mut keep = next;
            if newest - next >= self.capacity as u64 {
                keep = newest - (self.capacity as u64 - 1);
            }
            // Below the cap, a burst or a fast sender would keep the queue deep for good (browsers
            // send through silence, so it never runs dry and starts over): skip a frame a second.
            if self.deep >= DRAIN_AFTER {
                self.deep = 0;
                keep = keep.max(next.saturating_add(1));
            }
            while self.queue.front().is_some_and(|(s, _)| *s < keep) {
                self.queue.pop_front();
                dropped += 1;
            }
            self.state = State::Playing { next: keep };
        } else {
            while self.queue.len() > self.capacity {
                if let Some((s, _)) = self.queue.pop_front() {
                    self.state = State::Idle { floor: s.saturating_add(1) };
                    dropped += 1;
                }
            }
        }
        if dropped > 0 { Push::Overflow(dropped) } else { Push::Queued }
    }

    /// The packet for this tick. Call exactly once per tick.
    pub fn pop(&mut self) -> Slot<'_> {
        let next = match self.state {
            State::Playing { next } => {
                // A steady stream queues this tick's packet and `delay` more; one more is jitter.
                self.deep = if self.queue.len() > self.delay + 2 { self.deep + 1 } else { 0 };
                next
            }
            State::Fresh | State::Idle { .. } => {
                let Some(&(first, _)) = self.queue.front() else { return Slot::Idle };
                if self.waited < self.delay {
                    self.waited += 1;
                    return Slot::Idle;
                }
                self.waited = 0;
                self.misses = 0;
                self.deep = 0;
                first
            }
        };
        self.state = State::Playing { next: next.saturating_add(1) };
        if self.queue.front().is_some_and(|(s, _)| *s == next) {
            self.misses = 0;
            return self.queue.pop_front().map_or(Slot::Idle, |(_, p)| Slot::Packet(p));
        }
        self.misses += 1;
        if self.queue.is_empty() && self.misses > self.give_up {
            self.state = State::Idle { floor: next.saturating_add(1) };
        }
        let after = next.saturating_add(1);
        Slot::Missing { next: self.queue.front().filter(|(s, _)| *s == after).map(|(_, p)| p.as_slice()) }
    }

    /// Drops everything queued (mute); the playout point stays, so old packets remain late.
    pub fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        if let Some(floor) = self.floor() {
            self.state = State::Idle { floor };
        }
        self.waited = 0;
        self.misses = 0;
        self.deep = 0;
        n
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a tick would take a packet or conceal one (not idle).
    pub fn is_playing(&self) -> bool {
        matches!(self.state, State::Playing { .. })
    }
}

//! Keyframe bookkeeping (sans-IO): the encoder's rate limit and each source's "wait for a
//! keyframe" gate.
//!
//! A VP8 decoder can only start (or recover) at a keyframe: delta frames pushed before one would
//! decode to garbage or errors, so a source's frames are dropped until its next keyframe, and the
//! publisher is asked for one ([`crate::CompositorEvent::KeyframeNeeded`], which the SFU turns
//! into a PLI). Both directions are rate-limited, because a keyframe costs several times a delta
//! frame's bits and a burst of requests (a room of late joiners, a lossy publisher) must not turn
//! the stream into keyframes only.

use std::time::{Duration, Instant};

/// At most one keyframe per `min_interval`; a request inside the interval is remembered and
/// granted by [`poll`](Self::poll) when the interval ends, so a joiner arriving just after
/// another still gets a keyframe of its own (the earlier one went out before it listened).
#[derive(Debug, Clone)]
pub struct KeyframeLimiter {
    min_interval: Duration,
    last: Option<Instant>,
    pending: bool,
}

impl KeyframeLimiter {
    pub fn new(min_interval: Duration) -> Self {
        KeyframeLimiter { min_interval, last: None, pending: false }
    }

    /// A keyframe is wanted now: true if it may be forced now, else it is deferred.
    pub fn request(&mut self, now: Instant) -> bool {
        if self.due(now) {
            self.last = Some(now);
            self.pending = false;
            true
        } else {
            self.pending = true;
            false
        }
    }

    /// True once when a deferred request has become due.
    pub fn poll(&mut self, now: Instant) -> bool {
        self.pending && self.request(now)
    }

    fn due(&self, now: Instant) -> bool {
        self.last.is_none_or(|last| now.saturating_duration_since(last) >= self.min_interval)
    }
}

/// What to do with one pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the decoder.
    Decode,
    /// Drop it (no keyframe since the decoder (re)started); `ask` says whether to emit
    /// `KeyframeNeeded` now (rate-limited; the next dropped frame asks again when due).
    Drop { ask: bool },
}

/// One source's decoder gate: closed at start and after any loss, opened by a keyframe.
#[derive(Debug, Clone)]
pub struct SourceGate {
    awaiting_key: bool,
    asks: KeyframeLimiter,
}

impl SourceGate {
    pub fn new(min_interval: Duration) -> Self {
        SourceGate { awaiting_key: true, asks: KeyframeLimiter::new(min_interval) }
    }

    pub fn frame(&mut self, keyframe: bool, now: Instant) -> Verdict {
        if keyframe {
            self.awaiting_key = false;
        }
        if self.awaiting_key { Verdict::Drop { ask: self.asks.request(now) } } else { Verdict::Decode }
    }

    /// The decoder lost its reference (error, dropped frame, restart): close the gate. Returns
    /// whether to emit `KeyframeNeeded` now.
    pub fn lost(&mut self, now: Instant) -> bool {
        self.awaiting_key = true;
        self.asks.request(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn limiter_grants_one_per_interval_and_defers_the_rest() {
        let t0 = Instant::now();
        let mut l = KeyframeLimiter::new(500 * MS);
        assert!(l.request(t0));
        assert!(!l.poll(t0 + 10 * MS), "nothing pending yet");
        assert!(!l.request(t0 + 100 * MS));
        assert!(!l.request(t0 + 200 * MS), "coalesced with the pending one");
        assert!(!l.poll(t0 + 499 * MS));
        assert!(l.poll(t0 + 500 * MS), "the deferred request fires once due");
        assert!(!l.poll(t0 + 2000 * MS), "and only once");
        assert!(l.request(t0 + 2000 * MS));
    }

    #[test]
    fn gate_drops_deltas_until_a_keyframe_and_asks_rate_limited() {
        let t0 = Instant::now();
        let mut g = SourceGate::new(500 * MS);
        assert_eq!(g.frame(false, t0), Verdict::Drop { ask: true });
        assert_eq!(g.frame(false, t0 + 33 * MS), Verdict::Drop { ask: false });
        assert_eq!(g.frame(false, t0 + 533 * MS), Verdict::Drop { ask: true });
        assert_eq!(g.frame(true, t0 + 566 * MS), Verdict::Decode);
        assert_eq!(g.frame(false, t0 + 600 * MS), Verdict::Decode);
    }

    #[test]
    fn a_keyframe_first_needs_no_request_and_loss_closes_the_gate() {
        let t0 = Instant::now();
        let mut g = SourceGate::new(500 * MS);
        assert_eq!(g.frame(true, t0), Verdict::Decode);
        assert!(g.lost(t0 + 10 * MS));
        assert_eq!(g.frame(false, t0 + 20 * MS), Verdict::Drop { ask: false });
        assert_eq!(g.frame(true, t0 + 40 * MS), Verdict::Decode);
    }
}

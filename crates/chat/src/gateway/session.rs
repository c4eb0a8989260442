//! A gateway session: the per-session sequence and the bounded replay buffer that RESUME draws on.
//! It outlives its socket for the resume window. Sans-IO: the hub owns and locks it.

use super::protocol::Event;
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Debug)]
pub struct Session {
    seq: u64,
    /// The highest sequence that left the buffer (sequences may skip numbers: in a cluster they are
    /// the events' positions in the shared stream).
    dropped: u64,
    /// The last dispatches, oldest first, as shared events (the frame is built when sent).
    replay: VecDeque<(u64, Arc<Event>)>,
    cap: usize,
}

/// Why a RESUME cannot be honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// The client claims a sequence the session never sent.
    FromTheFuture,
    /// Dispatches after the client's sequence have left the buffer.
    TooLate,
}

impl Session {
    pub fn new(cap: usize) -> Session {
        Session { seq: 0, dropped: 0, replay: VecDeque::new(), cap: cap.max(1) }
    }

    /// A session taken over from another node: the client has everything up to `acked`, and
    /// `missed` (in order) is what it has not.
    pub fn adopted(cap: usize, acked: u64, missed: Vec<(u64, Arc<Event>)>) -> Session {
        let mut s = Session { seq: acked, dropped: acked, replay: VecDeque::new(), cap: cap.max(1) };
        for (seq, ev) in missed {
            s.push_at(seq, ev);
        }
        s
    }

    /// Numbers the event for this session and keeps it for replay; returns its sequence.
    pub fn push(&mut self, ev: Arc<Event>) -> u64 {
        self.push_at(self.seq + 1, ev)
    }

    /// Keeps the event under sequence `seq` (never below the last one).
    pub fn push_at(&mut self, seq: u64, ev: Arc<Event>) -> u64 {
        self.seq = seq.max(self.seq);
        if self.replay.len() == self.cap
            && let Some((gone, _)) = self.replay.pop_front()
        {
            self.dropped = gone;
        }
        self.replay.push_back((self.seq, ev));
        self.seq
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Every dispatch after `seq`, in order, each exactly once.
    pub fn replay_after(&self, seq: u64) -> Result<Vec<(u64, Arc<Event>)>, ReplayError> {
        if seq > self.seq {
            return Err(ReplayError::FromTheFuture);
        }
        if seq < self.dropped {
            return Err(ReplayError::TooLate);
        }
        Ok(self.replay.iter().filter(|(s, _)| *s > seq).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u64) -> Arc<Event> {
        Event::new("TEST", &n)
    }

    #[test]
    fn replays_exactly_the_missed_dispatches() {
        let mut s = Session::new(10);
        for n in 1..=5 {
            assert_eq!(s.push(ev(n)), n);
        }
        let got: Vec<u64> = s.replay_after(2).unwrap().iter().map(|(q, _)| *q).collect();
        assert_eq!(got, vec![3, 4, 5]);
        assert!(s.replay_after(5).unwrap().is_empty());
        assert_eq!(s.replay_after(6).unwrap_err(), ReplayError::FromTheFuture);
    }

    #[test]
    fn bounded_buffer_refuses_too_old() {
        let mut s = Session::new(3);
        for n in 1..=10 {
            s.push(ev(n));
        }
        assert_eq!(s.replay_after(6).unwrap_err(), ReplayError::TooLate);
        assert_eq!(s.replay_after(7).unwrap().len(), 3);
        assert_eq!(s.replay_after(0).unwrap_err(), ReplayError::TooLate);
        assert_eq!(Session::new(3).replay_after(0).unwrap().len(), 0);
    }

    #[test]
    fn positions_skip_numbers_and_adopted_sessions_replay_what_was_missed() {
        let mut s = Session::new(2);
        s.push_at(10, ev(1));
        s.push_at(40, ev(2));
        assert_eq!(s.replay_after(12).unwrap().len(), 1, "a gap is not a loss");
        s.push_at(41, ev(3));
        assert_eq!(s.replay_after(10).unwrap().len(), 2, "10 itself left; the client had it");
        assert_eq!(s.replay_after(9).unwrap_err(), ReplayError::TooLate);
        let a = Session::adopted(5, 100, vec![(104, ev(4)), (107, ev(5))]);
        assert_eq!(a.seq(), 107);
        assert_eq!(a.replay_after(100).unwrap().len(), 2);
        assert_eq!(a.replay_after(99).unwrap_err(), ReplayError::TooLate);
    }
}

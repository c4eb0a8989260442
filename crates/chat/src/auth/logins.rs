//! Which logins (session tokens, by hash) have live connections, when each expires, and which
//! were revoked lately. Sans-IO: the caller passes the time.
//!
//! Gateway and voice connections are authenticated once, when they identify; a login that is
//! revoked (logout, password change) or expires afterwards must still end them. The hub and the
//! voice gateway end their own connections; this watch tells when, and closes the race of a
//! connection that identified just as its login was revoked (it checks [`LoginWatch::is_revoked`]
//! after registering).

use crate::id::Id;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a revoked login is remembered: longer than any identify takes.
const REMEMBER_REVOKED: Duration = Duration::from_secs(120);

#[derive(Debug, Default)]
pub struct LoginWatch {
    /// Watched logins: their user and expiry (Unix ms).
    watched: HashMap<String, (Id, i64)>,
    expiries: BinaryHeap<Reverse<(i64, String)>>,
    revoked: HashMap<String, Instant>,
    revoked_order: VecDeque<(Instant, String)>,
}

impl LoginWatch {
    /// Watches `login` (of `user`, expiring at `expires_at` Unix ms) from now on.
    pub fn watch(&mut self, login: &str, user: Id, expires_at: i64) {
        if self.watched.insert(login.to_string(), (user, expires_at)).is_none() {
            self.expiries.push(Reverse((expires_at, login.to_string())));
        }
    }

    /// Logins that expired by `now_ms`, with their users; they are forgotten.
    pub fn due(&mut self, now_ms: i64) -> Vec<(String, Id)> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _))) = self.expiries.peek()
            && *at <= now_ms
        {
            let Some(Reverse((_, login))) = self.expiries.pop() else { break };
            if let Some((user, _)) = self.watched.remove(&login) {
                out.push((login, user));
            }
        }
        out
    }

    /// Records that `login` was revoked at `now`; it is no longer watched.
    pub fn revoked(&mut self, login: &str, now: Instant) {
        self.watched.remove(login);
        self.revoked.insert(login.to_string(), now);
        self.revoked_order.push_back((now, login.to_string()));
        while let Some((at, _)) = self.revoked_order.front()
            && now.saturating_duration_since(*at) > REMEMBER_REVOKED
        {
            if let Some((at, old)) = self.revoked_order.pop_front()
                && self.revoked.get(&old) == Some(&at)
            {
                self.revoked.remove(&old);
            }
        }
    }

    /// Whether `login` was revoked in the last couple of minutes.
    pub fn is_revoked(&self, login: &str) -> bool {
        self.revoked.contains_key(login)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_order_and_revocation() {
        let mut w = LoginWatch::default();
        w.watch("b", Id(2), 200);
        w.watch("a", Id(1), 100);
        w.watch("a", Id(1), 100);
        assert!(w.due(99).is_empty());
        assert_eq!(w.due(150), vec![("a".to_string(), Id(1))]);
        let t0 = Instant::now();
        w.revoked("b", t0);
        assert!(w.due(1000).is_empty(), "a revoked login does not also expire");
        assert!(w.is_revoked("b") && !w.is_revoked("a"));
        w.revoked("c", t0 + Duration::from_secs(121));
        assert!(!w.is_revoked("b"), "forgotten after a while");
        assert!(w.is_revoked("c"));
    }
}

//! Bounded in-memory caches of what every request checks first: which user a bearer token is,
//! what a channel is, and who is a member of which guild. Each post otherwise made three store
//! round trips before its insert. Entries are dropped where the data changes (logout, password
//! change and expiry through [`crate::app::App::revoke_login`]; channel updates; a member leaving),
//! and channel and membership entries (with what the member may do) live at most [`FRESH`], which bounds what a read racing a
//! change (read before, cached after the invalidation) can leave behind. Logins live at most
//! [`LOGIN_FRESH`]: a login revoked while it was read is caught by the revocation list, and the
//! bound covers a revocation a cluster's bus lost.
//!
//! One process's view: nodes of a cluster invalidate each other through the broker.

use crate::id::Id;
use crate::perms::Access;
use crate::store::Channel;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries per cache; when full, the older half goes.
const CAPACITY: usize = 100_000;
/// Longest a channel or membership entry is trusted.
pub const FRESH: Duration = Duration::from_secs(10);
/// Longest a login is trusted without reading the store again: revocations reach every node at
/// once over the bus; this bounds what a lost one could leave behind.
pub const LOGIN_FRESH: Duration = Duration::from_secs(60);

/// A map that never holds more than its capacity.
#[derive(Debug)]
pub struct Bounded<K, V> {
    map: HashMap<K, (u64, Instant, V)>,
    capacity: usize,
    clock: u64,
}

impl<K: Hash + Eq, V: Clone> Bounded<K, V> {
    pub fn new(capacity: usize) -> Self {
        Bounded { map: HashMap::new(), capacity: capacity.max(2), clock: 0 }
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.map.get(key).map(|(_, _, v)| v.clone())
    }

    /// The value, if it was inserted less than `max_age` before `now`.
    pub fn get_fresh<Q: Hash + Eq + ?Sized>(&self, key: &Q, max_age: Duration, now: Instant) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.map.get(key).filter(|(_, at, _)| now.saturating_duration_since(*at) < max_age).map(|(_, _, v)| v.clone())
    }

    pub fn insert(&mut self, key: K, value: V) {
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            let mut stamps: Vec<u64> = self.map.values().map(|(s, _, _)| *s).collect();
            stamps.sort_unstable();
            let cut = stamps[stamps.len() / 2];
            self.map.retain(|_, (s, _, _)| *s > cut);
        }
        self.clock += 1;
        self.map.insert(key, (self.clock, Instant::now(), value));
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
    {
        self.map.remove(key);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The caches of one chat node.
#[derive(Debug)]
pub struct Caches {
    /// Token hash → (user, expires_at ms).
    logins: Mutex<Bounded<String, (Id, i64)>>,
    channels: Mutex<Bounded<Id, Channel>>,
    /// (guild, user) → what that member may do (absent: not known to be a member).
    members: Mutex<Bounded<(Id, Id), Access>>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            logins: Mutex::new(Bounded::new(CAPACITY)),
            channels: Mutex::new(Bounded::new(CAPACITY)),
            members: Mutex::new(Bounded::new(CAPACITY)),
        }
    }
}

impl Caches {
    /// The user and expiry of a login, if cached and not expired at `now_ms`.
    pub fn login(&self, token_hash: &str, now_ms: i64) -> Option<(Id, i64)> {
        lock(&self.logins).get_fresh(token_hash, LOGIN_FRESH, Instant::now()).filter(|(_, exp)| *exp > now_ms)
    }

    pub fn put_login(&self, token_hash: &str, user: Id, expires_at: i64) {
        lock(&self.logins).insert(token_hash.to_string(), (user, expires_at));
    }

    pub fn forget_login(&self, token_hash: &str) {
        lock(&self.logins).remove(token_hash);
    }

    pub fn channel(&self, id: Id) -> Option<Channel> {
        lock(&self.channels).get_fresh(&id, FRESH, Instant::now())
    }

    pub fn put_channel(&self, c: &Channel) {
        lock(&self.channels).insert(c.id, c.clone());
    }

    pub fn forget_channel(&self, id: Id) {
        lock(&self.channels).remove(&id);
    }

    pub fn access(&self, guild: Id, user: Id) -> Option<Access> {
        lock(&self.members).get_fresh(&(guild, user), FRESH, Instant::now())
    }

    pub fn put_access(&self, guild: Id, user: Id, access: Access) {
        lock(&self.members).insert((guild, user), access);
    }

    /// Call when `user` leaves (or is removed from) `guild`, or their roles or time-out change.
    pub fn forget_member(&self, guild: Id, user: Id) {
        lock(&self.members).remove(&(guild, user));
    }

    /// Call when what a role grants changes: every member of `guild` is read again.
    pub fn forget_guild(&self, guild: Id) {
        lock(&self.members).map.retain(|(g, _), _| *g != guild);
    }

    /// Forgets everything (a cluster lost notices: any entry may be stale).
    pub fn clear(&self) {
        lock(&self.logins).map.clear();
        lock(&self.channels).map.clear();
        lock(&self.members).map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_the_newer_half() {
        let mut b = Bounded::new(4);
        for i in 0..4 {
            b.insert(i, i);
        }
        b.insert(4, 4);
        assert!(b.len() <= 4);
        assert_eq!(b.get(&4), Some(4), "the newest stays");
        assert_eq!(b.get(&0), None, "the oldest went");
        b.insert(4, 40);
        assert_eq!(b.get(&4), Some(40));
        b.remove(&4);
        assert_eq!(b.get(&4), None);
        b.insert(5, 5);
        let now = Instant::now();
        assert_eq!(b.get_fresh(&5, Duration::from_secs(1), now), Some(5));
        assert_eq!(b.get_fresh(&5, Duration::from_secs(1), now + Duration::from_secs(1)), None, "stale");
    }

    #[test]
    fn logins_expire_and_are_forgotten() {
        let c = Caches::default();
        c.put_login("h", Id(1), 100);
        assert_eq!(c.login("h", 99), Some((Id(1), 100)));
        assert_eq!(c.login("h", 100), None, "expired");
        c.forget_login("h");
        assert_eq!(c.login("h", 0), None);
        let a = Access { owner: false, permissions: crate::perms::Permissions::NONE, rank: 0, timeout_until: None };
        c.put_access(Id(5), Id(1), a);
        c.put_access(Id(6), Id(1), a);
        assert!(c.access(Id(5), Id(1)) == Some(a) && c.access(Id(5), Id(2)).is_none());
        c.forget_member(Id(5), Id(1));
        assert!(c.access(Id(5), Id(1)).is_none());
        c.forget_guild(Id(6));
        assert!(c.access(Id(6), Id(1)).is_none());
    }
}

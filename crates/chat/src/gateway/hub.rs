//! The local fan-out: live sessions, their topic subscriptions and presence.
//!
//! A published event is numbered by every subscribed session and kept in its replay buffer, then
//! offered to the session's socket through a bounded queue. A socket that cannot keep up is cut
//! off (its session stays resumable); one that went away leaves its session detached until the
//! resume window ends. Lock order: `topics` before a session's own lock; never the reverse.
//!
//! In a cluster sessions are numbered by stream position, and [`takeover`] holds what moving a
//! session between nodes needs: snapshots, adoption, and its end on the node it left.

use super::protocol::{CloseCode, Event, Status};
use super::session::Session;
use crate::id::Id;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

mod takeover;

/// What an event is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every member of the guild.
    Guild(Id),
    /// Every session of one user.
    User(Id),
    /// Presence changes in the guild: every session for small guilds, only those that asked for
    /// the member list (op 8) for large ones.
    Presence(Id),
}

/// A numbered dispatch on its way to a socket.
pub type Delivery = (u64, Arc<Event>);

/// The hub's handle on a socket: its queue and a slot for the reason it was cut off.
#[derive(Debug)]
pub struct Link {
    pub conn: u64,
    pub tx: mpsc::Sender<Delivery>,
    pub kick: Arc<AtomicU16>,
}

impl Link {
    fn cut(self, why: CloseCode) {
        self.kick.store(why.code(), Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Cell {
    id: String,
    user: Id,
    state: Mutex<CellState>,
}

#[derive(Debug)]
struct CellState {
    /// The login (hash of the bearer token) the session was identified or last resumed with;
    /// revoking it ends the session.
    login: String,
    session: Session,
    link: Option<Link>,
    detached_at: Option<Instant>,
    topics: HashSet<Topic>,
}

#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    pub replay: usize,
    pub resume_window: Duration,
    /// Sequence numbers are positions in a cluster's shared stream ([`Hub::at`]), the same for an
    /// event on every node, instead of per-session counters.
    pub positions: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    /// Unknown or expired session, another user's, or dispatches it needs are gone.
    Invalid,
}

/// A user whose last session ended, and the guilds to tell.
#[derive(Debug, PartialEq, Eq)]
pub struct WentOffline {
    pub user: Id,
    pub guilds: Vec<Id>,
}

#[derive(Debug)]
pub struct Hub {
    cfg: HubConfig,
    sessions: Mutex<HashMap<String, Arc<Cell>>>,
    /// Sessions in the order they lost their socket, so expiry never scans live ones.
    detached: Mutex<VecDeque<(Instant, Arc<Cell>)>>,
    topics: RwLock<HashMap<Topic, Vec<Arc<Cell>>>>,
    presence: Mutex<HashMap<Id, Presence>>,
    /// Users whose last socket went since the last [`Hub::take_offline`]: offline at once, even
    /// while their sessions wait (resumable) for a new socket.
    went_offline: Mutex<Vec<WentOffline>>,
    /// The stream position of the last message handled ([`Hub::at`]). Lock order: `position`
    /// before `topics`.
    position: Mutex<u64>,
    positions: std::sync::atomic::AtomicBool,
}

/// A user's sessions: alive (attached or resumable), attached to a socket, and chosen status.
/// Online while any is attached.
#[derive(Debug)]
struct Presence {
    sessions: u32,
    attached: u32,
    status: Status,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    pub fn new(cfg: HubConfig) -> Hub {
        Hub {
            sessions: Mutex::default(),
            detached: Mutex::default(),
            topics: RwLock::default(),
            presence: Mutex::default(),
            went_offline: Mutex::default(),
            positions: std::sync::atomic::AtomicBool::new(cfg.positions),
            position: Mutex::new(0),
            cfg,
        }
    }

    /// See [`HubConfig::positions`]; set before any session exists.
    pub fn number_by_position(&self, yes: bool) {
        self.positions.store(yes, Ordering::Relaxed);
    }

    /// Handles the stream message at `pos` (`f` delivers it), then records the position: whatever
    /// reads the position sees every message up to it fully handled.
    pub fn at(&self, pos: u64, f: impl FnOnce()) {
        let mut p = lock(&self.position);
        f();
        *p = pos.max(*p);
    }

    /// The stream position handled last.
    pub fn position(&self) -> u64 {
        *lock(&self.position)
    }

    /// The sequence a dispatch made here gets: the current position in a cluster, else the next
    /// number of each session (`None`).
    fn seq_here(&self, pos: Option<&u64>) -> Option<u64> {
        self.positions.load(Ordering::Relaxed).then(|| pos.copied().unwrap_or_else(|| self.position()))
    }

    /// Numbers `ev` with its stream position `pos` for every session subscribed to `topic` (cluster).
    pub fn deliver_at(&self, topic: Topic, ev: &Arc<Event>, pos: u64, now: Instant) {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        for cell in topics.get(&topic).into_iter().flatten() {
            if push(&mut lock(&cell.state), Some(pos), ev, now) {
                self.cut_off(cell, now);
            }
        }
    }

    /// Numbers `ev` for every session subscribed to `topic` and queues it to their sockets.
    pub fn deliver(&self, topic: Topic, ev: &Arc<Event>, now: Instant) {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        for cell in topics.get(&topic).into_iter().flatten() {
            if push(&mut lock(&cell.state), None, ev, now) {
                self.cut_off(cell, now);
            }
        }
    }

    /// A session lost its socket (closed, or cut for falling behind): its resume window starts,
    /// and its user is offline if that was their last socket.
    fn cut_off(&self, cell: &Arc<Cell>, now: Instant) {
        lock(&self.detached).push_back((now, cell.clone()));
        let mut p = lock(&self.presence);
        let Some(e) = p.get_mut(&cell.user) else { return };
        e.attached = e.attached.saturating_sub(1);
        if e.attached == 0 {
            drop(p);
            let guilds = guilds_of(&lock(&cell.state).topics);
            lock(&self.went_offline).push(WentOffline { user: cell.user, guilds });
        }
    }

    /// Users who went offline since the last call (their last socket went), to tell their guilds.
    pub fn take_offline(&self) -> Vec<WentOffline> {
        std::mem::take(&mut *lock(&self.went_offline))
    }

    /// Starts session `id`: READY is its first dispatch, then it joins `topics`. Returns whether the
    /// user just came online.
    #[allow(clippy::too_many_arguments)]
    pub fn create_session(
        &self,
        id: &str,
        user: Id,
        login: &str,
        topics: Vec<Topic>,
        link: Link,
        ready: &Arc<Event>,
        now: Instant,
    ) -> bool {
        let id = id.to_string();
        // Held to the end: no stream message is handled between READY's number and the topics.
        let pos = lock(&self.position);
        let mut state = CellState {
            login: login.to_string(),
            session: Session::new(self.cfg.replay),
            link: Some(link),
            detached_at: None,
            topics: HashSet::new(),
        };
        let _ = push(&mut state, self.seq_here(Some(&pos)), ready, now);
        let cell = Arc::new(Cell { id: id.clone(), user, state: Mutex::new(state) });
        lock(&self.sessions).insert(id, cell.clone());
        for t in topics {
            self.subscribe(&cell, t);
        }
        let mut p = lock(&self.presence);
        let e = p.entry(user).or_insert(Presence { sessions: 0, attached: 0, status: Status::Online });
        e.sessions += 1;
        e.attached += 1;
        e.attached == 1
    }

    /// Reattaches a session to a new socket, authenticated by `login` from now on. Returns the
    /// missed dispatches followed by `resumed`, and whether the user came back online (their
    /// status, to tell their guilds).
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        &self,
        session_id: &str,
        user: Id,
        login: &str,
        seq: u64,
        link: Link,
        resumed: &Arc<Event>,
    ) -> Result<(Vec<Delivery>, Option<Status>), ResumeError> {
        let cell = lock(&self.sessions).get(session_id).cloned().ok_or(ResumeError::Invalid)?;
        if cell.user != user {
            return Err(ResumeError::Invalid);
        }
        let pos = lock(&self.position);
        let mut st = lock(&cell.state);
        let mut out = st.session.replay_after(seq).map_err(|_| ResumeError::Invalid)?;
        let n = match self.seq_here(Some(&pos)) {
            Some(p) => st.session.push_at(p, resumed.clone()),
            None => st.session.push(resumed.clone()),
        };
        drop(pos);
        out.push((n, resumed.clone()));
        let was_attached = match st.link.replace(link) {
            Some(old) => {
                old.cut(CloseCode::SessionReplaced);
                true
            }
            None => false,
        };
        st.detached_at = None;
        st.login = login.to_string();
        drop(st);
        let mut back = None;
        if !was_attached && let Some(e) = lock(&self.presence).get_mut(&user) {
            e.attached += 1;
            back = (e.attached == 1).then_some(e.status);
        }
        Ok((out, back))
    }

    /// The socket `conn` of this session is gone; the resume window starts.
    pub fn detach(&self, session_id: &str, conn: u64, now: Instant) {
        let Some(cell) = lock(&self.sessions).get(session_id).cloned() else {
            return;
        };
        let mut st = lock(&cell.state);
        if st.link.as_ref().is_some_and(|l| l.conn == conn) {
            st.link = None;
            st.detached_at = Some(now);
            drop(st);
            self.cut_off(&cell, now);
        }
    }

    /// Ends sessions detached for longer than the resume window (their users went offline when
    /// their sockets did: see [`Hub::take_offline`]).
    pub fn expire(&self, now: Instant) {
        let due: Vec<(Instant, Arc<Cell>)> = {
            let mut q = lock(&self.detached);
            let n = q.iter().take_while(|(t, _)| now.saturating_duration_since(*t) >= self.cfg.resume_window).count();
            q.drain(..n).collect()
        };
        // A session resumed (or detached again later) since it was queued is not due.
        let expired: Vec<Arc<Cell>> = {
            let mut sessions = lock(&self.sessions);
            due.into_iter()
                .filter(|(t, c)| lock(&c.state).detached_at == Some(*t))
                .filter_map(|(_, c)| sessions.remove(&c.id))
                .collect()
        };
        for cell in expired {
            self.end(&cell, false);
        }
    }

    /// Ends every session identified with `login` (its token was revoked or expired): their sockets
    /// are cut with 4004 and none of them can be resumed. Returns the users who went offline.
    pub fn revoke(&self, login: &str) -> Vec<WentOffline> {
        let revoked: Vec<Arc<Cell>> = {
            let mut sessions = lock(&self.sessions);
            let ids: Vec<String> =
                sessions.values().filter(|c| lock(&c.state).login == login).map(|c| c.id.clone()).collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        revoked
            .into_iter()
            .filter_map(|cell| {
                let link = lock(&cell.state).link.take();
                let attached = link.is_some();
                if let Some(link) = link {
                    link.cut(CloseCode::AuthenticationFailed);
                }
                self.end(&cell, attached)
            })
            .collect()
    }

    /// Ends every session here, closing their sockets with `code`: what they were sent has a hole
    /// (a cluster lost dispatches), so their clients must identify afresh. Who went offline.
    pub fn end_all(&self, code: CloseCode) -> Vec<WentOffline> {
        let all: Vec<Arc<Cell>> = lock(&self.sessions).drain().map(|(_, c)| c).collect();
        all.into_iter()
            .filter_map(|cell| {
                let link = lock(&cell.state).link.take();
                let attached = link.is_some();
                if let Some(link) = link {
                    link.cut(code);
                }
                self.end(&cell, attached)
            })
            .collect()
    }

    /// Unsubscribes a session already removed from `sessions` and counts it out of presence;
    /// `attached`: it still had a socket (which the caller cut). The user, if that made them
    /// offline.
    fn end(&self, cell: &Arc<Cell>, attached: bool) -> Option<WentOffline> {
        let topics: Vec<Topic> = lock(&cell.state).topics.drain().collect();
        {
            let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
            for t in &topics {
                if let Some(v) = map.get_mut(t) {
                    v.retain(|c| !Arc::ptr_eq(c, cell));
                    if v.is_empty() {
                        map.remove(t);
                    }
                }
            }
        }
        let mut p = lock(&self.presence);
        let e = p.get_mut(&cell.user)?;
        e.sessions = e.sessions.saturating_sub(1);
        let offline = attached && {
            e.attached = e.attached.saturating_sub(1);
            e.attached == 0
        };
        if e.sessions == 0 {
            p.remove(&cell.user);
        }
        offline.then(|| WentOffline { user: cell.user, guilds: guilds_of(&topics.into_iter().collect()) })
    }

    /// Subscribes every session of `user` to `topic` (e.g. after joining a guild), with `first` (if
    /// any) as the first dispatch each of them sees from it: no event of the topic can slip in
    /// before it.
    /// `seq`: the notice's stream position in a cluster.
    pub fn join_topic(&self, user: Id, topic: Topic, first: Option<&Arc<Event>>, seq: Option<u64>, now: Instant) {
        let cells: Vec<Arc<Cell>> = lock(&self.sessions).values().filter(|c| c.user == user).cloned().collect();
        let mut cut = Vec::new();
        let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
        for c in cells {
            let mut st = lock(&c.state);
            if st.topics.insert(topic) {
                map.entry(topic).or_default().push(c.clone());
                if let Some(first) = first
                    && push(&mut st, seq, first, now)
                {
                    cut.push(c.clone());
                }
            }
        }
        drop(map);
        for c in cut {
            self.cut_off(&c, now);
        }
    }

    /// Unsubscribes every session of `user` from `topic` (e.g. after leaving a guild).
    pub fn leave_topic(&self, user: Id, topic: Topic) {
        let cells: Vec<Arc<Cell>> = lock(&self.sessions).values().filter(|c| c.user == user).cloned().collect();
        let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
        for c in cells {
            if lock(&c.state).topics.remove(&topic)
                && let Some(v) = map.get_mut(&topic)
            {
                v.retain(|x| !Arc::ptr_eq(x, &c));
                if v.is_empty() {
                    map.remove(&topic);
                }
            }
        }
    }

    /// Numbers `ev` for one session (of `user`) and queues it to its socket; `false` when there is
    /// no such session.
    pub fn deliver_to(&self, session_id: &str, user: Id, ev: &Arc<Event>, now: Instant) -> bool {
        let Some(cell) = lock(&self.sessions).get(session_id).cloned().filter(|c| c.user == user) else {
            return false;
        };
        let seq = self.seq_here(None);
        if push(&mut lock(&cell.state), seq, ev, now) {
            self.cut_off(&cell, now);
        }
        true
    }

    /// Subscribes one session to `topic`, if it is subscribed to `only_if` (its guild, say);
    /// `false` when it is not.
    pub fn subscribe_session(&self, session_id: &str, only_if: Topic, topic: Topic) -> bool {
        let Some(cell) = lock(&self.sessions).get(session_id).cloned() else { return false };
        if !lock(&cell.state).topics.contains(&only_if) {
            return false;
        }
        self.subscribe(&cell, topic);
        true
    }

    fn subscribe(&self, cell: &Arc<Cell>, topic: Topic) {
        let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
        if lock(&cell.state).topics.insert(topic) {
            map.entry(topic).or_default().push(cell.clone());
        }
    }

    /// Sets a user's status; `true` when it changed.
    pub fn set_status(&self, user: Id, status: Status) -> bool {
        let mut p = lock(&self.presence);
        match p.get_mut(&user) {
            Some(e) if e.status != status => {
                e.status = status;
                true
            }
            _ => false,
        }
    }

    /// A user's status: offline unless some session of theirs has a socket.
    pub fn status(&self, user: Id) -> Status {
        lock(&self.presence).get(&user).filter(|e| e.attached > 0).map_or(Status::Offline, |e| e.status)
    }

    /// Users with a socket here, and their statuses.
    pub fn online_users(&self) -> Vec<(Id, Status)> {
        lock(&self.presence).iter().filter(|(_, e)| e.attached > 0).map(|(u, e)| (*u, e.status)).collect()
    }

    /// Sessions alive (attached or within the resume window).
    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }
}

/// The guilds among a session's topics.
fn guilds_of(topics: &HashSet<Topic>) -> Vec<Id> {
    let mut guilds: Vec<Id> =
        topics.iter().filter_map(|t| if let Topic::Guild(g) = t { Some(*g) } else { None }).collect();
    guilds.sort();
    guilds
}

/// Numbers (`seq`, else the session's next number) and queues `ev` for one session; `true` if
/// that cut the session off its socket.
fn push(st: &mut CellState, seq: Option<u64>, ev: &Arc<Event>, now: Instant) -> bool {
    let seq = match seq {
        Some(s) => st.session.push_at(s, ev.clone()),
        None => st.session.push(ev.clone()),
    };
    let Some(link) = &st.link else { return false };
    let Err(e) = link.tx.try_send((seq, ev.clone())) else { return false };
    // Full: the reader is too slow. Closed: the socket task ended. Either way the session waits
    // for a RESUME, which replays from the buffer.
    if let (Some(link), mpsc::error::TrySendError::Full(_)) = (st.link.take(), e) {
        link.cut(CloseCode::SlowConsumer);
    }
    st.detached_at = Some(now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Hub {
        Hub::new(HubConfig { replay: 100, resume_window: Duration::from_secs(10), positions: false })
    }

    fn link(conn: u64, cap: usize) -> (Link, mpsc::Receiver<Delivery>, Arc<AtomicU16>) {
        let (tx, rx) = mpsc::channel(cap);
        let kick = Arc::new(AtomicU16::new(0));
        (Link { conn, tx, kick: kick.clone() }, rx, kick)
    }

    fn ev(name: &'static str) -> Arc<Event> {
        Event::new(name, &())
    }

    #[test]
    fn delivers_to_subscribers_in_order_and_resumes() {
        let h = hub();
        let t0 = Instant::now();
        let (l, mut rx, _) = link(1, 16);
        let sid = "s1";
        let online =
            h.create_session(sid, Id(7), "login", vec![Topic::Guild(Id(1)), Topic::User(Id(7))], l, &ev("READY"), t0);
        assert!(online);
        assert_eq!(h.status(Id(7)), Status::Online);
        h.deliver(Topic::Guild(Id(1)), &ev("A"), t0);
        h.deliver(Topic::Guild(Id(2)), &ev("NOT_MINE"), t0);
        h.deliver(Topic::User(Id(7)), &ev("B"), t0);
        let got: Vec<(u64, &str)> = std::iter::from_fn(|| rx.try_recv().ok()).map(|(s, e)| (s, e.name)).collect();
        assert_eq!(got, vec![(1, "READY"), (2, "A"), (3, "B")]);

        h.detach(sid, 1, t0);
        h.deliver(Topic::Guild(Id(1)), &ev("C"), t0);
        h.deliver(Topic::Guild(Id(1)), &ev("D"), t0);
        let (l2, _rx2, _) = link(2, 16);
        assert_eq!(
            h.resume(sid, Id(8), "login", 3, l2, &ev("RESUMED")).unwrap_err(),
            ResumeError::Invalid,
            "other user"
        );
        let (l2, _rx2, _) = link(2, 16);
        let (replay, back) = h.resume(sid, Id(7), "login", 3, l2, &ev("RESUMED")).unwrap();
        let replay: Vec<(u64, &str)> = replay.iter().map(|(s, e)| (*s, e.name)).collect();
        assert_eq!(replay, vec![(4, "C"), (5, "D"), (6, "RESUMED")]);
        assert_eq!(back, Some(Status::Online), "offline while detached, online again");
        assert_eq!(h.take_offline(), vec![WentOffline { user: Id(7), guilds: vec![Id(1)] }]);
        h.expire(t0 + Duration::from_secs(60));
        assert_eq!(h.session_count(), 1, "attached sessions never expire");
    }

    #[test]
    fn slow_consumer_is_cut_and_session_expires_offline() {
        let h = hub();
        let t0 = Instant::now();
        let (l, _rx, kick) = link(1, 2);
        let sid = "s1";
        h.create_session(sid, Id(7), "login", vec![Topic::Guild(Id(1))], l, &ev("READY"), t0);
        for _ in 0..3 {
            h.deliver(Topic::Guild(Id(1)), &ev("X"), t0);
        }
        assert_eq!(kick.load(Ordering::Relaxed), CloseCode::SlowConsumer.code());
        // Offline at once, resumable for the window.
        assert_eq!(h.take_offline(), vec![WentOffline { user: Id(7), guilds: vec![Id(1)] }]);
        assert_eq!(h.status(Id(7)), Status::Offline);
        h.expire(t0 + Duration::from_secs(9));
        assert_eq!(h.session_count(), 1);
        h.expire(t0 + Duration::from_secs(10));
        assert!(h.take_offline().is_empty(), "told once");
        assert_eq!(h.session_count(), 0);
        let (l2, _rx2, _) = link(2, 16);
        assert!(h.resume(sid, Id(7), "login", 1, l2, &ev("RESUMED")).is_err());
    }

    #[test]
    fn resumed_sessions_do_not_expire_and_join_topic_leads_with_its_event() {
        let h = hub();
        let t0 = Instant::now();
        let (l, _rx, _) = link(1, 16);
        h.create_session("s", Id(7), "login", vec![], l, &ev("READY"), t0);
        h.detach("s", 1, t0);
        let (l2, mut rx2, _) = link(2, 16);
        h.resume("s", Id(7), "login", 1, l2, &ev("RESUMED")).unwrap();
        h.expire(t0 + Duration::from_secs(60));
        assert_eq!(h.session_count(), 1, "the queued detach is stale");

        h.join_topic(Id(7), Topic::Guild(Id(9)), Some(&ev("GUILD_CREATE")), None, t0);
        h.join_topic(Id(7), Topic::Guild(Id(9)), Some(&ev("AGAIN")), None, t0);
        h.deliver(Topic::Guild(Id(9)), &ev("MSG"), t0);
        let got: Vec<&str> = std::iter::from_fn(|| rx2.try_recv().ok()).map(|(_, e)| e.name).collect();
        assert_eq!(got, vec!["GUILD_CREATE", "MSG"], "joining twice sends nothing twice");

        // One session alone: a direct dispatch, and a topic only for sessions of the guild.
        assert!(h.deliver_to("s", Id(7), &ev("CHUNK"), t0));
        assert!(!h.deliver_to("s", Id(8), &ev("CHUNK"), t0), "another user's session");
        assert!(!h.subscribe_session("s", Topic::Guild(Id(5)), Topic::Presence(Id(5))), "not in guild 5");
        assert!(h.subscribe_session("s", Topic::Guild(Id(9)), Topic::Presence(Id(9))));
        h.deliver(Topic::Presence(Id(9)), &ev("PRESENCE"), t0);
        let got: Vec<&str> = std::iter::from_fn(|| rx2.try_recv().ok()).map(|(_, e)| e.name).collect();
        assert_eq!(got, vec!["CHUNK", "PRESENCE"]);
    }

    #[test]
    fn presence_counts_sessions() {
        let h = hub();
        let t0 = Instant::now();
        let (l1, _r1, _) = link(1, 4);
        let (l2, _r2, _) = link(2, 4);
        let first = h.create_session("a", Id(7), "l1", vec![], l1, &ev("READY"), t0);
        let second = h.create_session("b", Id(7), "l2", vec![], l2, &ev("READY"), t0);
        assert!(first && !second);
        assert!(h.set_status(Id(7), Status::Idle));
        assert!(!h.set_status(Id(7), Status::Idle));
        h.detach("a", 1, t0);
        assert!(h.take_offline().is_empty(), "one socket left");
        assert_eq!(h.status(Id(7)), Status::Idle);
        h.detach("b", 2, t0);
        assert_eq!(h.take_offline().len(), 1, "the last socket gone: offline at once");
        assert_eq!(h.status(Id(7)), Status::Offline);
        // Back within the window: the chosen status again.
        let (l3, _r3, _) = link(3, 4);
        assert_eq!(h.resume("b", Id(7), "l2", 1, l3, &ev("RESUMED")).unwrap().1, Some(Status::Idle));
        assert_eq!(h.status(Id(7)), Status::Idle);
        h.expire(t0 + Duration::from_secs(11));
        assert_eq!(h.session_count(), 1, "the detached one expired");
        assert!(h.take_offline().is_empty());
    }

    #[test]
    fn revoking_a_login_cuts_its_sessions_for_good() {
        let h = hub();
        let t0 = Instant::now();
        let (l1, mut r1, k1) = link(1, 4);
        let (l2, _r2, k2) = link(2, 4);
        let (l3, _r3, _) = link(3, 4);
        h.create_session("a", Id(7), "phone", vec![Topic::Guild(Id(1))], l1, &ev("READY"), t0);
        h.create_session("b", Id(7), "laptop", vec![Topic::Guild(Id(1))], l2, &ev("READY"), t0);
        h.create_session("c", Id(8), "other", vec![Topic::Guild(Id(1))], l3, &ev("READY"), t0);
        assert!(h.revoke("phone").is_empty(), "the laptop keeps user 7 online");
        assert_eq!(k1.load(Ordering::Relaxed), CloseCode::AuthenticationFailed.code());
        assert_eq!(k2.load(Ordering::Relaxed), 0);
        while r1.try_recv().is_ok() {}
        h.deliver(Topic::Guild(Id(1)), &ev("MSG"), t0);
        assert!(r1.try_recv().is_err(), "a revoked session gets nothing more");
        let (l4, _r4, _) = link(4, 4);
        assert!(h.resume("a", Id(7), "login", 1, l4, &ev("RESUMED")).is_err(), "nor can it be resumed");
        assert_eq!(h.revoke("laptop"), vec![WentOffline { user: Id(7), guilds: vec![Id(1)] }]);
        assert_eq!(h.status(Id(7)), Status::Offline);
        assert_eq!(h.session_count(), 1);
    }
}

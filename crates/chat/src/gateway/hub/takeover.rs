//! The hub's side of moving a session between the nodes of a cluster (see
//! [`crate::gateway::journal`]): snapshots to rebuild a session elsewhere, adopting one rebuilt
//! here under the position lock, and ending the copy a node had when another took it over.

use super::{Cell, CellState, Delivery, Hub, Link, Presence, Topic, WentOffline, lock};
use crate::gateway::journal::Snapshot;
use crate::gateway::protocol::{CloseCode, Event, Status};
use crate::gateway::session::Session;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

impl Hub {
    /// Every session here, as another node would take it over (see [`super::journal`]): at the
    /// current position, or at the session's last sequence when nothing reached it since (a
    /// client is never ahead of its session).
    pub fn snapshots(&self) -> Vec<Snapshot> {
        let pos = lock(&self.position);
        let cells: Vec<Arc<Cell>> = lock(&self.sessions).values().cloned().collect();
        cells.iter().map(|c| snapshot_of(c, *pos)).collect()
    }

    /// One session's snapshot.
    pub fn snapshot(&self, session_id: &str) -> Option<Snapshot> {
        let pos = lock(&self.position);
        let cell = lock(&self.sessions).get(session_id).cloned()?;
        Some(snapshot_of(&cell, *pos))
    }

    /// Runs `f` with the stream position handled last, holding it: no stream message is handled
    /// meanwhile.
    pub fn locked<R>(&self, f: impl FnOnce(u64) -> R) -> R {
        let pos = lock(&self.position);
        f(*pos)
    }

    /// Takes over a session another node had: the client has everything up to `acked`, `missed`
    /// is what came after, rebuilt from the stream up to position `at`, which must be the hub's
    /// position: call it inside [`Hub::locked`]. The deliveries, and whether the user came online.
    pub fn adopt(
        &self,
        snap: &Snapshot,
        acked: u64,
        missed: Vec<(u64, Arc<Event>)>,
        link: Link,
        resumed: &Arc<Event>,
        at: u64,
    ) -> (Vec<Delivery>, bool) {
        let mut session = Session::adopted(self.cfg.replay, acked, missed);
        let mut out = session.replay_after(acked).unwrap_or_default();
        // RESUMED always goes, even to a client that had everything (then it shares `at` with the
        // last dispatch the client saw), as with a resume on the session's own node.
        let n = session.push_at(at, resumed.clone());
        out.push((n, resumed.clone()));
        let state = CellState {
            login: snap.login.clone(),
            session,
            link: Some(link),
            detached_at: None,
            topics: HashSet::new(),
        };
        let cell = Arc::new(Cell { id: snap.id.clone(), user: snap.user, state: Mutex::new(state) });
        if let Some(old) = lock(&self.sessions).insert(snap.id.clone(), cell.clone()) {
            // Resumed here twice at once: the older cell goes.
            if let Some(l) = lock(&old.state).link.take() {
                l.cut(CloseCode::SessionReplaced);
            }
        }
        for t in &snap.topics {
            self.subscribe(&cell, *t);
        }
        let mut p = lock(&self.presence);
        let e = p.entry(snap.user).or_insert(Presence { sessions: 0, attached: 0, status: Status::Online });
        e.sessions += 1;
        e.attached += 1;
        (out, e.attached == 1)
    }

    /// A session resumed on another node ends here (its socket, if any, closes with 4011). The
    /// user, if that made them offline here.
    pub fn moved_away(&self, session_id: &str) -> Option<WentOffline> {
        let cell = lock(&self.sessions).remove(session_id)?;
        let link = lock(&cell.state).link.take();
        let attached = link.is_some();
        if let Some(l) = link {
            l.cut(CloseCode::SessionReplaced);
        }
        self.end(&cell, attached)
    }
}

fn snapshot_of(c: &Cell, pos: u64) -> Snapshot {
    let st = lock(&c.state);
    let mut topics: Vec<Topic> = st.topics.iter().copied().collect();
    topics.sort_by_key(|t| format!("{t:?}"));
    let at = pos.min(st.session.seq());
    Snapshot { id: c.id.clone(), user: c.user, login: st.login.clone(), topics, pos: at }
}

//! Publishing events. Routes and the gateway publish through [`Broker`]; the in-process broker hands
//! events straight to the local [`Hub`]. The cluster's broker (crate `cluster`, on NATS) publishes
//! to the bus, and every node's subscriber calls [`Hub::deliver`] and [`crate::app::App::apply`].

use super::hub::{Hub, Topic};
use super::protocol::{Event, Status};
use crate::app::{Ejection, Revoked};
use crate::id::Id;
use std::sync::Arc;
use std::time::Instant;

pub trait Broker: Send + Sync {
    /// Sends `event` to every session subscribed to `topic`, on every node.
    fn publish(&self, topic: Topic, event: Arc<Event>);

    /// Tells the other nodes of a change they must apply to their own state (see [`Notice`]); the
    /// caller has applied it here already. Nothing to do on one node.
    fn announce(&self, _notice: &Notice) {}

    /// Whether every node, the publisher included, handles published events and topic changes in
    /// one order (a cluster's stream): topic changes are then applied when read back, and
    /// sessions are numbered by stream position.
    fn ordered(&self) -> bool {
        false
    }

    /// Resolves once what was published so far is stored by the bus (a cluster's stream), or
    /// at once when the bus is away or slow (then it goes when the bus is back). A message is
    /// answered only after this, so a node killed right after its 201 has still sent it.
    fn barrier(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        Box::pin(async {})
    }
}

/// A change in one node's state that every node of a cluster must make to its own: sessions,
/// subscriptions, caches and presence are per node, the store is shared.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A login ended: its sessions end everywhere (chat and voice), its cache entries go.
    Revoked(Revoked),
    /// Voice sessions to end (kicks, bans, deleted channels).
    Ejected(Ejection),
    /// Every session of `user` joins `topic`, `first` (if any) being the first it sees of it.
    Join { user: Id, topic: Topic, first: Option<Arc<Event>> },
    /// Every session of `user` leaves `topic`.
    Leave { user: Id, topic: Topic },
    /// Cached data that changed.
    Forget(Forget),
    /// The sender's own view of a user's presence: `None` when no socket of theirs is left there.
    Presence { user: Id, status: Option<Status> },
    /// The session was resumed on the sender: it ends everywhere else.
    Moved { session: String },
    /// The sender dropped dispatches (its bus was away too long): every session, on every node,
    /// ends so its client identifies afresh and reads the state again, rather than miss them.
    Resync,
}

/// A cache entry (or all of a guild's) that is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forget {
    Channel(Id),
    Member(Id, Id),
    Guild(Id),
}

/// Single-node fan-out.
#[derive(Debug)]
pub struct LocalBroker {
    hub: Arc<Hub>,
}

impl LocalBroker {
    pub fn new(hub: Arc<Hub>) -> LocalBroker {
        LocalBroker { hub }
    }
}

impl Broker for LocalBroker {
    fn publish(&self, topic: Topic, event: Arc<Event>) {
        self.hub.deliver(topic, &event, Instant::now());
    }
}

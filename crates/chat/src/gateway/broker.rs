//! Publishing events. Routes and the gateway publish through [`Broker`]; the in-process broker hands
//! events straight to the local [`Hub`]. A NATS or Redis broker would publish to the bus and run a
//! subscriber that calls [`Hub::deliver`] on every node.

use super::hub::{Hub, Topic};
use super::protocol::Event;
use std::sync::Arc;
use std::time::Instant;

pub trait Broker: Send + Sync {
    fn publish(&self, topic: Topic, event: Arc<Event>);
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

//! Who is in the cluster (sans-IO): every node's last heartbeat, and which ones went silent. Driven
//! by explicit `Instant`s, as the rest of confab's state machines.

use crate::config::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a node says of itself in every heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub roles: Vec<Role>,
    /// Where clients reach its HTTP (API, gateways, HLS).
    pub http: String,
    /// Its media engine's advertised UDP address (`ip:port`), if it serves media.
    pub media: Option<String>,
    pub load: Load,
}

/// How busy a node is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Chat gateway sessions (attached or resumable).
    pub sessions: u64,
    /// Voice peers and rooms in the media engine.
    pub peers: u64,
    pub rooms: u64,
    /// Live streams being ingested.
    pub streams: u64,
    /// The process's CPU over the last period, in cores (1.0 = one core busy).
    pub cpu: f64,
}

#[derive(Debug)]
pub struct Membership {
    me: String,
    dead_after: Duration,
    nodes: BTreeMap<String, (NodeInfo, Instant)>,
}

/// What a heartbeat changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// A node not known before (or back after being declared dead).
    New,
    Known,
}

impl Membership {
    pub fn new(me: &str, dead_after: Duration) -> Membership {
        Membership { me: me.to_string(), dead_after, nodes: BTreeMap::new() }
    }

    /// A heartbeat from `info.id` (ours included) at `now`.
    pub fn heard(&mut self, info: NodeInfo, now: Instant) -> Heard {
        match self.nodes.insert(info.id.clone(), (info, now)) {
            None => Heard::New,
            Some(_) => Heard::Known,
        }
    }

    /// Nodes unheard for the deadline, removed and returned (never this node itself).
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let dead: Vec<String> = self
            .nodes
            .iter()
            .filter(|(id, (_, at))| **id != self.me && now.saturating_duration_since(*at) >= self.dead_after)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dead {
            self.nodes.remove(id);
        }
        dead
    }

    /// Live nodes, by id.
    pub fn live(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.values().map(|(n, _)| n)
    }

    /// The node that acts for the cluster when one must (telling guilds a dead node's users went
    /// offline): the smallest live id, this node if it has not heard itself yet.
    pub fn leader(&self) -> &str {
        self.nodes.keys().next().map_or(self.me.as_str(), |first| first.min(&self.me))
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == self.me
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> NodeInfo {
        NodeInfo { id: id.into(), roles: vec![Role::Api], http: String::new(), media: None, load: Load::default() }
    }

    #[test]
    fn silent_nodes_die_after_the_deadline_and_come_back_as_new() {
        let t0 = Instant::now();
        let mut m = Membership::new("b", Duration::from_secs(5));
        assert!(m.is_leader(), "alone");
        assert_eq!(m.heard(info("b"), t0), Heard::New);
        assert_eq!(m.heard(info("a"), t0), Heard::New);
        assert_eq!(m.heard(info("c"), t0), Heard::New);
        assert_eq!(m.leader(), "a");
        assert_eq!(m.heard(info("c"), t0 + Duration::from_secs(3)), Heard::Known);
        assert!(m.expire(t0 + Duration::from_millis(4999)).is_empty());
        assert_eq!(m.expire(t0 + Duration::from_secs(5)), vec!["a".to_string()], "b is never expired by itself");
        assert!(m.is_leader(), "a gone: b is the smallest");
        assert_eq!(m.live().count(), 2);
        assert_eq!(m.heard(info("a"), t0 + Duration::from_secs(6)), Heard::New);
        assert_eq!(m.expire(t0 + Duration::from_millis(7999)), Vec::<String>::new());
        assert_eq!(m.expire(t0 + Duration::from_secs(8)), vec!["c".to_string()], "heard last at 3 s");
        assert_eq!(m.expire(t0 + Duration::from_secs(11)), vec!["a".to_string()], "back at 6 s");
    }
}

//! Voice rooms placed on media nodes, as LiveKit's room → node map: the first join places a room on
//! the less loaded of two random live media nodes, with a lease in KV (`confab_rooms`, `r<room>` →
//! node) that the hosting node renews while the room has participants; every later join, through
//! whatever node, is sent to that node's `/voice`. A lease whose node is dead (unheard for the
//! deadline) is taken over on the next join, so a dead node's rooms move.

use crate::config::Role;
use crate::membership::NodeInfo;
use crate::node::Cluster;
use async_nats::jetstream::kv;
use bytes::Bytes;
use chat::id::Id;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BUCKET: &str = "confab_rooms";
/// A lease outlives its last renewal by this much.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often a node renews the leases of its rooms.
pub const RENEW: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Placement {
    kv: kv::Store,
    cluster: Cluster,
    /// Rooms this node placed within a lease, per node. Heartbeats count a room only once it has
    /// participants, so a burst of placements would otherwise all see the same loads.
    recent: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

fn key(room: Id) -> String {
    format!("r{}", room.0)
}

impl Placement {
    pub async fn open(js: &async_nats::jetstream::Context, cluster: Cluster) -> Result<Placement, crate::Error> {
        let kv = crate::worker::bucket(js, BUCKET, LEASE, 1).await?;
        Ok(Placement { kv, cluster, recent: Arc::default() })
    }

    /// Rooms placed here per node within the last lease.
    fn placed(&self) -> HashMap<String, u64> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        recent.retain(|_, times| {
            while times.front().is_some_and(|t| now.duration_since(*t) > LEASE) {
                times.pop_front();
            }
            !times.is_empty()
        });
        recent.iter().map(|(n, t)| (n.clone(), t.len() as u64)).collect()
    }

    /// The node serving `room`, placing it if it has no live node.
    pub async fn node_for(&self, room: Id) -> Result<NodeInfo, String> {
        let key = key(room);
        for _ in 0..5 {
            let live = self.cluster.nodes();
            let entry = self.kv.entry(&key).await.map_err(|e| e.to_string())?;
            let held = entry.as_ref().filter(|e| e.operation == kv::Operation::Put);
            if let Some(e) = held {
                let holder = String::from_utf8_lossy(&e.value).to_string();
                if let Some(n) = live.iter().find(|n| n.id == holder && n.roles.contains(&Role::Media)) {
                    return Ok(n.clone());
                }
            }
            let choice = pick(&live, rand::random(), &self.placed()).ok_or("no live media node")?;
            let value = Bytes::from(choice.id.clone());
            // Compare-and-set: two nodes placing at once agree on one of their choices.
            let won = match held {
                Some(e) => self.kv.update(&key, value, e.revision).await.is_ok(),
                None => self.kv.create(&key, value).await.is_ok(),
            };
            if won {
                let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
                recent.entry(choice.id.clone()).or_default().push_back(Instant::now());
                drop(recent);
                tracing::info!(room = %room, node = %choice.id, "voice room placed");
                return Ok(choice);
            }
        }
        Err("placing the room kept racing".into())
    }

    /// Renews the leases of the rooms this node hosts; a room whose lease another node holds is
    /// left to it (logged: its participants are split until they rejoin).
    pub async fn renew(&self, rooms: &[Id]) {
        let me = &self.cluster.node;
        for room in rooms {
            let key = key(*room);
            let res = match self.kv.entry(&key).await {
                Ok(Some(e)) if e.operation == kv::Operation::Put => {
                    if e.value.as_ref() == me.as_bytes() {
                        self.kv
                            .update(&key, Bytes::from(me.clone()), e.revision)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    } else {
                        tracing::warn!(room = %room, holder = %String::from_utf8_lossy(&e.value), "a room here is placed elsewhere");
                        Ok(())
                    }
                }
                Ok(_) => self.kv.create(&key, Bytes::from(me.clone())).await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = res {
                tracing::warn!(room = %room, error = %e, "renewing a room lease failed");
            }
        }
    }
}

/// The less loaded of two random live media nodes (`seed` picks them): rooms first (as its
/// heartbeat says, plus those `placed` on it since), then peers, then CPU. Two choices, not the
/// least loaded of all: loads are a heartbeat old, and every node placing at once on the same
/// "least loaded" node would pile rooms on it.
pub fn pick(live: &[NodeInfo], seed: u64, placed: &HashMap<String, u64>) -> Option<NodeInfo> {
    let media: Vec<&NodeInfo> = live.iter().filter(|n| n.roles.contains(&Role::Media)).collect();
    let n = media.len() as u64;
    if n == 0 {
        return None;
    }
    let a = media[(seed % n) as usize];
    let b = media[((seed / n) % n) as usize];
    let rooms = |x: &NodeInfo| x.load.rooms + placed.get(&x.id).copied().unwrap_or(0);
    let load = |x: &NodeInfo| (rooms(x), x.load.peers, (x.load.cpu * 100.0) as u64);
    Some(if load(b) < load(a) { b.clone() } else { a.clone() })
}

/// The voice gateway URL of `node` as seen from `me`: relative on this node.
pub fn voice_url(node: &NodeInfo, me: &str) -> String {
    if node.id == me {
        return "/voice".into();
    }
    let http = node.http.trim_end_matches('/');
    match http.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}/voice"),
        Some((_, rest)) => format!("ws://{rest}/voice"),
        None => format!("ws://{http}/voice"),
    }
}

#[async_trait::async_trait]
impl chat::voice::VoicePlacer for Placement {
    async fn endpoint(&self, room: Id) -> Result<String, String> {
        let node = self.node_for(room).await?;
        Ok(voice_url(&node, &self.cluster.node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::Load;

    fn node(id: &str, roles: &[Role], rooms: u64) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            roles: roles.to_vec(),
            http: format!("http://{id}:80"),
            media: None,
            load: Load { rooms, ..Load::default() },
        }
    }

    #[test]
    fn two_choices_among_media_nodes_and_their_urls() {
        let live = vec![node("api", &[Role::Api], 0), node("m1", &[Role::Media], 5), node("m2", &[Role::Media], 1)];
        let none = HashMap::new();
        assert_eq!(pick(&live[..1], 7, &none), None, "no media node");
        // Every seed lands on a media node, and on m2 whenever both were drawn.
        for seed in 0..16 {
            let p = pick(&live, seed, &none).unwrap();
            assert!(p.id.starts_with('m'));
        }
        assert_eq!(pick(&live, 1, &none).unwrap().id, "m2", "seed 1 draws m2 and m1: the lighter wins");
        assert_eq!(voice_url(&live[1], "m1"), "/voice");
        assert_eq!(voice_url(&live[1], "api"), "ws://m1:80/voice");
        let tls = NodeInfo { http: "https://v.example.com/".into(), ..live[2].clone() };
        assert_eq!(voice_url(&tls, "api"), "wss://v.example.com/voice");
    }

    #[test]
    fn placement_spreads_rooms_over_equal_nodes() {
        // A burst: heartbeats still say no rooms anywhere; what this node placed counts.
        let live = vec![node("m1", &[Role::Media], 0), node("m2", &[Role::Media], 0), node("m3", &[Role::Media], 0)];
        let mut placed = HashMap::new();
        for seed in 0..300u64 {
            let s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 7;
            *placed.entry(pick(&live, s, &placed).unwrap().id).or_insert(0) += 1;
        }
        let rooms: Vec<u64> = live.iter().map(|n| placed[&n.id]).collect();
        assert!(rooms.iter().all(|r| (90..=110).contains(r)), "{rooms:?}");
        // The same with the heartbeat's counts.
        let mut live = live;
        for seed in 0..300u64 {
            let s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 7;
            let chosen = pick(&live, s, &HashMap::new()).unwrap().id;
            live.iter_mut().find(|n| n.id == chosen).unwrap().load.rooms += 1;
        }
        assert!(live.iter().all(|n| (80..=120).contains(&n.load.rooms)));
    }
}

//! Many confab nodes as one service, on NATS (JetStream on) and one shared Postgres store. No bus or
//! consensus of our own: NATS carries dispatches, notices and heartbeats; its KV holds leases.
//!
//! - [`config`]: `[cluster]` (NATS URL, node id, roles, advertised address).
//! - [`wire`]: subjects and payloads.
//! - [`broker`]: chat's `Broker` on NATS, publishing in order from one queue.
//! - [`membership`]: sans-IO: nodes by heartbeat, dead after a silence, the leader.
//! - [`worker`]: snowflake worker ids leased in KV, so ids never collide across nodes.
//! - [`secrets`]: the signing secret all nodes share (made once, kept in KV).
//! - [`placement`]: voice rooms placed on media nodes (two random choices, leases in KV).
//! - [`journal`]: chat sessions resumable on any node: snapshots in KV, the stream read back.
//! - [`node`]: the tasks: the subscriber (events to the hub, notices to the chat plane, heartbeats
//!   and presence views), and the heartbeat (load out, dead nodes' presence cleared).

pub mod broker;
pub mod config;
pub mod journal;
pub mod membership;
pub mod node;
pub mod placement;
pub mod secrets;
pub mod wire;
pub mod worker;

pub use config::{ClusterConfig, Role};
pub use node::{Cluster, Connected};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("NATS: {0}")]
    Bus(String),
}

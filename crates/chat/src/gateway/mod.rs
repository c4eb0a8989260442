//! The chat gateway (`/gateway`): a Discord-style WebSocket for live events.
//!
//! - [`protocol`]: frames, ops, close codes, events.
//! - [`connection`]: the sans-IO per-socket machine (HELLO, heartbeat deadline, limits, parsing).
//! - [`session`]: the sans-IO per-session sequence and replay buffer behind RESUME.
//! - [`hub`]: live sessions, topic subscriptions, presence; local fan-out.
//! - [`journal`]: sans-IO rebuilding of a session from a cluster's stream, to resume it on another node.
//! - [`presence`]: sans-IO coalescing of presence changes per guild.
//! - [`broker`]: where events are published (in-process, or the cluster's bus) and the [`broker::Notice`]s
//!   other nodes must apply.
//! - [`roster`]: sans-IO presence as the other nodes of a cluster announce it.
//! - [`closing`]: the RFC 6455 close (send Close, drain until the peer's), shared with `/voice`.
//! - `socket`: the tokio task that drives one WebSocket with the above.

pub mod broker;
pub mod closing;
pub mod connection;
pub mod hub;
pub mod journal;
pub mod presence;
pub mod protocol;
pub mod roster;
pub mod session;
pub mod socket;
mod takeover;

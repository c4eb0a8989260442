//! # signaling — confab's voice gateway
//!
//! A client that holds a voice token (minted by the chat plane after its membership check) opens
//! `/voice`, identifies, makes one SDP offer, and from then on hears the room through the SFU.
//!
//! Module map:
//! - [`protocol`]: the wire protocol, shared with clients (the testbed uses it as is).
//! - [`conn`]: sans-IO per-socket machine: HELLO, heartbeat deadline, limits, identify/resume.
//! - [`rooms`]: sans-IO registry of participants: join/leave, mute, speaking, slot assignments,
//!   resumable sessions; every change returns the outputs to carry out.
//! - [`events`]: room events (join, leave, speaking) for in-process observers such as the C ABI.
//! - [`server`]: the shared state and the tasks that pump media-engine events into the rooms.
//! - `socket`: the tokio task per WebSocket.

//!
//! With `default-features = false` only [`protocol`] is built, for clients.

#[cfg(feature = "server")]
pub mod conn;
#[cfg(feature = "server")]
pub mod events;
pub mod protocol;
#[cfg(feature = "server")]
pub mod rooms;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
mod socket;

#[cfg(feature = "server")]
pub use events::VoiceEvent;
#[cfg(feature = "server")]
pub use server::{Voice, VoiceConfig};

/// `/voice` (the gateway) and `/voice/stats` (the media engine's counters per peer and room, for
/// operators and benchmarks), with state applied; merge them into the server's router.
#[cfg(feature = "server")]
pub fn router(voice: &Voice) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/voice", get(socket::handler))
        .route("/voice/stats", get(stats))
        .with_state(voice.clone())
}

#[cfg(feature = "server")]
async fn stats(axum::extract::State(voice): axum::extract::State<Voice>) -> axum::Json<sfu::SfuStats> {
    axum::Json(voice.sfu.stats().await)
}

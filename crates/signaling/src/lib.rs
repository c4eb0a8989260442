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
//! - [`turn`]: the ICE servers handed out in READY, with TURN REST credentials minted per join.

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
pub mod turn;

#[cfg(feature = "server")]
pub use events::VoiceEvent;
#[cfg(feature = "server")]
pub use server::{Voice, VoiceConfig};
#[cfg(feature = "server")]
pub use turn::TurnConfig;

/// `/voice` (the gateway) and `/voice/stats` (the media engine's counters per peer and room, for
/// operators and benchmarks: `Authorization: Bearer <voice.stats_token>`), with state applied;
/// merge them into the server's router.
#[cfg(feature = "server")]
pub fn router(voice: &Voice) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/voice", get(socket::handler))
        .route("/voice/stats", get(stats))
        .with_state(voice.clone())
}

/// Room ids, peers, addresses and RTTs are the operator's: only the stats token reads them.
#[cfg(feature = "server")]
async fn stats(
    axum::extract::State(voice): axum::extract::State<Voice>,
    headers: axum::http::HeaderMap,
) -> Result<axum::Json<sfu::SfuStats>, chat::api::error::ApiError> {
    use chat::api::error::{ApiError, code};
    let Some(expected) = voice.cfg.stats_token.as_deref().filter(|t| !t.is_empty()) else {
        let off = "voice stats are off: set voice.stats_token (CONFAB_VOICE_STATS_TOKEN) to serve them";
        return Err(ApiError::forbidden(off));
    };
    let given = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let given = given.and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    // Compared as hashes, so the time taken says nothing about how much of the token matched.
    if chat::auth::hash_token(given) != chat::auth::hash_token(expected) {
        let msg = "voice stats need Authorization: Bearer <voice.stats_token>";
        return Err(ApiError::new(axum::http::StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, msg));
    }
    Ok(axum::Json(voice.sfu.stats().await))
}

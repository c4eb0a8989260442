//! WHIP ingest (RFC 9725): a publisher (OBS 30+, a browser) posts its SDP offer with its stream key
//! as a bearer token and publishes Opus and VP8 or H.264 over WebRTC to the media engine, as a
//! receive-only peer in no room (`sfu::ingest`); its frames feed the same pump as RTMP's: video
//! into the ladder (the source's own size included), Opus re-encoded to AAC (`mcu::aac`).
//!
//! - `POST /whip/{channel_id}` (`Content-Type: application/sdp`, `Authorization: Bearer <key>`):
//!   `201 Created`, the answer, and `Location: /whip/{channel_id}/{session}`.
//! - `DELETE` on that location ends the stream (the session id, 128 random bits, is the
//!   capability); `PATCH` (trickle ICE) is `405`: the engine is ICE-lite and gathers nothing later.
//! - `OPTIONS` answers CORS preflights, so a page on another origin can publish.
//!
//! WHEP (`POST /whep/{channel_id}`, `whep`) plays a WHIP publisher's own frames back to viewers
//! through the same engine, sub-second; a stream published over RTMP, its ladder's top rendition
//! and its audio in Opus (`crate::live` feeds).
//!
//! Modules: `publish` (the POST), `end` (DELETE, PATCH), `media` (a session's task: timestamps,
//! the keyframe gate, the AAC transcoder, the bitrate limit), `whep` (viewers).

mod end;
mod media;
mod publish;
mod whep;

use crate::live::{ChatAccess, ChatKeys, Live};
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{delete, post};
use chat::api::error::{ApiError, code};
use chat::app::App;
use live::{IngestEvent, Publishers};
use sfu::Sfu;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Ingest peers' ids have the top bit set: the voice gateway's count up from 1.
const PEER_BIT: u64 = 1 << 63;

/// A live WHIP session.
struct Session {
    stream: String,
    peer: sfu::PeerId,
    /// Ends the session's task (DELETE).
    stop: CancellationToken,
}

#[derive(Clone)]
pub struct Whip {
    inner: Arc<Inner>,
}

struct Inner {
    app: App,
    sfu: Sfu,
    keys: ChatKeys,
    /// Who may watch (WHEP): the stream's watch token, or a public stream.
    access: ChatAccess,
    publishers: Arc<Publishers>,
    events: mpsc::Sender<IngestEvent>,
    /// By session id.
    sessions: Mutex<HashMap<String, Session>>,
    /// WHEP viewers by session id: (stream, peer).
    viewers: Arc<Mutex<HashMap<String, (String, sfu::PeerId)>>>,
    /// A publisher over this (kbit/s) is cut; 0: no limit.
    max_kbps: u32,
    /// What WHEP viewers of streams published over RTMP watch.
    feeds: Option<Arc<crate::live::Feeds>>,
}

impl Whip {
    pub fn new(app: &App, sfu: &Sfu, live: &Live, max_kbps: u32) -> Whip {
        let inner = Inner {
            app: app.clone(),
            sfu: sfu.clone(),
            keys: ChatKeys(app.clone()),
            access: ChatAccess(app.clone()),
            publishers: live.publishers.clone(),
            events: live.events.clone(),
            sessions: Mutex::default(),
            viewers: Arc::default(),
            max_kbps,
            feeds: live.feeds.clone(),
        };
        Whip { inner: Arc::new(inner) }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.inner.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn router(whip: Whip) -> Router {
    Router::new()
        .route("/whip/{channel}", post(publish::publish).options(end::preflight))
        .route("/whip/{channel}/{session}", delete(end::end).patch(end::patch).options(end::preflight))
        .route("/whep/{channel}", post(whep::play).options(end::preflight))
        .route("/whep/{channel}/{session}", delete(whep::stop).patch(end::patch).options(end::preflight))
        .with_state(whip)
}

/// An offer is a few KiB; anything near this is not one.
const MAX_OFFER: usize = 64 * 1024;

/// The SDP offer of a WHIP or WHEP POST: `application/sdp` (else 415), at most [`MAX_OFFER`]
/// (else 413), UTF-8 (else 400).
fn sdp_offer<'a>(headers: &axum::http::HeaderMap, body: &'a [u8]) -> Result<&'a str, ApiError> {
    let kind = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !kind.split(';').next().is_some_and(|k| k.trim().eq_ignore_ascii_case("application/sdp")) {
        let message = "the body must be an SDP offer (Content-Type: application/sdp)";
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, code::UNSUPPORTED_MEDIA_TYPE, message));
    }
    if body.len() > MAX_OFFER {
        let message = format!("an offer is at most {MAX_OFFER} bytes");
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code::PAYLOAD_TOO_LARGE, message));
    }
    std::str::from_utf8(body).map_err(|_| ApiError::invalid("the offer is not UTF-8"))
}

/// CORS on every WHIP answer: publishers may run on other origins.
fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Location, ETag"));
    r
}

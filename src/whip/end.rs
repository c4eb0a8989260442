//! The session resource: `DELETE /whip/{channel_id}/{session}` ends the stream (200; 404 for a
//! session that is not live); `PATCH` (trickle ICE, ICE restarts) is 405, as RFC 9725 asks of a
//! server that does not take them; `OPTIONS` answers CORS preflights.

use super::{Whip, cors};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat::api::error::{ApiError, code};

pub(super) async fn end(State(whip): State<Whip>, Path((channel, session)): Path<(String, String)>) -> Response {
    let found = {
        let mut sessions = whip.sessions();
        match sessions.get(&session) {
            Some(s) if s.stream == channel => sessions.remove(&session),
            _ => None,
        }
    };
    let Some(s) = found else {
        return cors(
            ApiError::new(StatusCode::NOT_FOUND, code::UNKNOWN_CHANNEL, "no such WHIP session").into_response(),
        );
    };
    tracing::info!(stream = %s.stream, peer = s.peer, "whip session deleted");
    whip.inner.sfu.remove_peer(s.peer);
    s.stop.cancel();
    cors(StatusCode::OK.into_response())
}

pub(super) async fn patch() -> Response {
    let message = "trickle ICE and ICE restarts are not supported: the answer carries every candidate";
    let mut r = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, code::METHOD_NOT_ALLOWED, message).into_response();
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("DELETE, OPTIONS"));
    cors(r)
}

pub(super) async fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, DELETE, PATCH, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type"));
    h.insert(header::HeaderName::from_static("accept-post"), HeaderValue::from_static("application/sdp"));
    cors(r)
}

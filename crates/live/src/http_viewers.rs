//! Viewer counting over HTTP (see [`crate::viewers`]): `POST /live/{stream}/viewers` joins (the
//! watch token as for the playlists; an id back), `POST …/viewers/{id}` beats, `DELETE` leaves.
//! On an edge (a stream another node ingests) they go to the origin, which counts every viewer.

use crate::http::{Token, error, forbidden, not_found};
use crate::http_extract::{ParsedPath, ParsedQuery};
use crate::hub::Streams;
use crate::viewers::HEARTBEAT;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

const UNAVAILABLE: u32 = 50503;

/// `POST /live/{stream}/viewers` → 201 `{viewer, heartbeat_secs}`: a player starts watching.
pub(crate) async fn join(
    State(streams): State<Arc<Streams>>,
    ParsedPath(id): ParsedPath<String>,
    ParsedQuery(t): ParsedQuery<Token>,
) -> Response {
    if !streams.allows(&id, t.a.as_deref()) {
        return forbidden();
    }
    if streams.get(&id).is_none() {
        return match streams.edge_for(&id) {
            Some((edge, origin)) => {
                edge.forward(Method::POST, &origin, &format!("/live/{id}/viewers{}", crate::http::token_query(&t)))
                    .await
            }
            None => not_found("stream"),
        };
    }
    let viewer: u64 = rand::random();
    if !streams.viewers().join(&id, viewer, std::time::Instant::now()) {
        return error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE, "too many viewers");
    }
    let body = serde_json::json!({ "viewer": format!("{viewer:016x}"), "heartbeat_secs": HEARTBEAT.as_secs() });
    let mut r = (StatusCode::CREATED, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

/// `POST /live/{stream}/viewers/{id}`: still watching (204); 404 once expired (join again).
pub(crate) async fn beat(
    State(streams): State<Arc<Streams>>,
    ParsedPath((id, viewer)): ParsedPath<(String, String)>,
) -> Response {
    let Ok(v) = u64::from_str_radix(&viewer, 16) else { return not_found("viewer") };
    if let Some((edge, origin)) = streams.get(&id).is_none().then(|| streams.edge_for(&id)).flatten() {
        return edge.forward(Method::POST, &origin, &format!("/live/{id}/viewers/{v:016x}")).await;
    }
    if !streams.viewers().beat(&id, v, std::time::Instant::now()) {
        return not_found("viewer");
    }
    no_content()
}

/// `DELETE /live/{stream}/viewers/{id}`: stopped watching.
pub(crate) async fn leave(
    State(streams): State<Arc<Streams>>,
    ParsedPath((id, viewer)): ParsedPath<(String, String)>,
) -> Response {
    let Ok(v) = u64::from_str_radix(&viewer, 16) else { return not_found("viewer") };
    if let Some((edge, origin)) = streams.get(&id).is_none().then(|| streams.edge_for(&id)).flatten() {
        return edge.forward(Method::DELETE, &origin, &format!("/live/{id}/viewers/{v:016x}")).await;
    }
    if !streams.viewers().leave(&id, v) {
        return not_found("viewer");
    }
    no_content()
}

fn no_content() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

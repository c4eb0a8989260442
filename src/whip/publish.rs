//! `POST /whip/{channel_id}`: an SDP offer in, `201 Created` with the answer and the session's
//! `Location` out. Refused: a wrong or rotated key (401, the key never logged), a body that is not
//! `application/sdp` (415) or not an offer this server can take (400), a stream already
//! publishing (409), too many streams or a full engine (503).

use super::{PEER_BIT, Session, Whip, cors, media, sdp_offer};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat::api::error::{ApiError, code};
use chat::listener::PeerAddr;
use live::{EndReason, IngestEvent, StreamKeys};
use sfu::SfuError;
use tokio_util::sync::CancellationToken;

pub(super) async fn publish(
    State(whip): State<Whip>,
    Path(channel): Path<String>,
    ConnectInfo(PeerAddr(addr)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    cors(match accept(&whip, &channel, addr, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    })
}

async fn accept(
    whip: &Whip,
    channel: &str,
    addr: std::net::SocketAddr,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| unauthorized("send the stream key as `Authorization: Bearer <key>`"))?;
    let offer = sdp_offer(headers, &body)?;
    let i = &whip.inner;
    // The key names its channel; a valid key of another channel is as wrong as none.
    if i.keys.authorize(key).await.as_deref() != Some(channel) {
        tracing::info!(%addr, channel, "whip publish refused: stream key refused");
        return Err(unauthorized("stream key refused"));
    }
    let who = i.publishers.next_id();
    i.publishers.claim(channel, who).map_err(|reason| refused(&reason))?;
    let peer = PEER_BIT | who;
    let (tx, rx) = media::channel();
    let answer = match i.sfu.add_ingest(peer, offer, media::sink(tx)).await {
        Ok(a) => a,
        Err(e) => {
            i.publishers.release(channel, who);
            return Err(sdp_error(&e));
        }
    };
    let session = chat::auth::new_token();
    let stop = CancellationToken::new();
    let entry = Session { stream: channel.to_string(), peer, stop: stop.clone() };
    whip.sessions().insert(session.clone(), entry);
    let _ = i.events.send(IngestEvent::Started { stream: channel.to_string(), peer: addr }).await;
    tracing::info!(stream = channel, %addr, peer, "whip publishing");
    let task = media::Task { whip: whip.clone(), stream: channel.to_string(), session: session.clone(), peer, who };
    tokio::spawn(task.run(rx, stop));
    let mut r = (StatusCode::CREATED, answer.sdp).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    if let Ok(v) = HeaderValue::from_str(&format!("/whip/{channel}/{session}")) {
        h.insert(header::LOCATION, v);
    }
    Ok(r)
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message)
}

fn refused(reason: &EndReason) -> ApiError {
    match reason {
        EndReason::AlreadyPublishing => ApiError::new(StatusCode::CONFLICT, code::BAD_REQUEST, reason.to_string()),
        other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, other.to_string()),
    }
}

fn sdp_error(e: &SfuError) -> ApiError {
    match e {
        SfuError::Full | SfuError::EngineGone => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, e.to_string())
        }
        _ => ApiError::invalid(e.to_string()),
    }
}

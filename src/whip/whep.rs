//! WHEP playback: `POST /whep/{channel_id}` with a viewer's offer (receive-only audio and video)
//! and the watch token as bearer (none needed for a public stream): `201 Created`, the answer and
//! `Location: /whep/{channel_id}/{session}`; `DELETE` there ends it. The viewer is written the
//! WHIP publisher's own frames by the media engine (`sfu::broadcast`): no transcode, no
//! segmenting, so the delay is the network's. A stream published over RTMP is watched through its
//! feed (`crate::live::feed`): the ladder's top rendition in H.264 (the offer must take it, else
//! 400) and its audio in Opus; 409 while it has none (no ladder: a source no larger than every
//! rendition).

use super::{PEER_BIT, Whip, cors, sdp_offer};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat::api::error::{ApiError, code};
use live::hub::Access;
use sfu::{IngestMedia, SfuError};

/// WHEP viewers' peer ids: the top two bits set (publishers have the top one only).
const VIEWER_BIT: u64 = 1 << 62;

pub(super) async fn play(
    State(whip): State<Whip>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    cors(match accept(&whip, &channel, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    })
}

async fn accept(whip: &Whip, channel: &str, headers: &HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    channel.parse::<i64>().map_err(|_| ApiError::not_found(code::UNKNOWN_CHANNEL, "channel"))?;
    let i = &whip.inner;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !i.access.allows(channel, token) {
        let message = "send the stream's watch token as `Authorization: Bearer <token>`";
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message));
    }
    let offer = sdp_offer(headers, &body)?;
    let source = whip.sessions().values().find(|s| s.stream == channel).map(|s| s.peer);
    let source = source.or_else(|| i.feeds.as_ref().and_then(|f| f.source(channel)));
    let Some(source) = source else {
        let message =
            "this stream cannot be watched over WebRTC now (not live, or not transcoded): watch it over LL-HLS";
        return Err(ApiError::new(StatusCode::CONFLICT, code::BAD_REQUEST, message));
    };
    let peer = PEER_BIT | VIEWER_BIT | i.publishers.next_id();
    let session = chat::auth::new_token();
    let (viewers, sid) = (i.viewers.clone(), session.clone());
    // The engine calls this on its thread: when the viewer (or its source) goes, so does the entry.
    let sink = Box::new(move |m: IngestMedia| {
        if let IngestMedia::Gone(_) = m {
            viewers.lock().unwrap_or_else(|p| p.into_inner()).remove(&sid);
        }
    });
    i.viewers.lock().unwrap_or_else(|p| p.into_inner()).insert(session.clone(), (channel.to_string(), peer));
    let answer = match i.sfu.add_viewer(peer, source, offer, sink).await {
        Ok(a) => a,
        Err(e) => {
            i.viewers.lock().unwrap_or_else(|p| p.into_inner()).remove(&session);
            return Err(match e {
                SfuError::Full | SfuError::EngineGone => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, e.to_string())
                }
                SfuError::NoSource => ApiError::new(StatusCode::CONFLICT, code::BAD_REQUEST, e.to_string()),
                _ => ApiError::invalid(e.to_string()),
            });
        }
    };
    tracing::info!(stream = channel, peer, "whep viewer");
    let mut r = (StatusCode::CREATED, answer.sdp).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    if let Ok(v) = HeaderValue::from_str(&format!("/whep/{channel}/{session}")) {
        h.insert(header::LOCATION, v);
    }
    Ok(r)
}

pub(super) async fn stop(State(whip): State<Whip>, Path((channel, session)): Path<(String, String)>) -> Response {
    let i = &whip.inner;
    let found = {
        let mut viewers = i.viewers.lock().unwrap_or_else(|p| p.into_inner());
        match viewers.get(&session) {
            Some((stream, _)) if *stream == channel => viewers.remove(&session),
            _ => None,
        }
    };
    match found {
        Some((_, peer)) => {
            i.sfu.remove_peer(peer);
            cors(StatusCode::OK.into_response())
        }
        None => {
            cors(ApiError::new(StatusCode::NOT_FOUND, code::UNKNOWN_CHANNEL, "no such WHEP session").into_response())
        }
    }
}

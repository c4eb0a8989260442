//! `GET /api/channels/{channel_id}/stream` → the live channel's stream state: `{state:
//! idle|live|ended, started_at, ended_at, playlist, renditions, title, public, viewer_count,
//! watch_token}`. Members may read it, and anyone (no token needed) when the stream is public.
//! `watch_token` goes in every LL-HLS URL as `?a=` (see `auth::WatchTokens`).

use super::error::{ApiError, ApiResult, code};
use super::extract::{Path, caller_for_token};
use crate::app::App;
use crate::id::{Id, now_ms};
use crate::store::ChannelKind;
use crate::streams::StreamState;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use serde::Serialize;

#[derive(Serialize)]
pub struct Watch {
    #[serde(flatten)]
    pub state: StreamState,
    pub watch_token: String,
}

pub async fn handler(
    State(app): State<App>,
    headers: HeaderMap,
    Path(channel): Path<Id>,
) -> ApiResult<axum::Json<Watch>> {
    let ch = app.channel(channel).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_CHANNEL, "channel"))?;
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let caller = match bearer {
        Some(token) => Some(caller_for_token(&app, token).await?.ok_or_else(ApiError::unauthorized)?),
        None => None,
    };
    let member = match &caller {
        Some(c) => match ch.guild_id {
            Some(guild) => app.is_member(guild, c.user).await?,
            None => false,
        },
        None => false,
    };
    let state = if ch.kind == ChannelKind::Live { Some(app.stream_state(&ch).await?) } else { None };
    let public = state.as_ref().is_some_and(|s| s.public);
    match (member || public, &caller) {
        (true, _) => {}
        (false, None) => return Err(ApiError::unauthorized()),
        (false, Some(_)) => return Err(ApiError::not_member()),
    }
    let state = state.ok_or_else(|| ApiError::invalid("not a live channel"))?;
    Ok(axum::Json(Watch { state, watch_token: app.watch_tokens.mint(channel, now_ms()) }))
}

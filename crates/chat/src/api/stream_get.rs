//! `GET /api/channels/{channel_id}/stream` → the live channel's stream state (members only):
//! `{state: idle|live|ended, started_at, ended_at, playlist, renditions}`.

use super::access::member_channel;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use crate::store::ChannelKind;
use crate::streams::StreamState;
use axum::extract::State;

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(channel): Path<Id>,
) -> ApiResult<axum::Json<StreamState>> {
    let ch = member_channel(&app, channel, caller.user).await?;
    if ch.kind != ChannelKind::Live {
        return Err(ApiError::invalid("not a live channel"));
    }
    Ok(axum::Json(app.stream_states.get(channel).unwrap_or_else(|| StreamState::idle(ch.guild_id, channel))))
}

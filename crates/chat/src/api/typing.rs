//! `POST /api/channels/{channel_id}/typing` → 204; TYPING_START to the guild (a DM's recipients).

use super::access::postable_channel;
use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::{Id, now_ms};
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

pub async fn handler(State(app): State<App>, caller: Caller, Path(channel): Path<Id>) -> ApiResult<StatusCode> {
    let ch = postable_channel(&app, channel, caller.user).await?;
    let mut d = json!({ "channel_id": channel, "user_id": caller.user, "timestamp": now_ms() });
    if let Some(guild) = ch.guild_id {
        d["guild_id"] = json!(guild);
    }
    app.publish_in(&ch, "TYPING_START", &d).await?;
    Ok(StatusCode::NO_CONTENT)
}

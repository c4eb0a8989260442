//! `POST /api/channels/{channel_id}/typing` → 204; TYPING_START to the guild.

use super::access::member_channel;
use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::id::{Id, now_ms};
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

pub async fn handler(State(app): State<App>, caller: Caller, Path(channel): Path<Id>) -> ApiResult<StatusCode> {
    let ch = member_channel(&app, channel, caller.user).await?;
    app.publish(
        Topic::Guild(ch.guild_id),
        "TYPING_START",
        &json!({ "channel_id": channel, "guild_id": ch.guild_id, "user_id": caller.user, "timestamp": now_ms() }),
    );
    Ok(StatusCode::NO_CONTENT)
}

//! `DELETE /api/channels/{channel_id}/messages/{message_id}` → 204 (author only); MESSAGE_DELETE to
//! the guild. Owners remove others' messages through the report queue.

use super::access::member_message;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Path};
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::id::Id;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path((channel, message)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    let (ch, m) = member_message(&app, channel, message, caller.user).await?;
    if m.author_id != caller.user {
        return Err(ApiError::forbidden("only the author may delete a message"));
    }
    delete_and_announce(&app, ch.guild_id, channel, message).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_and_announce(app: &App, guild: Id, channel: Id, message: Id) -> ApiResult<bool> {
    let deleted = app.store.messages.delete_message(message).await?;
    if deleted {
        app.publish(
            Topic::Guild(guild),
            "MESSAGE_DELETE",
            &json!({ "id": message, "channel_id": channel, "guild_id": guild }),
        );
    }
    Ok(deleted)
}

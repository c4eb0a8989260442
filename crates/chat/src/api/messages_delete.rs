//! `DELETE /api/channels/{channel_id}/messages/{message_id}` → 204 (the author, or in a
//! guild MANAGE_MESSAGES: recorded in the audit log); MESSAGE_DELETE to the guild (a DM's
//! recipients).

use super::access::{member_message, permitted};
use super::audit::{action, record};
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use crate::perms::Permissions;
use crate::store::Channel;
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
        let guild = ch.guild_id.ok_or_else(|| ApiError::forbidden("only the author may delete a message"))?;
        permitted(&app, guild, caller.user, Permissions::MANAGE_MESSAGES)
            .await
            .map_err(|e| e.with_message("only the author, or someone with MANAGE_MESSAGES, may delete a message"))?;
        delete_and_announce(&app, &ch, message).await?;
        let what = format!("by {}: {}", m.author_id, m.content.chars().take(200).collect::<String>());
        return record(&app, guild, caller.user, action::MESSAGE_DELETE, Some(message), &what)
            .await
            .map(|()| StatusCode::NO_CONTENT);
    }
    delete_and_announce(&app, &ch, message).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a message (its attachments' rows with it, then their files) and tells the channel.
pub async fn delete_and_announce(app: &App, ch: &Channel, message: Id) -> ApiResult<bool> {
    let files = app.store.messages.message(message).await?.map(|m| m.attachments).unwrap_or_default();
    let deleted = app.store.messages.delete_message(message).await?;
    if deleted {
        super::upload::discard(app, ch.id, &files).await;
        let mut d = json!({ "id": message, "channel_id": ch.id });
        if let Some(guild) = ch.guild_id {
            d["guild_id"] = json!(guild);
        }
        app.publish_in(ch, "MESSAGE_DELETE", &d).await?;
    }
    Ok(deleted)
}

//! `DELETE /api/channels/{channel_id}` → 204 (MANAGE_CHANNELS): a guild channel and its messages
//! go. CHANNEL_DELETE to the guild; a voice call in it ends; its attachments leave the blob store.
//! A server keeps at least one channel (400 for its last).

use super::access::{guild_channel, permitted};
use super::audit::{action, record};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Path};
use crate::app::{App, Ejection};
use crate::gateway::broker::Forget;
use crate::gateway::hub::Topic;
use crate::id::Id;
use crate::perms::Permissions;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn handler(State(app): State<App>, caller: Caller, Path(channel): Path<Id>) -> ApiResult<StatusCode> {
    let (ch, guild) = guild_channel(&app, channel, caller.user).await?;
    permitted(&app, guild, caller.user, Permissions::MANAGE_CHANNELS).await?;
    if app.store.channels.channels(guild).await?.len() <= 1 {
        return Err(ApiError::invalid("a server keeps at least one channel"));
    }
    if !app.store.channels.delete_channel(channel).await? {
        return Err(ApiError::not_found(code::UNKNOWN_CHANNEL, "channel"));
    }
    app.forget(Forget::Channel(channel));
    app.eject(Ejection { guild, user: None, channel: Some(channel) });
    remove_blobs(&app, channel).await;
    record(&app, guild, caller.user, action::CHANNEL_DELETE, Some(channel), &ch.name).await?;
    app.publish(Topic::Guild(guild), "CHANNEL_DELETE", &ch);
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a deleted channel's attachment bytes (its rows went with it); a failure is logged,
/// not the caller's problem: the bytes are unreachable either way.
pub async fn remove_blobs(app: &App, channel: Id) {
    if let Err(e) = app.blobs.delete_prefix(&channel.to_string()).await {
        tracing::warn!(%channel, error = %e, "could not remove a deleted channel's attachments");
    }
}

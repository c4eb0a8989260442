//! Membership and ownership checks shared by the routes: a non-member gets 403, never data.

use super::error::{ApiError, ApiResult, code};
use crate::app::App;
use crate::id::Id;
use crate::store::{Channel, Guild, Message};

pub async fn member_guild(app: &App, guild: Id, user: Id) -> ApiResult<Guild> {
    let g = app.store.guilds.guild(guild).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_GUILD, "guild"))?;
    if !app.is_member(guild, user).await? {
        return Err(ApiError::not_member());
    }
    Ok(g)
}

pub async fn owned_guild(app: &App, guild: Id, user: Id) -> ApiResult<Guild> {
    let g = member_guild(app, guild, user).await?;
    if g.owner_id != user {
        return Err(ApiError::forbidden("only the guild owner may do this"));
    }
    Ok(g)
}

pub async fn member_channel(app: &App, channel: Id, user: Id) -> ApiResult<Channel> {
    let c = app.channel(channel).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_CHANNEL, "channel"))?;
    if !app.is_member(c.guild_id, user).await? {
        return Err(ApiError::not_member());
    }
    Ok(c)
}

/// A message of a channel the caller can read.
pub async fn member_message(app: &App, channel: Id, message: Id, user: Id) -> ApiResult<(Channel, Message)> {
    let c = member_channel(app, channel, user).await?;
    let m = app
        .store
        .messages
        .message(message)
        .await?
        .filter(|m| m.channel_id == c.id)
        .ok_or_else(|| ApiError::not_found(code::UNKNOWN_MESSAGE, "message"))?;
    Ok((c, m))
}

//! Membership and ownership checks shared by the routes: a non-member (of a guild, or of a DM)
//! gets 403, never data.

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

/// A channel the caller can read: of a guild they are in, or a DM they are in.
pub async fn member_channel(app: &App, channel: Id, user: Id) -> ApiResult<Channel> {
    let c = app.channel(channel).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_CHANNEL, "channel"))?;
    let allowed = match c.guild_id {
        Some(guild) => app.is_member(guild, user).await?,
        None => app.store.dms.recipients(c.id).await?.iter().any(|u| u.id == user),
    };
    if !allowed {
        return Err(ApiError::not_member());
    }
    Ok(c)
}

/// A guild channel the caller can read, and its guild (a DM has none: 400).
pub async fn guild_channel(app: &App, channel: Id, user: Id) -> ApiResult<(Channel, Id)> {
    let c = member_channel(app, channel, user).await?;
    let guild = c.guild_id.ok_or_else(|| ApiError::invalid("this is a direct message channel, not a guild's"))?;
    Ok((c, guild))
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

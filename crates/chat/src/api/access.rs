//! Membership and permission checks shared by the routes: a non-member (of a guild, or of a DM)
//! gets 403 50001, never data; a member without the permission a route needs gets 403 50013
//! naming it (see [`crate::perms`]).

use super::error::{ApiError, ApiResult, code};
use crate::app::App;
use crate::id::{Id, now_ms};
use crate::perms::{Access, Permissions};
use crate::store::{Channel, Guild, Message};

/// The guild and what the caller may do in it, if they hold `needed`.
pub async fn permitted(app: &App, guild: Id, user: Id, needed: Permissions) -> ApiResult<(Guild, Access)> {
    let g = app.store.guilds.guild(guild).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_GUILD, "guild"))?;
    let access = app.access(guild, user).await?.ok_or_else(ApiError::not_member)?;
    if !access.has(needed) {
        return Err(ApiError::forbidden(format!("you need the {} permission for this", needed.name())));
    }
    Ok((g, access))
}

/// The target of a moderation action: a member the caller outranks (never the owner, never
/// themselves). 404 when `target` is not a member.
pub async fn outranked(app: &App, guild: Id, actor: &Access, target: Id) -> ApiResult<Access> {
    let t = app
        .store
        .roles
        .access(guild, target)
        .await?
        .ok_or_else(|| ApiError::not_found(code::UNKNOWN_MEMBER, "member"))?;
    if !actor.outranks(&t) {
        return Err(ApiError::forbidden("you can only act on members whose highest role is below yours"));
    }
    Ok(t)
}

/// 403 while the caller is timed out in `guild` (they may read, not post, react or speak).
pub async fn not_timed_out(app: &App, guild: Id, user: Id) -> ApiResult<()> {
    let access = app.access(guild, user).await?.ok_or_else(ApiError::not_member)?;
    match access.timeout_until {
        Some(until) if access.timed_out(now_ms()) => Err(ApiError::forbidden(format!(
            "you are timed out in this server for {} more s",
            (until - now_ms() + 999) / 1000
        ))),
        _ => Ok(()),
    }
}

pub async fn member_guild(app: &App, guild: Id, user: Id) -> ApiResult<Guild> {
    let g = app.store.guilds.guild(guild).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_GUILD, "guild"))?;
    if !app.is_member(guild, user).await? {
        return Err(ApiError::not_member());
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

/// A channel the caller can post, react and type in: [`member_channel`], and not timed out.
pub async fn postable_channel(app: &App, channel: Id, user: Id) -> ApiResult<Channel> {
    let c = member_channel(app, channel, user).await?;
    if let Some(guild) = c.guild_id {
        not_timed_out(app, guild, user).await?;
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

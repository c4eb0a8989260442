//! `GET /api/guilds/{guild_id}/bans` → bans; `PUT /api/guilds/{guild_id}/bans/{user_id}`
//! `{reason?}` → 204; `DELETE …/bans/{user_id}` → 204 (all BAN_MEMBERS). A ban ends the member's
//! membership and every session of theirs in the guild at once, chat and voice; invites refuse
//! them (403 40007) until unbanned. A member can be banned only by someone who outranks them; a
//! user who is not a member can be banned ahead.

use super::access::{outranked, permitted};
use super::audit::{action, record};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::id::{Id, now_ms};
use crate::perms::Permissions;
use crate::store::Ban;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Body {
    #[serde(default)]
    pub reason: String,
}

pub async fn list(State(app): State<App>, caller: Caller, Path(guild): Path<Id>) -> ApiResult<axum::Json<Vec<Ban>>> {
    permitted(&app, guild, caller.user, Permissions::BAN_MEMBERS).await?;
    Ok(axum::Json(app.store.moderation.bans(guild).await?))
}

pub async fn put(
    State(app): State<App>,
    caller: Caller,
    Path((guild, user)): Path<(Id, Id)>,
    Json(body): Json<Body>,
) -> ApiResult<StatusCode> {
    ban(&app, guild, caller.user, user, &body.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete(
    State(app): State<App>,
    caller: Caller,
    Path((guild, user)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    permitted(&app, guild, caller.user, Permissions::BAN_MEMBERS).await?;
    if !app.store.moderation.unban(guild, user).await? {
        return Err(ApiError::not_found(code::UNKNOWN_BAN, "ban"));
    }
    record(&app, guild, caller.user, action::MEMBER_BAN_REMOVE, Some(user), "").await?;
    app.publish(Topic::Guild(guild), "GUILD_BAN_REMOVE", &json!({ "guild_id": guild, "user_id": user }));
    Ok(StatusCode::NO_CONTENT)
}

/// Bans `user` from `guild` on `actor`'s authority (also a report's resolution).
pub async fn ban(app: &App, guild: Id, actor: Id, user: Id, reason: &str) -> ApiResult<()> {
    let (_, me) = permitted(app, guild, actor, Permissions::BAN_MEMBERS).await?;
    if user == actor {
        return Err(ApiError::invalid("you cannot ban yourself"));
    }
    let target = app.store.users.user(user).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_USER, "user"))?;
    if app.store.roles.access(guild, user).await?.is_some() {
        outranked(app, guild, &me, user).await?;
    }
    let reason: String = reason.trim().chars().take(super::audit::MAX_REASON_CHARS).collect();
    let b = Ban {
        guild_id: guild,
        user_id: user,
        username: target.username,
        moderator_id: actor,
        reason,
        created_at: now_ms(),
    };
    if app.store.moderation.ban(&b).await? {
        app.member_removed(guild, user);
    }
    record(app, guild, actor, action::MEMBER_BAN_ADD, Some(user), &b.reason).await?;
    app.publish(Topic::Guild(guild), "GUILD_BAN_ADD", &json!({ "guild_id": guild, "user_id": user }));
    Ok(())
}

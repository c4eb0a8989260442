//! `PATCH /api/guilds/{guild_id}/members/{user_id}` `{timeout_until, reason?}` → the member: times
//! a member out until then (unix ms, at most 28 days ahead; `null` ends it) — MODERATE_MEMBERS,
//! someone the caller outranks. A timed-out member reads but cannot post, react, type or join
//! voice, and leaves the voice call they are in. GUILD_MEMBER_UPDATE to the guild.

use super::access::{outranked, permitted};
use super::audit::{action, record};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use crate::app::{App, Ejection};
use crate::gateway::broker::Forget;
use crate::id::{Id, now_ms};
use crate::perms::Permissions;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

/// The longest time-out (Discord's).
pub const MAX_TIMEOUT_MS: i64 = 28 * 24 * 3600 * 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub timeout_until: Option<i64>,
    #[serde(default)]
    pub reason: String,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path((guild, user)): Path<(Id, Id)>,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<Value>> {
    time_out(&app, guild, caller.user, user, body.timeout_until, &body.reason).await?;
    let m = super::members_list::member(&app, guild, user).await?;
    Ok(axum::Json(m.ok_or_else(|| ApiError::not_found(code::UNKNOWN_MEMBER, "member"))?))
}

/// Times `user` out (or ends it: `None`) on `actor`'s authority (also a report's resolution).
pub async fn time_out(app: &App, guild: Id, actor: Id, user: Id, until: Option<i64>, reason: &str) -> ApiResult<()> {
    let (_, me) = permitted(app, guild, actor, Permissions::MODERATE_MEMBERS).await?;
    outranked(app, guild, &me, user).await?;
    let now = now_ms();
    let until = until.filter(|t| *t > now);
    if until.is_some_and(|t| t - now > MAX_TIMEOUT_MS) {
        return Err(ApiError::invalid("a time-out lasts at most 28 days"));
    }
    if !app.store.moderation.set_timeout(guild, user, until).await? {
        return Err(ApiError::not_found(code::UNKNOWN_MEMBER, "member"));
    }
    app.forget(Forget::Member(guild, user));
    if until.is_some() {
        app.eject(Ejection { guild, user: Some(user), channel: None });
    }
    let what = match until {
        Some(t) => format!("until {t}{}{reason}", if reason.is_empty() { "" } else { ": " }),
        None => format!("ended{}{reason}", if reason.is_empty() { "" } else { ": " }),
    };
    record(app, guild, actor, action::MEMBER_TIMEOUT, Some(user), &what).await?;
    super::members_list::announce_update(app, guild, user).await?;
    Ok(())
}

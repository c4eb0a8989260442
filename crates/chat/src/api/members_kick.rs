//! `DELETE /api/guilds/{guild_id}/members/{user_id}?reason=` → 204: kicks a member (KICK_MEMBERS,
//! someone the caller outranks). They leave everything of the guild at once, voice included (see
//! [`crate::app::App::member_removed`]); an invite brings them back.

use super::access::{outranked, permitted};
use super::audit::{action, record};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Path, Query};
use crate::app::App;
use crate::id::Id;
use crate::perms::Permissions;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default)]
    pub reason: String,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path((guild, user)): Path<(Id, Id)>,
    Query(p): Query<Params>,
) -> ApiResult<StatusCode> {
    kick(&app, guild, caller.user, user, &p.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Kicks `user` out of `guild` on `actor`'s authority (also a report's resolution).
pub async fn kick(app: &App, guild: Id, actor: Id, user: Id, reason: &str) -> ApiResult<()> {
    let (_, me) = permitted(app, guild, actor, Permissions::KICK_MEMBERS).await?;
    outranked(app, guild, &me, user).await?;
    if !app.store.members.remove_member(guild, user).await? {
        return Err(ApiError::not_found(code::UNKNOWN_MEMBER, "member"));
    }
    app.member_removed(guild, user);
    record(app, guild, actor, action::MEMBER_KICK, Some(user), reason).await
}

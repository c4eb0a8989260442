//! `DELETE /api/users/@me/guilds/{guild_id}` → 204: the caller leaves the guild. The guild hears
//! GUILD_MEMBER_REMOVE, the caller's sessions get GUILD_DELETE and no more of its events, and their
//! voice call there ends. The
//! owner cannot leave (400): a guild always has one.

use super::access::member_guild;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn handler(State(app): State<App>, caller: Caller, Path(guild): Path<Id>) -> ApiResult<StatusCode> {
    let g = member_guild(&app, guild, caller.user).await?;
    if g.owner_id == caller.user {
        return Err(ApiError::invalid("the owner cannot leave their server"));
    }
    if app.store.members.remove_member(guild, caller.user).await? {
        app.member_removed(guild, caller.user);
    }
    Ok(StatusCode::NO_CONTENT)
}

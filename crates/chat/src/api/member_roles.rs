//! `PUT` / `DELETE /api/guilds/{guild_id}/members/{user_id}/roles/{role_id}` → 204: gives or takes
//! a role (MANAGE_ROLES, for roles below the caller's highest). GUILD_MEMBER_UPDATE to the guild.

use super::access::permitted;
use super::audit::{action, record};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Path};
use super::roles_update::manageable;
use crate::app::App;
use crate::gateway::broker::Forget;
use crate::id::Id;
use crate::perms::Permissions;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn put(State(app): State<App>, caller: Caller, Path(ids): Path<(Id, Id, Id)>) -> ApiResult<StatusCode> {
    change(app, caller, ids, true).await
}

pub async fn delete(State(app): State<App>, caller: Caller, Path(ids): Path<(Id, Id, Id)>) -> ApiResult<StatusCode> {
    change(app, caller, ids, false).await
}

async fn change(app: App, caller: Caller, (guild, user, role): (Id, Id, Id), give: bool) -> ApiResult<StatusCode> {
    let (_, me) = permitted(&app, guild, caller.user, Permissions::MANAGE_ROLES).await?;
    let r = manageable(&app, guild, &me, role).await?;
    if r.id == guild {
        return Err(ApiError::invalid("everyone has @everyone"));
    }
    let changed = if give {
        app.store.roles.add_member_role(guild, user, role).await?
    } else {
        if app.store.roles.access(guild, user).await?.is_none() {
            return Err(ApiError::not_found(code::UNKNOWN_MEMBER, "member"));
        }
        app.store.roles.remove_member_role(guild, user, role).await?
    };
    if changed {
        app.forget(Forget::Member(guild, user));
        let verb = if give { "+" } else { "-" };
        record(&app, guild, caller.user, action::MEMBER_ROLE_UPDATE, Some(user), &format!("{verb}{}", r.name)).await?;
        super::members_list::announce_update(&app, guild, user).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

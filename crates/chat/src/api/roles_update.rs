//! `PATCH /api/guilds/{guild_id}/roles/{role_id}` `{name?, permissions?, position?}` → the role,
//! and `DELETE` → 204 (MANAGE_ROLES, for roles below the caller's highest; `@everyone` keeps its
//! name and place and cannot be deleted). GUILD_ROLE_UPDATE / GUILD_ROLE_DELETE to the guild;
//! every member's permissions are read again.

use super::access::permitted;
use super::audit::{action, record};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use super::roles_create::grantable;
use super::validate;
use crate::app::App;
use crate::gateway::broker::Forget;
use crate::gateway::hub::Topic;
use crate::id::Id;
use crate::perms::{Access, Permissions};
use crate::store::Role;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub name: Option<String>,
    pub permissions: Option<Permissions>,
    pub position: Option<i64>,
}

/// The role, if the caller (with MANAGE_ROLES) ranks above it.
pub async fn manageable(app: &App, guild: Id, me: &Access, role: Id) -> ApiResult<Role> {
    let r = app
        .store
        .roles
        .roles(guild)
        .await?
        .into_iter()
        .find(|r| r.id == role)
        .ok_or_else(|| ApiError::not_found(code::UNKNOWN_ROLE, "role"))?;
    if !me.owner && r.position >= me.rank {
        return Err(ApiError::forbidden("you can only manage roles below your highest role"));
    }
    Ok(r)
}

pub async fn patch(
    State(app): State<App>,
    caller: Caller,
    Path((guild, role)): Path<(Id, Id)>,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<Role>> {
    let (_, me) = permitted(&app, guild, caller.user, Permissions::MANAGE_ROLES).await?;
    let mut r = manageable(&app, guild, &me, role).await?;
    let everyone = r.id == guild;
    if let Some(name) = &body.name {
        if everyone {
            return Err(ApiError::invalid("@everyone cannot be renamed"));
        }
        r.name = validate::text("name", name, 100)?.into_owned();
    }
    if let Some(p) = body.permissions {
        grantable(&me, p)?;
        r.permissions = p;
    }
    if let Some(pos) = body.position {
        if everyone {
            return Err(ApiError::invalid("@everyone stays at position 0"));
        }
        if !(1..=crate::perms::MAX_POSITION).contains(&pos) {
            return Err(ApiError::invalid("position must be 1 to 1000000"));
        }
        if !me.owner && pos >= me.rank {
            return Err(ApiError::forbidden("a role's position must stay below your highest role"));
        }
        r.position = pos;
    }
    if !app.store.roles.update_role(&r).await? {
        return Err(ApiError::not_found(code::UNKNOWN_ROLE, "role"));
    }
    app.forget(Forget::Guild(guild));
    record(&app, guild, caller.user, action::ROLE_UPDATE, Some(r.id), &r.name).await?;
    app.publish(Topic::Guild(guild), "GUILD_ROLE_UPDATE", &r);
    Ok(axum::Json(r))
}

pub async fn delete(
    State(app): State<App>,
    caller: Caller,
    Path((guild, role)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    let (_, me) = permitted(&app, guild, caller.user, Permissions::MANAGE_ROLES).await?;
    let r = manageable(&app, guild, &me, role).await?;
    if r.id == guild {
        return Err(ApiError::invalid("@everyone cannot be deleted"));
    }
    if !app.store.roles.delete_role(guild, role).await? {
        return Err(ApiError::not_found(code::UNKNOWN_ROLE, "role"));
    }
    app.forget(Forget::Guild(guild));
    record(&app, guild, caller.user, action::ROLE_DELETE, Some(role), &r.name).await?;
    app.publish(Topic::Guild(guild), "GUILD_ROLE_DELETE", &json!({ "guild_id": guild, "role_id": role }));
    Ok(StatusCode::NO_CONTENT)
}

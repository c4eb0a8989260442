//! `POST /api/guilds/{guild_id}/roles` `{name, permissions?}` → 201 role (MANAGE_ROLES). A new
//! role sits just above `@everyone` (position 1) and may grant only what its creator holds.
//! GUILD_ROLE_CREATE to the guild.

use super::access::permitted;
use super::audit::{action, record};
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use super::validate;
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::id::{Id, now_ms};
use crate::perms::Permissions;
use crate::store::Role;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

/// Roles per guild, at most (Discord's limit).
pub const MAX_ROLES: usize = 250;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub name: String,
    pub permissions: Option<Permissions>,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(guild): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<(StatusCode, axum::Json<Role>)> {
    let (_, me) = permitted(&app, guild, caller.user, Permissions::MANAGE_ROLES).await?;
    let name = validate::text("name", &body.name, 100)?;
    let permissions = body.permissions.unwrap_or(Permissions::NONE);
    grantable(&me, permissions)?;
    if app.store.roles.roles(guild).await?.len() > MAX_ROLES {
        return Err(ApiError::invalid(format!("a server has at most {MAX_ROLES} roles")));
    }
    let role = Role {
        id: app.ids.next(),
        guild_id: guild,
        name: name.into_owned(),
        permissions,
        position: 1,
        created_at: now_ms(),
    };
    app.store.roles.create_role(&role).await?;
    record(&app, guild, caller.user, action::ROLE_CREATE, Some(role.id), &role.name).await?;
    app.publish(Topic::Guild(guild), "GUILD_ROLE_CREATE", &role);
    Ok((StatusCode::CREATED, axum::Json(role)))
}

/// 403 unless every bit of `p` is one the actor holds (unknown bits: 400).
pub fn grantable(actor: &crate::perms::Access, p: Permissions) -> ApiResult<()> {
    if p.known() != p {
        return Err(ApiError::invalid("permissions has bits this server does not know"));
    }
    if !actor.effective().contains(p) {
        return Err(ApiError::forbidden("a role can only grant permissions you have yourself"));
    }
    Ok(())
}

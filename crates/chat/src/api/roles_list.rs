//! `GET /api/guilds/{guild_id}/roles` → the guild's roles, most senior first, `@everyone` (the
//! role with the guild's id) last (members only).

use super::access::member_guild;
use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use crate::store::Role;
use axum::Json;
use axum::extract::State;

pub async fn handler(State(app): State<App>, caller: Caller, Path(guild): Path<Id>) -> ApiResult<Json<Vec<Role>>> {
    member_guild(&app, guild, caller.user).await?;
    Ok(Json(app.store.roles.roles(guild).await?))
}

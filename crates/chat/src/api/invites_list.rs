//! `GET /api/guilds/{guild_id}/invites` → the guild's invites with their uses and expiry, newest
//! first (MANAGE_GUILD).

use super::access::permitted;
use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use crate::perms::Permissions;
use crate::store::Invite;
use axum::Json;
use axum::extract::State;

pub async fn handler(State(app): State<App>, caller: Caller, Path(guild): Path<Id>) -> ApiResult<Json<Vec<Invite>>> {
    permitted(&app, guild, caller.user, Permissions::MANAGE_GUILD).await?;
    Ok(Json(app.store.guilds.invites(guild).await?))
}

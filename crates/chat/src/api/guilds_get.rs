//! `GET /api/guilds/{guild_id}` → the guild (members only).

use super::access::member_guild;
use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use crate::store::Guild;
use axum::Json;
use axum::extract::State;

pub async fn handler(State(app): State<App>, caller: Caller, Path(guild): Path<Id>) -> ApiResult<Json<Guild>> {
    Ok(Json(member_guild(&app, guild, caller.user).await?))
}

//! `GET /api/guilds/{guild_id}/read-states` → per text channel: last read id, unread and mention counts.

use super::access::member_guild;
use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use crate::store::ReadState;
use axum::Json;
use axum::extract::State;

pub async fn handler(State(app): State<App>, caller: Caller, Path(guild): Path<Id>) -> ApiResult<Json<Vec<ReadState>>> {
    member_guild(&app, guild, caller.user).await?;
    Ok(Json(app.store.read_states.read_states(caller.user, guild).await?))
}

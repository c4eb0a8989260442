//! `GET /api/guilds/{guild_id}/channels` → the guild's channels by position.

use super::access::member_guild;
use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use crate::store::Channel;
use axum::Json;
use axum::extract::State;

pub async fn handler(State(app): State<App>, caller: Caller, Path(guild): Path<Id>) -> ApiResult<Json<Vec<Channel>>> {
    member_guild(&app, guild, caller.user).await?;
    Ok(Json(app.store.channels.channels(guild).await?))
}

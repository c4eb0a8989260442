//! `GET /api/guilds/{guild_id}/members` → members with their presence.

use super::access::member_guild;
use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn handler(State(app): State<App>, caller: Caller, Path(guild): Path<Id>) -> ApiResult<Json<Vec<Value>>> {
    member_guild(&app, guild, caller.user).await?;
    let members = app.store.members.members(guild).await?;
    Ok(Json(members.iter().map(|m| member_json(&app, m)).collect()))
}

pub fn member_json(app: &App, m: &crate::store::Member) -> Value {
    json!({ "user_id": m.user_id, "username": m.username, "joined_at": m.joined_at, "status": app.hub.status(m.user_id) })
}

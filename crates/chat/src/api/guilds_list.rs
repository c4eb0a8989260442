//! `GET /api/guilds` → the caller's guilds.

use super::error::ApiResult;
use super::extract::Caller;
use crate::app::App;
use crate::store::Guild;
use axum::Json;
use axum::extract::State;

pub async fn handler(State(app): State<App>, caller: Caller) -> ApiResult<Json<Vec<Guild>>> {
    Ok(Json(app.store.guilds.guilds_of(caller.user).await?))
}

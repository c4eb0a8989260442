//! `GET /api/users/@me/channels` → the caller's DMs, latest activity first, each with its
//! recipients, last message id and unread and mention counts.

use super::error::ApiResult;
use super::extract::Caller;
use crate::app::App;
use crate::store::Dm;
use axum::Json;
use axum::extract::State;

pub async fn handler(State(app): State<App>, caller: Caller) -> ApiResult<Json<Vec<Dm>>> {
    Ok(Json(app.store.dms.dms_of(caller.user).await?))
}

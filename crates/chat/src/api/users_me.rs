//! `GET /api/users/@me` → the caller's user.

use super::error::{ApiError, ApiResult, code};
use super::extract::Caller;
use crate::app::App;
use crate::store::User;
use axum::Json;
use axum::extract::State;

pub async fn handler(State(app): State<App>, caller: Caller) -> ApiResult<Json<User>> {
    let user =
        app.store.users.user(caller.user).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_USER, "user"))?;
    Ok(Json(user))
}

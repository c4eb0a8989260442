//! Blocking: `PUT /api/users/@me/blocks/{user_id}` → 204 (that user can no longer DM the caller,
//! nor the caller them; existing DMs stay readable); `DELETE` there → 204 (404 when not
//! blocked); `GET /api/users/@me/blocks` → the users the caller blocked.

use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::{Id, now_ms};
use crate::store::User;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn put(State(app): State<App>, caller: Caller, Path(user): Path<Id>) -> ApiResult<StatusCode> {
    if user == caller.user {
        return Err(ApiError::invalid("you cannot block yourself"));
    }
    if app.store.users.user(user).await?.is_none() {
        return Err(ApiError::not_found(code::UNKNOWN_USER, "user"));
    }
    app.store.blocks.block(caller.user, user, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete(State(app): State<App>, caller: Caller, Path(user): Path<Id>) -> ApiResult<StatusCode> {
    if !app.store.blocks.unblock(caller.user, user).await? {
        return Err(ApiError::not_found(code::UNKNOWN_USER, "blocked user"));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(State(app): State<App>, caller: Caller) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(app.store.blocks.blocked_by(caller.user).await?))
}

//! `POST /api/auth/logout` → 204; the bearer token stops working.

use super::error::ApiResult;
use super::extract::Caller;
use crate::app::App;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn handler(State(app): State<App>, caller: Caller) -> ApiResult<StatusCode> {
    app.store.sessions.delete_session(&caller.token_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

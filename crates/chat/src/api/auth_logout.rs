//! `POST /api/auth/logout` → 204; the bearer token stops working, and every gateway and voice
//! connection identified with it ends at once (gateway: close 4004).

use super::error::ApiResult;
use super::extract::Caller;
use crate::app::App;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn handler(State(app): State<App>, caller: Caller) -> ApiResult<StatusCode> {
    app.store.sessions.delete_session(&caller.token_hash).await?;
    app.revoke_login(&caller.token_hash, caller.user);
    Ok(StatusCode::NO_CONTENT)
}

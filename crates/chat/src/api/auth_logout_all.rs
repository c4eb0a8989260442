//! `POST /api/auth/logout-all` → 204: every login of the caller ends, this one included — each
//! gateway socket closes with 4004 and each voice session ends, on every device.

use super::error::ApiResult;
use super::extract::Caller;
use crate::app::App;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn handler(State(app): State<App>, caller: Caller) -> ApiResult<StatusCode> {
    for login in app.store.sessions.delete_sessions_of(caller.user).await? {
        app.revoke_login(&login, caller.user);
    }
    // Revoked too if the store no longer had it (expired meanwhile): it must not live on in a cache.
    app.revoke_login(&caller.token_hash, caller.user);
    Ok(StatusCode::NO_CONTENT)
}

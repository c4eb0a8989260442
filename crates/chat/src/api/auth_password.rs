//! `POST /api/auth/password` `{password, new_password}` → `{token, user, expires_at}`: changes the
//! caller's password after checking the current one. Every login of the user ends, this one
//! included (their gateway sockets close with 4004, their voice sessions end); the answer carries
//! a fresh token. Rate-limited like login.

use super::auth_login::{check_limits, start_session};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json};
use super::validate;
use crate::app::App;
use crate::listener::PeerAddr;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub password: String,
    pub new_password: String,
}

pub async fn handler(
    State(app): State<App>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    caller: Caller,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<Value>> {
    validate::password(&body.new_password)?;
    let me = app.store.users.user(caller.user).await?.ok_or_else(ApiError::unauthorized)?;
    check_limits(&app, peer.ip(), Some(&me.username))?;
    let (_, hash) = app.store.users.credentials(&me.username).await?.ok_or_else(ApiError::unauthorized)?;
    if !app.passwords.verify(body.password, hash).await? {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, code::INVALID_CREDENTIALS, "current password is wrong"));
    }
    let new_hash = app.passwords.hash(body.new_password).await?;
    app.store.users.set_password(me.id, &new_hash).await?;
    for login in app.store.sessions.delete_sessions_of(me.id).await? {
        app.revoke_login(&login, me.id);
    }
    start_session(&app, me).await
}

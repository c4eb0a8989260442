//! `POST /api/auth/signup` `{username, password}` → 201 `{token, user, expires_at}`. Rate-limited
//! per IP like login.

use super::auth_login::{check_limits, start_session};
use super::error::ApiResult;
use super::extract::Json;
use super::validate;
use crate::app::App;
use crate::id::now_ms;
use crate::listener::PeerAddr;
use crate::store::User;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub username: String,
    pub password: String,
}

pub async fn handler(
    State(app): State<App>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Json(body): Json<Body>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    validate::username(&body.username)?;
    validate::password(&body.password)?;
    check_limits(&app, peer.ip(), None)?;
    let hash = app.passwords.hash(body.password).await?;
    let user = User::new(app.ids.next(), body.username, now_ms());
    app.store.users.create_user(&user, &hash).await?;
    Ok((StatusCode::CREATED, start_session(&app, user).await?))
}

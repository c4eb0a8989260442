//! `POST /api/auth/login` `{username, password}` → `{token, user, expires_at}`. Rate-limited per
//! account and per IP; unknown users and wrong passwords get the same answer. Hashing waits for a
//! slot in the bounded pool (`auth::Passwords`): 503 with Retry-After when it is saturated.

use super::error::{ApiError, ApiResult, code};
use super::extract::Json;
use crate::app::App;
use crate::auth::{hash_token, new_token};
use crate::id::now_ms;
use crate::listener::PeerAddr;
use crate::store::{Session, User};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::Instant;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub username: String,
    pub password: String,
}

/// A valid PHC string to verify against when the user does not exist, so timing does not tell.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ggO2b5KRyD8fQe8AmgNKJJu7NNMzTnnUAZtzDNvt1jU";

pub async fn handler(
    State(app): State<App>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<Value>> {
    check_limits(&app, peer.ip(), Some(&body.username))?;
    let found = app.store.users.credentials(&body.username).await?;
    let hash = found.as_ref().map_or(DUMMY_HASH.to_string(), |(_, h)| h.clone());
    let ok = app.passwords.verify(body.password, hash).await?;
    match found {
        Some((user, _)) if ok => start_session(&app, user).await,
        _ => Err(ApiError::new(StatusCode::UNAUTHORIZED, code::INVALID_CREDENTIALS, "invalid username or password")),
    }
}

/// Takes a token from the per-IP bucket and, for logins, the per-account one.
pub fn check_limits(app: &App, ip: IpAddr, account: Option<&str>) -> ApiResult<()> {
    let now = Instant::now();
    let by_ip = app.login_by_ip.lock().unwrap_or_else(|p| p.into_inner()).check(&ip, now);
    by_ip.map_err(ApiError::rate_limited)?;
    if let Some(name) = account {
        let key = name.to_ascii_lowercase();
        app.login_by_account
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(&key, now)
            .map_err(ApiError::rate_limited)?;
    }
    Ok(())
}

pub async fn start_session(app: &App, user: User) -> ApiResult<axum::Json<Value>> {
    let token = new_token();
    let now = now_ms();
    let expires_at = now + (app.cfg.session_ttl_secs as i64).saturating_mul(1000);
    let session = Session { token_hash: hash_token(&token), user_id: user.id, created_at: now, expires_at };
    app.store.sessions.create_session(&session).await?;
    Ok(axum::Json(json!({ "token": token, "user": user, "expires_at": expires_at })))
}

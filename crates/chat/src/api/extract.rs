//! Extractors whose rejections are [`ApiError`]s, and the bearer-token caller.

use super::error::{ApiError, code};
use crate::app::App;
use crate::auth::hash_token;
use crate::id::{Id, now_ms};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;

/// JSON body; malformed, oversized or mistyped bodies become `{code, message}` errors.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// Path parameters; an id that does not parse is a 404.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(r.status(), code::PAYLOAD_TOO_LARGE, "request body too large")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ApiError::new(r.status(), code::UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json")
            }
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::invalid(r.body_text()),
            _ => ApiError::new(StatusCode::BAD_REQUEST, code::INVALID_JSON, r.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code::UNKNOWN_ROUTE, format!("bad path: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::invalid(r.body_text())
    }
}

/// The authenticated user behind `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Id,
    pub token_hash: String,
    /// When the login expires, Unix ms.
    pub expires_at: i64,
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Caller, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthorized)?;
        caller_for_token(app, token).await?.ok_or_else(ApiError::unauthorized)
    }
}

/// Resolves a session token (HTTP or gateway) to its user, if valid and unexpired: from the cache
/// when it knows, else from the store.
pub async fn caller_for_token(app: &App, token: &str) -> Result<Option<Caller>, ApiError> {
    let token_hash = hash_token(token.trim());
    let now = now_ms();
    if app.cfg.auth_cache
        && let Some((user, expires_at)) = app.caches.login(&token_hash, now)
    {
        return Ok(Some(Caller { user, token_hash, expires_at }));
    }
    let Some(s) = app.store.sessions.session(&token_hash, now).await? else { return Ok(None) };
    app.caches.put_login(&token_hash, s.user_id, s.expires_at);
    // Revoked while the store was read: the row was read before its delete, so forget it again.
    if app.is_revoked(&token_hash) {
        app.caches.forget_login(&token_hash);
        return Ok(None);
    }
    Ok(Some(Caller { user: s.user_id, token_hash, expires_at: s.expires_at }))
}

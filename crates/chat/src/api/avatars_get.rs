//! `GET /api/avatars/{user_id}/{hash}.png` → the avatar (public, as Discord's are: a name in the
//! member list is no secret; the hash changes with the image, so it is cached for good).

use super::error::{ApiError, ApiResult, code};
use super::extract::Path;
use crate::app::App;
use crate::id::Id;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub async fn handler(State(app): State<App>, Path((user, file)): Path<(Id, String)>) -> ApiResult<Response> {
    let unknown = || ApiError::not_found(code::UNKNOWN_USER, "avatar");
    let hash = file.strip_suffix(".png").filter(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let hash = hash.ok_or_else(unknown)?;
    let blob = app.blobs.get(&super::avatar::key(user, hash)).await.map_err(|e| {
        tracing::warn!(error = %e, "avatar read");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, "the avatar cannot be read now; retry later")
    })?;
    let (stream, len) = blob.ok_or_else(unknown)?;
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    Ok(r)
}

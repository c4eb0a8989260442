//! `PUT /api/users/@me/avatar` (the image as the body: PNG, JPEG, GIF or WebP, up to
//! [`MAX_AVATAR_BYTES`]) → the caller's user: the image cropped to its centre square and scaled to
//! [`SIZE`] px, stored as PNG under `avatars/<user_id>/<hash>.png`. `DELETE` → the user, without
//! one. USER_UPDATE as for a display name. The old image is removed.

use super::error::{ApiError, ApiResult, code};
use super::extract::Caller;
use super::upload::with_image;
use crate::app::App;
use crate::store::User;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};
use std::io::Cursor;

/// An avatar's side, in pixels.
pub const SIZE: u32 = 256;
/// The largest image accepted.
pub const MAX_AVATAR_BYTES: usize = 8 << 20;

/// Where an avatar is kept in the blob store.
pub fn key(user: crate::id::Id, hash: &str) -> String {
    format!("avatars/{user}/{hash}.png")
}

pub async fn put(
    State(app): State<App>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<User>> {
    let kind = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !kind.starts_with("image/") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::UNSUPPORTED_MEDIA_TYPE,
            "send the avatar as the body with an image/* Content-Type",
        ));
    }
    let png = with_image(body.to_vec(), |_, img| {
        let side = img.width().min(img.height());
        let square = img.crop_imm((img.width() - side) / 2, (img.height() - side) / 2, side, side);
        let small = square.resize_exact(SIZE, SIZE, image::imageops::FilterType::Lanczos3);
        let mut out = Cursor::new(Vec::new());
        small.write_to(&mut out, image::ImageFormat::Png).ok().map(|_| out.into_inner())
    })
    .await
    .flatten()
    .ok_or_else(|| ApiError::invalid("the avatar must be a PNG, JPEG, GIF or WebP image"))?;
    let hash: String = Sha256::digest(&png).iter().take(8).map(|b| format!("{b:02x}")).collect();
    app.blobs.put(&key(caller.user, &hash), &png).await.map_err(storage)?;
    set(&app, caller.user, Some(hash)).await
}

pub async fn delete(State(app): State<App>, caller: Caller) -> ApiResult<axum::Json<User>> {
    set(&app, caller.user, None).await
}

async fn set(app: &App, user: crate::id::Id, avatar: Option<String>) -> ApiResult<axum::Json<User>> {
    let mut me = app.store.users.user(user).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_USER, "user"))?;
    let old = std::mem::replace(&mut me.avatar, avatar);
    app.store.users.set_profile(user, me.display_name.as_deref(), me.avatar.as_deref()).await?;
    if let Some(old) = old.filter(|o| Some(o) != me.avatar.as_ref())
        && let Err(e) = app.blobs.delete(&key(user, &old)).await
    {
        tracing::warn!(error = %e, "could not remove an old avatar");
    }
    super::users_update::announce(app, &me).await?;
    Ok(axum::Json(me))
}

fn storage(e: std::io::Error) -> ApiError {
    tracing::warn!(error = %e, "avatar storage");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, "the avatar cannot be stored now; retry later")
}

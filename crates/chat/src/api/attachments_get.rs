//! `GET /api/attachments/{channel_id}/{attachment_id}/{filename}?s=<signature>[&size=thumb]` →
//! the file (or an image's preview). The signed URL comes with the message, to those who can read
//! its channel, and lasts a day; it needs no bearer token, so `<img src>` works. Images are
//! served inline as what their bytes are; anything else only as a download, and never sniffed.

use super::error::{ApiError, ApiResult, code};
use super::extract::{Path, Query};
use crate::app::App;
use crate::id::{Id, now_ms};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Params {
    #[serde(default)]
    s: String,
    #[serde(default)]
    size: Option<String>,
}

pub async fn handler(
    State(app): State<App>,
    Path((channel, attachment, _name)): Path<(Id, Id, String)>,
    Query(q): Query<Params>,
) -> ApiResult<Response> {
    let scope = format!("attachment:{}:{}", channel.0, attachment.0);
    if !app.watch_tokens.verify_scoped(&scope, &q.s, now_ms()) {
        let message = "this link is not valid (or has expired): fetch the message again for a fresh one";
        return Err(ApiError::new(StatusCode::FORBIDDEN, code::MISSING_ACCESS, message));
    }
    let unknown = || ApiError::not_found(code::UNKNOWN_ATTACHMENT, "attachment");
    let (sent_in, a) =
        app.store.messages.attachment(attachment).await?.filter(|(c, _)| *c == channel).ok_or_else(unknown)?;
    let thumb = q.size.as_deref() == Some("thumb");
    if thumb && !a.thumbnail {
        return Err(unknown());
    }
    let key = if thumb { format!("{}.thumb", a.key(sent_in)) } else { a.key(sent_in) };
    let blob = app.blobs.get(&key).await.map_err(|e| {
        tracing::warn!(error = %e, key, "attachment read");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, "the file cannot be read now; retry later")
    })?;
    let (stream, len) = blob.ok_or_else(unknown)?;
    let image = a.content_type.starts_with("image/");
    let kind = match (thumb, image) {
        (true, _) => "image/jpeg".into(),
        (false, true) => a.content_type.clone(),
        (false, false) => "application/octet-stream".into(),
    };
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if image { "inline" } else { "attachment" },
        super::validate::url_component(&a.filename)
    );
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&kind).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Nothing in a file may run as a page of this origin, whatever a browser makes of it.
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400, immutable"));
    Ok(r)
}

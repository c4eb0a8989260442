//! A message's body: JSON `{content}` ([`json`]), or `multipart/form-data` ([`multipart`]) with a
//! `content` field and up to
//! [`MAX_FILES`] `files` parts. Each file streams to a scratch file in the blob store (never whole
//! in memory), at most `max_attachment_bytes` (else 413); uploads beyond `max_concurrent_uploads`
//! wait. Images (PNG, JPEG, GIF, WebP, recognised by their bytes, not their name) get their size
//! and a preview; they alone are served inline, everything else as a download.

use super::error::{ApiError, ApiResult, code};
use super::validate;
use crate::app::App;
use crate::id::Id;
use crate::store::Attachment;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use std::io::Cursor;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Files per message, at most.
pub const MAX_FILES: usize = 10;
/// Previews fit in this square.
const THUMB: u32 = 320;
/// Images decoded at once (each may take up to [`DECODE_ALLOC`]).
const DECODES: usize = 2;
const DECODE_ALLOC: u64 = 128 << 20;

static DECODING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(DECODES);

/// A file received, not yet stored.
pub struct Upload {
    pub attachment: Attachment,
    file: PathBuf,
    thumbnail: Option<Vec<u8>>,
}

/// Whether the request carries files (else it is JSON).
pub fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|k| k.starts_with("multipart/form-data"))
}

/// What a message request says besides its files.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    #[serde(default)]
    pub content: String,
    /// The message answered (in the same channel).
    #[serde(default)]
    pub reply_to: Option<Id>,
    /// Whether the answered message's author is mentioned (default: yes, as Discord).
    #[serde(default)]
    pub mention_reply: Option<bool>,
}

/// A JSON body. It keeps the small body limit even on the messages route, whose own limit is
/// for files.
pub async fn json(app: &App, req: Request) -> ApiResult<Draft> {
    let limit = app.cfg.max_body_bytes.max(validate::MIN_BODY_BYTES);
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large("request body too large"))?;
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let super::extract::Json(draft) = super::extract::Json::<Draft>::from_request(req, app).await?;
    Ok(draft)
}

/// The content and files of a multipart message request.
pub async fn multipart(app: &App, req: Request) -> ApiResult<(Draft, Vec<Upload>)> {
    let busy = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, "shutting down");
    let _slot = app.uploads.acquire().await.map_err(|_| busy())?;
    let mut form = Multipart::from_request(req, app).await.map_err(|e| ApiError::invalid(e.body_text()))?;
    let (mut draft, mut uploads) = (Draft::default(), Vec::new());
    let result = async {
        while let Some(field) = form.next_field().await.map_err(multipart_error)? {
            match field.name() {
                Some("content") => draft.content = read_text(field, app.cfg.max_body_bytes).await?,
                Some("reply_to") => {
                    let id = read_text(field, 64).await?;
                    draft.reply_to = Some(id.trim().parse().map_err(|_| ApiError::invalid("reply_to: a message id"))?);
                }
                Some("mention_reply") => {
                    draft.mention_reply = Some(read_text(field, 8).await?.trim() != "false");
                }
                Some("files") if uploads.len() >= MAX_FILES => {
                    return Err(ApiError::invalid(format!("at most {MAX_FILES} files per message")));
                }
                Some("files") => uploads.push(receive(app, field).await?),
                other => {
                    let message = format!("unknown form field {other:?}: use content, files, reply_to, mention_reply");
                    return Err(ApiError::invalid(message));
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        discard_uploads(&uploads).await;
        return Err(e);
    }
    Ok((draft, uploads))
}

fn too_large(message: &str) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code::PAYLOAD_TOO_LARGE, message)
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large("the upload is too large"),
        _ => ApiError::invalid(e.body_text()),
    }
}

async fn read_text(mut field: axum::extract::multipart::Field<'_>, max: usize) -> ApiResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if buf.len() + chunk.len() > max {
            return Err(too_large("content is too large"));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| ApiError::invalid("content is not UTF-8"))
}

/// One file part, streamed to scratch, then looked at.
async fn receive(app: &App, mut field: axum::extract::multipart::Field<'_>) -> ApiResult<Upload> {
    let filename = validate::file_name(field.file_name().unwrap_or("file"));
    let scratch = app.blobs.scratch();
    if let Some(dir) = scratch.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io_error)?;
    }
    let mut f = tokio::fs::File::create(&scratch).await.map_err(io_error)?;
    let (mut size, max) = (0u64, app.cfg.max_attachment_bytes);
    let copied: ApiResult<()> = async {
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            size += chunk.len() as u64;
            if size > max {
                return Err(too_large(&format!("a file may be at most {max} bytes")));
            }
            f.write_all(&chunk).await.map_err(io_error)?;
        }
        f.sync_all().await.map_err(io_error)
    }
    .await;
    if let Err(e) = copied {
        let _ = tokio::fs::remove_file(&scratch).await;
        return Err(e);
    }
    let (image, thumbnail) = inspect(&scratch).await;
    let attachment = Attachment {
        id: app.ids.next(),
        filename,
        content_type: image.map_or("application/octet-stream", |i| i.mime).to_string(),
        size: size as i64,
        width: image.map(|i| i64::from(i.width)),
        height: image.map(|i| i64::from(i.height)),
        url: String::new(),
        thumbnail_url: None,
        thumbnail: thumbnail.is_some(),
    };
    Ok(Upload { attachment, file: scratch, thumbnail })
}

#[derive(Clone, Copy)]
struct ImageInfo {
    mime: &'static str,
    width: u32,
    height: u32,
}

/// Whether the file is an image browsers show (by its bytes), its size and a preview.
async fn inspect(path: &std::path::Path) -> (Option<ImageInfo>, Option<Vec<u8>>) {
    let Ok(bytes) = tokio::fs::read(path).await else { return (None, None) };
    let seen = with_image(bytes, |mime, img| {
        let info = ImageInfo { mime, width: img.width(), height: img.height() };
        // Previews are JPEG; transparency is laid over the chat's background colour.
        let fits = img.width() <= THUMB && img.height() <= THUMB;
        let small = if fits { img.to_rgba8() } else { img.thumbnail(THUMB, THUMB).to_rgba8() };
        let bg = [0x31u16, 0x33, 0x38];
        let flat = image::RgbImage::from_fn(small.width(), small.height(), |x, y| {
            let p = small.get_pixel(x, y).0;
            let a = u16::from(p[3]);
            image::Rgb(std::array::from_fn(|i| ((u16::from(p[i]) * a + bg[i] * (255 - a)) / 255) as u8))
        });
        let mut out = Cursor::new(Vec::new());
        let encoded = flat.write_to(&mut out, image::ImageFormat::Jpeg).ok().map(|_| out.into_inner());
        (Some(info), encoded)
    })
    .await;
    seen.unwrap_or((None, None))
}

/// Decodes `bytes` if they are an image browsers show (PNG, JPEG, GIF, WebP) and hands it, with
/// its MIME type, to `f`, off the async runtime; `None` when they are not one. Bounded in memory
/// (decoder limits: a decompression bomb is just not an image) and in concurrency.
pub(super) async fn with_image<T: Send + 'static>(
    bytes: Vec<u8>,
    f: impl FnOnce(&'static str, image::DynamicImage) -> T + Send + 'static,
) -> Option<T> {
    let _permit = DECODING.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || {
        let mime = match image::guess_format(&bytes) {
            Ok(image::ImageFormat::Png) => "image/png",
            Ok(image::ImageFormat::Jpeg) => "image/jpeg",
            Ok(image::ImageFormat::Gif) => "image/gif",
            Ok(image::ImageFormat::WebP) => "image/webp",
            _ => return None,
        };
        let mut reader = image::ImageReader::new(Cursor::new(&bytes));
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(DECODE_ALLOC);
        limits.max_image_width = Some(16_384);
        limits.max_image_height = Some(16_384);
        reader.limits(limits);
        let img = reader.with_guessed_format().ok()?.decode().ok()?;
        Some(f(mime, img))
    })
    .await
    .ok()
    .flatten()
}

fn io_error(e: std::io::Error) -> ApiError {
    tracing::warn!(error = %e, "attachment storage");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, "attachments cannot be stored now; retry later")
}

/// Moves the files into the blob store under `channel`: the attachments to record.
pub async fn store(app: &App, channel: Id, uploads: Vec<Upload>) -> ApiResult<Vec<Attachment>> {
    let mut stored = Vec::with_capacity(uploads.len());
    for u in uploads {
        let key = u.attachment.key(channel);
        let put = async {
            app.blobs.put_file(&key, u.file.clone()).await?;
            if let Some(t) = &u.thumbnail {
                app.blobs.put(&format!("{key}.thumb"), t).await?;
            }
            Ok::<_, std::io::Error>(())
        }
        .await;
        if let Err(e) = put {
            let _ = tokio::fs::remove_file(&u.file).await;
            discard(app, channel, &stored).await;
            return Err(io_error(e));
        }
        stored.push(u.attachment);
    }
    Ok(stored)
}

/// Removes stored attachments (their message was not kept, or was deleted).
pub async fn discard(app: &App, channel: Id, attachments: &[Attachment]) {
    for a in attachments {
        let key = a.key(channel);
        let _ = app.blobs.delete(&key).await;
        let _ = app.blobs.delete(&format!("{key}.thumb")).await;
    }
}

async fn discard_uploads(uploads: &[Upload]) {
    for u in uploads {
        let _ = tokio::fs::remove_file(&u.file).await;
    }
}

/// Drops uploads that will not be stored (the message was refused after they arrived).
pub async fn drop_uploads(uploads: Vec<Upload>) {
    discard_uploads(&uploads).await;
}

//! API errors: an HTTP status plus `{ "code": <stable number>, "message": … }`.

use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Stable error codes (Discord-like numbering). Clients may match on these; never renumber.
pub mod code {
    pub const INTERNAL: u32 = 0;
    pub const UNKNOWN_CHANNEL: u32 = 10003;
    pub const UNKNOWN_GUILD: u32 = 10004;
    pub const UNKNOWN_INVITE: u32 = 10006;
    pub const UNKNOWN_MEMBER: u32 = 10007;
    pub const UNKNOWN_MESSAGE: u32 = 10008;
    pub const UNKNOWN_ROLE: u32 = 10011;
    pub const UNKNOWN_USER: u32 = 10013;
    pub const UNKNOWN_REPORT: u32 = 10020;
    pub const UNKNOWN_ATTACHMENT: u32 = 10021;
    pub const UNKNOWN_BAN: u32 = 10026;
    pub const UNKNOWN_ROUTE: u32 = 10404;
    /// A request hyper could not parse (request line, a header such as `Content-Length: abc`).
    pub const BAD_REQUEST: u32 = 40000;
    pub const UNAUTHORIZED: u32 = 40001;
    pub const INVALID_CREDENTIALS: u32 = 40002;
    /// Joining a guild one is banned from.
    pub const BANNED: u32 = 40007;
    pub const USERNAME_TAKEN: u32 = 40009;
    pub const PAYLOAD_TOO_LARGE: u32 = 40013;
    pub const URI_TOO_LONG: u32 = 40014;
    /// `/gateway` or `/voice` without a WebSocket upgrade.
    pub const WEBSOCKET_REQUIRED: u32 = 40026;
    pub const RATE_LIMITED: u32 = 40029;
    pub const HEADERS_TOO_LARGE: u32 = 40031;
    pub const METHOD_NOT_ALLOWED: u32 = 40405;
    pub const MISSING_ACCESS: u32 = 50001;
    pub const MISSING_PERMISSIONS: u32 = 50013;
    pub const INVALID_FORM_BODY: u32 = 50035;
    pub const INVALID_JSON: u32 = 50109;
    pub const UNSUPPORTED_MEDIA_TYPE: u32 = 50415;
    pub const UNAVAILABLE: u32 = 50503;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    pub retry_after: Option<Duration>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code::INVALID_FORM_BODY, message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, "missing, invalid or expired session token")
    }

    pub fn not_member() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code::MISSING_ACCESS, "you are not a member of this guild")
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code::MISSING_PERMISSIONS, message)
    }

    pub fn not_found(code: u32, what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, format!("unknown {what}"))
    }

    pub fn with_message(mut self, message: impl Into<String>) -> ApiError {
        self.message = message.into();
        self
    }

    /// 429 saying how long to wait (also as `retry_after` and `Retry-After`).
    pub fn rate_limited(retry_after: Duration) -> ApiError {
        let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let message = format!("too many attempts: try again in {secs} s");
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, code::RATE_LIMITED, message)
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict("username") => {
                ApiError::new(StatusCode::CONFLICT, code::USERNAME_TAKEN, "username already taken")
            }
            StoreError::Conflict(what) => {
                ApiError::new(StatusCode::CONFLICT, code::INVALID_FORM_BODY, format!("{what} already exists"))
            }
            StoreError::Banned => ApiError::new(StatusCode::FORBIDDEN, code::BANNED, "you are banned from this server"),
            StoreError::NotFound("member") => ApiError::not_found(code::UNKNOWN_MEMBER, "member"),
            StoreError::NotFound("invite") => {
                ApiError::not_found(code::UNKNOWN_INVITE, "invite (or expired, or used up)")
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, "storage unavailable, try again")
            }
        }
    }
}

impl From<axum::extract::ws::rejection::WebSocketUpgradeRejection> for ApiError {
    fn from(r: axum::extract::ws::rejection::WebSocketUpgradeRejection) -> ApiError {
        let message = format!("this endpoint speaks WebSocket only: {}", r.body_text());
        ApiError::new(r.status(), code::WEBSOCKET_REQUIRED, message)
    }
}

impl From<crate::auth::HashError> for ApiError {
    fn from(e: crate::auth::HashError) -> ApiError {
        match e {
            crate::auth::HashError::Busy => ApiError {
                retry_after: Some(Duration::from_secs(1)),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::UNAVAILABLE,
                    "too many logins at once, try again shortly",
                )
            },
            crate::auth::HashError::Failed(detail) => {
                tracing::error!(%detail, "password hashing failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL, "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(after) = self.retry_after {
            // Seconds, fractional, as Discord's `retry_after`; the header rounds up.
            body["retry_after"] = serde_json::json!((after.as_secs_f64() * 1000.0).ceil() / 1000.0);
        }
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

//! `GET /api/openapi.json` → the OpenAPI 3.1 description of this API (`crates/chat/openapi.json`).

use axum::http::header;
use axum::response::IntoResponse;

pub const SPEC: &str = include_str!("../../openapi.json");

pub async fn handler() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], SPEC)
}

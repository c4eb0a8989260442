//! Path and query extractors whose rejections are `{code, message}` like every other error here
//! (axum's own answer in plain text): a path with a bad percent-escape is a clear 400.

use crate::http::error;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::de::DeserializeOwned;

/// 50035: invalid form body or path, as the rest of the server numbers it.
const INVALID: u32 = 50035;

/// [`Path`] answering a rejection with a JSON 400.
pub struct ParsedPath<T>(pub T);

/// [`Query`] answering a rejection with a JSON 400.
pub struct ParsedQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ParsedPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(ParsedPath(t)),
            Err(e) => Err(error(StatusCode::BAD_REQUEST, INVALID, &e.body_text())),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ParsedQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(t)) => Ok(ParsedQuery(t)),
            Err(e) => Err(error(StatusCode::BAD_REQUEST, INVALID, &e.body_text())),
        }
    }
}

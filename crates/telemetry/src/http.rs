//! HTTP request metrics as axum middleware: by route template (`/api/channels/{id}/messages`,
//! never the raw path, so ids do not explode the series), method and status.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// `confab_http_requests_total{method,route,status}` and
/// `confab_http_request_duration_seconds{method,route}` (to the response head; a WebSocket
/// upgrade counts until its 101).
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None => "unmatched".to_owned(),
    };
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    let status = res.status().as_str().to_owned();
    metrics::histogram!("confab_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("confab_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    res
}

/// Describes the HTTP series (HELP lines).
pub fn describe() {
    metrics::describe_counter!("confab_http_requests_total", "HTTP requests answered, by route, method and status.");
    metrics::describe_histogram!(
        "confab_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to the response head, by route and method."
    );
}

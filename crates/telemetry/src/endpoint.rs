//! `GET /metrics` on a listener of its own.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Run at each scrape before rendering: sets gauges and counters from component snapshots and
/// returns extra text-format series (see [`crate::exposition`]).
pub type Collect = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    collect: Collect,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = crate::install().map_err(std::io::Error::other)?;
    crate::http::describe();
    let process = Arc::new(metrics_process::Collector::default());
    let scrape = move || {
        let (handle, collect, process) = (handle.clone(), collect.clone(), process.clone());
        async move {
            process.collect();
            let extra = collect().await;
            handle.run_upkeep();
            let mut body = handle.render();
            body.push_str(&extra);
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
        }
    };
    let app = Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics is served here\n").into_response() });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

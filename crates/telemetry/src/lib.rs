//! # telemetry — Prometheus metrics for confab
//!
//! Every crate records through the [`metrics`] facade (a no-op until a recorder is installed); the
//! binary installs this crate's recorder only when `[metrics] listen` is set, and serves the text
//! format on that listener, never on the public port.
//!
//! - [`recorder`]: the process-wide Prometheus recorder ([`install`]) and its histogram buckets.
//! - [`endpoint`]: `GET /metrics` on its own listener; each scrape first runs the caller's
//!   collector (engine snapshots are read at scrape time, not pushed per packet).
//! - [`http`]: requests by route, method and status, with a latency histogram (axum middleware).
//! - [`exposition`]: text-format helpers for what the recorder cannot hold (a histogram whose
//!   buckets another component already counts).
//!
//! Names follow Prometheus conventions: `confab_` prefix, base units (`_seconds`, `_bytes`),
//! `_total` for counters; process metrics are the standard `process_*` ones.

pub mod endpoint;
pub mod exposition;
pub mod http;
pub mod recorder;

pub use endpoint::{Collect, serve};
pub use recorder::install;

//! # confab — one binary for voice, video and text chat
//!
//! The library half of the `confab` package: configuration and the composition of the crates into
//! a running server. `main.rs` is the CLI over it; the `ffi` crate embeds it.
//!
//! - [`config`]: defaults < TOML file < `CONFAB_*` environment < flags.
//! - [`server`]: [`server::Running`] starts the store, chat plane, media engine and voice gateway.
//! - [`embed`]: rooms, join tokens, participants, stats and events for an embedding application.
//! - [`live`]: live streaming: RTMP ingest authorised by the chat store's stream keys, LL-HLS.
//! - [`metrics`]: what `/metrics` (the `telemetry` crate, on `[metrics] listen`) reads at a scrape.
//! - [`media`]: the MCU (`mcu`: compositor, mix-minus) plugged into the media engine (`sfu`).
//! - [`web`]: the browser client (`web/`), embedded and served at `/`.

pub mod config;
pub mod embed;
pub mod live;
pub mod media;
pub mod metrics;
pub mod server;
pub mod web;
pub mod whip;

//! # chat — confab's chat/auth plane
//!
//! Accounts, guilds, channels, messages, read states and reports, served over HTTP (`/api`) and a
//! Discord-style WebSocket gateway (`/gateway`). It knows nothing of media.
//!
//! Module map:
//! - [`id`]: snowflake ids (time-ordered 64-bit), serialised as strings.
//! - [`store`]: the data model, one storage trait per aggregate, and the SQL implementation that
//!   serves both SQLite (default) and Postgres.
//! - [`auth`]: argon2id password hashing, opaque session tokens, a sans-IO rate limiter.
//! - [`cache`]: bounded caches of logins, channels and memberships, invalidated on change.
//! - [`config`]: tunables and limits.
//! - [`perms`]: the permission bitfield of roles, and who may act on whom.
//! - [`app`]: the shared state handed to routes and sockets; publishing; housekeeping.
//! - [`api`]: the REST routes, one per file, and their `{code, message}` errors.
//! - [`gateway`]: the WebSocket gateway: sans-IO connection and session machines, the hub that
//!   fans events out, the broker trait, and the socket driver.
//! - [`server`]: the router and a graceful serve loop; [`listener`]: the TCP listener under it,
//!   which gives hyper's own error answers the `{code, message}` body.
//! - [`streams`]: stream states of live channels (idle, live, ended), reported by the live engine.
//! - [`voice`]: voice states (who is in which voice channel), reported by the voice gateway.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = chat::store::Store::open("sqlite:data/confab.db").await?;
//! let app = chat::app::App::new(store, chat::config::ChatConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let router = chat::server::router(&app);
//! chat::server::serve(listener, app, router, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod app;
pub mod auth;
pub mod blobs;
pub mod cache;
pub mod config;
pub mod gateway;
pub mod id;
pub mod listener;
pub mod notices;
pub mod perms;
pub mod server;
pub mod store;
pub mod streams;
pub mod voice;

//! # signaling — confab's voice gateway (work in progress)
//!
//! - [`protocol`]: the `/voice` WebSocket protocol, shared with clients.
pub mod protocol;

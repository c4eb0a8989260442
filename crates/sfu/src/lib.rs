//! # sfu — confab's media engine (work in progress)
//!
//! - [`speaker`]: sans-IO speaker detection from RFC 6464 audio levels (threshold, attack,
//!   hangover, dominant speaker, ranking for last-N forwarding).
pub mod speaker;

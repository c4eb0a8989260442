//! Light load: many synthetic participants per thread for forwarding benchmarks. Each is a str0m
//! `Rtc` in RTP mode on its own loopback socket, one tokio task, sending a stamped Opus-sized
//! payload every 20 ms and counting (never depacketising or decoding) what it receives, so this
//! box can load a server with a fraction of what a webrtc-rs client costs. The webrtc-rs clients
//! ([`crate::voice`]) stay the probes: they decode, and tell loss, jitter and latency as a user
//! would hear them.
//!
//! - [`peer`]: one `Rtc`, its socket and its send and receive loop; the stamp and the counts.
//! - [`confab`]: joining a confab voice channel (grant, voice gateway, one offer and answer).
//! - [`janus`]: joining a Janus VideoRoom over its WebSocket API (publisher and subscriber handles).

pub mod confab;
pub mod janus;
pub mod peer;

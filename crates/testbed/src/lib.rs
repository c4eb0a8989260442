//! confab's testbed: synthetic clients that use the server only as outsiders do, over HTTP,
//! WebSocket and UDP, sharing nothing with it but the protocol types of `signaling::protocol`.
//! Media runs on webrtc-rs, a WebRTC stack independent of the server's str0m, and checks content,
//! not byte counts: each participant speaks its own tone and listeners say which tones they hear.
//!
//! Module map:
//! - [`tone`]: sine generator, Goertzel detection, RFC 6464 frame levels.
//! - [`opus_io`]: Opus encode/decode at the testbed's settings; bounded PCM history.
//! - [`peer`]: webrtc-rs set-up (codecs, audio-level extension, loopback UDP) and offer/answer.
//! - [`media`]: the 20 ms send loop and the per-track receive/decode path.
//! - [`events`]: the voice gateway's messages, queued for tests to wait on.
//! - [`grant`]: `POST /api/channels/{id}/voice`, the voice token and gateway URL.
//! - [`socket`]: the voice gateway WebSocket task (hello, heartbeats, frames in and out).
//! - [`voice`]: [`VoiceClient`], the join flow tying them together.

pub mod events;
pub mod grant;
pub mod media;
pub mod opus_io;
pub mod peer;
pub mod socket;
pub mod tone;
pub mod voice;

pub use voice::{HEAR_WINDOW, VoiceClient, VoiceOptions, VoiceSession};

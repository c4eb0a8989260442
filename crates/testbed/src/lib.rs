//! confab's testbed: synthetic clients that use the server only as outsiders do, over HTTP,
//! WebSocket and UDP, sharing nothing with it but the protocol types of `signaling::protocol`.
//! Media runs on webrtc-rs, a WebRTC stack independent of the server's str0m, and checks content,
//! not byte counts: each participant speaks its own tone and shows its own colour, and receivers
//! say which tones they hear and which colours they see.
//!
//! Module map:
//! - [`tone`]: sine generator, Goertzel detection, RFC 6464 frame levels.
//! - [`capture_time`]: the `abs-capture-time` header extension (end-to-end latency).
//! - [`hist`]: a bounded log-linear histogram of durations.
//! - [`rtp_stats`]: per received stream: loss, RFC 3550 jitter, capture-time latency.
//! - [`pattern`]: latency through re-encoding paths: probe tone/colour switches and detections.
//! - [`opus_io`]: Opus encode/decode at the testbed's settings; bounded PCM history.
//! - [`picture`]: I420 pictures, BT.601 colour conversion, mean colour of a block.
//! - [`vp8`]: VP8 encoder and decoder over libvpx.
//! - [`vp8_rtp`]: sans-IO VP8 receive: frame assembly from RTP, keyframe-request decisions;
//!   [`h264_rtp`]: H.264 reassembled into Annex B access units (WHEP viewers of RTMP streams).
//! - [`peer`]: webrtc-rs set-up (Opus, VP8, audio-level extension, loopback UDP) and offer/answer.
//! - [`feedback`]: the interceptor that lets PLI/FIR through to the camera.
//! - [`audio_send`]: the 20 ms audio send loop (live Opus, or pre-encoded loops for load).
//! - [`media`]: the per-track receive path (decoding or only counting; video handed on).
//! - [`video_send`]: the synthetic camera: solid colour, VP8, keyframes on request.
//! - [`camera_loop`]: pre-encoded camera loops, replayed by cameras under load.
//! - [`video_recv`]: per video track decode, stats, latest picture, PLIs.
//! - [`events`]: the voice gateway's messages, queued for tests to wait on; current slots.
//! - [`grant`]: `POST /api/channels/{id}/voice`, the voice token and gateway URL.
//! - [`socket`]: the voice gateway WebSocket task (hello, heartbeats, frames in and out).
//! - [`voice`]: [`VoiceClient`], the join flow tying them together; [`voice_video`] its video;
//!   [`rejoin`]: a participant that joins again by itself when its voice node goes away.
//! - [`hls_viewer`]: the light LL-HLS player for viewer spikes, each on one keep-alive HTTP/1.1
//!   connection ([`http1`]).
//! - [`bench`]: `confab-testbed bench`: load scenarios, measurements, reports and plots.
//! - [`light`]: the light load generator: str0m peers in RTP mode, many per thread, joining
//!   confab or a Janus VideoRoom; [`forward`]: `confab-testbed forward`, confab against Janus on
//!   that load in the same run.

pub mod audio_send;
pub mod bench;
pub mod camera_loop;
pub mod capture_time;
pub mod events;
pub mod feedback;
pub mod forward;
pub mod grant;
pub mod h264_rtp;
pub mod hist;
pub mod hls_viewer;
pub mod http1;
pub mod light;
pub mod media;
pub mod opus_io;
pub mod pattern;
pub mod peer;
pub mod picture;
pub mod rejoin;
pub mod rtp_stats;
pub mod soak;
pub mod socket;
pub mod tone;
pub mod video_recv;
pub mod video_send;
pub mod voice;
pub mod voice_video;
pub mod vp8;
pub mod vp8_rtp;
pub mod whip;

pub use media::ReceiveOptions;
pub use picture::I420;
pub use video_recv::VideoTrackStats;
pub use video_send::CameraOptions;
pub use voice::{HEAR_WINDOW, VoiceClient, VoiceOptions, VoiceSession};

//! # live — confab's live streaming ("Live Now")
//!
//! A creator pushes one stream (RTMP here; WHIP through the media engine, glued in the binary);
//! confab packages it, and the ladder the binary runs (in `mcu`), as low-latency HLS.
//!
//! Module map:
//! - [`codec`] (sans-IO): picture size and codec strings from H.264's SPS, AAC's config;
//!   [`annexb`]: H.264 frames from AVCC to Annex B (for WebRTC viewers).
//! - [`flv`] (sans-IO): what RTMP audio and video messages carry, as FLV tag bodies: H.264
//!   sequence headers and frames, AAC configs and frames; other codecs named for the error.
//! - [`session`] (sans-IO): one RTMP publisher connection: handshake, chunk stream and publish
//!   commands (rml_rtmp's sans-IO `Handshake` and `ServerSession`), deadlines, the bitrate limit.
//! - [`fmp4`] (sans-IO): the CMAF init segment and one `moof`+`mdat` fragment per part.
//! - [`package`] (sans-IO): frames → parts, segments and the playlist of the passthrough
//!   rendition (the source's own H.264 and AAC).
//! - [`playlist`] (sans-IO): LL-HLS media playlists as parts and segments are cut, blocking
//!   reloads (`_HLS_msn`/`_HLS_part`), delta updates (`_HLS_skip`), the master playlist.
//! - [`record`]: `record_dir`: closed segments written to disk with a growing playlist.
//! - [`viewers`] (sans-IO): players counted once each by heartbeat, decaying when they stop;
//!   `http_viewers`: its three endpoints.
//! - [`hub`]: the streams being served (a packager each) and the wake-ups of blocked requests.
//! - [`http`]: LL-HLS over HTTP from memory: master and media playlists (blocking reload, delta
//!   updates), init segment, segments and parts, with CDN-minded caching, ETags and CORS.
//! - [`edge`]: LL-HLS of streams another node ingests, fetched from it once per request however
//!   many viewers ask (coalescing) and kept as long as the origin allows.
//! - [`publishers`]: one publisher per stream across protocols, and the cap on streams.
//! - [`server`]: the tokio listener: a task per connection, stream keys authorised through the
//!   [`server::StreamKeys`] trait, one publisher per stream, [`server::IngestEvent`]s out.
//!
//! No GStreamer here: decoding and the ladder belong to a media crate that alone links it.

pub mod annexb;
pub mod codec;
pub mod edge;
pub mod flv;
pub mod fmp4;
pub mod http;
mod http_extract;
mod http_viewers;
pub mod hub;
pub mod package;
pub mod playlist;
pub mod publishers;
pub mod record;
pub mod server;
pub mod session;
pub mod viewers;

pub use publishers::Publishers;
pub use server::{FrameCodec, IngestEvent, ServerConfig, StreamKeys, serve};
pub use session::{EndReason, IngestConfig};

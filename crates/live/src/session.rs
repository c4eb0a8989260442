//! One RTMP publisher connection as a sans-IO machine: the handshake, the chunk stream and the
//! connect / createStream / publish commands (rml_rtmp's `Handshake` and `ServerSession`, which
//! are sans-IO themselves), then each audio and video message read as an FLV tag ([`crate::flv`]).
//! The driver feeds bytes and the time and carries out the [`Out`]puts; it authorises the stream
//! key and answers with [`Ingest::accept`] or [`Ingest::reject`].
//!
//! Everything a peer can stretch is bounded: the handshake and the wait for `publish` by deadlines,
//! silence after it by an idle timeout, the bitrate by `max_kbps`. rml_rtmp is third-party code fed
//! by the network: a panic inside it ends this connection only.

use crate::flv::{self, Audio, Video};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// From connect to the end of the handshake.
    pub handshake_timeout: Duration,
    /// From connect to a `publish` request.
    pub publish_timeout: Duration,
    /// No media for this long while publishing ends the stream.
    pub idle_timeout: Duration,
    /// Ingest bitrate allowed (audio and video payload), averaged over [`RATE_WINDOW`]; 0: any.
    pub max_kbps: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            handshake_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            max_kbps: 20_000,
        }
    }
}

/// The window the bitrate limit is measured over.
pub const RATE_WINDOW: Duration = Duration::from_secs(2);

/// Bytes a connection may send before its publish is accepted: a real publisher's handshake,
/// connect, createStream and publish take a few KiB. Past this, nothing useful is coming.
pub const MAX_BYTES_BEFORE_PUBLISH: u64 = 64 * 1024;

/// The RTMP application publishers connect to: `rtmp://host/live/<stream key>`.
pub const APP: &str = "live";

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndReason {
    #[error("bad handshake")]
    BadHandshake,
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("unknown application {0:?} (publish to /{APP}/<stream key>)")]
    UnknownApp(String),
    #[error("stream key refused")]
    BadKey,
    #[error("the stream key is already publishing")]
    AlreadyPublishing,
    #[error("this server takes at most {0} streams at once")]
    TooManyStreams(usize),
    #[error("unsupported codec: {0} (send H.264 video and AAC audio)")]
    UnsupportedCodec(String),
    #[error("ingest bitrate {kbps} kbit/s over the limit of {max} kbit/s")]
    TooMuchBitrate { kbps: u64, max: u32 },
    #[error("the publisher finished")]
    Finished,
    #[error("the connection closed")]
    Closed,
}

/// What the driver must do.
#[derive(Debug, PartialEq)]
pub enum Out {
    Send(Vec<u8>),
    /// Authorise `key`, then call [`Ingest::accept`] or [`Ingest::reject`].
    Publish {
        key: String,
    },
    Video {
        ts_ms: u32,
        video: Video,
    },
    Audio {
        ts_ms: u32,
        audio: Audio,
    },
    /// Close the connection; the machine is done.
    Close(EndReason),
}

enum Phase {
    Handshake(Box<Handshake>),
    Session { session: Box<ServerSession>, pending: Option<u32>, publishing: bool },
    Closed,
}

pub struct Ingest {
    cfg: IngestConfig,
    phase: Phase,
    deadline: Instant,
    why: &'static str,
    /// Media bytes since `window_start`, for the bitrate limit.
    window_start: Instant,
    window_bytes: u64,
    /// Every byte read, and those of the current window: partial messages (which the chunk
    /// stream buffers until complete) count too, so nobody can pile them up unmetered.
    read_total: u64,
    read_window: u64,
}

impl Ingest {
    pub fn new(cfg: IngestConfig, now: Instant) -> Ingest {
        Ingest {
            cfg,
            phase: Phase::Handshake(Box::new(Handshake::new(PeerType::Server))),
            deadline: now + cfg.handshake_timeout,
            why: "handshake",
            window_start: now,
            window_bytes: 0,
            read_total: 0,
            read_window: 0,
        }
    }

    pub fn is_publishing(&self) -> bool {
        matches!(self.phase, Phase::Session { publishing: true, .. })
    }

    /// When [`Ingest::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Out> {
        if matches!(self.phase, Phase::Closed) || now < self.deadline {
            return Vec::new();
        }
        self.close(EndReason::Timeout(self.why))
    }

    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Vec<Out> {
        if let Some(close) = self.metered(bytes.len(), now) {
            return close;
        }
        match &mut self.phase {
            Phase::Closed => Vec::new(),
            Phase::Handshake(h) => {
                let r = catch_unwind(AssertUnwindSafe(|| h.process_bytes(bytes)));
                match r {
                    Ok(Ok(HandshakeProcessResult::InProgress { response_bytes })) => send(response_bytes),
                    Ok(Ok(HandshakeProcessResult::Completed { response_bytes, remaining_bytes })) => {
                        let mut out = send(response_bytes);
                        out.extend(self.start_session(&remaining_bytes, now));
                        out
                    }
                    _ => self.close(EndReason::BadHandshake),
                }
            }
            Phase::Session { session, .. } => {
                let r = catch_unwind(AssertUnwindSafe(|| session.handle_input(bytes)));
                match r {
                    Ok(Ok(results)) => self.results(results, now),
                    Ok(Err(e)) => self.close(EndReason::Protocol(e.to_string())),
                    Err(_) => self.close(EndReason::Protocol("unreadable chunk stream".into())),
                }
            }
        }
    }

    /// The key was authorised: the publisher may send.
    pub fn accept(&mut self, now: Instant) -> Vec<Out> {
        let Phase::Session { session, pending, publishing } = &mut self.phase else { return Vec::new() };
        let Some(request) = pending.take() else { return Vec::new() };
        let r = catch_unwind(AssertUnwindSafe(|| session.accept_request(request)));
        *publishing = true;
        (self.deadline, self.why, self.window_start, self.window_bytes) =
            (now + self.cfg.idle_timeout, "no media", now, 0);
        match r {
            Ok(Ok(results)) => self.results(results, now),
            _ => self.close(EndReason::Protocol("could not accept the publish request".into())),
        }
    }

    /// The key was refused: `NetStream.Publish.BadName` (as nginx-rtmp and MediaMTX answer), then
    /// close.
    pub fn reject(&mut self, why: EndReason) -> Vec<Out> {
        let mut out = Vec::new();
        if let Phase::Session { session, pending: Some(request), .. } = &mut self.phase {
            let (request, description) = (*request, why.to_string());
            let r = catch_unwind(AssertUnwindSafe(|| {
                session.reject_request(request, "NetStream.Publish.BadName", &description)
            }));
            if let Ok(Ok(results)) = r {
                out.extend(packets(results));
            }
        }
        out.extend(self.close(why));
        out
    }

    fn start_session(&mut self, remaining: &[u8], now: Instant) -> Vec<Out> {
        let r = catch_unwind(|| ServerSession::new(ServerSessionConfig::new()));
        let Ok(Ok((session, results))) = r else { return self.close(EndReason::Protocol("session setup".into())) };
        self.phase = Phase::Session { session: Box::new(session), pending: None, publishing: false };
        self.why = "no publish request";
        self.deadline = self.deadline.max(now) + self.cfg.publish_timeout.saturating_sub(self.cfg.handshake_timeout);
        let mut out = packets(results);
        if !remaining.is_empty() {
            out.extend(self.handle_input(remaining, now));
        }
        out
    }

    fn results(&mut self, results: Vec<ServerSessionResult>, now: Instant) -> Vec<Out> {
        let mut out = Vec::new();
        for r in results {
            match r {
                ServerSessionResult::OutboundResponse(p) => out.push(Out::Send(p.bytes)),
                ServerSessionResult::RaisedEvent(ev) => out.extend(self.event(ev, now)),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
            if matches!(self.phase, Phase::Closed) {
                break;
            }
        }
        out
    }

    fn event(&mut self, ev: ServerSessionEvent, now: Instant) -> Vec<Out> {
        let Phase::Session { session, pending, publishing } = &mut self.phase else { return Vec::new() };
        match ev {
            ServerSessionEvent::ConnectionRequested { request_id, app_name } => {
                if app_name.trim_matches('/') != APP {
                    return self.close(EndReason::UnknownApp(app_name));
                }
                match catch_unwind(AssertUnwindSafe(|| session.accept_request(request_id))) {
                    Ok(Ok(results)) => packets(results),
                    _ => self.close(EndReason::Protocol("could not accept the connection".into())),
                }
            }
            ServerSessionEvent::PublishStreamRequested { request_id, stream_key, .. } => {
                if *publishing || pending.is_some() {
                    return self.close(EndReason::Protocol("a second publish on one connection".into()));
                }
                *pending = Some(request_id);
                vec![Out::Publish { key: stream_key }]
            }
            ServerSessionEvent::PublishStreamFinished { .. } => self.close(EndReason::Finished),
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } if *publishing => {
                self.media(data.len(), now).unwrap_or_else(|| match flv::video(&data) {
                    Ok(Video::Unsupported(codec)) => self.close(EndReason::UnsupportedCodec(codec)),
                    Ok(video) => vec![Out::Video { ts_ms: timestamp.value, video }],
                    Err(e) => self.close(EndReason::Protocol(e.to_string())),
                })
            }
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } if *publishing => {
                self.media(data.len(), now).unwrap_or_else(|| match flv::audio(&data) {
                    Ok(Audio::Unsupported(codec)) => self.close(EndReason::UnsupportedCodec(codec)),
                    Ok(audio) => vec![Out::Audio { ts_ms: timestamp.value, audio }],
                    Err(e) => self.close(EndReason::Protocol(e.to_string())),
                })
            }
            // Media before the publish was accepted: dropped.
            _ => Vec::new(),
        }
    }

    /// Counts `len` bytes read; `Some(close)` past what is allowed: a few KiB before the publish is
    /// accepted, twice the media bitrate limit after (chunk headers and control messages are small).
    fn metered(&mut self, len: usize, now: Instant) -> Option<Vec<Out>> {
        if matches!(self.phase, Phase::Closed) {
            return None;
        }
        self.read_total += len as u64;
        if !self.is_publishing() {
            return (self.read_total > MAX_BYTES_BEFORE_PUBLISH)
                .then(|| self.close(EndReason::Protocol("too many bytes before publishing".into())));
        }
        if now.saturating_duration_since(self.window_start) >= RATE_WINDOW {
            self.read_window = 0;
        }
        self.read_window += len as u64;
        let kbps = self.read_window * 8 / 1000 / RATE_WINDOW.as_secs().max(1);
        let max = u64::from(self.cfg.max_kbps) * 2;
        (self.cfg.max_kbps > 0 && kbps > max)
            .then(|| self.close(EndReason::TooMuchBitrate { kbps, max: self.cfg.max_kbps * 2 }))
    }

    /// Counts `len` media bytes; `Some(close)` when that takes the stream over its bitrate.
    fn media(&mut self, len: usize, now: Instant) -> Option<Vec<Out>> {
        self.deadline = now + self.cfg.idle_timeout;
        if now.saturating_duration_since(self.window_start) >= RATE_WINDOW {
            (self.window_start, self.window_bytes) = (now, 0);
        }
        self.window_bytes += len as u64;
        let kbps = self.window_bytes * 8 / 1000 / RATE_WINDOW.as_secs().max(1);
        (self.cfg.max_kbps > 0 && kbps > u64::from(self.cfg.max_kbps))
            .then(|| self.close(EndReason::TooMuchBitrate { kbps, max: self.cfg.max_kbps }))
    }

    fn close(&mut self, why: EndReason) -> Vec<Out> {
        self.phase = Phase::Closed;
        vec![Out::Close(why)]
    }
}

fn send(bytes: Vec<u8>) -> Vec<Out> {
    if bytes.is_empty() { Vec::new() } else { vec![Out::Send(bytes)] }
}

fn packets(results: Vec<ServerSessionResult>) -> Vec<Out> {
    results
        .into_iter()
        .filter_map(|r| if let ServerSessionResult::OutboundResponse(p) = r { Some(Out::Send(p.bytes)) } else { None })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_silence_end_within_their_deadlines() {
        let t0 = Instant::now();
        let cfg = IngestConfig::default();
        // RTMP's first byte is its version, 3; anything else is refused at once.
        let mut i = Ingest::new(cfg, t0);
        assert_eq!(i.handle_input(b"GET / HTTP/1.1\r\n\r\n", t0), vec![Out::Close(EndReason::BadHandshake)]);
        assert!(i.handle_input(b"more", t0).is_empty(), "closed machines ignore input");
        // A handshake that never completes.
        let mut i = Ingest::new(cfg, t0);
        let out = i.handle_input(&[3; 100], t0);
        assert!(out.iter().all(|o| matches!(o, Out::Send(_))), "{out:?}");
        assert!(i.handle_timeout(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(i.handle_timeout(i.poll_timeout()), vec![Out::Close(EndReason::Timeout("handshake"))]);
    }

    #[test]
    fn bytes_before_publishing_are_bounded() {
        let t0 = Instant::now();
        let mut i = Ingest::new(IngestConfig::default(), t0);
        // A valid handshake start, then bytes that never make a publish request.
        let out = i.handle_input(&[3; 1537], t0);
        assert!(out.iter().all(|o| matches!(o, Out::Send(_))), "{out:?}");
        let mut closed = None;
        for _ in 0..100 {
            let out = i.handle_input(&[0x04; 1024], t0);
            if let Some(Out::Close(why)) = out.into_iter().last() {
                closed = Some(why);
                break;
            }
        }
        assert!(closed.is_some(), "closed within {MAX_BYTES_BEFORE_PUBLISH} bytes");
    }

    #[test]
    fn the_bitrate_limit_cuts_a_flood() {
        let t0 = Instant::now();
        let mut i = Ingest::new(IngestConfig { max_kbps: 100, ..IngestConfig::default() }, t0);
        // 100 kbit/s over 2 s is 25,000 bytes.
        assert!(i.media(20_000, t0).is_none());
        let cut = i.media(10_000, t0 + Duration::from_millis(500)).expect("cut");
        assert_eq!(cut, vec![Out::Close(EndReason::TooMuchBitrate { kbps: 120, max: 100 })]);
        let mut i = Ingest::new(IngestConfig { max_kbps: 100, ..IngestConfig::default() }, t0);
        assert!(i.media(20_000, t0).is_none());
        assert!(i.media(20_000, t0 + RATE_WINDOW).is_none(), "a new window");
    }
}

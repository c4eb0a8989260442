//! The RTMP listener: a tokio task per connection that moves bytes between the socket and its
//! [`Ingest`] machine, asks [`StreamKeys`] whether a key may publish, keeps one publisher per
//! stream, and hands what is published to the consumer as [`IngestEvent`]s.
//!
//! A publisher that drops (reset, silence past the idle timeout) ends its stream at once, so the
//! same key can publish again immediately; a second publisher on a live key is refused.

use crate::flv::{Audio, Video};
use crate::publishers::Publishers;
use crate::session::{EndReason, Ingest, IngestConfig, Out};
use bytes::Bytes;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Decides which stream a key publishes to. The chat plane implements it over its stored, hashed
/// keys; the key itself is never logged.
pub trait StreamKeys: Send + Sync + 'static {
    /// The stream (its channel id, say) that `key` publishes to, if any.
    fn authorize<'a>(&'a self, key: &'a str) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;
}

/// What happened to a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestEvent {
    Started {
        stream: String,
        peer: SocketAddr,
    },
    Video {
        stream: String,
        ts_ms: u32,
        video: Video,
    },
    Audio {
        stream: String,
        ts_ms: u32,
        audio: Audio,
    },
    /// A WebRTC publisher's video frame (WHIP), transcoded into every rendition.
    Frame {
        stream: String,
        ts_ms: u32,
        codec: FrameCodec,
        keyframe: bool,
        data: Bytes,
    },
    Ended {
        stream: String,
        reason: EndReason,
    },
}

/// The codec of an [`IngestEvent::Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameCodec {
    Vp8,
    /// H.264 with start codes, SPS and PPS in-band.
    H264AnnexB,
}

#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    pub ingest: IngestConfig,
    /// RTMP connections at once (publishing or not).
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { ingest: IngestConfig::default(), max_connections: 64 }
    }
}

struct Shared {
    cfg: ServerConfig,
    keys: Arc<dyn StreamKeys>,
    events: mpsc::Sender<IngestEvent>,
    publishers: Arc<Publishers>,
    slots: Arc<Semaphore>,
}

/// Accepts RTMP publishers on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    cfg: ServerConfig,
    keys: Arc<dyn StreamKeys>,
    publishers: Arc<Publishers>,
    events: mpsc::Sender<IngestEvent>,
    shutdown: CancellationToken,
) {
    let shared =
        Arc::new(Shared { cfg, keys, events, publishers, slots: Arc::new(Semaphore::new(cfg.max_connections.max(1))) });
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "rtmp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "rtmp connection refused: too many connections");
            continue;
        };
        let (shared, conn, shutdown) = (shared.clone(), shared.publishers.next_id(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            connection(shared, conn, tcp, peer, shutdown).await;
        });
    }
}

async fn connection(shared: Arc<Shared>, conn: u64, mut tcp: TcpStream, peer: SocketAddr, shutdown: CancellationToken) {
    let _ = tcp.set_nodelay(true);
    let mut ingest = Ingest::new(shared.cfg.ingest, Instant::now());
    let mut stream: Option<String> = None;
    let mut buf = vec![0u8; 16 * 1024];
    let reason = 'conn: loop {
        let deadline = tokio::time::Instant::from_std(ingest.poll_timeout());
        let outs = tokio::select! {
            _ = shutdown.cancelled() => break EndReason::Closed,
            _ = tokio::time::sleep_until(deadline) => ingest.handle_timeout(Instant::now()),
            r = tcp.read(&mut buf) => match r {
                Ok(0) | Err(_) => break EndReason::Closed,
                Ok(n) => ingest.handle_input(&buf[..n], Instant::now()),
            },
        };
        let mut queue: std::collections::VecDeque<Out> = outs.into();
        while let Some(out) = queue.pop_front() {
            match out {
                Out::Send(bytes) => {
                    if tcp.write_all(&bytes).await.is_err() {
                        break 'conn EndReason::Closed;
                    }
                }
                Out::Publish { key } => {
                    queue.extend(publish(&shared, conn, &mut ingest, &mut stream, &key, peer).await)
                }
                Out::Video { ts_ms, video } => {
                    if let Some(s) = &stream {
                        let _ = shared.events.send(IngestEvent::Video { stream: s.clone(), ts_ms, video }).await;
                    }
                }
                Out::Audio { ts_ms, audio } => {
                    if let Some(s) = &stream {
                        let _ = shared.events.send(IngestEvent::Audio { stream: s.clone(), ts_ms, audio }).await;
                    }
                }
                Out::Close(reason) => {
                    let _ = tcp.flush().await;
                    break 'conn reason;
                }
            }
        }
    };
    let _ = tcp.shutdown().await;
    if let Some(s) = stream {
        shared.publishers.release(&s, conn);
        tracing::info!(stream = %s, %peer, %reason, "rtmp stream ended");
        let _ = shared.events.send(IngestEvent::Ended { stream: s, reason }).await;
    } else {
        tracing::info!(%peer, %reason, "rtmp connection closed");
    }
}

/// Authorises the key, claims its stream for this connection, and accepts or rejects.
async fn publish(
    shared: &Shared,
    conn: u64,
    ingest: &mut Ingest,
    stream: &mut Option<String>,
    key: &str,
    peer: SocketAddr,
) -> Vec<Out> {
    let Some(id) = shared.keys.authorize(key).await else {
        tracing::info!(%peer, "rtmp publish refused: unknown stream key");
        return ingest.reject(EndReason::BadKey);
    };
    if let Err(reason) = shared.publishers.claim(&id, conn) {
        tracing::info!(stream = %id, %peer, %reason, "rtmp publish refused");
        return ingest.reject(reason);
    }
    tracing::info!(stream = %id, %peer, "rtmp publishing");
    let _ = shared.events.send(IngestEvent::Started { stream: id.clone(), peer }).await;
    *stream = Some(id);
    ingest.accept(Instant::now())
}

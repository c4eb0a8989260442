//! The voice gateway WebSocket: connect and read `hello`, then one task that heartbeats, writes
//! what the client queues, and files everything the server sends into [`Events`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use signaling::protocol::{ClientMsg, ServerMsg};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::events::Events;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Frames the client may queue before `send` waits for the socket task.
const OUT_QUEUE: usize = 256;
/// A server asking for heartbeats faster than this is clamped, so a bad `hello` cannot spin us.
const MIN_HEARTBEAT: Duration = Duration::from_millis(50);

/// Opens `url` and reads the server's `hello`; returns the socket and the heartbeat interval.
pub async fn connect(url: &str, timeout: Duration) -> Result<(Ws, Duration)> {
    let (mut ws, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url))
        .await
        .with_context(|| format!("connecting to {url} timed out"))?
        .with_context(|| format!("connecting to {url}"))?;
    let first = tokio::time::timeout(timeout, ws.next()).await.context("no hello from the voice gateway")?;
    let text = match first {
        Some(Ok(Message::Text(text))) => text,
        Some(Ok(Message::Close(frame))) => bail!("voice gateway closed before hello: {frame:?}"),
        Some(Ok(other)) => bail!("expected hello, got {other:?}"),
        Some(Err(e)) => return Err(e).context("reading hello"),
        None => bail!("voice gateway ended the connection before hello"),
    };
    match serde_json::from_str::<ServerMsg>(&text) {
        Ok(ServerMsg::Hello { heartbeat_interval }) => {
            Ok((ws, Duration::from_millis(heartbeat_interval).max(MIN_HEARTBEAT)))
        }
        _ => bail!("expected hello, got {text:?}"),
    }
}

/// The handle to a running socket task: queue frames with it; dropping it closes the socket.
#[derive(Clone)]
pub struct Outbox(mpsc::Sender<Message>);

impl Outbox {
    pub async fn send(&self, msg: &ClientMsg) -> Result<()> {
        self.raw(Message::text(serde_json::to_string(msg)?)).await
    }

    pub async fn raw(&self, msg: Message) -> Result<()> {
        self.0.send(msg).await.ok().context("the voice socket is closed")
    }
}

/// Runs the socket until either side closes it; the end is recorded in `events`.
pub fn spawn(ws: Ws, heartbeat: Duration, events: Arc<Events>) -> (Outbox, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(OUT_QUEUE);
    (Outbox(tx), tokio::spawn(run(ws, heartbeat, rx, events)))
}

async fn run(ws: Ws, heartbeat: Duration, mut out: mpsc::Receiver<Message>, events: Arc<Events>) {
    let (mut sink, mut stream) = ws.split();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut nonce = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                nonce += 1;
                let beat = serde_json::to_string(&ClientMsg::Heartbeat { nonce }).unwrap_or_default();
                // A failed write means the connection is gone; the read side reports how.
                let _ = sink.send(Message::text(beat)).await;
            }
            msg = out.recv() => match msg {
                Some(msg) => {
                    if let Err(e) = sink.send(msg).await {
                        tracing::debug!("voice socket write failed: {e}");
                    }
                }
                None => {
                    // Every Outbox is gone: the client was dropped.
                    let _ = sink.close().await;
                    events.set_closed(None, "closed by the client".into());
                    return;
                }
            },
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => events.push_text(&text),
                Some(Ok(Message::Binary(_))) => events.push_text("<binary frame>"),
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((None, String::new()), |f| (Some(u16::from(f.code)), f.reason.to_string()));
                    events.set_closed(code, reason);
                    // Flushes tungstenite's queued close reply, completing the handshake.
                    let _ = sink.close().await;
                    return;
                }
                Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                Some(Err(e)) => return events.set_closed(None, format!("connection error: {e}")),
                None => return events.set_closed(None, "connection ended without a close frame".into()),
            },
        }
    }
}

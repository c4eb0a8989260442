//! Light peers in a Janus VideoRoom, over Janus's WebSocket API (`janus-protocol`): a session per
//! participant with two handles, as a browser client of the VideoRoom has, a publisher (`join`
//! and `configure` with our offer, Janus answers) and a subscriber to other feeds (Janus offers,
//! we answer and `start`). Each handle is its own PeerConnection: a str0m `Rtc` in RTP mode.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::confab::{light_rtc, opus_pt};
use super::peer::{self, Shared};

/// Janus drops a session it has not heard from in `session_timeout` (60 s by default).
const KEEPALIVE: Duration = Duration::from_secs(20);

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;
/// Handles whose PeerConnection Janus reported up (`webrtcup`).
type Up = Arc<Mutex<std::collections::HashSet<u64>>>;

/// One WebSocket to Janus with one session on it. Requests wait for their reply: the first
/// message with their transaction that is not an `ack` (a plugin's asynchronous answer comes as
/// an `event` with the request's transaction).
pub struct JanusWs {
    out: mpsc::Sender<Message>,
    pending: Pending,
    up: Up,
    next: AtomicU64,
    session: u64,
    tasks: Vec<JoinHandle<()>>,
    timeout: Duration,
}

impl Drop for JanusWs {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

impl JanusWs {
    /// Connects to `url` (`ws://127.0.0.1:PORT`) and creates a session.
    pub async fn connect(url: &str, timeout: Duration) -> Result<JanusWs> {
        let mut req = url.into_client_request()?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", "janus-protocol".parse()?);
        let (ws, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(req))
            .await
            .context("connecting to Janus timed out")?
            .with_context(|| format!("connecting to Janus at {url}"))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::channel::<Message>(64);
        let pending = Pending::default();
        let up = Up::default();
        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.send(m).await.is_err() {
                    return;
                }
            }
        });
        let (p, u) = (pending.clone(), up.clone());
        let reader = tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let Message::Text(text) = m else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                if v["janus"] == "ack" {
                    continue;
                }
                if v["janus"] == "webrtcup"
                    && let Some(h) = v["sender"].as_u64()
                {
                    u.lock().unwrap_or_else(|e| e.into_inner()).insert(h);
                }
                let Some(t) = v["transaction"].as_str() else { continue };
                if let Some(tx) = p.lock().unwrap_or_else(|e| e.into_inner()).remove(t) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut ws =
            JanusWs { out, pending, up, next: AtomicU64::new(1), session: 0, tasks: vec![writer, reader], timeout };
        let created = ws.request(json!({"janus": "create"})).await?;
        ws.session = created["data"]["id"].as_u64().context("create: no session id")?;
        let (out, session) = (ws.out.clone(), ws.session);
        ws.tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEEPALIVE);
            tick.tick().await;
            loop {
                tick.tick().await;
                let ka = json!({"janus": "keepalive", "session_id": session, "transaction": "ka"});
                if out.send(Message::text(ka.to_string())).await.is_err() {
                    return;
                }
            }
        }));
        Ok(ws)
    }

    /// Sends `body` (with a fresh transaction, and the session once there is one) and returns
    /// the reply; a Janus `error` is an error.
    pub async fn request(&self, mut body: Value) -> Result<Value> {
        let t = format!("t{}", self.next.fetch_add(1, Ordering::Relaxed));
        body["transaction"] = json!(t);
        if self.session != 0 {
            body["session_id"] = json!(self.session);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(t.clone(), tx);
        self.out.send(Message::text(body.to_string())).await.ok().context("the Janus socket is closed")?;
        let reply =
            tokio::time::timeout(self.timeout, rx).await.context("no reply from Janus")?.context("Janus went away")?;
        if reply["janus"] == "error" {
            bail!("Janus: {}", reply["error"]);
        }
        if let Some(e) = reply["plugindata"]["data"].get("error") {
            bail!("Janus plugin: {e} ({})", reply["plugindata"]["data"]["error_code"]);
        }
        Ok(reply)
    }

    /// Whether Janus reported `handle`'s PeerConnection up: a publisher's feed can be subscribed
    /// to only then.
    pub fn is_up(&self, handle: u64) -> bool {
        self.up.lock().unwrap_or_else(|e| e.into_inner()).contains(&handle)
    }

    /// Attaches a handle to `plugin`.
    pub async fn attach(&self, plugin: &str) -> Result<u64> {
        let r = self.request(json!({"janus": "attach", "plugin": plugin})).await?;
        r["data"]["id"].as_u64().context("attach: no handle id")
    }

    /// A plugin message on `handle`, with a JSEP if given.
    pub async fn message(&self, handle: u64, body: Value, jsep: Option<Value>) -> Result<Value> {
        let mut m = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.request(m).await
    }
}

/// Creates VideoRoom `room` for `publishers` (Opus only; no recording, no notifications).
pub async fn create_room(ws: &JanusWs, room: u64, publishers: usize) -> Result<()> {
    let h = ws.attach("janus.plugin.videoroom").await?;
    let body = json!({
        "request": "create", "room": room, "publishers": publishers, "audiocodec": "opus",
        "videocodec": "vp8", "notify_joining": false, "audiolevel_ext": true,
    });
    ws.message(h, body, None).await?;
    Ok(())
}

/// A light participant of a Janus VideoRoom.
pub struct JanusPeer {
    pub ws: JanusWs,
    pub feed: u64,
    /// The publisher handle.
    pub handle: u64,
    pub counts: Shared,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for JanusPeer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

impl JanusPeer {
    /// Joins `room` as publisher `feed` and starts sending once connected.
    pub async fn publish(
        url: &str,
        room: u64,
        feed: u64,
        phase: Duration,
        stop: watch::Receiver<bool>,
        timeout: Duration,
    ) -> Result<JanusPeer> {
        let body = json!({"request": "joinandconfigure", "ptype": "publisher", "room": room, "id": feed, "audio": true, "video": false});
        let join = Join { plugin: "janus.plugin.videoroom", direction: Direction::SendOnly, body, id: feed };
        JanusPeer::offer(url, join, peer::Payload::Stamped, phase, stop, timeout).await
    }

    /// Attaches to `join.plugin` on a fresh session, sends `join.body` with our offer of one
    /// Opus m-line, applies Janus's answer and starts the peer.
    async fn offer(
        url: &str,
        join: Join,
        payload: peer::Payload,
        phase: Duration,
        stop: watch::Receiver<bool>,
        timeout: Duration,
    ) -> Result<JanusPeer> {
        let ws = JanusWs::connect(url, timeout).await?;
        let h = ws.attach(join.plugin).await?;
        let (udp, addr) = peer::bind(peer::primary_ip()).await?;
        let mut rtc = light_rtc(addr)?;
        let mut api = rtc.sdp_api();
        let mic = api.add_media(MediaKind::Audio, join.direction, None, None, None);
        let (offer, pending) = api.apply().context("str0m made no offer")?;
        let jsep = json!({"type": "offer", "sdp": offer.to_sdp_string()});
        let reply = ws.message(h, join.body, Some(jsep)).await?;
        let sdp = reply["jsep"]["sdp"].as_str().context("Janus sent no answer")?;
        rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(sdp)?)?;
        let pt = opus_pt(&rtc).context("the answer has no Opus")?;
        let counts = Shared::default();
        let task = tokio::spawn(peer::run(rtc, udp, Some((mic, pt, payload)), phase, counts.clone(), stop));
        Ok(JanusPeer { ws, feed: join.id, handle: h, counts, tasks: vec![task] })
    }

    /// Whether Janus has this participant's feed up.
    pub fn publishing(&self) -> bool {
        self.ws.is_up(self.handle)
    }

    /// Subscribes to `feeds` on one more handle (one PeerConnection for all of them); what
    /// arrives is counted in this participant's counts.
    pub async fn subscribe(&mut self, room: u64, feeds: &[u64], stop: watch::Receiver<bool>) -> Result<()> {
        let h = self.ws.attach("janus.plugin.videoroom").await?;
        let streams: Vec<Value> = feeds.iter().map(|f| json!({"feed": f})).collect();
        let body = json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams});
        let reply = self.ws.message(h, body, None).await?;
        let sdp = reply["jsep"]["sdp"].as_str().context("Janus sent no offer to the subscriber")?;
        let (udp, addr) = peer::bind(peer::primary_ip()).await?;
        let mut rtc = light_rtc(addr)?;
        let answer = rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(sdp)?)?;
        let jsep = json!({"type": "answer", "sdp": answer.to_sdp_string()});
        self.ws.message(h, json!({"request": "start", "room": room}), Some(jsep)).await?;
        let task = tokio::spawn(peer::run(rtc, udp, None, Duration::ZERO, self.counts.clone(), stop));
        self.tasks.push(task);
        Ok(())
    }
}

/// Creates AudioBridge `room` (48 kHz, Opus; Janus mixes everyone but each listener, as confab's
/// `mcu` rooms do).
pub async fn create_bridge(ws: &JanusWs, room: u64) -> Result<()> {
    let h = ws.attach("janus.plugin.audiobridge").await?;
    let body = json!({"request": "create", "room": room, "sampling_rate": 48000, "audiolevel_ext": true});
    ws.message(h, body, None).await?;
    Ok(())
}

/// A light participant of a Janus AudioBridge: one PeerConnection, its microphone (real Opus, a
/// tone, which Janus decodes) and the mix on the same m-line.
pub async fn join_bridge(
    url: &str,
    room: u64,
    id: u64,
    phase: Duration,
    opus: Arc<Vec<Vec<u8>>>,
    stop: watch::Receiver<bool>,
    timeout: Duration,
) -> Result<JanusPeer> {
    let body = json!({"request": "join", "room": room, "id": id, "muted": false});
    let join = Join { plugin: "janus.plugin.audiobridge", direction: Direction::SendRecv, body, id };
    JanusPeer::offer(url, join, peer::Payload::Opus(opus), phase, stop, timeout).await
}

/// How a participant joins a plugin with its offer.
struct Join {
    plugin: &'static str,
    direction: Direction,
    body: Value,
    /// The feed (VideoRoom) or participant (AudioBridge) id.
    id: u64,
}

//! One chat step: C gateway connections over G guilds on a fresh server. Connect everyone
//! (HELLO, IDENTIFY, READY), sit idle to read the server's memory per connection, then post M
//! messages per second over HTTP (each carrying its send time) and measure, at every connection of
//! the guild, when MESSAGE_CREATE arrives.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt, stream};
use indicatif::ProgressBar;
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::sync::{Mutex, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::api::{Account, Api};
use super::procstat::{Sampler, figures, load_and_cpus, machine_cores, machine_ticks, sample, summarise};
use super::results::{ChatStep, Dist, ProcFigures};
use super::scenario::ChatSweep;
use crate::hist::Histogram;

const TIMEOUT: Duration = Duration::from_secs(20);
/// Local sockets per source address: under the ~28k ephemeral ports of one address.
const PER_SOURCE_IP: usize = 20_000;
const SHARDS: usize = 16;
/// Time left for in-flight dispatches after the last message.
const DRAIN: Duration = Duration::from_secs(2);
const POSTS_IN_FLIGHT: usize = 64;

/// A guild of the chat sweeps: its owner posts, its members connect.
#[derive(Debug, Clone)]
pub struct ChatGuild {
    pub text_channel: String,
    pub members: Vec<Account>,
}

/// What every connection records into, sharded to keep lock contention low.
pub(super) struct Recorder {
    delivery: Vec<std::sync::Mutex<Histogram>>,
    deliveries: AtomicU64,
    closed_by_server: AtomicU64,
}

impl Recorder {
    pub(super) fn new() -> Recorder {
        Recorder {
            delivery: (0..SHARDS).map(|_| std::sync::Mutex::new(Histogram::default())).collect(),
            deliveries: AtomicU64::new(0),
            closed_by_server: AtomicU64::new(0),
        }
    }

    /// Deliveries so far, and their latencies.
    pub(super) fn merged(&self) -> (u64, Histogram) {
        let mut all = Histogram::default();
        self.delivery.iter().for_each(|h| all.merge(&h.lock().unwrap_or_else(|e| e.into_inner())));
        (self.deliveries.load(Ordering::Relaxed), all)
    }
}

pub(super) fn unix_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens connection `i` and identifies; returns the socket and the heartbeat interval.
pub(super) async fn connect(base: &str, i: usize, token: &str) -> Result<(Ws, Duration)> {
    let url = format!("{}/gateway", base.replacen("http", "ws", 1));
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let server = tokio::net::lookup_host(host).await.context("resolving the server")?.next().context("no address")?;
    let socket = TcpSocket::new_v4()?;
    // Spread over 127.0.0.x so tens of thousands of sockets do not run out of ephemeral ports.
    if server.ip().is_loopback() {
        let source = Ipv4Addr::new(127, 0, 0, 1 + (i / PER_SOURCE_IP) as u8);
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    }
    let tcp = socket.connect(server).await.context("TCP connect")?;
    // Small buffers so tens of thousands of clients fit beside the server (the default is 128 KiB each).
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, tcp, Some(config)).await.context("WebSocket handshake")?;
    let hello = next_json(&mut ws).await?;
    let hb = hello["d"]["heartbeat_interval"].as_u64().context("HELLO without heartbeat_interval")?;
    ws.send(Message::text(json!({"op": 2, "d": {"token": token}}).to_string())).await?;
    loop {
        let frame = next_json(&mut ws).await?;
        if frame["t"] == "READY" {
            return Ok((ws, Duration::from_millis(hb.max(1000))));
        }
    }
}

/// The next text frame as JSON (pings and the like skipped); an error on close or silence.
pub(super) async fn next_json<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Result<Value>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next()).await.context("gateway silent")? {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).context("gateway frame not JSON"),
            Some(Ok(Message::Close(c))) => bail!("closed by the server: {c:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("gateway closed"),
        }
    }
}

/// Reads dispatches until `stop`, heartbeating; records MESSAGE_CREATE latencies.
pub(super) async fn serve(mut ws: Ws, hb: Duration, shard: usize, rec: Arc<Recorder>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(hb);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                if ws.send(Message::text(r#"{"op":1,"d":null}"#)).await.is_err() { break }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
                    if v["t"] != "MESSAGE_CREATE" { continue }
                    let sent = v["d"]["content"].as_str().and_then(|c| c.strip_prefix("bench ")).and_then(|n| n.parse::<u128>().ok());
                    if let Some(sent) = sent {
                        let lat = Duration::from_nanos(unix_nanos().saturating_sub(sent).min(u64::MAX as u128) as u64);
                        rec.delivery[shard % SHARDS].lock().unwrap_or_else(|e| e.into_inner()).record(lat);
                        rec.deliveries.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    rec.closed_by_server.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = ws.close(None).await;
}

pub async fn run_step(
    api: &Api,
    server_pid: Option<u32>,
    sweep: &ChatSweep,
    connections: usize,
    guilds: &[ChatGuild],
    pb: &ProgressBar,
) -> Result<ChatStep> {
    let mut step = ChatStep {
        sweep: sweep.name.clone(),
        connections,
        guilds: guilds.len(),
        users: guilds.iter().map(|g| g.members.len()).sum(),
        messages_per_sec_target: sweep.messages_per_sec,
        ..ChatStep::default()
    };
    let me = std::process::id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    step.rss_before_bytes = server_pid.and_then(sample).map_or(0, |s| s.rss_bytes);
    let client_before = sample(me).map_or(0, |s| s.rss_bytes);

    let rec = Arc::new(Recorder::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let errors = Mutex::new(Vec::new());
    let tasks = Mutex::new(Vec::with_capacity(connections));
    stream::iter(0..connections)
        .for_each_concurrent(sweep.connect_concurrency, |i| {
            let (g, errors, tasks, rec, stop) =
                (&guilds[i % guilds.len()], &errors, &tasks, rec.clone(), stop_rx.clone());
            let token = g.members[(i / guilds.len()) % g.members.len()].token.clone();
            async move {
                match connect(&api.base, i, &token).await {
                    Ok((ws, hb)) => {
                        tasks.lock().await.push((i % guilds.len(), tokio::spawn(serve(ws, hb, i % SHARDS, rec, stop))))
                    }
                    Err(e) => {
                        let mut errors = errors.lock().await;
                        if errors.len() < 5 {
                            errors.push(format!("connection {i}: {e:#}"));
                        }
                    }
                }
                if i % 100 == 0 {
                    pb.set_message(format!("{} C={connections}: connecting {i}", sweep.name));
                }
            }
        })
        .await;
    step.connect_secs = started.elapsed().as_secs_f64();
    let tasks = tasks.into_inner();
    step.connected = tasks.len();
    let mut per_guild = vec![0u64; guilds.len()];
    tasks.iter().for_each(|(g, _)| per_guild[*g] += 1);
    step.connect_errors = errors.into_inner();

    pb.set_message(format!("{} C={connections}: idle", sweep.name));
    let server_sampler = server_pid.map(Sampler::start);
    let idle_start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(sweep.idle_secs)).await;
    let idle = server_sampler.as_ref().map(|s| s.window(idle_start, Instant::now())).unwrap_or_default();
    let (cpu_cores_avg, cpu_cores_peak, _) = summarise(&idle);
    step.rss_idle_bytes = server_pid.and_then(sample).map_or(0, |s| s.rss_bytes);
    step.idle_server = ProcFigures { cpu_cores_avg, cpu_cores_peak, rss_bytes: step.rss_idle_bytes };
    let n = step.connected.max(1) as f64;
    step.rss_per_connection_bytes = step.rss_idle_bytes.saturating_sub(step.rss_before_bytes) as f64 / n;
    let client_idle = sample(me).map_or(0, |s| s.rss_bytes);
    step.client_rss_per_connection_bytes = client_idle.saturating_sub(client_before) as f64 / n;

    pb.set_message(format!("{} C={connections}: {} msg/s", sweep.name, sweep.messages_per_sec));
    let client_sampler = Sampler::start(me);
    let machine_before = machine_ticks();
    let start = Instant::now();
    let (sent, failed, post) = post_messages(api, sweep, guilds, &per_guild, &mut step.deliveries_expected).await;
    let end = Instant::now();
    let machine_after = machine_ticks();
    tokio::time::sleep(DRAIN).await;
    step.messages_sent = sent;
    step.send_errors = failed;
    step.post = Dist::from(&post);
    step.window_secs = end.duration_since(start).as_secs_f64();
    step.server = figures(&server_sampler.as_ref().map(|s| s.window(start, end)).unwrap_or_default());
    step.client = figures(&client_sampler.window(start, end));

    let _ = stop_tx.send(true);
    for (_, t) in tasks {
        let _ = t.await;
    }
    let mut all = Histogram::default();
    rec.delivery.iter().for_each(|h| all.merge(&h.lock().unwrap_or_else(|e| e.into_inner())));
    step.deliveries = rec.deliveries.load(Ordering::Relaxed);
    step.delivery = Dist::from(&all);
    step.delivered_per_sec = step.deliveries as f64 / step.window_secs.max(1e-3);
    step.delivery_ratio =
        if step.deliveries_expected == 0 { 1.0 } else { step.deliveries as f64 / step.deliveries_expected as f64 };
    step.closed_by_server = rec.closed_by_server.load(Ordering::Relaxed);
    let (load, cpus) = load_and_cpus();
    step.load_avg = load;
    step.machine_cores = machine_cores(machine_before, machine_after, cpus);
    step.other_cores = (step.machine_cores - step.server.cpu_cores_avg - step.client.cpu_cores_avg).max(0.0);
    step.saturated = step.machine_cores >= 0.9 * cpus as f64;
    Ok(step)
}

/// Posts `messages_per_sec` for the sweep's duration, round-robin over guilds, each by the
/// guild's owner; returns (sent, failed, POST latencies) and adds the expected deliveries.
async fn post_messages(
    api: &Api,
    sweep: &ChatSweep,
    guilds: &[ChatGuild],
    per_guild: &[u64],
    expected: &mut u64,
) -> (u64, u64, Histogram) {
    let total = (sweep.messages_per_sec * sweep.duration_secs).round() as usize;
    if total == 0 {
        tokio::time::sleep(Duration::from_secs_f64(sweep.duration_secs)).await;
        return (0, 0, Histogram::default());
    }
    let interval = Duration::from_secs_f64(1.0 / sweep.messages_per_sec);
    let start = Instant::now();
    let posts = (0..total).map(|k| {
        let g = k % guilds.len();
        let guild = &guilds[g];
        async move {
            tokio::time::sleep_until((start + interval * k as u32).into()).await;
            let t0 = Instant::now();
            let body = json!({"content": format!("bench {}", unix_nanos())});
            let path = format!("/api/channels/{}/messages", guild.text_channel);
            let ok = api.post(&path, Some(&guild.members[0].token), body).await.is_ok();
            (g, ok, t0.elapsed())
        }
    });
    let results: Vec<(usize, bool, Duration)> = stream::iter(posts).buffered(POSTS_IN_FLIGHT).collect().await;
    let (mut sent, mut failed, mut hist) = (0, 0, Histogram::default());
    for (g, ok, lat) in results {
        if ok {
            sent += 1;
            *expected += per_guild[g];
            hist.record(lat);
        } else {
            failed += 1;
        }
    }
    (sent, failed, hist)
}

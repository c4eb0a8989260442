//! The cluster step's probes (see `cluster_run`): resuming on another node after a `kill -9`,
//! where voice rooms are placed, and authenticated requests per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::api::{Account, Api};
use super::chat_run::next_json;
use super::procstat::{cores, sample};
use super::results::{AuthFigures, Dist};
use super::scenario::ClusterSweep;
use super::server::Server;
use crate::hist::Histogram;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(base: &str) -> Result<(Ws, Duration)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/gateway", base.replacen("http", "ws", 1))).await?;
    let hello = next_json(&mut ws).await?;
    let hb = hello["d"]["heartbeat_interval"].as_u64().context("HELLO without heartbeat_interval")?;
    Ok((ws, Duration::from_millis(hb.max(1000))))
}

/// Clients of the node about to be killed, each reading its dispatches (keeping `seq`) until
/// its socket ends.
pub(super) struct Resumers {
    tasks: Vec<tokio::task::JoinHandle<Result<(String, String, u64)>>>,
    killed: watch::Sender<bool>,
}

impl Resumers {
    pub async fn open(base: &str, users: &[Account], n: usize) -> Result<Resumers> {
        let (killed, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for i in 0..n {
            let token = users[i % users.len()].token.clone();
            let (mut ws, hb) = open(base).await?;
            ws.send(Message::text(json!({"op": 2, "d": {"token": token}}).to_string())).await?;
            let ready = loop {
                let f = next_json(&mut ws).await?;
                if f["t"] == "READY" {
                    break f;
                }
            };
            let session = ready["d"]["session_id"].as_str().context("READY without session_id")?.to_string();
            let seq = ready["s"].as_u64().unwrap_or(0);
            tasks.push(tokio::spawn(read_until_gone(ws, hb, token, session, seq, rx.clone())));
        }
        Ok(Resumers { tasks, killed })
    }
}

/// Reads and heartbeats until the socket ends; returns (token, session, last seq).
async fn read_until_gone(
    mut ws: Ws,
    hb: Duration,
    token: String,
    session: String,
    mut seq: u64,
    mut killed: watch::Receiver<bool>,
) -> Result<(String, String, u64)> {
    let mut tick = tokio::time::interval(hb);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let _ = ws.send(Message::text(json!({"op": 1, "d": seq}).to_string())).await;
            }
            f = ws.next() => match f {
                Some(Ok(Message::Text(t))) => {
                    if let Some(s) = serde_json::from_str::<Value>(&t).ok().and_then(|v| v["s"].as_u64()) {
                        seq = seq.max(s);
                    }
                }
                Some(Ok(_)) => {}
                _ if *killed.borrow_and_update() => return Ok((token, session, seq)),
                _ => bail!("the socket ended before its node was killed"),
            },
        }
    }
}

/// Kills `node`; each resumer, once its socket ends, RESUMEs on one of `others`. Returns
/// (resumed, invalid, failed, time from the kill to RESUMED).
pub(super) async fn resume_after_kill(
    r: Resumers,
    node: &mut Server,
    others: &[String],
    errors: &mut Vec<String>,
) -> (usize, usize, usize, Dist) {
    let _ = r.killed.send(true);
    let killed = Instant::now();
    node.kill();
    let (mut resumed, mut invalid, mut failed, mut hist) = (0, 0, 0, Histogram::default());
    let outcomes: Vec<_> = r
        .tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let base = others[i % others.len()].clone();
            tokio::spawn(async move {
                let (token, session, seq) = t.await??;
                let (mut ws, _) = open(&base).await?;
                let msg = json!({"op": 6, "d": {"token": token, "session_id": session, "seq": seq}});
                ws.send(Message::text(msg.to_string())).await?;
                loop {
                    let f = next_json(&mut ws).await?;
                    if f["op"] == 9 {
                        return Ok::<_, anyhow::Error>(None);
                    }
                    if f["t"] == "RESUMED" {
                        return Ok(Some(killed.elapsed()));
                    }
                }
            })
        })
        .collect();
    for o in outcomes {
        match o.await {
            Ok(Ok(Some(t))) => {
                resumed += 1;
                hist.record(t);
            }
            Ok(Ok(None)) => invalid += 1,
            Ok(Err(e)) => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(format!("resume: {e:#}"));
                }
            }
            Err(e) => {
                failed += 1;
                errors.push(format!("resume task: {e}"));
            }
        }
    }
    (resumed, invalid, failed, Dist::from(&hist))
}

/// Grants `rooms` new voice channels through the first node: rooms per node, in node order.
pub(super) async fn place_rooms(
    apis: &[Api],
    servers: &[Server],
    owner: &Account,
    guild: &str,
    rooms: usize,
) -> Result<Vec<usize>> {
    let mut per_node = vec![0; servers.len()];
    let hosts: Vec<String> = servers.iter().map(|s| s.base.trim_start_matches("http://").to_string()).collect();
    for k in 0..rooms {
        let channel = apis[0].voice_channel(owner, guild, &format!("room {k}"), "sfu").await?;
        let grant = apis[0].post(&format!("/api/channels/{channel}/voice"), Some(&owner.token), json!({})).await?;
        let endpoint = grant["endpoint"].as_str().context("a grant without an endpoint")?;
        // `/voice` on the node asked, else the placed node's advertised address.
        let node = match endpoint.starts_with('/') {
            true => Some(0),
            false => hosts.iter().position(|h| endpoint.contains(h.as_str())),
        };
        per_node[node.with_context(|| format!("{endpoint} is no node of this step"))?] += 1;
    }
    Ok(per_node)
}

/// Closed-loop `GET /api/users/@me` by `sweep.auth_clients` clients (each a different user) for
/// `sweep.auth_secs`: requests per second, the server's cores, latency.
pub(super) async fn auth_rate(
    api: &Api,
    pid: Option<u32>,
    users: &[Account],
    sweep: &ClusterSweep,
) -> Result<AuthFigures> {
    let before = pid.and_then(sample);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(sweep.auth_secs);
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers: Vec<_> = (0..sweep.auth_clients)
        .map(|i| {
            let (api, token, errors) = (api.clone(), users[i % users.len()].token.clone(), errors.clone());
            tokio::spawn(async move {
                let (mut hist, mut ok) = (Histogram::default(), 0u64);
                while Instant::now() < end {
                    let t0 = Instant::now();
                    match api.get("/api/users/@me", Some(&token)).await {
                        Ok(_) => {
                            hist.record(t0.elapsed());
                            ok += 1;
                        }
                        Err(_) => drop(errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
                    }
                }
                (hist, ok)
            })
        })
        .collect();
    let (mut hist, mut ok) = (Histogram::default(), 0);
    for w in workers {
        let (h, n) = w.await?;
        hist.merge(&h);
        ok += n;
    }
    let window = start.elapsed().as_secs_f64();
    let after = pid.and_then(sample);
    let failed = errors.load(std::sync::atomic::Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} authenticated requests failed");
    }
    let server_cores = match (&before, &after) {
        (Some(a), Some(b)) => cores(a, b),
        _ => 0.0,
    };
    Ok(AuthFigures {
        cache: true,
        requests_per_sec: ok as f64 / window.max(1e-3),
        server_cores,
        latency: Dist::from(&hist),
    })
}

/// Rooms per node as "a / b / c".
pub fn spread(per_node: &[usize]) -> String {
    let v: Vec<String> = per_node.iter().map(|n| n.to_string()).collect();
    v.join(" / ")
}

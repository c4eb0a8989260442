//! The soak's load: chat clients, voice rooms and a live stream, each a loop that comes and goes
//! until the run is cancelled. Failures are counted, not fatal: a soak reports what happened.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::SoakArgs;
use crate::bench::api::{Account, Api, run_tag};
use crate::hls_viewer::{Follow, Totals, watch};
use crate::video_send::CameraOptions;
use crate::{VoiceClient, VoiceOptions};

/// Accounts and channels the loops use.
pub struct World {
    pub chatters: Vec<Account>,
    pub talkers: Vec<Account>,
    pub text_channel: String,
    pub voice_channels: Vec<String>,
    pub live_channel: String,
    pub rtmp_url: String,
    pub watch_token: String,
}

impl World {
    pub async fn create(api: &Api, a: &SoakArgs) -> Result<World> {
        let tag = run_tag();
        let names = |kind: &str, n: usize| (0..n).map(|i| format!("{kind}{i}x{tag}")).collect::<Vec<_>>();
        let chatters = api.signup_many(names("soakc", a.chat_clients.max(1)), || {}).await?;
        let talkers = api.signup_many(names("soakv", a.voice_rooms * a.per_room), || {}).await?;
        let owner = &chatters[0];
        let members: Vec<Account> = chatters[1..].iter().chain(&talkers).cloned().collect();
        let (guild, text_channel) = api.guild("soak", owner, &members).await?;
        let mut voice_channels = Vec::new();
        for i in 0..a.voice_rooms {
            voice_channels.push(api.voice_channel(owner, &guild, &format!("room{i}"), "hybrid").await?);
        }
        let body = json!({"name": "stage", "kind": "live"});
        let ch = api.post(&format!("/api/guilds/{guild}/channels"), Some(&owner.token), body).await?;
        let live_channel = ch["id"].as_str().context("no live channel id")?.to_string();
        let key = api.post(&format!("/api/channels/{live_channel}/stream-key"), Some(&owner.token), json!({})).await?;
        let rtmp_url = key["rtmp_url"].as_str().context("no RTMP url")?.to_string();
        let state = api.get(&format!("/api/channels/{live_channel}/stream"), Some(&owner.token)).await?;
        let watch_token = state["watch_token"].as_str().context("no watch token")?.to_string();
        Ok(World { chatters, talkers, text_channel, voice_channels, live_channel, rtmp_url, watch_token })
    }
}

/// What the loops did.
#[derive(Default)]
pub struct Counters {
    /// When the run started, for the failures' times.
    pub started: std::sync::OnceLock<Instant>,
    /// The first failures (seconds into the load, what failed), for the report.
    pub failed: std::sync::Mutex<Vec<(f64, String)>>,
    pub chat_sessions: AtomicU64,
    pub messages: AtomicU64,
    pub dispatches: AtomicU64,
    pub voice_joins: AtomicU64,
    pub camera_toggles: AtomicU64,
    pub viewer_sessions: AtomicU64,
    pub hls_requests: AtomicU64,
    pub failures: AtomicU64,
}

impl Counters {
    fn fail(&self, what: &str, e: &anyhow::Error) {
        tracing::warn!(error = %e, "soak: {what} failed");
        self.failures.fetch_add(1, Ordering::Relaxed);
        let at = self.started.get().map_or(0.0, |t| t.elapsed().as_secs_f64());
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() < 50 {
            f.push((at, format!("{what}: {e:#}")));
        }
    }

    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{} chat sessions, {} messages ({} dispatches seen), {} voice joins, {} camera toggles, {} viewer \
             sessions ({} HLS requests), {} failures",
            g(&self.chat_sessions),
            g(&self.messages),
            g(&self.dispatches),
            g(&self.voice_joins),
            g(&self.camera_toggles),
            g(&self.viewer_sessions),
            g(&self.hls_requests),
            g(&self.failures)
        )
    }
}

fn jitter(lo: f64, hi: f64) -> Duration {
    Duration::from_secs_f64(rand::rng().random_range(lo..hi))
}

/// Starts every loop; they end when `stop` is cancelled.
pub async fn start(
    base: &str,
    w: &World,
    a: &SoakArgs,
    stop: CancellationToken,
    c: Arc<Counters>,
) -> Result<Vec<JoinHandle<()>>> {
    let _ = c.started.set(Instant::now());
    let mut tasks = Vec::new();
    for acc in &w.chatters {
        let (base, acc, channel, stop, c) =
            (base.to_string(), acc.clone(), w.text_channel.clone(), stop.clone(), c.clone());
        tasks.push(tokio::spawn(async move { chat_loop(&base, &acc, &channel, stop, c).await }));
    }
    for (i, acc) in w.talkers.iter().enumerate() {
        let room = w.voice_channels[i % w.voice_channels.len()].clone();
        let (base, acc, stop, c) = (base.to_string(), acc.clone(), stop.clone(), c.clone());
        let camera = i % 2 == 0;
        tasks.push(tokio::spawn(async move { voice_loop(&base, &acc, &room, camera, stop, c).await }));
    }
    let mut ffmpeg = publish(&w.rtmp_url, a.minutes * 60.0 + 30.0)?;
    let master = format!("{base}/live/{}/index.m3u8?a={}", w.live_channel, w.watch_token);
    let http = reqwest::Client::new();
    let ready = Instant::now();
    while !http.get(&master).send().await.is_ok_and(|r| r.status().is_success()) {
        anyhow::ensure!(ready.elapsed() < Duration::from_secs(30), "the live stream never became playable");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let totals = Arc::new(Totals::default());
    for _ in 0..a.viewers {
        let (base, ch, token) = (base.to_string(), w.live_channel.clone(), w.watch_token.clone());
        let (master, stop, c, totals) = (master.clone(), stop.clone(), c.clone(), totals.clone());
        tasks.push(tokio::spawn(async move { viewer_loop(&base, &ch, &token, &master, stop, c, totals).await }));
    }
    let stopper = stop.clone();
    tasks.push(tokio::spawn(async move {
        stopper.cancelled().await;
        let _ = ffmpeg.kill();
        let _ = ffmpeg.wait();
    }));
    Ok(tasks)
}

/// Connects, identifies, posts every couple of seconds for a while, leaves, and again.
async fn chat_loop(base: &str, acc: &Account, channel: &str, stop: CancellationToken, c: Arc<Counters>) {
    let http = reqwest::Client::new();
    let url = format!("{}/gateway", base.replacen("http", "ws", 1));
    while !stop.is_cancelled() {
        let session = async {
            let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
            ws.next().await.context("no HELLO")??;
            ws.send(Message::text(json!({"op": 2, "d": {"token": acc.token}}).to_string())).await?;
            c.chat_sessions.fetch_add(1, Ordering::Relaxed);
            let until = Instant::now() + jitter(5.0, 20.0);
            let mut beat = tokio::time::interval(Duration::from_secs(10));
            let mut post = tokio::time::interval(jitter(1.5, 3.0));
            while Instant::now() < until && !stop.is_cancelled() {
                tokio::select! {
                    _ = beat.tick() => ws.send(Message::text(json!({"op": 1, "d": 0}).to_string())).await?,
                    _ = post.tick() => {
                        let url = format!("{base}/api/channels/{channel}/messages");
                        let r = http.post(url).bearer_auth(&acc.token).json(&json!({"content": "soak"})).send().await?;
                        anyhow::ensure!(r.status().is_success(), "posting: {}", r.status());
                        c.messages.fetch_add(1, Ordering::Relaxed);
                    }
                    m = ws.next() => {
                        m.context("the gateway closed")??;
                        c.dispatches.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let _ = ws.close(None).await;
            anyhow::Ok(())
        };
        if let Err(e) = session.await {
            c.fail("chat session", &e);
        }
        tokio::time::sleep(jitter(0.5, 2.0)).await;
    }
}

/// Joins a room with a tone (and a camera every other participant), toggles the camera, leaves.
async fn voice_loop(base: &str, acc: &Account, room: &str, camera: bool, stop: CancellationToken, c: Arc<Counters>) {
    while !stop.is_cancelled() {
        let mut opts = VoiceOptions::tone(300.0 + rand::rng().random_range(0.0..1500.0));
        if camera {
            opts.camera =
                Some(CameraOptions { width: 160, height: 90, fps: 10, bitrate_kbps: 100, ..Default::default() });
        }
        let visit = async {
            let v = VoiceClient::join(base, &acc.token, room, opts).await?;
            c.voice_joins.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(jitter(2.0, 5.0)).await;
            if camera {
                v.camera(false).await?;
                tokio::time::sleep(jitter(1.0, 2.0)).await;
                v.camera(true).await?;
                c.camera_toggles.fetch_add(2, Ordering::Relaxed);
            }
            tokio::time::sleep(jitter(1.0, 3.0)).await;
            v.close().await
        };
        if let Err(e) = visit.await {
            c.fail("voice visit", &e);
        }
        tokio::time::sleep(jitter(1.0, 3.0)).await;
    }
}

/// Joins the viewer count, plays LL-HLS for a while (beating), leaves, and again.
async fn viewer_loop(
    base: &str,
    channel: &str,
    token: &str,
    master: &str,
    stop: CancellationToken,
    c: Arc<Counters>,
    totals: Arc<Totals>,
) {
    let http = reqwest::Client::new();
    while !stop.is_cancelled() {
        let viewers = format!("{base}/live/{channel}/viewers?a={token}");
        let joined = http.post(&viewers).send().await.ok().filter(|r| r.status().is_success());
        let Some(joined) = joined else {
            c.fail("viewer join", &anyhow::anyhow!("POST viewers refused"));
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        };
        let id = joined.json::<serde_json::Value>().await.ok().and_then(|v| v["viewer"].as_str().map(String::from));
        c.viewer_sessions.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + jitter(10.0, 30.0);
        let play = tokio::spawn(watch(master.to_string(), "source".into(), Follow::Blocking, until, totals.clone()));
        while Instant::now() < until && !stop.is_cancelled() {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if let Some(id) = &id {
                let _ = http.post(format!("{base}/live/{channel}/viewers/{id}?a={token}")).send().await;
            }
        }
        if stop.is_cancelled() {
            play.abort();
        }
        if let Ok(stats) = play.await {
            c.hls_requests.fetch_add(stats.requests, Ordering::Relaxed);
        }
        if let Some(id) = &id {
            let _ = http.delete(format!("{base}/live/{channel}/viewers/{id}?a={token}")).send().await;
        }
        tokio::time::sleep(jitter(1.0, 5.0)).await;
    }
}

/// ffmpeg publishing a small test picture and tone over RTMP for `secs`.
fn publish(url: &str, secs: f64) -> Result<std::process::Child> {
    std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15", "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", &format!("{secs:.0}"), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
        .args(["-g", "30", "-b:v", "300k", "-c:a", "aac", "-b:a", "64k", "-f", "flv", url])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("ffmpeg (apt-get install ffmpeg)")
}

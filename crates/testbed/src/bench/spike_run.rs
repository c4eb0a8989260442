//! One viewer-spike step. ffmpeg publishes over RTMP (a source encoded ahead, sent with `-c copy`,
//! so the publisher costs the shared box next to nothing) to a fresh server recording the stream
//! (`record_dir`); with the stream on and nobody watching, the server's CPU is the ingest and
//! ladder's. Then `viewers` light LL-HLS players ([`hls_viewer`](crate::hls_viewer)) arrive over
//! `ramp_secs` and follow one rendition for `hold_secs` more, while `chatters` post to the
//! stream's chat and time its delivery on their gateways. Rates and the server's CPU are taken
//! over the hold window (everyone on). Then the baseline: the same crowd, the same ramp and hold,
//! polling nginx serving the recording as static files (a playlist and a part-sized range per
//! part interval: the request mix without the blocking wait nginx cannot do), its one process's
//! CPU sampled the same way. The ratio is requests per core, confab's (over its idle CPU) to
//! nginx's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use serde_json::json;
use tokio::sync::watch;

use super::api::{Account, Api, run_tag};
use super::chat_run::{Recorder, connect, serve, unix_nanos};
use super::nginx::Nginx;
use super::procstat::{ProcSample, Sampler, figures};
use super::results::{Dist, NginxRun, SpikeStep};
use super::scenario::SpikeSweep;
use super::server::Target;
use crate::hist::Histogram;
use crate::hls_viewer::{Follow, Totals, ViewerStats, watch as follow};

/// Part length the server is configured with (its default), for the baseline's polling.
const PART: Duration = Duration::from_millis(333);
const PARTS_PER_SEGMENT: u64 = 6;

/// The source, encoded ahead (x264 ultrafast, AAC) into `dir`: publishing it costs ffmpeg next to
/// nothing while the crowd runs, as a publisher on its own machine would.
async fn encode_ahead(dir: &Path, s: &SpikeSweep, secs: f64) -> Result<PathBuf> {
    let out = dir.join("source.flv");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", &format!("testsrc2=size={}x{}:rate={}", s.width, s.height, s.fps)])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", &format!("{secs:.0}")])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", &(s.fps * 2).to_string()])
        .args(["-c:a", "aac", "-f", "flv"])
        .arg(&out)
        .stdin(Stdio::null());
    let status =
        tokio::task::spawn_blocking(move || cmd.status()).await?.context("running ffmpeg (apt-get install ffmpeg)")?;
    if !status.success() {
        bail!("ffmpeg could not encode the source: {status}");
    }
    Ok(out)
}

/// Publishes `source` at its own pace (`-re`), untouched (`-c copy`).
fn ffmpeg(url: &str, source: &Path) -> Result<Child> {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(source)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ffmpeg (apt-get install ffmpeg)")
}

/// What a crowd did: per-viewer stats, and the rates over the hold window.
struct Crowd {
    viewers: Vec<(Instant, ViewerStats)>,
    window_secs: f64,
    requests: u64,
    bytes: u64,
    server: Vec<ProcSample>,
    client: Vec<ProcSample>,
    start: Instant,
}

/// `n` viewers over `ramp`, all following until `ramp + hold`; `sampler`'s process is measured.
async fn crowd(sweep: &SpikeSweep, url: &str, mode: Follow, sampler: &Sampler, pb: &ProgressBar, what: &str) -> Crowd {
    let me = Sampler::start(std::process::id());
    let totals = Arc::new(Totals::default());
    let start = Instant::now();
    let (ramp, hold) = (Duration::from_secs_f64(sweep.ramp_secs), Duration::from_secs_f64(sweep.hold_secs));
    let until = start + ramp + hold;
    let n = sweep.viewers.max(1);
    let tasks: Vec<_> = (0..n)
        .map(|k| {
            let (url, rendition, totals) = (url.to_string(), sweep.rendition.clone(), totals.clone());
            let at = start + ramp.mul_f64(k as f64 / n as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                (at, follow(url, rendition, mode, until, totals).await)
            })
        })
        .collect();
    pb.set_message(format!("{what}: {n} viewers over {:.0} s", sweep.ramp_secs));
    tokio::time::sleep_until((start + ramp).into()).await;
    let (r0, b0, t0) = (totals.requests.load(Ordering::Relaxed), totals.bytes.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep_until(until.into()).await;
    let (r1, b1, t1) = (totals.requests.load(Ordering::Relaxed), totals.bytes.load(Ordering::Relaxed), Instant::now());
    let mut viewers = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(v) = t.await {
            viewers.push(v);
        }
    }
    Crowd {
        viewers,
        window_secs: t1.duration_since(t0).as_secs_f64(),
        requests: r1 - r0,
        bytes: b1 - b0,
        server: sampler.window(t0, t1),
        client: me.window(t0, t1),
        start,
    }
}

/// The recorded playlist of `rendition` (`record_dir/{stream}/{started}/{rendition}/index.m3u8`).
fn recording(dir: &Path, stream: &str, rendition: &str) -> Option<PathBuf> {
    let started = std::fs::read_dir(dir.join(stream)).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).max()?;
    Some(started.join(rendition).join("index.m3u8")).filter(|p| p.exists())
}

pub async fn run_step(target: &Target, sweep: &SpikeSweep, pb: &ProgressBar) -> Result<SpikeStep> {
    let dir = std::env::temp_dir().join(format!("confab-spike-{}", run_tag()));
    std::fs::create_dir_all(&dir)?;
    let result = step(target, sweep, pb, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn step(target: &Target, sweep: &SpikeSweep, pb: &ProgressBar, dir: &Path) -> Result<SpikeStep> {
    let server = target.start_with_env(&[("CONFAB_LIVE_RECORD_DIR", dir.display().to_string())])?;
    let api = Api::new(&server.base)?;
    let tag = run_tag();
    let owner = api.signup(&format!("spike{tag}")).await?;
    let chatters: Vec<Account> =
        api.signup_many((0..sweep.chatters).map(|i| format!("sc{i}x{tag}")).collect(), || {}).await?;
    let (guild, _) = api.guild("spike", &owner, &chatters).await?;
    let ch = api
        .post(&format!("/api/guilds/{guild}/channels"), Some(&owner.token), json!({"name": "stage", "kind": "live"}))
        .await?;
    let channel = ch["id"].as_str().context("no channel id")?.to_string();
    let key = api.post(&format!("/api/channels/{channel}/stream-key"), Some(&owner.token), json!({})).await?;
    let rtmp = key["rtmp_url"].as_str().context("the server takes no RTMP")?.to_string();
    let stream_secs = (sweep.ramp_secs + sweep.hold_secs) * if sweep.nginx { 2.0 } else { 1.0 } + 20.0;
    let source = encode_ahead(dir, sweep, stream_secs).await?;
    let mut publisher = ffmpeg(&rtmp, &source)?;
    let state = api.get(&format!("/api/channels/{channel}/stream"), Some(&owner.token)).await?;
    let token = state["watch_token"].as_str().context("no watch token")?.to_string();
    let master = format!("{}/live/{channel}/index.m3u8?a={token}", server.base);
    let http = api.http().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http.get(&master).send().await.is_ok_and(|r| r.status().is_success()) {
        if Instant::now() > deadline {
            let _ = publisher.kill();
            bail!("the stream was not playable 20 s after publishing started");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(pid) = server.pid else { bail!("the spike needs the server's PID (--server-pid)") };
    let sampler = Sampler::start(pid);
    pb.set_message(format!("spike {}: the stream alone", sweep.name));
    let idle_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_server = figures(&sampler.window(idle_start, Instant::now()));

    // Chatters: on the gateway, posting one message each `chat_every_secs`.
    let rec = Arc::new(Recorder::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut chat_tasks = Vec::new();
    for (i, c) in chatters.iter().enumerate() {
        let (ws, hb) = connect(&server.base, i, &c.token).await?;
        chat_tasks.push(tokio::spawn(serve(ws, hb, i, rec.clone(), stop_rx.clone())));
    }
    let posting = {
        let (api, path, tokens) = (api.clone(), format!("/api/channels/{channel}/messages"), chatters.clone());
        let (every, end) = (
            sweep.chat_every_secs.max(0.1),
            Instant::now() + Duration::from_secs_f64(sweep.ramp_secs + sweep.hold_secs),
        );
        tokio::spawn(async move {
            let mut sent = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(every / tokens.len().max(1) as f64));
            let mut k = 0usize;
            while Instant::now() < end && !tokens.is_empty() {
                tick.tick().await;
                let body = json!({"content": format!("bench {}", unix_nanos())});
                if api.post(&path, Some(&tokens[k % tokens.len()].token), body).await.is_ok() {
                    sent += 1;
                }
                k += 1;
            }
            sent
        })
    };

    let confab =
        crowd(sweep, &master, Follow::Blocking, &sampler, pb, &format!("spike {} on confab", sweep.name)).await;
    let chat_messages = posting.await.unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    for t in chat_tasks {
        let _ = t.await;
    }
    let (chat_deliveries, chat_hist) = rec.merged();
    let all_samples = sampler.window(confab.start, Instant::now());

    let mut step = summarise(sweep, &confab, idle_server);
    step.chat_messages = chat_messages;
    step.chat_deliveries = chat_deliveries;
    step.chat_delivery = Dist::from(&chat_hist);
    step.timeline = timeline(&all_samples, confab.start, sweep);

    if sweep.nginx {
        let playlist = recording(dir, &channel, &sweep.rendition).context("no recording of the rendition")?;
        let rel = playlist.strip_prefix(dir)?.display().to_string();
        let first_segment = std::fs::read_dir(playlist.parent().context("no rendition dir")?)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".m4s"))
            .filter_map(|e| e.metadata().ok().map(|m| m.len()))
            .max()
            .unwrap_or(60_000);
        let nginx = Nginx::start(dir)?;
        let ngx_sampler = Sampler::start(nginx.pid);
        let part_bytes = (first_segment / PARTS_PER_SEGMENT).max(1);
        let mode = Follow::Polling { part: PART, part_bytes };
        let url = format!("{}/{rel}", nginx.base);
        let base = crowd(sweep, &url, mode, &ngx_sampler, pb, &format!("spike {} on nginx", sweep.name)).await;
        let mut served = Histogram::default();
        base.viewers.iter().for_each(|(_, v)| served.merge(&v.served));
        let server = figures(&base.server);
        let rps = base.requests as f64 / base.window_secs.max(1e-3);
        let per_core = rps / server.cpu_cores_avg.max(1e-3);
        step.nginx = Some(NginxRun {
            window_secs: base.window_secs,
            requests_per_sec: rps,
            mbit_per_sec: base.bytes as f64 * 8.0 / 1e6 / base.window_secs.max(1e-3),
            served: Dist::from(&served),
            errors: base.viewers.iter().map(|(_, v)| v.errors).sum(),
            server,
            requests_per_core: per_core,
            ratio: step.requests_per_core / per_core.max(1e-9),
        });
    }
    let _ = publisher.kill();
    let _ = publisher.wait();
    Ok(step)
}

fn summarise(sweep: &SpikeSweep, c: &Crowd, idle_server: super::results::ProcFigures) -> SpikeStep {
    let (mut served, mut blocked, mut join) = (Histogram::default(), Histogram::default(), Histogram::default());
    let mut last_admission = c.start;
    let mut admitted = 0;
    for (at, v) in &c.viewers {
        served.merge(&v.served);
        blocked.merge(&v.blocked);
        if let Some(j) = v.joined {
            join.record(j);
            admitted += 1;
            last_admission = last_admission.max(*at + j);
        }
    }
    let server = figures(&c.server);
    let rps = c.requests as f64 / c.window_secs.max(1e-3);
    let added = (server.cpu_cores_avg - idle_server.cpu_cores_avg).max(1e-3);
    SpikeStep {
        sweep: sweep.name.clone(),
        source: format!("{}x{}@{} over RTMP", sweep.width, sweep.height, sweep.fps),
        rendition: sweep.rendition.clone(),
        viewers: sweep.viewers,
        ramp_secs: sweep.ramp_secs,
        admitted,
        admitted_per_sec: admitted as f64 / last_admission.duration_since(c.start).as_secs_f64().max(1e-3),
        join: Dist::from(&join),
        window_secs: c.window_secs,
        requests_per_sec: rps,
        mbit_per_sec: c.bytes as f64 * 8.0 / 1e6 / c.window_secs.max(1e-3),
        served: Dist::from(&served),
        blocked: Dist::from(&blocked),
        errors: c.viewers.iter().map(|(_, v)| v.errors).sum(),
        stalled_viewers: c.viewers.iter().filter(|(_, v)| v.stalls > 0).count() as u64,
        stalls: c.viewers.iter().map(|(_, v)| v.stalls).sum(),
        idle_server,
        server,
        client: figures(&c.client),
        requests_per_core: rps / added,
        ..SpikeStep::default()
    }
}

/// (seconds since the ramp began, viewers on, server cores) between consecutive samples.
fn timeline(samples: &[ProcSample], start: Instant, sweep: &SpikeSweep) -> Vec<(f64, f64, f64)> {
    samples
        .windows(2)
        .map(|w| {
            let t = w[1].at.duration_since(start).as_secs_f64();
            let on = (t / sweep.ramp_secs.max(1e-3)).min(1.0) * sweep.viewers as f64;
            let (cores, _, _) = super::procstat::summarise(w);
            (t, on.round(), cores)
        })
        .collect()
}

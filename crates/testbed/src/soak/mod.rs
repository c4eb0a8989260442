//! `confab-testbed soak`: a long run of everything at once against one server, looking for what
//! only time shows: memory that creeps, descriptors or tasks that leak, rooms or pipelines that
//! outlive their users, errors in the log.
//!
//! Load ([`load`]): chat clients connecting, posting and reconnecting; voice rooms churning
//! (joins and leaves every few seconds, cameras toggling, so composites start and stop); one live
//! stream over RTMP with LL-HLS viewers coming and going. Every few seconds [`sample`] reads the
//! server's own Prometheus endpoint (RSS, fds, threads, peers, rooms, pipelines, viewers) and its
//! CPU from `/proc`. After the load, a cool-down shows whether the counts return to the baseline.
//! [`report`] writes the Markdown, the SVG plots and the JSON.

pub mod load;
pub mod report;
pub mod sample;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::bench::api::Api;
use crate::bench::scenario::ServerSettings;
use crate::bench::server::Target;

/// What `confab-testbed soak` was asked.
#[derive(Debug, Clone)]
pub struct SoakArgs {
    pub confab: Option<PathBuf>,
    pub minutes: f64,
    pub cooldown_secs: f64,
    pub warmup_minutes: f64,
    pub chat_clients: usize,
    pub voice_rooms: usize,
    pub per_room: usize,
    pub viewers: usize,
    pub out: PathBuf,
    pub command: String,
}

/// Runs the soak and writes its report; returns the report's path and whether every goal held.
pub async fn run(args: SoakArgs) -> Result<(PathBuf, bool)> {
    let confab = match &args.confab {
        Some(p) => p.clone(),
        None => crate::bench::server::default_confab()?,
    };
    let dir = tempfile::tempdir()?;
    let metrics_port = free_port()?;
    let log = dir.path().join("server.log");
    let mut settings = ServerSettings {
        video_width: 320,
        video_height: 180,
        video_fps: 15,
        log: Some(log.clone()),
        ..Default::default()
    };
    settings.env.insert("CONFAB_METRICS_LISTEN".into(), format!("127.0.0.1:{metrics_port}"));
    settings.env.insert("CONFAB_MEDIA_PEER_TIMEOUT_SECS".into(), "5".into());
    settings.env.insert("RUST_LOG".into(), "info".into());
    let target = Target::Spawn { confab, database: dir.path().join("soak.db"), settings, cpus: None };
    let server = target.start()?;
    let pid = server.pid.context("the soak needs the server's pid")?;
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let api = Api::new(&server.base)?;
    let world = load::World::create(&api, &args).await?;
    let sampler = sample::Sampler::start(metrics_url, pid, Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let baseline = sampler.latest().context("no baseline sample")?;

    let stop = CancellationToken::new();
    let counters = Arc::new(load::Counters::default());
    let started = Instant::now();
    let tasks = load::start(&server.base, &world, &args, stop.clone(), counters.clone()).await?;
    let load_for = Duration::from_secs_f64(args.minutes * 60.0);
    while started.elapsed() < load_for {
        tokio::time::sleep(Duration::from_secs(30)).await;
        tracing::info!(elapsed = ?started.elapsed(), "soak: {}", counters.summary());
    }
    let load_ended = sampler.elapsed();
    stop.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(args.cooldown_secs)).await;
    let samples = sampler.stop().await;
    drop(server);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let r = report::Soak::analyse(&args, samples, baseline, load_ended, &counters, &log_text);
    let path = report::write(&args.out, &r)?;
    Ok((path, r.passed()))
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

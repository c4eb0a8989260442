//! One write-throughput step: `concurrency` clients, each a different user of one guild, post to
//! its text channel as fast as they are answered (a closed loop), on a fresh server over SQLite or
//! Postgres. confab answers 201 only after the commit, so the rate of 201s is durable writes per
//! second. Postgres comes from `CONFAB_BENCH_POSTGRES_URL` (run it with fsync on, or the figure
//! says nothing about durability: `PG_THROWAWAY_FSYNC=on scripts/pg-throwaway.sh run …`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use serde_json::json;

use super::api::{Api, run_tag};
use super::procstat::{Sampler, figures};
use super::results::{Dist, WritesStep};
use super::scenario::{Store, WritesSweep};
use super::server::Target;
use crate::hist::Histogram;

/// The database URL for a step: a fresh SQLite file beside the run's, or the given Postgres.
pub fn database(target: &Target, store: Store, step: usize) -> Result<String> {
    match store {
        Store::Sqlite => {
            let dir = match target {
                Target::Spawn { database, .. } => database.parent().map(|p| p.to_path_buf()),
                Target::Url { .. } => None,
            };
            let dir = dir.unwrap_or_else(std::env::temp_dir);
            Ok(format!("sqlite:{}", dir.join(format!("writes-{step}.db")).display()))
        }
        Store::Postgres => std::env::var("CONFAB_BENCH_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .context("a postgres write step needs CONFAB_BENCH_POSTGRES_URL (a Postgres with fsync on)"),
    }
}

pub async fn run_step(
    target: &Target,
    sweep: &WritesSweep,
    store: Store,
    concurrency: usize,
    step: usize,
    pb: &ProgressBar,
) -> Result<WritesStep> {
    let db = database(target, store, step)?;
    let server = target.start_with_database(&db)?;
    let api = Api::new(&server.base)?;
    pb.set_message(format!("{} {store:?} ×{concurrency}: accounts", sweep.name));
    let tag = run_tag();
    let names: Vec<String> = (0..concurrency.max(1)).map(|i| format!("w{tag}-{i}")).collect();
    let users = api.signup_many(names, || {}).await?;
    let (_, channel) = api.guild(&format!("writes {tag}"), &users[0], &users[1..]).await?;
    let path = format!("/api/channels/{channel}/messages");

    pb.set_message(format!("{} {store:?} ×{concurrency}: posting", sweep.name));
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sampler = server.pid.map(Sampler::start);
    let me = Sampler::start(std::process::id());
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(sweep.duration_secs);
    let workers: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(w, user)| {
            let (api, path, token) = (api.clone(), path.clone(), user.token.clone());
            let (acked, failed, errors) = (acked.clone(), failed.clone(), errors.clone());
            tokio::spawn(async move {
                let mut hist = Histogram::default();
                let mut i = 0u64;
                while Instant::now() < end {
                    let t0 = Instant::now();
                    match api.post(&path, Some(&token), json!({ "content": format!("w{w} m{i}") })).await {
                        Ok(_) => {
                            hist.record(t0.elapsed());
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
                            if errors.len() < 5 {
                                errors.push(format!("{e:#}"));
                            }
                        }
                    }
                    i += 1;
                }
                hist
            })
        })
        .collect();
    let mut post = Histogram::default();
    for w in workers {
        post.merge(&w.await.context("a writer panicked")?);
    }
    let window = start.elapsed().as_secs_f64();
    let now = Instant::now();
    let acked = acked.load(Ordering::Relaxed);
    let first_errors = errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(WritesStep {
        sweep: sweep.name.clone(),
        store: format!("{store:?}").to_lowercase(),
        concurrency,
        window_secs: window,
        acked,
        failed: failed.load(Ordering::Relaxed),
        errors: first_errors,
        writes_per_sec: acked as f64 / window.max(1e-3),
        post: Dist::from(&post),
        server: figures(&sampler.as_ref().map(|s| s.window(start, now)).unwrap_or_default()),
        client: figures(&me.window(start, now)),
    })
}

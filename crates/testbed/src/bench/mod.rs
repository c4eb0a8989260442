//! `confab-testbed bench <scenario.toml>`: drives a real confab server with synthetic participants
//! and writes a report worth publishing: `results/<scenario>-<date>.md` with tables per mode side
//! by side, SVG plots, and the raw figures as JSON next to it.
//!
//! A run: the raw `sendto` baseline; accounts, guilds and channels (once, reused by every step);
//! then each step of each sweep on a freshly started server (its PID sampled from `/proc`): media
//! steps (rooms × participants × mode, [`media_run`]) and chat steps (connections × message rate,
//! [`chat_run`]). The tool checks the figures are sane (non-zero, loss < 1%) and exits non-zero
//! otherwise; it asserts nothing about speed: the report states it.
//!
//! - [`scenario`]: the TOML files under `crates/testbed/scenarios/`.
//! - [`server`]: the server under test, started or given by URL; [`affinity`]: the server and the
//!   clients kept on separate cores when the scenario says so.
//! - [`procstat`]: CPU and RSS from `/proc`, sampled every 250 ms.
//! - [`baseline`]: the raw UDP `sendto` loop.
//! - [`api`]: accounts, guilds, channels over HTTP.
//! - [`setup`]: what every step shares: accounts, the media guild's channels, chat guilds.
//! - [`media_run`], [`media_collect`]: one media step and its figures.
//! - [`chat_run`]: one chat step; [`writes_run`]: one durable-write step (SQLite or Postgres);
//!   [`live_run`]: one live stream (ffmpeg → RTMP → ladder → LL-HLS, watched like a player);
//!   [`spike_run`]: a crowd of LL-HLS viewers arriving at once, against [`nginx`] serving the
//!   same stream's recording; [`cluster_run`] (probes in [`cluster_probes`], [`cluster_edge`]):
//!   many nodes on NATS
//!   and Postgres against one.
//! - [`results`]: the figures (the JSON); [`findings`]: what they say against the targets;
//!   [`report`]: the Markdown; [`plot`]: the SVGs; [`sanity`]: the smoke checks.

pub mod affinity;
pub mod api;
pub mod baseline;
pub mod chat_run;
pub mod cluster_edge;
pub mod cluster_probes;
pub mod cluster_run;
pub mod findings;
pub mod live_run;
pub mod media_collect;
pub mod media_run;
pub mod nginx;
pub mod plot;
pub mod procstat;
pub mod report;
pub mod report_cluster;
pub mod report_spike;
pub mod results;
pub mod sanity;
pub mod scenario;
pub mod server;
pub mod setup;
pub mod spike_run;
pub mod writes_run;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use results::{MediaStep, RunReport};
use scenario::{Scenario, mode_name};
use server::Target;

/// What `confab-testbed bench` was asked.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub scenario: PathBuf,
    /// A running server instead of starting one.
    pub server_url: Option<String>,
    pub server_pid: Option<u32>,
    /// The confab binary to start; default: next to confab-testbed.
    pub confab: Option<PathBuf>,
    pub out: PathBuf,
    /// Where criterion leaves its estimates (`target/criterion`).
    pub criterion_dir: PathBuf,
    /// The command line, for the report.
    pub command: String,
}

/// Runs the scenario and writes the report; returns the report's path and whether it is sane.
pub async fn run(args: BenchArgs) -> Result<(PathBuf, bool)> {
    let scenario = Scenario::load(&args.scenario)?;
    let nofile = raise_nofile_limit();
    let db_dir = std::env::temp_dir().join(format!("confab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&db_dir).with_context(|| format!("creating {}", db_dir.display()))?;
    let _cleanup = RemoveOnDrop(db_dir.clone());
    let target = match &args.server_url {
        Some(base) => Target::Url { base: base.clone(), pid: args.server_pid },
        None => Target::Spawn {
            confab: match &args.confab {
                Some(p) => p.clone(),
                None => server::default_confab()?,
            },
            database: db_dir.join("bench.db"),
            settings: scenario.server.clone(),
            cpus: scenario.cpus.as_ref().map(|c| c.server.clone()),
        },
    };
    // Before the baseline and the clients start: their threads inherit it.
    if let Some(c) = &scenario.cpus {
        affinity::pin_self(&c.clients).context("pinning the testbed to its cores")?;
    }
    let mut report = RunReport {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        environment: report::environment(&args.command, &target, &scenario),
        ..RunReport::default()
    };
    tracing::info!(nofile, "open files limit");

    let media_steps: usize = scenario.media.iter().map(|m| m.modes.len() * m.participants.len() * m.repeat).sum();
    let chat_steps: usize = scenario.chat.iter().map(|c| c.connections.len()).sum();
    let write_steps: usize = scenario.writes.iter().map(|w| w.stores.len() * w.concurrency.len()).sum();
    let cluster_steps: usize = scenario.cluster.iter().map(|c| c.nodes.len()).sum();
    let pb = ProgressBar::new(
        (media_steps + chat_steps + write_steps + scenario.live.len() + scenario.spike.len() + cluster_steps + 2)
            as u64,
    );
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(Duration::from_millis(200));

    pb.set_message("raw sendto baseline");
    report.baseline = baseline::run(&scenario.baseline.packet_sizes, scenario.baseline.seconds).await?;
    pb.inc(1);

    pb.set_message("accounts, guilds, channels");
    let shared = {
        let server = target.start()?;
        setup::Shared::create(&server.base, &scenario, &pb).await?
    };
    pb.inc(1);

    for sweep in &scenario.media {
        for &participants in &sweep.participants {
            // Round by round, every mode once, so a change in the box's load falls on all of them.
            let mut runs: Vec<Vec<MediaStep>> = vec![Vec::new(); sweep.modes.len()];
            for _round in 0..sweep.repeat {
                for (&mode, runs) in sweep.modes.iter().zip(runs.iter_mut()) {
                    let server = target.start()?;
                    let api = api::Api::new(&server.base)?;
                    let channels = shared.channels(mode_name(mode), sweep.rooms)?;
                    let step =
                        media_run::run_step(&api, server.pid, sweep, mode, participants, channels, &shared.media, &pb)
                            .await
                            .with_context(|| format!("{} {} P={participants}", sweep.name, mode_name(mode)))?;
                    say(&pb, report::step_line(&step));
                    runs.push(step);
                    drop(server);
                    pb.inc(1);
                }
            }
            report.media.extend(runs.into_iter().filter_map(median_run));
        }
    }
    for sweep in &scenario.chat {
        let guilds = shared.chat_guilds(&sweep.name)?;
        for &connections in &sweep.connections {
            let server = target.start()?;
            let api = api::Api::new(&server.base)?;
            let step = chat_run::run_step(&api, server.pid, sweep, connections, guilds, &pb)
                .await
                .with_context(|| format!("{} C={connections}", sweep.name))?;
            say(&pb, report::chat_line(&step));
            report.chat.push(step);
            drop(server);
            pb.inc(1);
        }
    }
    for sweep in &scenario.writes {
        for &store in &sweep.stores {
            for &concurrency in &sweep.concurrency {
                let n = report.writes.len();
                let step = writes_run::run_step(&target, sweep, store, concurrency, n, &pb)
                    .await
                    .with_context(|| format!("{} {store:?} ×{concurrency}", sweep.name))?;
                say(&pb, report::writes_line(&step));
                report.writes.push(step);
                pb.inc(1);
            }
        }
    }
    for sweep in &scenario.live {
        let step = live_run::run_step(&target, sweep, &pb).await.with_context(|| format!("live {}", sweep.name))?;
        say(&pb, report::live_line(&step));
        report.live.push(step);
        pb.inc(1);
    }
    for sweep in &scenario.spike {
        let step = spike_run::run_step(&target, sweep, &pb).await.with_context(|| format!("spike {}", sweep.name))?;
        say(&pb, report::spike_line(&step));
        report.spike.push(step);
        pb.inc(1);
    }
    for sweep in &scenario.cluster {
        for &nodes in &sweep.nodes {
            let step = cluster_run::run_step(&target, sweep, nodes, &pb)
                .await
                .with_context(|| format!("cluster {} ×{nodes}", sweep.name))?;
            say(&pb, report::cluster_line(&step));
            report.cluster.push(step);
            pb.inc(1);
        }
    }
    pb.finish_with_message("done");

    // The micro-benchmarks are of the media paths; a chat-only report leaves them out.
    if !report.media.is_empty() {
        report.criterion = report::criterion(&args.criterion_dir);
    }
    if scenario.sanity {
        report.sanity_failures = sanity::check(&report);
    }
    let path = report::write(&args.out, &report)?;
    Ok((path, report.sanity_failures.is_empty()))
}

/// The run of median server CPU, carrying every run's CPU when there were several.
fn median_run(mut runs: Vec<MediaStep>) -> Option<MediaStep> {
    let cpu: Vec<f64> = runs.iter().map(|s| s.server.cpu_cores_avg).collect();
    runs.sort_by(|a, b| a.server.cpu_cores_avg.total_cmp(&b.server.cpu_cores_avg));
    let mut median = runs.into_iter().nth(cpu.len().saturating_sub(1) / 2)?;
    if cpu.len() > 1 {
        median.server_cpu_runs = cpu;
    }
    Some(median)
}

/// Removes the run's scratch directory (the servers' database) however the run ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A line of progress: above the bar on a terminal, plain on stderr otherwise (logs, CI).
fn say(pb: &ProgressBar, line: String) {
    if pb.is_hidden() {
        eprintln!("{line}");
    } else {
        pb.println(line);
    }
}

/// Raises the open-files limit as far as allowed (one socket per connection, on both sides: a
/// server started from here inherits it). Returns the soft limit now in force.
fn raise_nofile_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return 0 };
    // As root the hard limit itself may rise; otherwise the soft limit goes up to the hard one.
    const WANT: u64 = 1 << 20;
    if hard < WANT && setrlimit(Resource::RLIMIT_NOFILE, WANT, WANT).is_ok() {
        return WANT;
    }
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cpu: f64, joined: usize) -> MediaStep {
        let mut s = MediaStep { joined, ..MediaStep::default() };
        s.server.cpu_cores_avg = cpu;
        s
    }

    #[test]
    fn repeated_steps_keep_the_median_run_and_every_runs_cpu() {
        let m = median_run(vec![run(0.30, 1), run(0.21, 2), run(0.25, 3)]).expect("a run");
        assert_eq!(m.joined, 3, "the run of median CPU, whole");
        assert_eq!(m.server_cpu_runs, vec![0.30, 0.21, 0.25], "in run order");
        // An even count takes the lower middle; one run lists nothing extra.
        assert_eq!(median_run(vec![run(0.4, 1), run(0.2, 2)]).expect("a run").joined, 2);
        assert!(median_run(vec![run(0.4, 1)]).expect("a run").server_cpu_runs.is_empty());
        assert!(median_run(Vec::new()).is_none());
    }
}

//! `confab-testbed forward <scenario.toml>`: confab's forwarding against Janus's on the same
//! load, in the same run, with the same pinning. Each step is R rooms of P light peers
//! ([`crate::light`]) where everyone hears everyone else (confab: `last_n = P - 1`; Janus: a
//! VideoRoom, each participant subscribed to the other P - 1 feeds), on a freshly started server.
//! After a warm-up, one window measures: the server's CPU (from `/proc`), the copies the peers
//! received, their one-way latency (stamped in the payload), what was lost, the server's RSS.
//! The raw `sendto` loop of the same run is the yardstick. Writes `results/<name>-<date>.md` and
//! its JSON; exits non-zero only if the figures are not sane (nothing forwarded, loss ≥ 1%).
//!
//! - [`janus_server`]: Janus started with a generated configuration.
//! - `steps`: one step against either server; [`report`]: the Markdown.

pub mod janus_server;
pub mod report;
mod steps;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::bench::scenario::Cpus;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardScenario {
    pub name: String,
    pub description: String,
    /// Rooms per step, one step per entry.
    pub rooms: Vec<usize>,
    /// Participants per room; each receives the other P - 1.
    pub participants: usize,
    /// `confab`, `janus`.
    pub targets: Vec<String>,
    /// `sfu` (default): confab forwards, against a Janus VideoRoom; `mcu`: confab mixes, against
    /// a Janus AudioBridge (the peers send a real Opus tone then, and latency is not stamped).
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default = "default_warmup")]
    pub warmup_secs: f64,
    #[serde(default = "default_duration")]
    pub duration_secs: f64,
    /// Joins per second.
    #[serde(default = "default_join_rate")]
    pub join_rate: f64,
    pub cpus: Option<Cpus>,
    #[serde(default = "default_baseline")]
    pub baseline_secs: f64,
}

impl ForwardScenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &std::path::Path) -> Result<ForwardScenario> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let sc: ForwardScenario = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        sc.validate().with_context(|| format!("checking {}", path.display()))?;
        Ok(sc)
    }

    fn validate(&self) -> Result<()> {
        anyhow::ensure!(
            !self.rooms.is_empty() && self.rooms.iter().all(|r| *r > 0),
            "rooms: at least one step, none empty"
        );
        anyhow::ensure!(self.participants >= 2, "rooms need at least two participants");
        anyhow::ensure!(matches!(self.mode.as_str(), "sfu" | "mcu"), "mode is sfu or mcu, not {:?}", self.mode);
        anyhow::ensure!(!self.targets.is_empty(), "no targets");
        for t in &self.targets {
            anyhow::ensure!(matches!(t.as_str(), "confab" | "janus"), "unknown target {t:?} (confab, janus)");
        }
        anyhow::ensure!(self.duration_secs > 0.0 && self.join_rate > 0.0, "duration and join rate must be positive");
        Ok(())
    }
}

fn default_mode() -> String {
    "sfu".into()
}
fn default_warmup() -> f64 {
    3.0
}
fn default_duration() -> f64 {
    10.0
}
fn default_join_rate() -> f64 {
    50.0
}
fn default_baseline() -> f64 {
    1.0
}

/// What `confab-testbed forward` was asked.
#[derive(Debug, Clone)]
pub struct ForwardArgs {
    pub scenario: PathBuf,
    pub confab: Option<PathBuf>,
    pub out: PathBuf,
    pub command: String,
}

/// One step's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub target: String,
    pub rooms: usize,
    pub participants: usize,
    /// Forwarded streams: rooms × P × (P - 1) (`sfu`); mixes sent: rooms × P (`mcu`).
    pub streams: usize,
    pub connected: usize,
    pub window_secs: f64,
    pub server_cores: f64,
    pub sent: u64,
    pub received: u64,
    pub expected: u64,
    pub loss: f64,
    pub packets_per_core_sec: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub rss_idle_mib: f64,
    pub rss_mib: f64,
    pub rss_per_participant_kib: f64,
    /// The server's own forwarding latency (arrival on its socket to the copy sent) over the
    /// window: confab's `/voice/stats`; Janus tells none.
    pub server_latency: Option<crate::bench::results::ServerLatency>,
    /// Two webrtc-rs clients in a room of their own on the same server (confab steps), decoding
    /// each other: loss, jitter and latency as a real client's stack sees them under the load.
    pub probes: Option<ProbeFigures>,
    /// The light peers' CPU (the testbed process) over the window: near its cores, the peers'
    /// own queueing is in the latency they measure.
    pub client_cores: f64,
}

/// What the webrtc-rs probes saw over the window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProbeFigures {
    pub packets: u64,
    pub lost: u64,
    /// RFC 3550 interarrival jitter, the largest of the probes' streams at the window's end.
    pub jitter_ms: f64,
    /// Capture time to arrival.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForwardRun {
    pub name: String,
    pub description: String,
    pub command: String,
    pub date: String,
    pub machine: String,
    pub janus_version: Option<String>,
    pub mode: String,
    pub sendto_per_core_sec: f64,
    /// The same `sendto` to sockets read on the client cores, from the server's cores
    /// (`bench::baseline::measure_to_readers`): what the kernel's send costs when it wakes readers.
    pub read_sendto_per_core_sec: f64,
    pub steps: Vec<StepResult>,
}

/// Runs the scenario; returns the report's path and whether the figures are sane. The peers run
/// on a current-thread runtime of a thread of their own, pinned to the scenario's client cores:
/// a multi-threaded runtime's workers would fight over one core.
pub async fn run(args: ForwardArgs) -> Result<(PathBuf, bool)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("forward".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let _ = tx.send(rt.map_err(anyhow::Error::from).and_then(|rt| rt.block_on(run_here(args))));
    })?;
    rx.await.context("the forward thread died")?
}

async fn run_here(args: ForwardArgs) -> Result<(PathBuf, bool)> {
    let sc = ForwardScenario::load(&args.scenario)?;
    if let Some(c) = &sc.cpus {
        crate::bench::affinity::pin_self(&c.clients)?;
    }
    let confab = match &args.confab {
        Some(p) => p.clone(),
        None => crate::bench::server::default_confab()?,
    };
    let janus_version = if sc.targets.iter().any(|t| t == "janus") { Some(janus_server::version()?) } else { None };
    let baseline = crate::bench::baseline::run(&[140], sc.baseline_secs).await?;
    let sendto = baseline.first().map_or(0.0, |b| b.packets_per_core_sec);
    let (secs, server_cpus) = (sc.baseline_secs, sc.cpus.as_ref().map(|c| c.server.clone()));
    let read = tokio::task::spawn_blocking(move || crate::bench::baseline::measure_to_readers(140, secs, server_cpus))
        .await
        .context("read baseline thread")??;
    let mut confab_setup = steps::ConfabSetup::new(confab)?;
    let mut results = Vec::new();
    for &rooms in &sc.rooms {
        for target in &sc.targets {
            eprintln!("forward: {rooms} rooms of {} on {target}", sc.participants);
            let r = match target.as_str() {
                "confab" => confab_setup.step(&sc, rooms).await?,
                "janus" => steps::janus_step(&sc, rooms).await?,
                other => anyhow::bail!("unknown target {other:?} (confab, janus)"),
            };
            eprintln!(
                "forward:   {:.0} packets/core-s, {:.2} cores, loss {:.3}%, p99 {:.2} ms",
                r.packets_per_core_sec,
                r.server_cores,
                r.loss * 100.0,
                r.latency_p99_ms
            );
            results.push(r);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let run = ForwardRun {
        name: sc.name.clone(),
        description: sc.description.clone(),
        command: args.command.clone(),
        date: crate::bench::report::today().1,
        machine: report::machine(),
        janus_version,
        mode: sc.mode.clone(),
        sendto_per_core_sec: sendto,
        read_sendto_per_core_sec: read.packets_per_core_sec,
        steps: results,
    };
    let sane = report::sane(&run);
    let path = report::write(&run, &args.out)?;
    Ok((path, sane.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_forward_scenario_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|f| f.to_string_lossy().starts_with("forward-")) {
                ForwardScenario::load(&path).unwrap();
                n += 1;
            }
        }
        assert!(n >= 3, "{n} forward scenarios in {}", dir.display());
    }

    #[test]
    fn bad_forward_scenarios_are_refused() {
        let base = "name = 'x'\ndescription = 'x'\nparticipants = 4\n";
        let bad = |extra: &str| {
            toml::from_str::<ForwardScenario>(&format!("{base}{extra}"))
                .map_err(anyhow::Error::from)
                .and_then(|s| s.validate())
        };
        assert!(bad("rooms = [1]\ntargets = ['confab']").is_ok());
        assert!(bad("rooms = []\ntargets = ['confab']").is_err(), "no step");
        assert!(bad("rooms = [1]\ntargets = ['mediasoup']").is_err(), "unknown target");
        assert!(bad("rooms = [1]\ntargets = ['janus']\nmode = 'hybrid'").is_err(), "no such mode");
        assert!(bad("rooms = [1]\ntargets = ['janus']\nbogus = 1").is_err(), "unknown field");
    }
}

//! One step of `forward`: R rooms of P light peers on a fresh confab or Janus, joined at the
//! scenario's rate, warmed up, then one measured window.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::watch;

use super::janus_server::Janus;
use super::{ForwardScenario, ProbeFigures, StepResult};
use crate::bench::api::{Account, Api};
use crate::bench::procstat;
use crate::bench::scenario::ServerSettings;
use crate::bench::server::Target;
use crate::hist::Histogram;
use crate::light::confab::ConfabPeer;
use crate::light::janus::{JanusPeer, JanusWs, create_bridge, create_room, join_bridge};
use crate::light::peer::{Payload, Shared, lock, opus_loop};
use crate::voice::{VoiceClient, VoiceOptions};

const JOIN_TIMEOUT: Duration = Duration::from_secs(15);
/// webrtc-rs clients in a room of their own in confab steps, and the tones they speak.
const PROBES: usize = 2;
const PROBE_TONES: [f32; PROBES] = [440.0, 660.0];
/// Every peer must be sending and receiving within this after the last join.
const FLOW_TIMEOUT: Duration = Duration::from_secs(20);

fn phase() -> Duration {
    Duration::from_micros(rand::random::<u64>() % 20_000)
}

/// The confab database and accounts, made once and reused by every step.
pub struct ConfabSetup {
    confab: PathBuf,
    _dir: tempfile::TempDir,
    database: PathBuf,
    accounts: Vec<Account>,
    /// Voice channels in the scenario's mode, one per room, made as steps need more.
    channels: Vec<String>,
    guild: Option<String>,
}

impl ConfabSetup {
    pub fn new(confab: PathBuf) -> Result<ConfabSetup> {
        let dir = tempfile::tempdir()?;
        let database = dir.path().join("forward.db");
        Ok(ConfabSetup { confab, _dir: dir, database, accounts: Vec::new(), channels: Vec::new(), guild: None })
    }

    pub async fn step(&mut self, sc: &ForwardScenario, rooms: usize) -> Result<StepResult> {
        let cpus = sc.cpus.as_ref().map(|c| c.server.clone());
        let settings = ServerSettings { last_n: sc.participants - 1, ..ServerSettings::default() };
        let target = Target::Spawn { confab: self.confab.clone(), database: self.database.clone(), settings, cpus };
        let server = target.start()?;
        let pid = server.pid.context("no server pid")?;
        let api = Api::new(&server.base)?;
        // Two more accounts and one more channel: the webrtc-rs probes' room.
        let need = rooms * sc.participants + PROBES;
        if self.accounts.len() < need {
            let tag = crate::bench::api::run_tag();
            let names = (self.accounts.len()..need).map(|i| format!("fw{tag}{i}")).collect();
            self.accounts.extend(api.signup_many(names, || {}).await?);
            self.guild = None;
            self.channels.clear();
        }
        if self.guild.is_none() {
            let (g, _) = api.guild("forward", &self.accounts[0], &self.accounts).await?;
            self.guild = Some(g);
        }
        let guild = self.guild.clone().context("no guild")?;
        while self.channels.len() < rooms + 1 {
            let name = format!("room-{}", self.channels.len());
            self.channels.push(api.voice_channel(&self.accounts[0], &guild, &name, &sc.mode).await?);
        }
        let idle = procstat::sample(pid).context("server gone")?;
        let (stop_tx, stop) = watch::channel(false);
        let payload = match sc.mode.as_str() {
            "mcu" => Payload::Opus(opus_loop(440.0)?),
            _ => Payload::Stamped,
        };
        let mut peers: Vec<ConfabPeer> = Vec::new();
        let pace = Duration::from_secs_f64(1.0 / sc.join_rate.max(0.1));
        for r in 0..rooms {
            for p in 0..sc.participants {
                let a = &self.accounts[r * sc.participants + p];
                let peer = crate::light::confab::join(
                    &server.base,
                    &a.token,
                    &self.channels[r],
                    phase(),
                    payload.clone(),
                    stop.clone(),
                    JOIN_TIMEOUT,
                )
                .await
                .with_context(|| format!("joining room {r} as participant {p}"))?;
                peers.push(peer);
                tokio::time::sleep(pace).await;
            }
        }
        let mut probes = Vec::new();
        // Only where they add next to nothing: in `mcu` rooms their own mix would be confab's work
        // alone, not Janus's.
        let tones: &[f32] = if sc.mode == "sfu" { &PROBE_TONES } else { &[] };
        for (i, hz) in tones.iter().enumerate() {
            let a = &self.accounts[rooms * sc.participants + i];
            let opts = VoiceOptions::tone(*hz);
            let probe = VoiceClient::join(&server.base, &a.token, &self.channels[rooms], opts)
                .await
                .context("joining a webrtc-rs probe")?;
            probes.push(probe);
        }
        let counts: Vec<Shared> = peers.iter().map(|p| p.counts.clone()).collect();
        let r = measure(sc, "confab", rooms, (pid, idle.rss_bytes), &counts, Some(&api), &probes).await;
        drop(probes);
        let _ = stop_tx.send(true);
        drop(peers);
        drop(server);
        r
    }
}

/// One step against a fresh Janus: rooms created, every participant publishing, then each
/// subscribing to the others of its room.
pub async fn janus_step(sc: &ForwardScenario, rooms: usize) -> Result<StepResult> {
    let janus = Janus::start(sc.cpus.as_ref().map(|c| c.server.as_slice()))?;
    let admin = JanusWs::connect(&janus.ws_url, JOIN_TIMEOUT).await?;
    let idle = procstat::sample(janus.pid).context("janus gone")?;
    let (stop_tx, stop) = watch::channel(false);
    let pace = Duration::from_secs_f64(1.0 / sc.join_rate.max(0.1));
    let mut peers: Vec<JanusPeer> = Vec::new();
    let opus = opus_loop(440.0)?;
    for r in 0..rooms {
        let room = 1000 + r as u64;
        if sc.mode == "mcu" {
            create_bridge(&admin, room).await?;
            for p in 0..sc.participants {
                let id = room * 100 + p as u64 + 1;
                let peer = join_bridge(&janus.ws_url, room, id, phase(), opus.clone(), stop.clone(), JOIN_TIMEOUT)
                    .await
                    .with_context(|| format!("joining bridge {room} as {id}"))?;
                peers.push(peer);
                tokio::time::sleep(pace).await;
            }
            continue;
        }
        create_room(&admin, room, sc.participants + 1).await?;
        let first = peers.len();
        for p in 0..sc.participants {
            let feed = room * 100 + p as u64 + 1;
            let peer = JanusPeer::publish(&janus.ws_url, room, feed, phase(), stop.clone(), JOIN_TIMEOUT)
                .await
                .with_context(|| format!("publishing in room {room} as feed {feed}"))?;
            peers.push(peer);
            tokio::time::sleep(pace).await;
        }
        // Janus offers a feed to subscribers only once it has its PeerConnection up.
        let deadline = Instant::now() + JOIN_TIMEOUT;
        while !peers[first..].iter().all(|p| p.publishing()) {
            if Instant::now() > deadline {
                bail!("janus: the publishers of room {room} did not connect within {JOIN_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let feeds: Vec<u64> = peers[first..].iter().map(|p| p.feed).collect();
        for peer in &mut peers[first..] {
            let others: Vec<u64> = feeds.iter().copied().filter(|f| *f != peer.feed).collect();
            peer.subscribe(room, &others, stop.clone()).await.with_context(|| format!("subscribing in room {room}"))?;
            tokio::time::sleep(pace).await;
        }
    }
    let counts: Vec<Shared> = peers.iter().map(|p| p.counts.clone()).collect();
    let r = measure(sc, "janus", rooms, (janus.pid, idle.rss_bytes), &counts, None, &[]).await;
    let _ = stop_tx.send(true);
    drop(peers);
    drop(admin);
    drop(janus);
    r
}

/// Packets and losses the probes counted so far.
fn probe_totals(probes: &[VoiceClient]) -> (u64, u64) {
    probes.iter().flat_map(|p| p.track_stats()).fold((0, 0), |(n, l), t| (n + t.packets, l + t.lost))
}

/// The probes' figures over the window that began at `before`.
fn probe_figures(before: (u64, u64), probes: &[VoiceClient]) -> ProbeFigures {
    let stats: Vec<_> = probes.iter().flat_map(|p| p.track_stats()).collect();
    let (packets, lost) = probe_totals(probes);
    let mut latency = Histogram::default();
    stats.iter().for_each(|t| latency.merge(&t.latency));
    let ms = |q: f64| latency.quantile(q).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    ProbeFigures {
        packets: packets.saturating_sub(before.0),
        lost: lost.saturating_sub(before.1),
        jitter_ms: stats.iter().map(|t| t.jitter.as_secs_f64() * 1e3).fold(0.0, f64::max),
        latency_p50_ms: ms(0.5),
        latency_p99_ms: ms(0.99),
    }
}

/// Waits for every peer to send and receive, warms up, then measures one window.
async fn measure(
    sc: &ForwardScenario,
    target: &str,
    rooms: usize,
    // The server's process and its RSS before anyone joined.
    (pid, rss_idle): (u32, u64),
    counts: &[Shared],
    stats: Option<&Api>,
    probes: &[VoiceClient],
) -> Result<StepResult> {
    let deadline = Instant::now() + FLOW_TIMEOUT;
    loop {
        let flowing = counts
            .iter()
            .filter(|c| {
                let c = lock(c);
                c.sent > 0 && c.received > 0
            })
            .count();
        if flowing == counts.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!("{target}: only {flowing} of {} peers send and receive after {FLOW_TIMEOUT:?}", counts.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(sc.warmup_secs)).await;
    for c in counts {
        let mut c = lock(c);
        c.sent = 0;
        c.received = 0;
        c.unstamped = 0;
        c.latency.clear();
    }
    let me = std::process::id();
    let probe_a = probe_totals(probes);
    probes.iter().for_each(VoiceClient::reset_window);
    let stats_a = match stats {
        Some(api) => Some(api.voice_stats().await?),
        None => None,
    };
    let (a, ca) = (procstat::sample(pid).context("server gone")?, procstat::sample(me));
    tokio::time::sleep(Duration::from_secs_f64(sc.duration_secs)).await;
    let (b, cb) = (procstat::sample(pid).context("server gone")?, procstat::sample(me));
    let probe_figures = (!probes.is_empty()).then(|| probe_figures(probe_a, probes));
    let server_latency = match (stats, &stats_a) {
        (Some(api), Some(before)) => crate::bench::media_collect::forward_latency(before, &api.voice_stats().await?),
        _ => None,
    };
    let (mut sent, mut received) = (0u64, 0u64);
    let mut latency = Histogram::default();
    for c in counts {
        let c = lock(c);
        sent += c.sent;
        received += c.received;
        latency.merge(&c.latency);
    }
    let p = sc.participants;
    let window = b.at.saturating_duration_since(a.at).as_secs_f64();
    let cores = procstat::cores(&a, &b);
    // Forwarded: each packet to the other P - 1; mixed: one mix packet per 20 ms to each.
    let mcu = sc.mode == "mcu";
    let expected = if mcu { sent } else { sent * (p as u64 - 1) };
    let ms = |q: f64| latency.quantile(q).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    Ok(StepResult {
        target: target.to_string(),
        rooms,
        participants: p,
        streams: if mcu { rooms * p } else { rooms * p * (p - 1) },
        connected: counts.iter().filter(|c| lock(c).connected).count(),
        window_secs: window,
        server_cores: cores,
        sent,
        received,
        expected,
        loss: if expected == 0 { 1.0 } else { (1.0 - received as f64 / expected as f64).max(0.0) },
        packets_per_core_sec: if cores > 0.0 { received as f64 / (cores * window) } else { 0.0 },
        latency_p50_ms: ms(0.5),
        latency_p99_ms: ms(0.99),
        latency_max_ms: latency.max().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        rss_idle_mib: mib(rss_idle),
        rss_mib: mib(b.rss_bytes),
        rss_per_participant_kib: b.rss_bytes.saturating_sub(rss_idle) as f64 / 1024.0 / (rooms * p) as f64,
        server_latency,
        probes: probe_figures,
        client_cores: match (ca, cb) {
            (Some(ca), Some(cb)) => procstat::cores(&ca, &cb),
            _ => 0.0,
        },
    })
}

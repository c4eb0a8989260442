//! Scenario files (`crates/testbed/scenarios/*.toml`): what to run, how big, for how long. One
//! file may hold several media sweeps and chat sweeps; each sweep runs every combination of its
//! lists (modes × participants, or connections) as one step, on a freshly started server.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};
use signaling::protocol::RoomMode;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub baseline: Baseline,
    /// Cores for the started server and for the testbed (see `affinity`); unset: shared.
    #[serde(default)]
    pub cpus: Option<Cpus>,
    #[serde(default)]
    pub media: Vec<MediaSweep>,
    #[serde(default)]
    pub chat: Vec<ChatSweep>,
    /// Durable message writes per second (`writes_run`).
    #[serde(default)]
    pub writes: Vec<WritesSweep>,
    /// Live streaming: ingest, transcode, LL-HLS (`live_run`).
    #[serde(default)]
    pub live: Vec<LiveSweep>,
    /// A live stream's viewer spike, against nginx serving the same stream (`spike_run`).
    #[serde(default)]
    pub spike: Vec<SpikeSweep>,
    /// Many nodes on NATS and Postgres against one (`cluster_run`).
    #[serde(default)]
    pub cluster: Vec<ClusterSweep>,
    /// Checks the smoke run makes: non-zero figures, loss under 1%. On by default.
    #[serde(default = "yes")]
    pub sanity: bool,
}

/// Settings of a server the testbed starts (ignored for `--server-url`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// The composite of hybrid and mcu rooms.
    pub video_width: u32,
    pub video_height: u32,
    pub video_fps: u32,
    pub video_bitrate_kbps: u32,
    /// Speakers forwarded to each listener (audio slots).
    pub last_n: usize,
    /// Further `CONFAB_*` variables, as they are.
    pub env: BTreeMap<String, String>,
    /// Where the server's whole stderr is kept (the soak reads it for errors); not from TOML.
    #[serde(skip)]
    pub log: Option<std::path::PathBuf>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            video_width: 640,
            video_height: 360,
            video_fps: 30,
            video_bitrate_kbps: 800,
            last_n: 5,
            env: BTreeMap::new(),
            log: None,
        }
    }
}

/// Which cores the started server and the testbed itself (clients, baseline) run on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpus {
    pub server: Vec<usize>,
    pub clients: Vec<usize>,
}

/// The raw `sendto` baseline, run once before the media sweeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Baseline {
    /// UDP payload sizes: an Opus packet with SRTP overhead, a full video packet.
    pub packet_sizes: Vec<usize>,
    pub seconds: f64,
}

impl Default for Baseline {
    fn default() -> Self {
        Self { packet_sizes: vec![120, 1100], seconds: 1.0 }
    }
}

/// Media: rooms × participants × modes, each combination a step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSweep {
    pub name: String,
    pub modes: Vec<RoomMode>,
    #[serde(default = "one")]
    pub rooms: usize,
    /// Participants per room, one step per value.
    pub participants: Vec<usize>,
    /// Share of participants that publish a microphone (a tone) and a camera.
    #[serde(default = "full")]
    pub mic_share: f64,
    #[serde(default)]
    pub camera_share: f64,
    /// Joins per second after the probes (first participant of each room) are in.
    #[serde(default = "ten")]
    pub join_rate: f64,
    #[serde(default = "two")]
    pub warmup_secs: f64,
    pub duration_secs: f64,
    /// Participants per room that decode everything (tones, pictures) for pattern latency; the
    /// others only count packets. At least one, the room's last.
    #[serde(default = "one")]
    pub decoders_per_room: usize,
    #[serde(default)]
    pub camera: CameraSettings,
    /// One participant of each room (the second: the first is the latency probe) also shares a
    /// screen of these settings, forwarded at its own resolution in every mode.
    #[serde(default)]
    pub share: Option<CameraSettings>,
    /// Audio slots each client offers (`last_n` of the server caps them); default: as ready says.
    #[serde(default)]
    pub audio_slots: Option<usize>,
    /// Runs of each step (each on a fresh server, the modes interleaved round by round); the report
    /// keeps the run of median server CPU and lists every run's. On a shared box one run can be
    /// off by a fifth.
    #[serde(default = "one")]
    pub repeat: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Share of each picture redrawn with noise every frame, so the encoder spends the bitrate a
    /// real camera would (a solid colour costs VP8 a few bytes a frame).
    pub noise: f32,
}

impl Default for CameraSettings {
    fn default() -> Self {
        Self { width: 320, height: 180, fps: 15, bitrate_kbps: 300, noise: 0.25 }
    }
}

/// One live stream: a `width`×`height`@`fps` test picture and tone, published by ffmpeg over
/// RTMP, or by the testbed's WebRTC client over WHIP (its VP8 camera, encoded live).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSweep {
    pub name: String,
    #[serde(default)]
    pub protocol: Ingest,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The publisher's video bitrate.
    pub bitrate_kbps: u32,
    pub duration_secs: f64,
}

/// A viewer spike: `viewers` light LL-HLS players arrive over `ramp_secs` and follow `rendition`
/// for `hold_secs` more, `chatters` of them posting to the stream's chat; then the same viewers
/// poll nginx serving the recorded stream as static files, the baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpikeSweep {
    pub name: String,
    pub viewers: usize,
    pub ramp_secs: f64,
    pub hold_secs: f64,
    /// The variant the viewers follow (its name in the URL: `source`, `360p`, …).
    pub rendition: String,
    /// The published source: ffmpeg's test picture and tone over RTMP.
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Accounts on the gateway that post one message each `chat_every_secs` to the stream's
    /// channel; delivery is timed on every one of their connections.
    #[serde(default)]
    pub chatters: usize,
    #[serde(default = "chat_every")]
    pub chat_every_secs: f64,
    /// Run the nginx baseline (Debian's nginx) after confab's.
    #[serde(default = "yes")]
    pub nginx: bool,
}

fn chat_every() -> f64 {
    5.0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ingest {
    #[default]
    Rtmp,
    Whip,
}

/// Many nodes against one, on one Postgres (`CONFAB_BENCH_POSTGRES_URL`, an admin URL: each step
/// gets a fresh database) and, for more than one node, a `nats-server` the step starts: chat
/// fan-out spread over the nodes; on multi-node steps the resume time of clients whose node is
/// killed and where voice rooms are placed; on the one-node step, authenticated requests per
/// second with the login cache on and off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSweep {
    pub name: String,
    /// Node counts, one step each (1: the single process, no NATS).
    pub nodes: Vec<usize>,
    /// Gateway connections, spread over the nodes.
    pub connections: usize,
    pub guilds: usize,
    #[serde(default = "ten_usize")]
    pub users_per_guild: usize,
    /// Messages per second over all guilds, posted through the nodes in turn.
    pub messages_per_sec: f64,
    pub duration_secs: f64,
    /// Clients on the node killed at the end of a multi-node step, resuming on the others.
    #[serde(default)]
    pub resumers: usize,
    /// Voice rooms granted through the first node of a multi-node step (placement balance).
    #[serde(default)]
    pub rooms: usize,
    /// LL-HLS players on the second node of a multi-node step, watching a stream the first one
    /// ingests (the edge's origin fetches per part), each for `edge_rounds` parts.
    #[serde(default)]
    pub edge_viewers: usize,
    #[serde(default = "ten_usize")]
    pub edge_rounds: usize,
    /// Closed-loop clients of `GET /api/users/@me`, cache on then off (one-node step).
    #[serde(default)]
    pub auth_clients: usize,
    #[serde(default = "five")]
    pub auth_secs: f64,
}

fn five() -> f64 {
    5.0
}

/// Write throughput: closed-loop posters per store; one step per store × concurrency.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WritesSweep {
    pub name: String,
    pub stores: Vec<Store>,
    /// Clients posting at once (each its own user).
    pub concurrency: Vec<usize>,
    pub duration_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Chat: connections over guilds, messages per second; one step per connection count.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSweep {
    pub name: String,
    pub connections: Vec<usize>,
    pub guilds: usize,
    /// Accounts per guild; connections are spread over them (one user may hold many sockets).
    #[serde(default = "ten_usize")]
    pub users_per_guild: usize,
    /// Messages per second over all guilds (0: idle connections only).
    pub messages_per_sec: f64,
    /// Connections opened at once.
    #[serde(default = "connect_concurrency")]
    pub connect_concurrency: usize,
    /// Idle time after connecting, before server memory is read.
    #[serde(default = "two")]
    pub idle_secs: f64,
    pub duration_secs: f64,
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn ten_usize() -> usize {
    10
}
fn full() -> f64 {
    1.0
}
fn ten() -> f64 {
    10.0
}
fn two() -> f64 {
    2.0
}
fn connect_concurrency() -> usize {
    64
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let s: Scenario = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        s.validate().with_context(|| format!("checking {}", path.display()))?;
        Ok(s)
    }

    fn validate(&self) -> Result<()> {
        let name_ok = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        ensure!(name_ok(&self.name), "name must be non-empty [A-Za-z0-9_-]: it names the report files");
        let steps = self.media.len()
            + self.chat.len()
            + self.writes.len()
            + self.live.len()
            + self.spike.len()
            + self.cluster.len();
        ensure!(steps > 0, "nothing to run: no [[media]], [[chat]], [[writes]], [[live]], [[spike]] or [[cluster]]");
        for c in &self.cluster {
            ensure!(!c.nodes.is_empty() && c.nodes.iter().all(|n| (1..=8).contains(n)), "{}: 1..=8 nodes", c.name);
            ensure!(c.guilds >= 1 && c.users_per_guild >= 1 && c.connections >= c.guilds, "{}: guilds", c.name);
            ensure!(c.duration_secs > 0.0 && c.messages_per_sec > 0.0, "{}: rates, times", c.name);
        }
        for s in &self.spike {
            ensure!(s.viewers >= 1 && s.ramp_secs > 0.0 && s.hold_secs > 0.0, "{}: viewers, ramp, hold", s.name);
        }
        if let Some(c) = &self.cpus {
            ensure!(!c.server.is_empty() && !c.clients.is_empty(), "cpus: server and clients each need a core");
            ensure!(!c.server.iter().any(|s| c.clients.contains(s)), "cpus: the server's and the clients' must differ");
        }
        for m in &self.media {
            ensure!(!m.modes.is_empty() && !m.participants.is_empty(), "{}: modes and participants", m.name);
            ensure!(m.rooms >= 1 && m.participants.iter().all(|p| *p >= 2), "{}: ≥ 1 room, ≥ 2 per room", m.name);
            ensure!((0.0..=1.0).contains(&m.mic_share) && (0.0..=1.0).contains(&m.camera_share), "{}: shares", m.name);
            ensure!(m.join_rate > 0.0 && m.duration_secs > 0.0 && m.warmup_secs >= 0.0, "{}: rates, times", m.name);
            ensure!((1..=9).contains(&m.repeat), "{}: repeat must be 1..=9", m.name);
            let c = &m.camera;
            ensure!(
                c.width % 2 == 0 && c.height % 2 == 0 && c.fps > 0 && (0.0..=1.0).contains(&c.noise),
                "{}: camera",
                m.name
            );
        }
        for c in &self.chat {
            ensure!(c.guilds >= 1 && c.users_per_guild >= 1, "{}: ≥ 1 guild and user", c.name);
            ensure!(c.connections.iter().all(|n| *n >= c.guilds), "{}: ≥ one connection per guild", c.name);
            ensure!(c.duration_secs > 0.0 && c.messages_per_sec >= 0.0, "{}: rates, times", c.name);
            ensure!(c.connect_concurrency >= 1, "{}: connect_concurrency", c.name);
        }
        for w in &self.writes {
            ensure!(!w.stores.is_empty() && !w.concurrency.is_empty(), "{}: stores and concurrency", w.name);
            ensure!(w.concurrency.iter().all(|c| (1..=1000).contains(c)), "{}: 1..=1000 posters", w.name);
            ensure!(w.duration_secs > 0.0, "{}: duration", w.name);
        }
        Ok(())
    }

    /// Accounts the media sweeps need at once: the largest step.
    pub fn media_accounts(&self) -> usize {
        self.media.iter().map(|m| m.rooms * m.participants.iter().max().copied().unwrap_or(0)).max().unwrap_or(0)
    }
}

pub fn mode_name(mode: RoomMode) -> &'static str {
    match mode {
        RoomMode::Sfu => "sfu",
        RoomMode::Mcu => "mcu",
        _ => "hybrid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // `forward-*` are `confab-testbed forward`'s (tested in `forward`).
            let forward = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("forward-"));
            if path.extension().is_some_and(|e| e == "toml") && !forward {
                Scenario::load(&path).unwrap();
                n += 1;
            }
        }
        assert!(n >= 3, "{n} scenarios in {}", dir.display());
    }

    #[test]
    fn bad_scenarios_are_refused() {
        let bad = |t: &str| toml::from_str::<Scenario>(t).map_err(anyhow::Error::from).and_then(|s| s.validate());
        assert!(bad("name = 'x'").is_err(), "nothing to run");
        assert!(
            bad("name = 'a b'\n[[chat]]\nname='c'\nconnections=[1]\nguilds=1\nmessages_per_sec=1\nduration_secs=1")
                .is_err()
        );
        let ok = "name = 'x'\n[[media]]\nname = 'm'\nmodes = ['sfu', 'mcu']\nparticipants = [2]\nduration_secs = 1";
        assert!(bad(ok).is_ok());
        assert!(bad(&ok.replace("'mcu'", "'mesh'")).is_err());
        assert!(bad(&format!("{ok}\nbogus = 1")).is_err());
        assert!(bad(&format!("{ok}\nrepeat = 3")).is_ok());
        assert!(bad(&format!("{ok}\nrepeat = 0")).is_err(), "no run at all");
        let pinned = |server: &str, clients: &str| format!("{ok}\n[cpus]\nserver = {server}\nclients = {clients}");
        assert!(bad(&pinned("[0]", "[1]")).is_ok());
        assert!(bad(&pinned("[0]", "[0, 1]")).is_err(), "the server and the clients share a core");
        assert!(bad(&pinned("[]", "[1]")).is_err());
    }
}

//! What a run measured, as serialised into the JSON next to the report: the raw figures per step,
//! from which the Markdown tables and the plots are drawn.

use serde::Serialize;

use super::baseline::BaselineResult;
use crate::hist::Histogram;

/// A distribution's summary, in milliseconds, plus its CDF for plots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dist {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    /// (ms, cumulative share) per non-empty bucket.
    pub cdf: Vec<(f64, f64)>,
}

impl From<&Histogram> for Dist {
    fn from(h: &Histogram) -> Dist {
        let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        Dist {
            count: h.count(),
            p50_ms: ms(h.quantile(0.5)),
            p95_ms: ms(h.quantile(0.95)),
            p99_ms: ms(h.quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: ms(h.mean()),
            cdf: h.cdf_ms(),
        }
    }
}

/// `/voice/stats`' `forward_latency`, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServerLatency {
    pub count: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Over the measurement window (bucket counts differenced), or since the server started.
    pub window: bool,
}

/// A process over a step's measurement window.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcFigures {
    pub cpu_cores_avg: f64,
    pub cpu_cores_peak: f64,
    pub rss_bytes: u64,
}

/// Server-side counters from `/voice/stats`, summed over rooms, as deltas over the window.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServerCounters {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub video_frames_in: u64,
    pub video_frames_out: u64,
    pub composite_frames: u64,
    pub mix_ticks: u64,
    pub keyframe_requests_in: u64,
    pub dropped_errors: u64,
    pub uplink_lost: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MediaStep {
    pub sweep: String,
    pub mode: String,
    pub rooms: usize,
    pub participants: usize,
    pub clients: usize,
    pub joined: usize,
    /// The first few join errors, as said.
    pub join_errors: Vec<String>,
    pub mic_publishers: usize,
    pub camera_publishers: usize,
    pub decoders: usize,
    pub window_secs: f64,
    pub server: ProcFigures,
    /// The testbed process itself (all synthetic clients).
    pub client: ProcFigures,
    pub server_counters: ServerCounters,
    /// Server egress and ingress, Mbit/s, and egress per client, kbit/s.
    pub egress_mbps: f64,
    pub ingress_mbps: f64,
    pub egress_per_client_kbps: f64,
    pub packets_out_per_sec: f64,
    pub packets_in_per_sec: f64,
    /// Datagrams sent per second of server CPU: forwarding throughput per core.
    pub packets_out_per_core_sec: f64,
    /// Client side: packets received per second over all clients, and loss (%) from sequence gaps.
    pub audio_packets_per_sec: f64,
    pub audio_loss_pct: f64,
    pub audio_jitter_ms: f64,
    pub video_packets_per_sec: f64,
    pub video_loss_pct: f64,
    pub video_jitter_ms: f64,
    /// Video frames (RTP marker bits) received per second per receiving video track: the
    /// composite's frame rate in hybrid and mcu rooms, a camera's in sfu rooms.
    pub video_fps_per_track: f64,
    /// End-to-end latency from `abs-capture-time` (forwarded audio and cameras).
    pub audio_latency: Dist,
    pub video_latency: Dist,
    /// End-to-end latency by probe switches (all modes; the only measure through mix and composite).
    pub audio_pattern_latency: Dist,
    pub video_pattern_latency: Dist,
    /// WebSocket opening → first remote audio frame decoded, participants joining a room that
    /// already had a speaker.
    pub join: Dist,
    /// The join's phases: WebSocket opening → answer (signaling, offer with ICE gathering),
    /// answer → ICE and DTLS connected (the client stack's checks and handshake), connected →
    /// first remote audio decoded (the server's forwarding to a new listener).
    pub join_signaling: Dist,
    pub join_connect: Dist,
    pub join_media: Dist,
    /// The server's own forwarding latency (kernel arrival on its socket → copy sent, per
    /// forwarded audio copy), if
    /// `/voice/stats` reports it, over the window (bucket upper bounds: within 12.5%).
    pub server_forward_latency: Option<ServerLatency>,
    /// The whole machine's busy cores over the window, and the share of it neither the server nor
    /// the testbed used (other work on a shared box); the 1-minute load average at the window's end.
    pub machine_cores: f64,
    pub other_cores: f64,
    pub load_avg: f64,
    /// The machine's cores were ≥ 90% busy: the figures are bounded by the box.
    pub saturated: bool,
    /// With `repeat`: the average server CPU (cores) of every run of this step, in run order;
    /// this step is the run of median CPU.
    pub server_cpu_runs: Vec<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatStep {
    pub sweep: String,
    pub connections: usize,
    pub connected: usize,
    pub connect_errors: Vec<String>,
    pub guilds: usize,
    pub users: usize,
    pub connect_secs: f64,
    /// Server RSS before connecting, after connecting (idle), and the difference per connection.
    pub rss_before_bytes: u64,
    pub rss_idle_bytes: u64,
    pub rss_per_connection_bytes: f64,
    /// The testbed's own RSS growth per connection (client side of the same sockets); meaningful
    /// for a run's first chat step only, as later ones reuse memory the allocator kept.
    pub client_rss_per_connection_bytes: f64,
    pub idle_server: ProcFigures,
    pub messages_per_sec_target: f64,
    pub messages_sent: u64,
    pub send_errors: u64,
    pub window_secs: f64,
    /// Dispatches expected (each message × the connections of its guild) and received.
    pub deliveries_expected: u64,
    pub deliveries: u64,
    pub delivered_per_sec: f64,
    pub delivery_ratio: f64,
    /// Send (just before POST) → MESSAGE_CREATE read, at every connection of the guild.
    pub delivery: Dist,
    /// POST → 201.
    pub post: Dist,
    /// Connections the server closed during the step (e.g. 4010 slow consumer).
    pub closed_by_server: u64,
    pub server: ProcFigures,
    pub client: ProcFigures,
    pub machine_cores: f64,
    pub other_cores: f64,
    pub load_avg: f64,
    pub saturated: bool,
}

/// The machine and the moment, for the report's header.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Environment {
    pub date: String,
    pub command: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub load_avg_at_start: f64,
    pub kernel: String,
    pub git_commit: Option<String>,
    pub server: String,
    pub server_env: Vec<(String, String)>,
    /// The cores the server and the testbed were kept on, if apart.
    pub pinning: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Criterion {
    pub benchmark: String,
    pub mean_ns: f64,
}

/// One cluster step (`cluster_run`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterStep {
    pub sweep: String,
    pub nodes: usize,
    pub connected: usize,
    pub messages_sent: u64,
    pub deliveries: u64,
    pub deliveries_expected: u64,
    pub window_secs: f64,
    pub delivered_per_sec: f64,
    pub delivery: Dist,
    /// CPU over the fan-out window, in cores: the nodes together, and nats-server.
    pub nodes_cores: f64,
    pub nats_cores: f64,
    /// Deliveries per second per core of the nodes and NATS together.
    pub deliveries_per_core_sec: f64,
    /// Clients of the killed node: resumed (RESUMED), refused (INVALID_SESSION) or failed, and the
    /// time from the kill to RESUMED.
    pub resumed: usize,
    pub resume_invalid: usize,
    pub resume_failed: usize,
    pub resume: Dist,
    /// Voice rooms granted, per node (in node order).
    pub rooms_per_node: Vec<usize>,
    /// LL-HLS through an edge: players, distinct parts, requests for them, origin fetches; the
    /// same for blocking playlist reloads.
    pub edge_viewers: usize,
    pub edge_parts: usize,
    pub edge_part_requests: usize,
    pub edge_part_origin_fetches: usize,
    pub edge_reloads: usize,
    pub edge_reload_requests: usize,
    pub edge_reload_origin_fetches: usize,
    /// Authenticated `GET /api/users/@me` with the login cache on, then off.
    pub auth: Vec<AuthFigures>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuthFigures {
    pub cache: bool,
    pub requests_per_sec: f64,
    pub server_cores: f64,
    pub latency: Dist,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct WritesStep {
    pub sweep: String,
    pub store: String,
    pub concurrency: usize,
    pub window_secs: f64,
    /// Posts answered 201 (committed), and the others.
    pub acked: u64,
    pub failed: u64,
    pub errors: Vec<String>,
    pub writes_per_sec: f64,
    /// POST → 201.
    pub post: Dist,
    pub server: ProcFigures,
    pub client: ProcFigures,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveStep {
    pub sweep: String,
    /// `WxH@fps` published.
    pub source: String,
    /// What the master playlist offered, best first.
    pub renditions: Vec<String>,
    /// The rendition whose parts were timed.
    pub watched: String,
    /// From starting the publisher to a playable master playlist.
    pub first_playable_secs: f64,
    /// … to the last rendition listed in it (the ladder's first parts).
    pub all_renditions_secs: f64,
    pub parts: u64,
    /// A part's first frame captured → the part fetched.
    pub part_latency: Dist,
    /// WHIP only: a WHEP viewer's frames, captured → received (the publisher's capture time,
    /// carried through the engine untouched).
    pub whep_latency: Option<Dist>,
    pub server: ProcFigures,
}

/// One viewer-spike step: confab serving LL-HLS to a crowd, and nginx serving the same stream's
/// recording to the same crowd.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpikeStep {
    pub sweep: String,
    pub source: String,
    pub rendition: String,
    pub viewers: usize,
    pub ramp_secs: f64,
    /// Viewers that got their first part, and how fast they got in during the ramp.
    pub admitted: u64,
    pub admitted_per_sec: f64,
    /// Start → first part.
    pub join: Dist,
    /// Over the hold window (every viewer on):
    pub window_secs: f64,
    pub requests_per_sec: f64,
    pub mbit_per_sec: f64,
    /// Requests answered at once (playlists without a wait, parts, init).
    pub served: Dist,
    /// Blocking reloads, request to answer (the wait for the next part included).
    pub blocked: Dist,
    pub errors: u64,
    pub stalled_viewers: u64,
    pub stalls: u64,
    /// The server with the stream on and nobody watching (ingest, ladder, packaging) …
    pub idle_server: ProcFigures,
    /// … and with every viewer on.
    pub server: ProcFigures,
    pub client: ProcFigures,
    /// Requests per second per core the viewers added (over the idle server).
    pub requests_per_core: f64,
    /// Seconds since the ramp started, viewers on, server cores, over the whole step.
    pub timeline: Vec<(f64, f64, f64)>,
    pub chat_messages: u64,
    pub chat_deliveries: u64,
    pub chat_delivery: Dist,
    pub nginx: Option<NginxRun>,
}

/// The same viewers polling nginx serving the recorded stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NginxRun {
    pub window_secs: f64,
    pub requests_per_sec: f64,
    pub mbit_per_sec: f64,
    pub served: Dist,
    pub errors: u64,
    pub server: ProcFigures,
    pub requests_per_core: f64,
    /// confab's requests per core over nginx's.
    pub ratio: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub description: String,
    pub environment: Environment,
    pub baseline: Vec<BaselineResult>,
    pub media: Vec<MediaStep>,
    pub chat: Vec<ChatStep>,
    pub writes: Vec<WritesStep>,
    pub cluster: Vec<ClusterStep>,
    pub live: Vec<LiveStep>,
    pub spike: Vec<SpikeStep>,
    pub criterion: Vec<Criterion>,
    /// Failed sanity checks (empty: all passed).
    pub sanity_failures: Vec<String>,
}

//! Server configuration: defaults, then a TOML file, then `CONFAB_*` environment variables, then
//! command-line flags, each overriding the one before.
//!
//! Top-level keys map to `CONFAB_<KEY>` (e.g. `CONFAB_LISTEN`, `CONFAB_DATABASE_URL`); keys of a
//! section to `CONFAB_<SECTION>_<KEY>` (e.g. `CONFAB_CHAT_HEARTBEAT_INTERVAL_MS=5000`).

use anyhow::{Context, Result, bail};
use chat::config::ChatConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

mod check;
pub use check::masked;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP listen address (API, gateway, later the web client).
    pub listen: String,
    /// `sqlite:<path>` (default, created on first run) or `postgres://…`.
    pub database_url: String,
    /// Log filter in `RUST_LOG` syntax.
    pub log: String,
    /// `text` (for people) or `json` (one JSON object a line, for log shippers).
    pub log_format: LogFormat,
    pub chat: ChatConfig,
    pub media: MediaConfig,
    pub voice: signaling::VoiceConfig,
    pub video: VideoConfig,
    pub live: LiveConfig,
    /// Many nodes as one service (NATS + Postgres); off unless `nats_url` is set.
    pub cluster: cluster::ClusterConfig,
    pub metrics: MetricsConfig,
    /// ICE servers for clients whose network blocks UDP (coturn with TURN REST credentials).
    pub turn: signaling::TurnConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Prometheus metrics, on a listener of their own so the public port never exposes them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address `GET /metrics` is served on (e.g. `127.0.0.1:9464`); empty: no metrics listener.
    pub listen: String,
}

/// Live streaming: RTMP ingest and LL-HLS.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// TCP address RTMP publishers (OBS, ffmpeg) connect to; empty turns RTMP ingest off.
    pub rtmp_bind: String,
    /// `host:port` publishers reach RTMP at, for the URL handed out with a stream key; empty: the
    /// bound address.
    pub rtmp_public: String,
    /// WHIP ingest (`POST /whip/{channel_id}`) on the HTTP listener.
    pub whip: bool,
    /// A publisher sending more than this (kbit/s, audio and video) is cut; 0: no limit.
    pub max_ingest_kbps: u32,
    /// RTMP connections at once, publishing or not.
    pub max_ingest_connections: usize,
    /// Streams published at once.
    pub max_streams: usize,
    /// LL-HLS: segment and part lengths aimed at (the publisher's keyframes decide segments), and
    /// segments kept per rendition.
    pub segment_secs: f64,
    pub part_secs: f64,
    pub window_segments: usize,
    /// The transcoded renditions beside the source's own: each one smaller than the source is
    /// made (never upscaled), its width following the source's aspect ratio.
    pub renditions: Vec<RenditionConfig>,
    /// x264's speed preset for the renditions (`ultrafast` … `medium`).
    pub x264_preset: String,
    /// The frame rate the renditions' keyframe interval is counted in (segment_secs × fps).
    pub fps: u32,
    /// Where every closed segment is also written (`{channel}/{started ms}/{rendition}/`, with a
    /// playlist); empty: nothing is recorded.
    pub record_dir: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RenditionConfig {
    pub name: String,
    pub height: u32,
    pub bitrate_kbps: u32,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            rtmp_bind: "127.0.0.1:1935".into(),
            rtmp_public: String::new(),
            whip: true,
            max_ingest_kbps: 20_000,
            max_ingest_connections: 64,
            max_streams: 16,
            segment_secs: 2.0,
            part_secs: 1.0 / 3.0,
            window_segments: 12,
            renditions: vec![
                RenditionConfig { name: "720p".into(), height: 720, bitrate_kbps: 2500 },
                RenditionConfig { name: "480p".into(), height: 480, bitrate_kbps: 1200 },
                RenditionConfig { name: "360p".into(), height: 360, bitrate_kbps: 600 },
            ],
            x264_preset: "superfast".into(),
            fps: 30,
            record_dir: String::new(),
        }
    }
}

/// The video composite of `hybrid` and `mcu` rooms: one per room, encoded once for everyone.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    /// Output size (even numbers) and frame rate.
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The VP8 encoder's bitrate target.
    pub bitrate_kbps: u32,
    /// Tiles in the grid at most; later cameras wait for a free tile.
    pub max_tiles: usize,
    /// The GStreamer VP8 encoder element.
    pub encoder: String,
}

impl Default for VideoConfig {
    fn default() -> Self {
        let c = mcu::CompositorConfig::default();
        VideoConfig {
            width: c.width,
            height: c.height,
            fps: c.fps,
            bitrate_kbps: c.bitrate_kbps,
            max_tiles: c.max_tiles,
            encoder: c.encoder,
        }
    }
}

impl VideoConfig {
    pub fn compositor(&self) -> mcu::CompositorConfig {
        mcu::CompositorConfig {
            width: self.width,
            height: self.height,
            fps: self.fps,
            bitrate_kbps: self.bitrate_kbps,
            max_tiles: self.max_tiles,
            encoder: self.encoder.clone(),
            ..mcu::CompositorConfig::default()
        }
    }
}

/// The media engine (SFU): one UDP port for every peer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// UDP address for ICE, DTLS and SRTP of every peer. Port 0 picks a free one.
    pub bind: String,
    /// The address clients reach the UDP port at, when it differs from the bound one (NAT, or a
    /// 0.0.0.0 bind): advertised in ICE candidates.
    pub public_ip: Option<String>,
    /// At most this many speakers are forwarded to each listener.
    pub last_n: usize,
    /// A peer with no packets for this long is removed.
    pub peer_timeout_secs: u64,
    /// ICE over TCP on the same port number too (passive TCP candidates), for clients whose
    /// network passes no UDP; open TCP on that port in the firewall as well.
    pub ice_tcp: bool,
    /// Engine threads, one per core by default (0); each takes its own port: `bind`'s, then the
    /// next ones upward (open the range in the firewall). 1: one port, as before.
    pub workers: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind: "127.0.0.1:50000".into(),
            public_ip: None,
            last_n: 5,
            peer_timeout_secs: 10,
            ice_tcp: true,
            workers: 0,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite:data/confab.db".into(),
            log: "info".into(),
            log_format: LogFormat::Text,
            chat: ChatConfig::default(),
            media: MediaConfig::default(),
            voice: signaling::VoiceConfig::default(),
            live: LiveConfig::default(),
            video: VideoConfig::default(),
            cluster: cluster::ClusterConfig::default(),
            metrics: MetricsConfig::default(),
            turn: signaling::TurnConfig { ttl_secs: 86_400, ..signaling::TurnConfig::default() },
        }
    }
}

const SECTIONS: &[&str] = &["chat", "media", "voice", "video", "live", "cluster", "metrics", "turn"];
/// Settings without a default value: absent from the serialised defaults, known all the same.
const OPTIONAL: &[(&str, &str)] =
    &[("media", "public_ip"), ("voice", "mode"), ("voice", "stats_token"), ("chat", "voice_token_secret")];

impl Config {
    /// Loads the file (if any) and applies environment overrides from `env`. Returns the config and
    /// the `CONFAB_*` variables that name no setting (ignored: other tools share the prefix); an
    /// unknown key in the file is an error.
    pub fn load(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Result<(Config, Vec<String>)> {
        let known = toml::Table::try_from(Config::default()).context("serialising defaults")?;
        let mut ignored = Vec::new();
        let mut table = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
                text.parse::<toml::Table>().with_context(|| format!("parsing config {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            let Some(name) = key.strip_prefix("CONFAB_") else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            if name == "config" {
                continue;
            }
            let value = parse_scalar(&value);
            let section = SECTIONS.iter().find(|s| name.starts_with(&format!("{s}_")));
            let is_known = match section {
                Some(s) => {
                    let key = &name[s.len() + 1..];
                    OPTIONAL.contains(&(s, key))
                        || known.get(*s).and_then(|t| t.as_table()).is_some_and(|t| t.contains_key(key))
                }
                None => known.contains_key(&name),
            };
            if !is_known {
                ignored.push(key);
                continue;
            }
            match section {
                Some(section) => {
                    let sub =
                        table.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    let Some(sub) = sub.as_table_mut() else { bail!("config: [{section}] must be a table") };
                    sub.insert(name[section.len() + 1..].to_string(), value);
                }
                None => {
                    table.insert(name, value);
                }
            }
        }
        let cfg = toml::Value::Table(table).try_into().context("invalid configuration (file or CONFAB_* variables)")?;
        Ok((cfg, ignored))
    }
}

impl Config {
    /// The configuration of an embedded server (the C ABI), from JSON (text whose first non-space
    /// character is `{`) or TOML text with the same keys. Unlike [`Config::load`], no `CONFAB_*`
    /// variable applies (the host application owns its environment), and `listen` and `media.bind`
    /// default to `127.0.0.1:0`, free ports, so embedded servers and tests never collide.
    pub fn from_embedded_text(text: &str) -> Result<Config> {
        const FREE_PORT: &str = "127.0.0.1:0";
        if text.trim_start().starts_with('{') {
            let mut v: serde_json::Value = serde_json::from_str(text).context("config is not valid JSON")?;
            let Some(top) = v.as_object_mut() else { bail!("config must be a JSON object") };
            top.entry("listen").or_insert_with(|| FREE_PORT.into());
            let media = top.entry("media").or_insert_with(|| serde_json::json!({}));
            let Some(media) = media.as_object_mut() else { bail!("config: \"media\" must be an object") };
            media.entry("bind").or_insert_with(|| FREE_PORT.into());
            // Embedders run rooms; RTMP ingest only when they ask for it.
            let live = top.entry("live").or_insert_with(|| serde_json::json!({}));
            let Some(live) = live.as_object_mut() else { bail!("config: \"live\" must be an object") };
            live.entry("rtmp_bind").or_insert_with(|| "".into());
            serde_json::from_value(v).context("invalid configuration")
        } else {
            let mut top: toml::Table = text.parse().context("config is neither JSON nor valid TOML")?;
            top.entry("listen").or_insert_with(|| FREE_PORT.into());
            let media = top.entry("media").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(media) = media.as_table_mut() else { bail!("config: [media] must be a table") };
            media.entry("bind").or_insert_with(|| FREE_PORT.into());
            let live = top.entry("live").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(live) = live.as_table_mut() else { bail!("config: [live] must be a table") };
            live.entry("rtmp_bind").or_insert_with(|| "".into());
            toml::Value::Table(top).try_into().context("invalid configuration")
        }
    }
}

/// Environment values are strings; numbers and booleans are recognised so typed fields accept them.
fn parse_scalar(s: &str) -> toml::Value {
    if let Ok(i) = s.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = s.parse::<bool>() {
        toml::Value::Boolean(b)
    } else if let Ok(f) = s.parse::<f64>() {
        toml::Value::Float(f)
    } else {
        toml::Value::String(s.to_string())
    }
}

#[cfg(test)]
mod tests;

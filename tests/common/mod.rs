//! Spawning the real `confab` binary for black-box tests.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The media engine's UDP address.
    pub udp: String,
    /// `http://127.0.0.1:PORT/metrics` when `CONFAB_METRICS_LISTEN` is set.
    pub metrics: Option<String>,
}

impl Server {
    /// Starts `confab serve` on free ports with `database_url`, plus `CONFAB_*` overrides in `env`,
    /// and waits until it reports both addresses.
    pub fn start(database_url: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .args(["serve", "--listen", "127.0.0.1:0", "--media-bind", "127.0.0.1:0", "--database-url", database_url])
            .env("CONFAB_VOICE_STATS_TOKEN", STATS_TOKEN)
            .env("CONFAB_LIVE_RTMP_BIND", "127.0.0.1:0")
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn confab");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // CONFAB_TEST_LOG_DIR=dir keeps each server's log there, for debugging a failed test.
        let mut keep = std::env::var("CONFAB_TEST_LOG_DIR").ok().and_then(|d| {
            let path = std::path::Path::new(&d).join(format!("confab-{}.log", child.id()));
            std::fs::File::create(path).ok()
        });
        std::thread::spawn(move || {
            let (mut base, mut udp, mut metrics) = (None, None, None);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = keep.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
                if let Some(at) = line.find("metrics on http://") {
                    metrics = line[at + "metrics on ".len()..].split_whitespace().next().map(String::from);
                }
                if let Some(at) = line.find("listening on http://") {
                    base = Some(line[at + "listening on ".len()..].trim().to_string());
                }
                if line.contains("media engine ready")
                    && let Some(at) = line.find("udp=")
                {
                    udp = line[at + 4..].split_whitespace().next().map(String::from);
                }
                if let (Some(b), Some(u)) = (&base, &udp) {
                    let _ = tx.send((b.clone(), u.clone(), metrics.clone()));
                    base = None;
                }
            }
        });
        let (base, udp, metrics) = rx.recv_timeout(Duration::from_secs(30)).expect("server reported its addresses");
        Server { child, base, udp, metrics }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A guild with `n` members (the first is its owner); returns their session tokens, user ids, the
/// voice channel id and the guild id.
pub async fn guild(base: &str, n: usize) -> (Vec<String>, Vec<String>, String, String) {
    let http = reqwest::Client::new();
    let post = |url: String, token: Option<String>, body: Value| {
        let mut req = http.post(url).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let (mut tokens, mut ids) = (Vec::new(), Vec::new());
    for i in 0..n {
        let s = post(
            format!("{base}/api/auth/signup"),
            None,
            json!({"username": format!("v{i}"), "password": "password-voice"}),
        )
        .await;
        tokens.push(s["token"].as_str().unwrap().to_string());
        ids.push(s["user"]["id"].as_str().unwrap().to_string());
    }
    let g = post(format!("{base}/api/guilds"), Some(tokens[0].clone()), json!({"name": "voice"})).await;
    let guild = g["guild"]["id"].as_str().unwrap().to_string();
    let voice = g["channels"][1]["id"].as_str().unwrap().to_string();
    let inv = post(format!("{base}/api/guilds/{guild}/invites"), Some(tokens[0].clone()), json!({})).await;
    let code = inv["code"].as_str().unwrap();
    for t in &tokens[1..] {
        post(format!("{base}/api/invites/{code}"), Some(t.clone()), json!({})).await;
    }
    (tokens, ids, voice, guild)
}

/// A voice channel of `guild` created by its owner, with `mode` (`hybrid`, `sfu`, `mcu`).
pub async fn voice_channel(base: &str, owner: &str, guild: &str, mode: &str) -> String {
    let c: Value = reqwest::Client::new()
        .post(format!("{base}/api/guilds/{guild}/channels"))
        .bearer_auth(owner)
        .json(&json!({"name": format!("{mode} room"), "kind": "voice", "voice_mode": mode}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    c["id"].as_str().unwrap_or_else(|| panic!("{c}")).to_string()
}

/// The operator token test servers serve `/voice/stats` to.
pub const STATS_TOKEN: &str = "test-stats-token";

/// `/voice/stats` of the server.
pub async fn stats(base: &str) -> Value {
    let req = reqwest::Client::new().get(format!("{base}/voice/stats")).bearer_auth(STATS_TOKEN);
    req.send().await.unwrap().json().await.unwrap()
}

/// An in-process server on free ports over a throwaway SQLite store, with RTMP on a free port and
/// x264's fastest preset, then `tweak`ed. Keep the directory as long as the server.
pub async fn live_server(
    tweak: impl FnOnce(&mut confab::config::LiveConfig),
) -> (confab::server::Running, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = confab::config::Config {
        listen: "127.0.0.1:0".into(),
        database_url: format!("sqlite:{}", dir.path().join("live.db").display()),
        ..Default::default()
    };
    cfg.media.bind = "127.0.0.1:0".into();
    cfg.live.rtmp_bind = "127.0.0.1:0".into();
    cfg.live.x264_preset = "ultrafast".into();
    tweak(&mut cfg.live);
    let running = confab::server::Running::start(&cfg).await.unwrap();
    let base = format!("http://{}", running.http);
    (running, base, dir)
}

/// A live channel `name` of `guild`, made by its owner (`token`): its id.
pub async fn live_channel(base: &str, token: &str, guild: &str, name: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/guilds/{guild}/channels"))
        .bearer_auth(token)
        .json(&json!({"name": name, "kind": "live"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

/// ffmpeg publishing `seconds` of 320x240 test pattern and a 440 Hz tone to `url` over RTMP
/// (x264 ultrafast, a keyframe a second, AAC), in real time.
pub fn publish(url: &str, seconds: u32) -> std::process::Child {
    std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
        .args(["-g", "30", "-c:a", "aac", "-f", "flv", url])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ffmpeg")
}

//! What an operator runs confab with: the systemd unit, `confab config check`, JSON logs and the
//! Prometheus endpoint.

mod common;

use common::{Server as Confab, guild};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testbed::{VoiceClient, VoiceOptions};

fn confab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_confab"))
}

/// `deploy/confab.service` as systemd reads it: no unknown key, no bad value (`systemd-analyze
/// verify` only warns about those, so its output must be empty too).
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/confab.service")).unwrap();
    for wanted in ["DynamicUser=yes", "StateDirectory=confab", "ProtectSystem=strict", "NoNewPrivileges=yes"] {
        assert!(unit.contains(wanted), "{wanted} missing");
    }
    assert!(unit.contains("LimitNOFILE=1048576"));
    // verify wants ExecStart's binary to exist: point it at the one just built.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("confab.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/confab", env!("CARGO_BIN_EXE_confab"))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}

#[test]
fn config_check_prints_masked_settings_and_names_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("confab.toml");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/confab.toml");
    std::fs::copy(example, &file).unwrap();
    let out = confab()
        .args(["config", "check", "--config"])
        .arg(&file)
        .env("CONFAB_DATABASE_URL", "postgres://confab:pg-password@db/confab")
        .env("CONFAB_CHAT_VOICE_TOKEN_SECRET", "token-secret")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the shipped example is valid: {stderr}");
    assert!(stderr.contains("configuration ok"));
    assert!(stdout.contains("postgres://confab:***@db/confab") && stdout.contains("voice_token_secret = \"***\""));
    assert!(!stdout.contains("pg-password") && !stdout.contains("token-secret"), "{stdout}");
    assert!(stdout.contains("[metrics]") && stdout.contains("log_format = \"json\""), "{stdout}");

    std::fs::write(&file, "listen = \"8080\"\n[video]\nwidth = 641\n").unwrap();
    let out = confab().args(["config", "check", "--config"]).arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("error: listen \"8080\" is not an ip:port") && stderr.contains("error: video 641x"));
    std::fs::write(&file, "lisen = \"x\"\n").unwrap();
    let out = confab().args(["config", "check", "--config"]).arg(&file).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("lisen"), "unknown keys named");

    // serve refuses what check refuses.
    let out = confab()
        .args(["serve", "--listen", "nowhere", "--database-url"])
        .arg(format!("sqlite:{}", dir.path().join("x.db").display()))
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("listen \"nowhere\""));
}

/// A server on free ports, its stderr read until it says where it listens.
pub struct Server {
    child: Child,
    pub base: String,
    pub lines: std::io::Lines<BufReader<std::process::ChildStderr>>,
    pub seen: Vec<String>,
}

impl Server {
    pub fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
        let mut child = confab()
            .args(["serve", "--listen", "127.0.0.1:0", "--media-bind", "127.0.0.1:0", "--database-url"])
            .arg(format!("sqlite:{}", dir.join("ops.db").display()))
            .env("CONFAB_LIVE_RTMP_BIND", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let base = loop {
            let line = lines.next().expect("server output").unwrap();
            seen.push(line.clone());
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                break rest.split(|c: char| c == '"' || c.is_whitespace()).next().unwrap().to_string();
            }
        };
        Server { child, base, lines, seen }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn json_logs_are_one_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("CONFAB_LOG_FORMAT", "json")]);
    assert!(server.seen.len() >= 2, "{:?}", server.seen);
    for line in &server.seen {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string() && v["message"].is_string(), "{line}");
    }
    let ready = server.seen.iter().find(|l| l.contains("store ready")).expect("store ready logged");
    let v: serde_json::Value = serde_json::from_str(ready).unwrap();
    assert_eq!(v["store"], "sqlite", "fields are keys of their own: {ready}");
}

const TONES: [f32; 2] = [500.0, 800.0];

/// A scrape checked by `promtool check metrics` (Debian's `prometheus`): the text format parses and
/// follows Prometheus's naming rules.
async fn scrape(url: &str) -> String {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{text}");
    text
}

/// The value of the series `name{labels}` exactly as rendered (labels in the exporter's order).
fn value(text: &str, series: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '));
    let line = line.unwrap_or_else(|| panic!("{series} not in:\n{text}"));
    line[series.len()..].trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_gateway_and_media_on_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("m.db").display());
    let server = Confab::start(&db, &[("CONFAB_METRICS_LISTEN", "127.0.0.1:0")]);
    let url = server.metrics.clone().expect("the server said where its metrics are");
    let public = reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    assert!(!public.contains("confab_"), "the public port does not serve metrics");

    let (tokens, _, room, _) = guild(&server.base, 2).await;
    let a = VoiceClient::join(&server.base, &tokens[0], &room, VoiceOptions::tone(TONES[0])).await.unwrap();
    let b = VoiceClient::join(&server.base, &tokens[1], &room, VoiceOptions::tone(TONES[1])).await.unwrap();
    a.wait_heard(&TONES, &[TONES[1]], Duration::from_secs(20)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await; // ~50 packets a second from each
    let during = scrape(&url).await;
    assert_eq!(value(&during, "confab_media_rooms{mode=\"hybrid\"}"), 1.0);
    assert_eq!(value(&during, "confab_media_peers"), 2.0);
    assert_eq!(value(&during, "confab_voice_connections"), 2.0);
    let packets = value(&during, "confab_media_packets_total{direction=\"in\"}");
    let bytes_out = value(&during, "confab_media_bytes_total{direction=\"out\"}");
    assert!(packets > 50.0 && bytes_out > 0.0, "{packets} packets in, {bytes_out} bytes out");
    assert!(value(&during, "confab_media_forward_latency_seconds_count") > 0.0, "forwarded copies are timed");
    let signups = "confab_http_requests_total{method=\"POST\",route=\"/api/auth/signup\",status=\"201\"}";
    assert_eq!(value(&during, signups), 2.0, "by route template and status");
    assert!(during.contains(
        "confab_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/channels/{channel_id}/voice\""
    ));
    assert!(value(&during, "process_resident_memory_bytes") > 1e6 && value(&during, "process_open_fds") > 5.0);
    assert!(value(&during, "process_threads") >= 2.0);

    a.close().await.unwrap();
    b.close().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let after = loop {
        let text = scrape(&url).await;
        if value(&text, "confab_media_peers") == 0.0 || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(value(&after, "confab_media_peers"), 0.0);
    assert_eq!(value(&after, "confab_media_rooms{mode=\"hybrid\"}"), 0.0);
    assert!(
        value(&after, "confab_media_packets_total{direction=\"in\"}") >= packets,
        "counters keep what closed rooms counted"
    );
}

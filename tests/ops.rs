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

    let (tokens, _, room, guild_id) = guild(&server.base, 2).await;
    chat_traffic(&server.base, &tokens[0], &guild_id).await;
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
        let closed = text.contains("\nconfab_voice_closes_total");
        if value(&text, "confab_media_peers") == 0.0 && closed || std::time::Instant::now() > deadline {
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
    for name in dashboard_series() {
        assert!(after.contains(&format!("\n{name}")), "the dashboard graphs {name}, which is not exported");
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Ws) -> serde_json::Value {
    use futures_util::StreamExt;
    let frame = ws.next().await.expect("a frame").expect("a good frame");
    serde_json::from_str(&frame.into_text().expect("text")).expect("JSON")
}

/// A chat gateway session that sees a message it posted, then a RESUME of nothing (refused).
async fn chat_traffic(base: &str, token: &str, guild: &str) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let http = reqwest::Client::new();
    let channels: serde_json::Value = http
        .get(format!("{base}/api/guilds/{guild}/channels"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = channels.as_array().unwrap().iter().find(|c| c["kind"] == "text").expect("a text channel")["id"].clone();
    let url = format!("{}/gateway", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    assert_eq!(next(&mut ws).await["op"], 10);
    ws.send(Message::text(serde_json::json!({"op": 2, "d": {"token": token}}).to_string())).await.unwrap();
    while next(&mut ws).await["t"] != "READY" {}
    let posted = http
        .post(format!("{base}/api/channels/{}/messages", text.as_str().unwrap()))
        .bearer_auth(token)
        .json(&serde_json::json!({"content": "metrics"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    while next(&mut ws).await["t"] != "MESSAGE_CREATE" {}
    ws.close(None).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    next(&mut ws).await;
    let resume = serde_json::json!({"op": 6, "d": {"token": token, "session_id": "nothing", "seq": 1}});
    ws.send(Message::text(resume.to_string())).await.unwrap();
    assert_eq!(next(&mut ws).await["op"], 9, "INVALID_SESSION");
    ws.close(None).await.unwrap();
}

/// The Grafana dashboard's queries, with its `$instance` variable filled in.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dash["panels"].as_array().expect("panels");
    let queries: Vec<String> = (panels.iter())
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("expr").replace("$instance", ".*"))
        .collect();
    assert!(queries.len() >= 20, "{} queries", queries.len());
    queries
}

/// Every series name the dashboard's queries read (histograms by their base name).
fn dashboard_series() -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for q in dashboard_queries() {
        for word in q.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("confab_") || word.starts_with("process_") {
                names.insert(word.trim_end_matches("_bucket").to_string());
            }
        }
    }
    names
}

/// `promtool check rules` parses every query of the dashboard (as recording rules).
#[test]
fn the_grafana_dashboard_queries_are_promql() {
    let dir = tempfile::tempdir().unwrap();
    let rules: String = (dashboard_queries().iter().enumerate())
        .map(|(i, q)| {
            format!("      - record: confab:dashboard_{i}\n        expr: {}\n", serde_json::to_string(q).unwrap())
        })
        .collect();
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, format!("groups:\n  - name: dashboard\n    rules:\n{rules}")).unwrap();
    let out = Command::new("promtool").args(["check", "rules"]).arg(&path).output().expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
}

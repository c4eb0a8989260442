//! The `confab` binary as an operator uses it: `migrate`, `user create`, `serve`, and a graceful
//! stop on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn confab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_confab")).args(args).output().expect("run confab")
}

#[tokio::test]
async fn migrate_create_user_serve_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("ops.db").display());

    let out = confab(&["migrate", "--database-url", &db]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("ops.db").exists());

    let out = confab(&["user", "create", "opsy", "--password", "short", "--database-url", &db]);
    assert!(!out.status.success(), "a short password is refused");
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["user", "create", "opsy", "--database-url", &db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"operator-password\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("created user opsy"));
    let out = confab(&["user", "create", "OPSY", "--password", "another-password", "--database-url", &db]);
    assert!(!out.status.success(), "usernames are unique regardless of case");

    let mut server = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["serve", "--listen", "127.0.0.1:0", "--media-bind", "127.0.0.1:0", "--database-url", &db])
        .env("CONFAB_LIVE_RTMP_BIND", "127.0.0.1:0")
        .env("CONFAB_CHAT_HEARTBEAT_INTERVAL_MS", "5000")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("server output").unwrap();
        if let Some(at) = line.find("listening on http://") {
            break line[at + "listening on ".len()..].trim().to_string();
        }
    };
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": "opsy", "password": "operator-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the operator-created account logs in");

    // A gateway client gets HELLO with the interval set through CONFAB_CHAT_*, then 1001 on SIGTERM.
    let ws_url = format!("{}/gateway", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    use futures_util::StreamExt;
    let hello = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(hello.contains("\"heartbeat_interval\":5000"), "{hello}");
    let pid = server.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let close = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("close frame in time");
    match close {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1001)
        }
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    let status = tokio::task::spawn_blocking(move || server.wait()).await.unwrap().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("shut down cleanly")), "{rest:?}");
}

#[test]
fn bad_database_url_is_a_clear_error() {
    let out = confab(&["migrate", "--database-url", "mysql://nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsupported database url"), "{err}");
}

/// A machine without gstreamer1.0-plugins-good (VP8) is told so at start-up, by package name:
/// the server runs against a plugin directory holding every installed plugin but libvpx's.
#[test]
fn a_missing_gstreamer_plugin_stops_serve_and_names_its_package() {
    let out = Command::new("pkg-config").args(["--variable=pluginsdir", "gstreamer-1.0"]).output();
    let plugins = out.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let plugins = std::path::Path::new(&plugins);
    assert!(plugins.join("libgstvpx.so").exists(), "GStreamer's plugins not found at {plugins:?}");
    let dir = tempfile::tempdir().unwrap();
    let without_vpx = dir.path().join("plugins");
    std::fs::create_dir(&without_vpx).unwrap();
    for entry in std::fs::read_dir(plugins).unwrap().map(Result::unwrap) {
        if entry.file_name() != "libgstvpx.so" {
            std::os::unix::fs::symlink(entry.path(), without_vpx.join(entry.file_name())).unwrap();
        }
    }
    let db = format!("sqlite:{}", dir.path().join("x.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["serve", "--listen", "127.0.0.1:0", "--media-bind", "127.0.0.1:0", "--database-url", &db])
        .env("GST_PLUGIN_SYSTEM_PATH_1_0", &without_vpx)
        .env("GST_REGISTRY_1_0", dir.path().join("registry.bin"))
        .env_remove("GST_PLUGIN_PATH_1_0")
        .env_remove("GST_PLUGIN_PATH")
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve must refuse to start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`vp8dec` is missing (Debian package: gstreamer1.0-plugins-good)"), "{err}");
}

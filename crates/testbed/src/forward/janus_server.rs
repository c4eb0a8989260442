//! Debian's Janus (1.1.x) started for a run: a generated configuration in a temporary directory
//! (only the VideoRoom and AudioBridge plugins and the WebSocket transport, ICE-lite on loopback,
//! a static pool of event loops, one per core it is given: Janus's own advice for many handles),
//! its process pinned like confab's, its WebSocket API on a free loopback port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const START_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Janus {
    pub ws_url: String,
    pub pid: u32,
    pub version: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// Where Debian puts Janus's plugins and transports.
fn lib_dir() -> Result<PathBuf> {
    for d in ["/usr/lib/x86_64-linux-gnu/janus", "/usr/lib/aarch64-linux-gnu/janus", "/usr/lib/janus"] {
        if Path::new(d).join("plugins").is_dir() {
            return Ok(d.into());
        }
    }
    bail!("Janus's plugins are not installed (Debian: apt-get install janus)")
}

/// Janus's version line (`janus --version`), for the report.
pub fn version() -> Result<String> {
    let out = Command::new("janus").arg("--version").output().context("running janus (apt-get install janus)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().find(|l| l.contains("version")).unwrap_or("janus").trim().to_string())
}

impl Janus {
    pub fn start(cpus: Option<&[usize]>) -> Result<Janus> {
        let version = version()?;
        let lib = lib_dir()?;
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        for (sub, so) in [
            ("plugins", "libjanus_videoroom.so"),
            ("plugins", "libjanus_audiobridge.so"),
            ("transports", "libjanus_websockets.so"),
        ] {
            std::fs::create_dir_all(d.join(sub))?;
            std::os::unix::fs::symlink(lib.join(sub).join(so), d.join(sub).join(so))?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let loops = cpus.map_or(1, |c| c.len().max(1));
        // Warnings and errors only (its per-session lines cost CPU under load), unless debugging.
        let level = if std::env::var_os("CONFAB_JANUS_LOG").is_some() { 5 } else { 3 };
        let conf = d.join("conf");
        std::fs::create_dir_all(&conf)?;
        let dir_s = d.display();
        std::fs::write(
            conf.join("janus.jcfg"),
            format!(
                "general: {{\n configs_folder = \"{dir_s}/conf\"\n plugins_folder = \"{dir_s}/plugins\"\n \
                 transports_folder = \"{dir_s}/transports\"\n debug_level = {level}\n session_timeout = 120\n \
                 event_loops = {loops}\n}}\nnat: {{\n ice_lite = true\n ice_enforce_list = \"lo\"\n}}\n"
            ),
        )?;
        std::fs::write(
            conf.join("janus.transport.websockets.jcfg"),
            format!("general: {{\n json = \"compact\"\n ws = true\n ws_port = {port}\n ws_ip = \"127.0.0.1\"\n}}\n"),
        )?;
        for p in ["videoroom", "audiobridge"] {
            std::fs::write(conf.join(format!("janus.plugin.{p}.jcfg")), "general: {\n}\n")?;
        }
        let mut cmd = Command::new("janus");
        cmd.arg("-F").arg(&conf).arg("-C").arg(conf.join("janus.jcfg")).arg("-o").arg("-L").arg(d.join("janus.log"));
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        if let Some(cpus) = cpus {
            crate::bench::affinity::pin_command(&mut cmd, cpus)?;
        }
        let mut child = cmd.spawn().context("starting janus")?;
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(d.join("janus.log")).unwrap_or_default();
                bail!(
                    "janus exited ({status}) before listening: {}",
                    log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("janus did not listen on {port} within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Janus { ws_url: format!("ws://127.0.0.1:{port}"), pid: child.id(), version, child, _dir: dir })
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // CONFAB_JANUS_LOG=FILE keeps Janus's log, for debugging a run.
        if let Some(keep) = std::env::var_os("CONFAB_JANUS_LOG") {
            let _ = std::fs::copy(self._dir.path().join("janus.log"), keep);
        }
    }
}

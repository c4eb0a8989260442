//! The server under test: `confab serve` started by the testbed (a separate process on free
//! ports, its PID sampled), or one given by URL (then only what its HTTP API tells is measured,
//! plus its process if `--server-pid` names it).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::scenario::ServerSettings;

/// How long a starting server may take to report its addresses (it checks GStreamer first).
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub pid: Option<u32>,
    child: Option<Child>,
}

/// How to get a server for each step.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start this binary with this SQLite database (kept across steps, so accounts are reused).
    Spawn {
        confab: PathBuf,
        database: PathBuf,
        settings: ServerSettings,
        /// Cores to start it on (unset: any).
        cpus: Option<Vec<usize>>,
    },
    Url {
        base: String,
        pid: Option<u32>,
    },
}

impl Target {
    /// A server for one step: a fresh process, or the given one.
    pub fn start(&self) -> Result<Server> {
        match self {
            Target::Url { base, pid } => {
                Ok(Server { base: base.trim_end_matches('/').to_string(), pid: *pid, child: None })
            }
            Target::Spawn { confab, database, settings, cpus } => {
                spawn(confab, &format!("sqlite:{}", database.display()), settings, cpus.as_deref())
            }
        }
    }

    /// A server for one step with `extra` variables on top of the scenario's (a given server is
    /// as it is).
    pub fn start_with_env(&self, extra: &[(&str, String)]) -> Result<Server> {
        match self {
            Target::Spawn { confab, database, settings, cpus } => {
                let mut settings = settings.clone();
                settings.env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
                spawn(confab, &format!("sqlite:{}", database.display()), &settings, cpus.as_deref())
            }
            Target::Url { .. } => self.start(),
        }
    }

    /// A server for one step on the database at `url` (a given server keeps its own).
    pub fn start_with_database(&self, url: &str) -> Result<Server> {
        match self {
            Target::Spawn { confab, settings, cpus, .. } => spawn(confab, url, settings, cpus.as_deref()),
            Target::Url { .. } => self.start(),
        }
    }

    /// A node of a cluster step: on the database at `url`, with `extra` variables; only a
    /// server the testbed starts can be one.
    pub fn start_node(&self, url: &str, extra: &[(&str, String)]) -> Result<Server> {
        match self {
            Target::Spawn { confab, settings, cpus, .. } => {
                let mut settings = settings.clone();
                settings.env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
                spawn(confab, url, &settings, cpus.as_deref())
            }
            Target::Url { .. } => bail!("a cluster step starts its own nodes: run it without a given server"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Url { base, pid } => format!("given server {base} (pid {pid:?})"),
            Target::Spawn { confab, .. } => format!("started by the testbed: {}", confab.display()),
        }
    }
}

/// The environment a spawned server gets: the scenario's media settings, and chat limits raised
/// so that load from one IP is not mistaken for abuse.
pub fn server_env(s: &ServerSettings) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("CONFAB_VIDEO_WIDTH", s.video_width.to_string()),
        ("CONFAB_VIDEO_HEIGHT", s.video_height.to_string()),
        ("CONFAB_VIDEO_FPS", s.video_fps.to_string()),
        ("CONFAB_VIDEO_BITRATE_KBPS", s.video_bitrate_kbps.to_string()),
        ("CONFAB_MEDIA_LAST_N", s.last_n.to_string()),
        ("CONFAB_VOICE_AUDIO_SLOTS", s.last_n.to_string()),
        ("CONFAB_CHAT_LOGIN_BURST_PER_IP", "1000000".into()),
        ("CONFAB_CHAT_LOGIN_BURST_PER_ACCOUNT", "1000000".into()),
        ("CONFAB_CHAT_GATEWAY_FRAMES_PER_MINUTE", "100000".into()),
        ("CONFAB_CHAT_MESSAGE_BURST_PER_USER", "100000000".into()),
        ("CONFAB_CHAT_MAX_GATEWAY_CONNECTIONS", "1000000".into()),
        ("CONFAB_VOICE_STATS_TOKEN", super::api::stats_token().into()),
        ("CONFAB_LIVE_RTMP_BIND", "127.0.0.1:0".into()),
        ("RUST_LOG", "warn,confab=info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(s.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

fn spawn(confab: &Path, db: &str, settings: &ServerSettings, cpus: Option<&[usize]>) -> Result<Server> {
    let mut cmd = Command::new(confab);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--media-bind", "127.0.0.1:0", "--database-url", db])
        .envs(server_env(settings))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(cpus) = cpus {
        super::affinity::pin_command(&mut cmd, cpus)?;
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {}", confab.display()))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads stderr for the addresses, then keeps draining it (a full pipe would block the server);
    // warnings and errors are passed on, bounded by the server's own log level.
    // CONFAB_BENCH_SERVER_LOG=FILE keeps the servers' whole stderr, for debugging a run.
    let log_path = settings.log.clone().map(Into::into).or_else(|| std::env::var_os("CONFAB_BENCH_SERVER_LOG"));
    let mut log = log_path.and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
    std::thread::spawn(move || {
        let (mut base, mut udp) = (None::<String>, false);
        let mut reported = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(f) = log.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if let Some(at) = line.find("listening on http://") {
                base = Some(line[at + "listening on ".len()..].trim().to_string());
            }
            udp |= line.contains("media engine ready");
            if !reported && let (Some(b), true) = (&base, udp) {
                let _ = tx.send(b.clone());
                reported = true;
            } else if reported && (line.contains("WARN") || line.contains("ERROR")) {
                tracing::debug!(target: "confab", "{line}");
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(base) => Ok(Server { base, pid: Some(child.id()), child: Some(child) }),
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().ok();
            bail!("{} did not report its addresses within {START_TIMEOUT:?} (exit {status:?})", confab.display())
        }
    }
}

impl Server {
    /// Kills a server we started at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops a server we started (SIGTERM, then SIGKILL after 5 s); a given one is left alone.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..50 {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `confab` binary next to this one (same target directory), as `cargo build` leaves them.
pub fn default_confab() -> Result<PathBuf> {
    let me = std::env::current_exe().context("finding confab-testbed's own path")?;
    let confab = me.with_file_name("confab");
    if !confab.exists() {
        bail!("{} not found: build it (cargo build [--release]) or pass --confab PATH", confab.display());
    }
    Ok(confab)
}

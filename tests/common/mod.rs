//! Spawning the real `confab` binary for black-box tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The media engine's UDP address.
    pub udp: String,
}

impl Server {
    /// Starts `confab serve` on free ports with `database_url`, plus `CONFAB_*` overrides in `env`,
    /// and waits until it reports both addresses.
    pub fn start(database_url: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .args(["serve", "--listen", "127.0.0.1:0", "--media-bind", "127.0.0.1:0", "--database-url", database_url])
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn confab");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut base, mut udp) = (None, None);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    base = Some(line[at + "listening on ".len()..].trim().to_string());
                }
                if line.contains("media engine ready")
                    && let Some(at) = line.find("udp=")
                {
                    udp = line[at + 4..].split_whitespace().next().map(String::from);
                }
                if let (Some(b), Some(u)) = (&base, &udp) {
                    let _ = tx.send((b.clone(), u.clone()));
                    base = None;
                }
            }
        });
        let (base, udp) = rx.recv_timeout(Duration::from_secs(30)).expect("server reported its addresses");
        Server { child, base, udp }
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

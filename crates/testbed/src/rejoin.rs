//! A voice participant that rejoins by itself, as the web client does: when its voice socket ends
//! without the server meaning it (its node died, the connection broke), it joins again through
//! the API, whose placement puts the room on a live node, and carries on as a new [`VoiceClient`].
//! A close the server meant (signed out 4004, replaced 4011, removed 4014) ends it for good.

use crate::voice::{VoiceClient, VoiceOptions};
use anyhow::{Result, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Close codes after which a client stays out.
const FINAL: [u16; 3] = [4004, 4011, 4014];
/// How long it keeps trying to get back in.
const GIVE_UP: Duration = Duration::from_secs(60);

pub struct Rejoining {
    current: watch::Receiver<Arc<VoiceClient>>,
    rejoins: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

struct Join {
    api: String,
    token: String,
    channel: String,
    opts: VoiceOptions,
}

impl Rejoining {
    /// Joins `channel` through the API at `api` (see [`VoiceClient::join`]), then keeps it joined.
    pub async fn join(api: &str, token: &str, channel: &str, opts: VoiceOptions) -> Result<Rejoining> {
        let j = Join { api: api.into(), token: token.into(), channel: channel.into(), opts };
        let first = VoiceClient::join(&j.api, &j.token, &j.channel, j.opts.clone()).await?;
        let (tx, current) = watch::channel(Arc::new(first));
        let rejoins = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(supervise(j, tx, rejoins.clone()));
        Ok(Rejoining { current, rejoins, task })
    }

    /// The session it is in now.
    pub fn client(&self) -> Arc<VoiceClient> {
        self.current.borrow().clone()
    }

    /// How many times it has joined again.
    pub fn rejoins(&self) -> u64 {
        self.rejoins.load(Ordering::Relaxed)
    }

    /// Waits until it has joined again `n` times in all: the session it is in then.
    pub async fn wait_rejoins(&self, n: u64, timeout: Duration) -> Result<Arc<VoiceClient>> {
        let mut rx = self.current.clone();
        let wait = async {
            while self.rejoins() < n {
                if rx.changed().await.is_err() {
                    bail!("stopped rejoining after {} rejoins", self.rejoins());
                }
            }
            Ok(self.client())
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| anyhow::anyhow!("not rejoined {n} times in {timeout:?}"))?
    }
}

impl Drop for Rejoining {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn supervise(j: Join, tx: watch::Sender<Arc<VoiceClient>>, rejoins: Arc<AtomicU64>) {
    loop {
        let client = tx.borrow().clone();
        let closed = loop {
            if let Ok(c) = client.wait_closed(Duration::from_secs(3600)).await {
                break c;
            }
        };
        if closed.code.is_some_and(|c| FINAL.contains(&c)) {
            tracing::info!(code = ?closed.code, "voice session ended by the server: not rejoining");
            return;
        }
        tracing::info!(code = ?closed.code, "voice socket lost: joining again");
        drop(client);
        let deadline = tokio::time::Instant::now() + GIVE_UP;
        let mut pause = Duration::from_millis(250);
        let next = loop {
            match VoiceClient::join(&j.api, &j.token, &j.channel, j.opts.clone()).await {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %format!("{e:#}"), "rejoin failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "gave up rejoining");
                    return;
                }
            }
        };
        rejoins.fetch_add(1, Ordering::Relaxed);
        if tx.send(Arc::new(next)).is_err() {
            return;
        }
    }
}

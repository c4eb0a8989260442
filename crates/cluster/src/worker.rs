//! Snowflake worker ids: every node's ids carry a 10-bit worker number that no other live node
//! holds, leased in a NATS KV bucket (created only if absent, renewed while the node lives,
//! released on a clean stop, gone 30 s after a crash).

use async_nats::jetstream::kv;
use bytes::Bytes;
use std::time::Duration;

const BUCKET: &str = "confab_workers";
/// How long a lease outlives its last renewal.
pub const LEASE: Duration = Duration::from_secs(30);
pub const RENEW: Duration = Duration::from_secs(10);

pub struct WorkerLease {
    kv: kv::Store,
    key: String,
    revision: u64,
    pub id: u16,
}

impl WorkerLease {
    /// Takes a free worker id (of 1024), trying from a random one.
    pub async fn claim(js: &async_nats::jetstream::Context, node: &str) -> Result<WorkerLease, crate::Error> {
        let kv = bucket(js, BUCKET, LEASE, 1).await?;
        let start: u16 = rand::random::<u16>() % 1024;
        for i in 0..1024u16 {
            let id = (start + i) % 1024;
            let key = format!("w{id}");
            if let Ok(revision) = kv.create(&key, Bytes::from(node.to_string())).await {
                return Ok(WorkerLease { kv, key, revision, id });
            }
        }
        Err(crate::Error::Bus("all 1024 worker ids are leased".into()))
    }

    /// Renews the lease; an error means another node may hold the id now.
    pub async fn renew(&mut self, node: &str) -> Result<(), String> {
        match self.kv.update(&self.key, Bytes::from(node.to_string()), self.revision).await {
            Ok(rev) => {
                self.revision = rev;
                Ok(())
            }
            // Expired during an outage: take it again if no one else did.
            Err(e) => match self.kv.create(&self.key, Bytes::from(node.to_string())).await {
                Ok(rev) => {
                    self.revision = rev;
                    Ok(())
                }
                Err(_) => Err(e.to_string()),
            },
        }
    }

    pub async fn release(self) {
        let _ = self.kv.delete(&self.key).await;
    }
}

/// A KV bucket whose entries expire `max_age` after their last write, created if absent. The
/// bucket's stream is made here with the settings `create_key_value` would use: that call first
/// reads the account's info, whose reply from Debian's nats-server 2.9 lacks fields async-nats
/// 0.52 requires.
pub async fn bucket(
    js: &async_nats::jetstream::Context,
    name: &str,
    max_age: Duration,
    history: i64,
) -> Result<kv::Store, crate::Error> {
    use async_nats::jetstream::stream;
    let cfg = stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: history,
        max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    js.get_or_create_stream(cfg).await.map_err(|e| crate::Error::Bus(format!("creating the {name} bucket: {e}")))?;
    js.get_key_value(name).await.map_err(|e| crate::Error::Bus(format!("opening the {name} bucket: {e}")))
}

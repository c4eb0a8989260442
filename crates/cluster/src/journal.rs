//! chat's [`Journal`] on JetStream: session snapshots in KV (`confab_sessions`, the last few per
//! session, gone a while after the resume window), and the events stream read back by position.

use crate::wire;
use async_nats::jetstream::{consumer, kv, stream};
use bytes::Bytes;
use chat::gateway::journal::{Item, Journal, Snapshot};
use futures_util::StreamExt;
use std::time::Duration;

const BUCKET: &str = "confab_sessions";
/// Snapshots kept per session: a client a little behind its session's newest snapshot can still
/// start from an older one.
const HISTORY: i64 = 5;
/// Longest a read of the stream may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct NatsJournal {
    kv: kv::Store,
    stream: stream::Stream,
}

impl NatsJournal {
    pub async fn open(
        js: &async_nats::jetstream::Context,
        resume_window: Duration,
    ) -> Result<NatsJournal, crate::Error> {
        let kv = crate::worker::bucket(js, BUCKET, resume_window + Duration::from_secs(60), HISTORY).await?;
        let stream =
            js.get_stream(wire::STREAM).await.map_err(|e| crate::Error::Bus(format!("the events stream: {e}")))?;
        Ok(NatsJournal { kv, stream })
    }
}

#[async_trait::async_trait]
impl Journal for NatsJournal {
    async fn save(&self, snap: &Snapshot) -> Result<(), String> {
        let json = serde_json::to_vec(snap).map_err(|e| e.to_string())?;
        self.kv.put(&snap.id, Bytes::from(json)).await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn load(&self, session_id: &str) -> Result<Vec<Snapshot>, String> {
        // Session ids are tokens; anything else is no key of ours (and no KV key at all).
        if session_id.is_empty() || !session_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Ok(Vec::new());
        }
        let mut history = match self.kv.history(session_id).await {
            Ok(h) => h,
            Err(e) => return Err(e.to_string()),
        };
        let mut out = Vec::new();
        let read = async {
            while let Some(entry) = history.next().await {
                let entry = entry.map_err(|e| e.to_string())?;
                if entry.operation == kv::Operation::Put
                    && let Ok(s) = serde_json::from_slice::<Snapshot>(&entry.value)
                {
                    out.push(s);
                }
                if entry.delta == 0 {
                    break;
                }
            }
            Ok::<(), String>(())
        };
        match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.contains("no messages") || e.contains("not found") => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("reading snapshots timed out".into()),
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.pos));
        Ok(out)
    }

    async fn read(&self, from: u64, to: u64) -> Result<Vec<(u64, Item)>, String> {
        if from > to {
            return Ok(Vec::new());
        }
        let cfg = consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
            ..Default::default()
        };
        let mut messages = self
            .stream
            .create_consumer(cfg)
            .await
            .map_err(|e| e.to_string())?
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity((to - from + 1).min(4096) as usize);
        let mut next = from;
        let read = async {
            while next <= to {
                let Some(m) = messages.next().await else { return Err("the stream ended".to_string()) };
                let m = m.map_err(|e| e.to_string())?;
                let pos = m.info().map_err(|e| e.to_string())?.stream_sequence;
                // Every position, in order: a gap means the stream dropped what the session needs.
                if pos != next {
                    return Err(format!("stream position {next} is gone (next is {pos})"));
                }
                next += 1;
                if let Some(item) = wire::read_item(m.subject.as_str(), &m.payload) {
                    out.push((pos, item));
                }
            }
            Ok(())
        };
        tokio::time::timeout(READ_TIMEOUT, read).await.map_err(|_| "reading the stream timed out".to_string())??;
        Ok(out)
    }
}

//! Group commit of new messages. Posting is the hottest write, and each post committed alone paid
//! a whole transaction and, on SQLite with `synchronous = FULL` (or Postgres with fsync on), a whole
//! fsync. Here one task takes every message queued meanwhile, inserts them in one transaction (one
//! multi-row `INSERT`) and commits once; each caller's future resolves only after that commit, so
//! a message is still acknowledged only once it is durable. If the batch fails, each message is
//! retried in a transaction of its own, so one bad row cannot fail the others.

use super::messages::{insert_one, mention_ids};
use crate::store::{Message, Result, StoreError};
use sqlx::{AnyPool, AssertSqlSafe};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Most messages in one commit (and so the most distinct multi-row statements prepared).
const MAX_BATCH: usize = 64;
/// Messages waiting for the writer before posters wait to queue.
const QUEUE: usize = 4096;

type Pending = (Message, oneshot::Sender<Result<()>>);

#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    tx: mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Starts the writer task; it ends when the last handle is dropped.
    pub(super) fn start(pool: AnyPool, gate: Option<Arc<Mutex<()>>>) -> GroupCommit {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, gate, rx));
        GroupCommit { tx }
    }

    /// Resolves once `m` is committed (or failed).
    pub(super) async fn insert(&self, m: Message) -> Result<()> {
        let (done, result) = oneshot::channel();
        let gone = || StoreError::Io(std::io::Error::other("the message writer stopped"));
        self.tx.send((m, done)).await.map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }
}

async fn run(pool: AnyPool, gate: Option<Arc<Mutex<()>>>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let _writer = match &gate {
            Some(g) => Some(g.lock().await),
            None => None,
        };
        let messages: Vec<&Message> = batch.iter().map(|(m, _)| m).collect();
        match insert_batch(&pool, &messages).await {
            Ok(()) => batch.drain(..).for_each(|(_, done)| {
                let _ = done.send(Ok(()));
            }),
            Err(e) => {
                tracing::debug!(error = %e, n = batch.len(), "group commit failed; committing one by one");
                for (m, done) in batch.drain(..) {
                    let _ = done.send(insert_one(&pool, &m).await);
                }
            }
        }
    }
}

async fn insert_batch(pool: &AnyPool, messages: &[&Message]) -> Result<()> {
    let mut tx = pool.begin().await?;
    let mut sql = String::from(
        "INSERT INTO messages (id, channel_id, author_id, content, mention_ids, edited_at, reply_to) VALUES ",
    );
    for i in 0..messages.len() {
        let b = i * 7;
        let sep = if i == 0 { "" } else { ", " };
        let (p1, p2, p3, p4, p5, p6, p7) = (b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7);
        sql.push_str(&format!("{sep}(${p1}, ${p2}, ${p3}, ${p4}, ${p5}, ${p6}, ${p7})"));
    }
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for m in messages {
        q = q
            .bind(m.id.0)
            .bind(m.channel_id.0)
            .bind(m.author_id.0)
            .bind(&m.content)
            .bind(mention_ids(m))
            .bind(m.edited_at)
            .bind(m.reply_to.map(|r| r.0));
    }
    q.execute(&mut *tx).await?;
    for m in messages.iter().filter(|m| !m.mentions.is_empty()) {
        super::messages::insert_mentions(&mut tx, m).await?;
    }
    for m in messages.iter().filter(|m| !m.attachments.is_empty()) {
        super::messages::insert_attachments(&mut tx, m).await?;
    }
    tx.commit().await?;
    Ok(())
}

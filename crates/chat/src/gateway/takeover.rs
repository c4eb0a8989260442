//! RESUME of a session this node does not hold: in a cluster, rebuilt from its snapshot and the
//! shared stream (see [`super::journal`]) and adopted here; the node that had it (if alive) drops
//! it when it reads [`Notice::Moved`].

use super::broker::Notice;
use super::hub::{Delivery, Link, ResumeError};
use super::journal::Rebuild;
use super::protocol::{Event, Status};
use crate::app::App;
use crate::id::Id;
use std::sync::Arc;

/// Rebuild rounds before giving up (another one only when the ring moved past the rebuild).
const ROUNDS: usize = 20;
/// How long a resume waits for this node's reading of the stream to reach the client's sequence.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

impl App {
    /// Takes over session `id` of `user`, whose client has every dispatch up to `seq`: the missed
    /// dispatches then `resumed`, and their status if they came online here.
    pub(crate) async fn take_over(
        &self,
        id: &str,
        user: Id,
        login: &str,
        seq: u64,
        link: Link,
        resumed: &Arc<Event>,
    ) -> Result<(Vec<Delivery>, Option<Status>), ResumeError> {
        let journal = self.journal.get().ok_or(ResumeError::Invalid)?;
        let snaps = journal.load(id).await.map_err(|e| {
            tracing::warn!(error = %e, "loading a session's snapshots failed");
            ResumeError::Invalid
        })?;
        // The newest snapshot the client is not behind; a client ahead of the stream is lying.
        let Some(snap) = snaps.iter().find(|s| s.pos <= seq && s.user == user).cloned() else {
            let kept: Vec<u64> = snaps.iter().map(|s| s.pos).collect();
            tracing::info!(session = %id, seq, ?kept, "no snapshot at or before the client's sequence: not resumable");
            return Err(ResumeError::Invalid);
        };
        // This node may not have read as far as the client's node had yet; a client further
        // ahead than that names dispatches no node sent.
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        while seq > self.hub.position() {
            if tokio::time::Instant::now() >= deadline {
                tracing::info!(session = %id, seq, at = self.hub.position(), "the client is ahead of this node's stream");
                return Err(ResumeError::Invalid);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mut rebuild = Rebuild::new(snap, seq, self.cfg.replay_buffer);
        let mut link = Some(link);
        let lost = |lost| {
            tracing::info!(session = %id, ?lost, "a session cannot be taken over");
            ResumeError::Invalid
        };
        for _ in 0..ROUNDS {
            // What this node's ring of recent messages no longer holds comes from the stream.
            let target = self.hub.position();
            if target > rebuild.pos && self.recent.range(rebuild.pos + 1, target).is_none() {
                let items = journal.read(rebuild.pos + 1, target).await.map_err(|e| {
                    tracing::info!(error = %e, "a session's stream is gone: it cannot be resumed here");
                    ResumeError::Invalid
                })?;
                for (pos, item) in &items {
                    rebuild.feed(*pos, item).map_err(lost)?;
                }
                rebuild.pos = target;
            }
            // The rest from the ring and the adoption under the position lock: the session starts
            // exactly where this node stands, whatever arrives meanwhile.
            let adopted = self.hub.locked(|at| {
                if at > rebuild.pos {
                    let Some(items) = self.recent.range(rebuild.pos + 1, at) else { return Ok(None) };
                    for (pos, item) in &items {
                        rebuild.feed(*pos, item)?;
                    }
                    rebuild.pos = at;
                }
                let mut snap = rebuild.snapshot();
                snap.login = login.to_string();
                let Some(link) = link.take() else { return Ok(None) };
                let done = self.hub.adopt(&snap, seq, rebuild.missed.clone(), link, resumed, at);
                Ok(Some((done, snap)))
            });
            if let Some(((out, online), snap)) = adopted.map_err(lost)? {
                self.broker.announce(&Notice::Moved { session: id.to_string() });
                if let Err(e) = journal.save(&snap).await {
                    tracing::warn!(error = %e, "a taken-over session's snapshot was not kept");
                }
                tracing::info!(session = %id, missed = rebuild.missed.len(), "a session resumed from another node");
                return Ok((out, online.then_some(Status::Online)));
            }
        }
        tracing::info!(session = %id, "the stream kept moving while taking a session over: not resumed");
        Err(ResumeError::Invalid)
    }
}

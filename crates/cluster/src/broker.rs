//! [`NatsBroker`]: chat's [`Broker`] on NATS JetStream. Every dispatch and notice is stored in the
//! `CONFAB_EVENTS` stream in the order it was published here (one queue, one task), each with a
//! message id so a retry after an outage is stored once; every node (this one too) reads the
//! stream back in order ([`crate::node`]), so all hand a topic's events to their sessions in the
//! same order, and what was published while NATS was away arrives once it is back. If NATS stays
//! away so long that the queue fills, what does not fit is dropped, and once the queue has drained
//! a `Notice::Resync` makes every session in the cluster start afresh: a client is never left
//! with a silent hole (the messages themselves are in Postgres).

use crate::wire;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use chat::gateway::broker::{Broker, Notice};
use chat::gateway::hub::Topic;
use chat::gateway::protocol::Event;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Publishes awaiting their acknowledgement at once.
const WINDOW: usize = 256;

pub struct NatsBroker {
    me: String,
    /// This run's prefix of message ids (a restarted node must not reuse its previous ids).
    run: String,
    tx: mpsc::Sender<Outgoing>,
    /// Messages dropped because the queue was full (NATS unreachable for long).
    pub lost: AtomicU64,
    /// Set when one is dropped; the publisher sends `Notice::Resync` once it has caught up.
    overflowed: Arc<AtomicBool>,
    /// The last publish failed (NATS away): barriers do not wait.
    failing: Arc<AtomicBool>,
    next: AtomicU64,
}

/// A message to store, or (empty subject) a barrier: `done` is told once every message before it
/// is stored.
#[derive(Clone)]
struct Outgoing {
    subject: String,
    payload: Bytes,
    id: String,
    done: Option<Arc<Notify>>,
}

/// Longest a barrier holds its caller (NATS slow or restarting).
const BARRIER_WAIT: Duration = Duration::from_secs(1);

impl NatsBroker {
    /// The broker, and the task that drains its queue into the stream until the queue closes.
    /// `queue`: messages waiting for NATS, at most (what an outage of some seconds under load
    /// accumulates).
    pub fn new(
        me: &str,
        js: async_nats::jetstream::Context,
        queue: usize,
    ) -> (Arc<NatsBroker>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Outgoing>(queue.max(1));
        let run = format!("{me}.{:08x}", rand::random::<u32>());
        let overflowed = Arc::new(AtomicBool::new(false));
        let resync = Outgoing {
            subject: wire::NOTICES.to_string(),
            payload: wire::notice_payload(me, &Notice::Resync).into(),
            id: format!("{run}.resync"),
            done: None,
        };
        let failing = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(publisher(js, rx, overflowed.clone(), failing.clone(), resync));
        let (lost, next, me) = (AtomicU64::new(0), AtomicU64::new(0), me.to_string());
        (Arc::new(NatsBroker { me, run, tx, lost, overflowed, failing, next }), task)
    }

    fn send(&self, subject: String, payload: Vec<u8>) {
        let id = format!("{}.{}", self.run, self.next.fetch_add(1, Ordering::Relaxed));
        if self.tx.try_send(Outgoing { subject, payload: payload.into(), id, done: None }).is_err() {
            self.overflowed.store(true, Ordering::Relaxed);
            if self.lost.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000) {
                tracing::error!("the NATS publish queue is full: dispatches are being dropped");
            }
        }
    }
}

impl Broker for NatsBroker {
    fn publish(&self, topic: Topic, event: Arc<Event>) {
        self.send(wire::subject(topic), wire::event_payload(&self.me, &event));
    }

    fn announce(&self, notice: &Notice) {
        self.send(wire::NOTICES.to_string(), wire::notice_payload(&self.me, notice));
    }

    fn ordered(&self) -> bool {
        true
    }

    fn barrier(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        if self.failing.load(Ordering::Relaxed) {
            return Box::pin(async {});
        }
        let done = Arc::new(Notify::new());
        let marker =
            Outgoing { subject: String::new(), payload: Bytes::new(), id: String::new(), done: Some(done.clone()) };
        if self.tx.try_send(marker).is_err() {
            return Box::pin(async {});
        }
        Box::pin(async move {
            let _ = tokio::time::timeout(BARRIER_WAIT, done.notified()).await;
        })
    }
}

/// Sends in order with up to [`WINDOW`] acknowledgements outstanding. A failure (NATS away) sends
/// the unacknowledged messages again, in order, until they are stored: the stream's duplicate
/// window drops any that had been stored after all.
async fn publisher(
    js: async_nats::jetstream::Context,
    mut rx: mpsc::Receiver<Outgoing>,
    overflowed: Arc<AtomicBool>,
    failing: Arc<AtomicBool>,
    resync: Outgoing,
) {
    let mut window: VecDeque<(Outgoing, Option<PublishAckFuture>)> = VecDeque::new();
    let mut retry: VecDeque<Outgoing> = VecDeque::new();
    let mut backoff = Duration::from_millis(50);
    let mut resyncs = 0u64;
    loop {
        while window.len() < WINDOW {
            let next = match retry.pop_front() {
                Some(m) => m,
                // Caught up after dropping some: every session must start afresh.
                None if window.is_empty() && rx.is_empty() && overflowed.swap(false, Ordering::Relaxed) => {
                    resyncs += 1;
                    tracing::warn!("NATS is back after dispatches were dropped: every session starts afresh");
                    Outgoing { id: format!("{}.{resyncs}", resync.id), ..resync.clone() }
                }
                None if window.is_empty() => match rx.recv().await {
                    Some(m) => m,
                    None => return,
                },
                None => match rx.try_recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            if let Some(done) = next.done.as_ref().filter(|_| next.subject.is_empty()) {
                // A barrier: passed once everything sent before it is acknowledged.
                if window.is_empty() {
                    done.notify_one();
                    continue;
                }
                retry.push_front(next);
                break;
            }
            let msg = PublishMessage::build().payload(next.payload.clone()).message_id(&next.id);
            let ack = js.send_publish(next.subject.clone(), msg).await.ok();
            window.push_back((next, ack));
        }
        let Some((head, ack)) = window.pop_front() else { continue };
        let stored = match ack {
            Some(f) => f.await.map_err(|e| e.to_string()),
            None => Err("not sent".to_string()),
        };
        failing.store(stored.is_err(), Ordering::Relaxed);
        match stored {
            Ok(_) => backoff = Duration::from_millis(50),
            Err(e) => {
                tracing::warn!(error = %e, pending = window.len() + 1, "publishing to NATS failed; retrying in order");
                // Sent order: the head, the rest of the window, then what waited to be retried.
                let mut again: VecDeque<Outgoing> = VecDeque::from([head]);
                again.extend(window.drain(..).map(|(m, _)| m));
                again.extend(retry.drain(..));
                retry = again;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

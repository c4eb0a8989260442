//! What the voice gateway said, kept for a test to wait on: a bounded queue of server messages, the
//! heartbeat acks counted apart (they would drown everything else), and how the socket closed.
//! Some state is also tracked as it arrives, whoever consumes the messages: the current slot
//! assignment (merged from every `slots` message) and whether the room's video ended.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Result, bail};
use signaling::protocol::{ServerMsg, Slot};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Unconsumed messages kept; beyond this the oldest go (a test that never reads must not grow).
const MAX_QUEUED: usize = 4096;
/// Distinct mids tracked; more m-lines than any offer of ours has (a bad server cannot grow it).
const MAX_SLOTS: usize = 1024;

/// How the voice socket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The close frame's code, `None` if the connection ended without one.
    pub code: Option<u16>,
    pub reason: String,
}

#[derive(Default)]
struct State {
    queue: VecDeque<ServerMsg>,
    dropped: u64,
    heartbeat_acks: u64,
    /// Text frames that are not a `ServerMsg` this client knows, with the last one for debugging.
    undecodable: u64,
    last_undecodable: Option<String>,
    closed: Option<Closed>,
    slots: BTreeMap<String, Slot>,
    video_ended: Option<String>,
}

#[derive(Default)]
pub struct Events {
    state: Mutex<State>,
    changed: Notify,
}

impl Events {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_waiters();
    }

    pub(crate) fn push_text(&self, text: &str) {
        match serde_json::from_str::<ServerMsg>(text) {
            Ok(ServerMsg::HeartbeatAck { .. }) => self.update(|s| s.heartbeat_acks += 1),
            Ok(msg) => self.update(|s| {
                match &msg {
                    ServerMsg::Slots { slots } => {
                        for slot in slots {
                            if s.slots.len() < MAX_SLOTS || s.slots.contains_key(&slot.mid) {
                                s.slots.insert(slot.mid.clone(), slot.clone());
                            }
                        }
                    }
                    ServerMsg::VideoEnded { message } => s.video_ended = Some(message.clone()),
                    _ => {}
                }
                if s.queue.len() == MAX_QUEUED {
                    s.queue.pop_front();
                    s.dropped += 1;
                }
                s.queue.push_back(msg);
            }),
            Err(_) => self.update(|s| {
                s.undecodable += 1;
                s.last_undecodable = Some(text.chars().take(512).collect());
            }),
        }
    }

    /// Records the end of the socket; the first report wins.
    pub(crate) fn set_closed(&self, code: Option<u16>, reason: String) {
        self.update(|s| {
            s.closed.get_or_insert(Closed { code, reason });
        });
    }

    /// The oldest unconsumed message.
    pub async fn next_event(&self, timeout: Duration) -> Result<ServerMsg> {
        self.wait_for(|_| true, timeout).await
    }

    /// Removes and returns the oldest message matching `pred`, waiting up to `timeout` for one.
    /// Messages that do not match stay queued, in order, for later calls.
    pub async fn wait_for(&self, mut pred: impl FnMut(&ServerMsg) -> bool, timeout: Duration) -> Result<ServerMsg> {
        let deadline = Instant::now() + timeout;
        loop {
            // Register interest before looking, so a message pushed in between still wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut s = self.lock();
                if let Some(msg) = s.queue.iter().position(&mut pred).and_then(|i| s.queue.remove(i)) {
                    return Ok(msg);
                }
                if let Some(c) = &s.closed {
                    bail!("voice socket closed (code {:?}, {:?}) before the awaited message", c.code, c.reason);
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                bail!("no matching voice message within {timeout:?}; queued: {:?}", self.pending());
            }
        }
    }

    /// Waits for the socket to end and says how.
    pub async fn wait_closed(&self, timeout: Duration) -> Result<Closed> {
        let deadline = Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(c) = self.closed() {
                return Ok(c);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                bail!("voice socket still open after {timeout:?}");
            }
        }
    }

    pub fn closed(&self) -> Option<Closed> {
        self.lock().closed.clone()
    }

    /// A copy of the unconsumed messages, oldest first.
    pub fn pending(&self) -> Vec<ServerMsg> {
        self.lock().queue.iter().cloned().collect()
    }

    pub fn heartbeat_acks(&self) -> u64 {
        self.lock().heartbeat_acks
    }

    /// Frames that did not decode as a `ServerMsg`, and the last of them.
    pub fn undecodable(&self) -> (u64, Option<String>) {
        let s = self.lock();
        (s.undecodable, s.last_undecodable.clone())
    }

    /// The latest assignment of every receive slot a `slots` message named, by mid.
    pub fn slots(&self) -> Vec<Slot> {
        self.lock().slots.values().cloned().collect()
    }

    pub fn slot(&self, mid: &str) -> Option<Slot> {
        self.lock().slots.get(mid).cloned()
    }

    /// The message of `video_ended`, once the server sent it.
    pub fn video_ended(&self) -> Option<String> {
        self.lock().video_ended.clone()
    }

    /// Messages lost to the queue bound.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const SPEAKING: &str = r#"{"op":"speaking","d":{"user_id":"7","speaking":true}}"#;
    const ANSWER: &str = r#"{"op":"answer","d":{"sdp":"v=0"}}"#;

    #[tokio::test]
    async fn wait_for_skips_but_keeps_other_messages() {
        let ev = Events::default();
        ev.push_text(SPEAKING);
        ev.push_text(r#"{"op":"heartbeat_ack","d":{"nonce":1}}"#);
        ev.push_text(ANSWER);
        ev.push_text("not json");
        let got = ev.wait_for(|m| matches!(m, ServerMsg::Answer { .. }), Duration::from_millis(10)).await.unwrap();
        assert_eq!(got, ServerMsg::Answer { sdp: "v=0".into() });
        assert!(matches!(ev.next_event(Duration::from_millis(10)).await.unwrap(), ServerMsg::Speaking { .. }));
        assert!(ev.next_event(Duration::from_millis(10)).await.is_err());
        assert_eq!(ev.heartbeat_acks(), 1);
        assert_eq!(ev.undecodable(), (1, Some("not json".into())));
    }

    #[tokio::test]
    async fn waiter_wakes_on_push_and_on_close() {
        let ev = Arc::new(Events::default());
        let pusher = ev.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            pusher.push_text(ANSWER);
            tokio::time::sleep(Duration::from_millis(20)).await;
            pusher.set_closed(Some(4014), "bye".into());
        });
        assert!(ev.next_event(Duration::from_secs(5)).await.is_ok());
        let err = ev.next_event(Duration::from_secs(5)).await.unwrap_err();
        assert!(err.to_string().contains("4014"), "{err}");
        assert_eq!(ev.wait_closed(Duration::from_secs(1)).await.unwrap().code, Some(4014));
    }

    #[tokio::test]
    async fn slots_are_tracked_even_when_consumed() {
        let ev = Events::default();
        ev.push_text(
            r#"{"op":"slots","d":{"slots":[{"mid":"1","user_id":"7"},{"mid":"4","user_id":null,"kind":"video"}]}}"#,
        );
        ev.push_text(r#"{"op":"slots","d":{"slots":[{"mid":"1","user_id":"9"}]}}"#);
        ev.push_text(r#"{"op":"video_ended","d":{"message":"pipeline failed"}}"#);
        while ev.next_event(Duration::from_millis(10)).await.is_ok() {}
        let slots = ev.slots();
        assert_eq!(slots.len(), 2);
        assert_eq!(ev.slot("1").unwrap().user_id.as_deref(), Some("9"));
        assert_eq!(ev.slot("4").map(|s| (s.user_id, s.kind)), Some((None, signaling::protocol::SlotKind::Video)));
        assert_eq!(ev.video_ended().as_deref(), Some("pipeline failed"));
    }

    #[tokio::test]
    async fn queue_is_bounded() {
        let ev = Events::default();
        for _ in 0..MAX_QUEUED + 5 {
            ev.push_text(SPEAKING);
        }
        assert_eq!(ev.pending().len(), MAX_QUEUED);
        assert_eq!(ev.dropped(), 5);
    }
}

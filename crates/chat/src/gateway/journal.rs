//! Resuming a session on another node. In a cluster every dispatch and every change to sessions'
//! subscriptions is a message of one shared stream, and a session's sequence numbers are those
//! messages' positions, the same on every node. So what a session was sent after any position
//! follows from where it stood then (a [`Snapshot`]: its user, login and topics) and the stream
//! since: [`Rebuild`] (sans-IO) replays the stream as the hub did, and the node taking the session
//! over adopts it (`Hub::adopt`). The cluster keeps snapshots (at IDENTIFY, at RESUME, and every
//! few seconds) and reads the stream back through [`Journal`].

use super::broker::Notice;
use super::hub::Topic;
use super::protocol::Event;
use crate::id::Id;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// Where a session stood at stream position `pos`: what a rebuild starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub user: Id,
    /// The hash of the token the session was identified or last resumed with.
    pub login: String,
    #[serde(with = "topics")]
    pub topics: Vec<Topic>,
    pub pos: u64,
}

/// A message of the shared stream.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Topic, Arc<Event>),
    Notice(Notice),
}

/// The cluster's side: snapshots kept, and the stream read back.
#[async_trait::async_trait]
pub trait Journal: Send + Sync {
    async fn save(&self, snap: &Snapshot) -> Result<(), String>;
    /// The session's snapshots, newest first.
    async fn load(&self, session_id: &str) -> Result<Vec<Snapshot>, String>;
    /// The stream's messages at positions `from..=to`, every one of them, in order; an error if
    /// any is gone.
    async fn read(&self, from: u64, to: u64) -> Result<Vec<(u64, Item)>, String>;
}

/// Messages of the stream this node handled last (a bounded ring, `None` for one it could not
/// read), pushed by the reader under the hub's position lock. A takeover finishes from here under
/// the same lock, so no message slips between its rebuild and the adoption.
#[derive(Default)]
pub struct Recent {
    items: std::sync::Mutex<std::collections::VecDeque<(u64, Option<Item>)>>,
}

/// Messages a [`Recent`] keeps.
const RECENT: usize = 4096;

impl Recent {
    pub fn push(&self, pos: u64, item: Option<Item>) {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        if items.len() == RECENT {
            items.pop_front();
        }
        items.push_back((pos, item));
    }

    /// The messages at positions `from..=to`, if every one of them is still here.
    pub fn range(&self, from: u64, to: u64) -> Option<Vec<(u64, Item)>> {
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let first = items.front()?.0;
        let start = usize::try_from(from.checked_sub(first)?).ok()?;
        let mut out = Vec::new();
        for (k, (pos, item)) in items.iter().skip(start).take_while(|(p, _)| *p <= to).enumerate() {
            // Positions are contiguous unless the stream lost messages: then this is no copy.
            if *pos != from + k as u64 {
                return None;
            }
            out.extend(item.clone().map(|i| (*pos, i)));
        }
        (items.back()?.0 >= to).then_some(out)
    }
}

/// Why a session cannot be taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// Its login was revoked.
    Ended,
    /// More was missed than a session keeps for replay.
    TooMuch,
}

/// A session replayed from a snapshot: its topics and the dispatches after the client's `acked`.
#[derive(Debug)]
pub struct Rebuild {
    pub snap: Snapshot,
    topics: HashSet<Topic>,
    acked: u64,
    pub missed: Vec<(u64, Arc<Event>)>,
    cap: usize,
    /// The position handled last.
    pub pos: u64,
}

impl Rebuild {
    pub fn new(snap: Snapshot, acked: u64, cap: usize) -> Rebuild {
        let topics = snap.topics.iter().copied().collect();
        let pos = snap.pos;
        Rebuild { snap, topics, acked, missed: Vec::new(), cap, pos }
    }

    /// The stream message at `pos`, as the hub handled it for this session.
    pub fn feed(&mut self, pos: u64, item: &Item) -> Result<(), Lost> {
        self.pos = pos;
        let sent = |ev: &Arc<Event>, missed: &mut Vec<(u64, Arc<Event>)>| {
            if pos > self.acked {
                missed.push((pos, ev.clone()));
            }
        };
        match item {
            Item::Event(t, ev) if self.topics.contains(t) => sent(ev, &mut self.missed),
            Item::Event(..) => {}
            Item::Notice(Notice::Join { user, topic, first }) if *user == self.snap.user => {
                if self.topics.insert(*topic)
                    && let Some(f) = first
                {
                    sent(f, &mut self.missed);
                }
            }
            Item::Notice(Notice::Leave { user, topic }) if *user == self.snap.user => {
                self.topics.remove(topic);
            }
            Item::Notice(Notice::Revoked(r)) if r.login == self.snap.login => return Err(Lost::Ended),
            Item::Notice(Notice::Resync) => return Err(Lost::Ended),
            Item::Notice(_) => {}
        }
        if self.missed.len() > self.cap { Err(Lost::TooMuch) } else { Ok(()) }
    }

    /// The snapshot the session is at now.
    pub fn snapshot(&self) -> Snapshot {
        let mut topics: Vec<Topic> = self.topics.iter().copied().collect();
        topics.sort_by_key(|t| format!("{t:?}"));
        Snapshot { topics, pos: self.pos, ..self.snap.clone() }
    }
}

/// Topics as text (`g.123`), in snapshots.
mod topics {
    use super::Topic;
    use crate::id::Id;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &[Topic], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(t.iter().map(|t| match t {
            Topic::Guild(g) => format!("g.{}", g.0),
            Topic::User(u) => format!("u.{}", u.0),
            Topic::Presence(g) => format!("p.{}", g.0),
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Topic>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| {
                let (k, id) = s.split_once('.').ok_or_else(|| serde::de::Error::custom("topic"))?;
                let id = Id(id.parse().map_err(serde::de::Error::custom)?);
                match k {
                    "g" => Ok(Topic::Guild(id)),
                    "u" => Ok(Topic::User(id)),
                    "p" => Ok(Topic::Presence(id)),
                    _ => Err(serde::de::Error::custom("topic kind")),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Revoked;
    use crate::gateway::hub::{Hub, HubConfig, Link};
    use std::time::{Duration, Instant};

    fn ev(n: &'static str) -> Arc<Event> {
        Event::new(n, &())
    }

    #[test]
    fn the_ring_answers_only_for_positions_it_holds_every_one_of() {
        let r = Recent::default();
        assert_eq!(r.range(1, 1).map(|v| v.len()), None, "empty");
        for pos in 5..5 + RECENT as u64 + 10 {
            let item = (pos % 3 != 0).then(|| Item::Event(Topic::User(Id(1)), ev("E")));
            r.push(pos, item);
        }
        let first = 15;
        assert!(r.range(first - 1, first + 3).is_none(), "gone from the ring");
        let got = r.range(first, first + 5).unwrap();
        assert_eq!(got.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![16, 17, 19, 20], "unreadable ones skipped");
        let last = 5 + RECENT as u64 + 9;
        assert!(r.range(last, last + 1).is_none(), "not handled yet");
        assert_eq!(r.range(last - 1, last).unwrap().len(), 1, "{last} is unreadable, {} not", last - 1);
        // A gap in the stream: no copy across it.
        r.push(last + 2, None);
        assert!(r.range(last, last + 2).is_none());
    }

    /// A client that had everything still hears RESUMED (numbered like the last dispatch it saw).
    #[test]
    fn an_adopted_session_says_resumed_even_with_nothing_missed() {
        let hub = Hub::new(HubConfig { replay: 50, resume_window: Duration::from_secs(10), positions: true });
        let (tx, _rx) = tokio::sync::mpsc::channel(64);
        let link = Link { conn: 1, tx, kick: Default::default() };
        let snap = Snapshot { id: "s".into(), user: Id(7), login: "l".into(), topics: vec![], pos: 40 };
        hub.at(42, || {});
        let (out, online) = hub.locked(|at| hub.adopt(&snap, 42, Vec::new(), link, &ev("RESUMED"), at));
        assert_eq!(out.iter().map(|(s, e)| (*s, e.name)).collect::<Vec<_>>(), vec![(42, "RESUMED")]);
        assert!(online);
    }

    /// The same stream through a hub and through a rebuild gives the same dispatches.
    #[test]
    fn a_rebuild_sends_what_the_hub_sent() {
        let hub = Hub::new(HubConfig { replay: 50, resume_window: Duration::from_secs(10), positions: true });
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let link = Link { conn: 1, tx, kick: Default::default() };
        let (u, g1, g2) = (Id(7), Id(1), Id(2));
        let t0 = Instant::now();
        hub.at(10, || {});
        hub.create_session("s", u, "login", vec![Topic::Guild(g1), Topic::User(u)], link, &ev("READY"), t0);
        let snap = hub.snapshot("s").unwrap();
        assert_eq!(snap.pos, 10);
        let stream: Vec<(u64, Item)> = vec![
            (11, Item::Event(Topic::Guild(g1), ev("A"))),
            (12, Item::Event(Topic::Guild(g2), ev("NOT_MINE"))),
            (13, Item::Notice(Notice::Join { user: u, topic: Topic::Guild(g2), first: Some(ev("GUILD_CREATE")) })),
            (14, Item::Event(Topic::Guild(g2), ev("B"))),
            (15, Item::Notice(Notice::Leave { user: u, topic: Topic::Guild(g1) })),
            (16, Item::Event(Topic::Guild(g1), ev("GONE"))),
            (17, Item::Event(Topic::User(u), ev("C"))),
        ];
        for (pos, item) in &stream {
            hub.at(*pos, || match item {
                Item::Event(t, e) => hub.deliver_at(*t, e, *pos, t0),
                Item::Notice(Notice::Join { user, topic, first }) => {
                    hub.join_topic(*user, *topic, first.as_ref(), Some(*pos), t0)
                }
                Item::Notice(Notice::Leave { user, topic }) => hub.leave_topic(*user, *topic),
                Item::Notice(_) => {}
            });
        }
        let sent: Vec<(u64, &str)> = std::iter::from_fn(|| rx.try_recv().ok()).map(|(s, e)| (s, e.name)).collect();
        assert_eq!(sent, vec![(10, "READY"), (11, "A"), (13, "GUILD_CREATE"), (14, "B"), (17, "C")]);

        // A client that got up to 11 resumes elsewhere: it is sent the rest, with the same numbers.
        let mut r = Rebuild::new(snap.clone(), 11, 50);
        for (pos, item) in &stream {
            r.feed(*pos, item).unwrap();
        }
        let missed: Vec<(u64, &str)> = r.missed.iter().map(|(s, e)| (*s, e.name)).collect();
        assert_eq!(missed, vec![(13, "GUILD_CREATE"), (14, "B"), (17, "C")]);
        assert_eq!(r.snapshot().topics, hub.snapshot("s").unwrap().topics, "same topics at the end");

        // A revoked login, or a session that moved on again, cannot be taken over.
        let mut r = Rebuild::new(snap.clone(), 11, 50);
        let revoked = Item::Notice(Notice::Revoked(Revoked { user: u, login: "login".into() }));
        assert_eq!(r.feed(18, &revoked), Err(Lost::Ended));
        let mut r = Rebuild::new(snap.clone(), 10, 1);
        assert_eq!(r.feed(11, &stream[0].1), Ok(()));
        assert_eq!(r.feed(17, &stream[6].1), Err(Lost::TooMuch));
        let json = serde_json::to_string(&snap).unwrap();
        assert_eq!(serde_json::from_str::<Snapshot>(&json).unwrap(), snap);
    }
}

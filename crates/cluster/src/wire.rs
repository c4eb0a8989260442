//! What goes over NATS: subjects and payloads (JSON, so `nats sub 'confab.>'` is readable).
//!
//! Kept in the `CONFAB_EVENTS` stream (JetStream), read back in order by every node:
//! - `confab.ev.{g|u|p}.<id>`: a dispatch to a guild, a user or a guild's presence topic:
//!   `{"o": origin node, "t": name, "d": data}`.
//! - `confab.ctl`: a [`Notice`] every node applies: `{"o": origin, "n": {...}}`.
//!
//! Plain NATS (what is lost while a node is away is sent again soon anyway):
//! - `confab.node.hb`: a node's heartbeat ([`NodeInfo`]).
//! - `confab.node.roster`: a node's whole presence view, `{"o": origin, "users": [[id, status]]}`.

use crate::membership::NodeInfo;
use chat::app::{Ejection, Revoked};
use chat::gateway::broker::{Forget, Notice};
use chat::gateway::hub::Topic;
use chat::gateway::protocol::{Event, Status};
use chat::id::Id;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

pub const EVENTS: &str = "confab.ev";
pub const NOTICES: &str = "confab.ctl";
pub const HEARTBEATS: &str = "confab.node.hb";
pub const ROSTER: &str = "confab.node.roster";
/// The stream of events and notices, and its subjects.
pub const STREAM: &str = "CONFAB_EVENTS";
pub const STREAM_SUBJECTS: [&str; 2] = ["confab.ev.>", NOTICES];
/// The plain subjects a node listens to.
pub const NODES: &str = "confab.node.>";

/// The subject a topic's dispatches go to.
pub fn subject(topic: Topic) -> String {
    let (kind, id) = topic_parts(topic);
    format!("{EVENTS}.{kind}.{}", id.0)
}

fn topic_parts(topic: Topic) -> (&'static str, Id) {
    match topic {
        Topic::Guild(g) => ("g", g),
        Topic::User(u) => ("u", u),
        Topic::Presence(g) => ("p", g),
    }
}

/// The topic of an event subject (`confab.ev.g.123`).
pub fn topic_of(subject: &str) -> Option<Topic> {
    let rest = subject.strip_prefix(EVENTS)?.strip_prefix('.')?;
    let (kind, id) = rest.split_once('.')?;
    let id = Id(id.parse().ok()?);
    match kind {
        "g" => Some(Topic::Guild(id)),
        "u" => Some(Topic::User(id)),
        "p" => Some(Topic::Presence(id)),
        _ => None,
    }
}

/// A dispatch's payload, written without re-parsing its data.
pub fn event_payload(origin: &str, ev: &Event) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a> {
        o: &'a str,
        t: &'a str,
        d: &'a RawValue,
    }
    serde_json::to_vec(&Out { o: origin, t: ev.name, d: &ev.data }).unwrap_or_default()
}

#[derive(Deserialize)]
struct InEvent {
    o: String,
    t: String,
    d: Box<RawValue>,
}

/// A dispatch read back: its origin node and the event.
pub fn read_event(payload: &[u8]) -> Option<(String, Arc<Event>)> {
    let e: InEvent = serde_json::from_slice(payload).ok()?;
    Some((e.o, Event::from_wire(&e.t, e.d)?))
}

/// A topic as text in notices (`g.123`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
struct WireTopic(Topic);

impl From<WireTopic> for String {
    fn from(t: WireTopic) -> String {
        let (kind, id) = topic_parts(t.0);
        format!("{kind}.{}", id.0)
    }
}

impl TryFrom<String> for WireTopic {
    type Error = String;
    fn try_from(s: String) -> Result<WireTopic, String> {
        topic_of(&format!("{EVENTS}.{s}")).map(WireTopic).ok_or_else(|| format!("not a topic: {s}"))
    }
}

/// Externally tagged (`{"join": {...}}`): an internally tagged enum buffers its fields, which a
/// raw JSON value (an event's data) cannot be read back from.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireNotice {
    Revoked { user: Id, login: String },
    Ejected { guild: Id, user: Option<Id>, channel: Option<Id> },
    Join { user: Id, topic: WireTopic, first: Option<(String, Box<RawValue>)> },
    Leave { user: Id, topic: WireTopic },
    ForgetChannel { channel: Id },
    ForgetMember { guild: Id, user: Id },
    ForgetGuild { guild: Id },
    Presence { user: Id, status: Option<Status> },
    Moved { session: String },
    Resync,
}

#[derive(Serialize, Deserialize)]
struct NoticeEnvelope {
    o: String,
    n: WireNotice,
}

pub fn notice_payload(origin: &str, n: &Notice) -> Vec<u8> {
    let n = match n {
        Notice::Revoked(r) => WireNotice::Revoked { user: r.user, login: r.login.clone() },
        Notice::Ejected(e) => WireNotice::Ejected { guild: e.guild, user: e.user, channel: e.channel },
        Notice::Join { user, topic, first } => WireNotice::Join {
            user: *user,
            topic: WireTopic(*topic),
            first: first.as_ref().map(|e| (e.name.to_string(), e.data.clone())),
        },
        Notice::Leave { user, topic } => WireNotice::Leave { user: *user, topic: WireTopic(*topic) },
        Notice::Forget(Forget::Channel(c)) => WireNotice::ForgetChannel { channel: *c },
        Notice::Forget(Forget::Member(g, u)) => WireNotice::ForgetMember { guild: *g, user: *u },
        Notice::Forget(Forget::Guild(g)) => WireNotice::ForgetGuild { guild: *g },
        Notice::Presence { user, status } => WireNotice::Presence { user: *user, status: *status },
        Notice::Moved { session } => WireNotice::Moved { session: session.clone() },
        Notice::Resync => WireNotice::Resync,
    };
    serde_json::to_vec(&NoticeEnvelope { o: origin.to_string(), n }).unwrap_or_default()
}

/// A notice read back, with its origin node.
pub fn read_notice(payload: &[u8]) -> Option<(String, Notice)> {
    let env: NoticeEnvelope = serde_json::from_slice(payload).ok()?;
    let n = match env.n {
        WireNotice::Revoked { user, login } => Notice::Revoked(Revoked { user, login }),
        WireNotice::Ejected { guild, user, channel } => Notice::Ejected(Ejection { guild, user, channel }),
        WireNotice::Join { user, topic, first } => {
            let first = match first {
                Some((name, data)) => Some(Event::from_wire(&name, data)?),
                None => None,
            };
            Notice::Join { user, topic: topic.0, first }
        }
        WireNotice::Leave { user, topic } => Notice::Leave { user, topic: topic.0 },
        WireNotice::ForgetChannel { channel } => Notice::Forget(Forget::Channel(channel)),
        WireNotice::ForgetMember { guild, user } => Notice::Forget(Forget::Member(guild, user)),
        WireNotice::ForgetGuild { guild } => Notice::Forget(Forget::Guild(guild)),
        WireNotice::Presence { user, status } => Notice::Presence { user, status },
        WireNotice::Moved { session } => Notice::Moved { session },
        WireNotice::Resync => Notice::Resync,
    };
    Some((env.o, n))
}

/// A message of the events stream, as a session rebuild reads it (origins do not matter there).
pub fn read_item(subject: &str, payload: &[u8]) -> Option<chat::gateway::journal::Item> {
    use chat::gateway::journal::Item;
    match topic_of(subject) {
        Some(topic) => read_event(payload).map(|(_, ev)| Item::Event(topic, ev)),
        None if subject == NOTICES => read_notice(payload).map(|(_, n)| Item::Notice(n)),
        None => None,
    }
}

#[derive(Serialize, Deserialize)]
pub struct RosterMsg {
    pub o: String,
    pub users: Vec<(Id, Status)>,
}

pub fn heartbeat_payload(info: &NodeInfo) -> Vec<u8> {
    serde_json::to_vec(info).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_notices_round_trip() {
        for t in [Topic::Guild(Id(5)), Topic::User(Id(6)), Topic::Presence(Id(7))] {
            assert_eq!(topic_of(&subject(t)), Some(t));
        }
        assert_eq!(topic_of("confab.ev.x.1"), None);
        assert_eq!(topic_of("confab.ev.g.nope"), None);
        let ev = Event::new("GUILD_CREATE", &serde_json::json!({ "id": "5" }));
        let (o, back) = read_event(&event_payload("a", &ev)).unwrap();
        assert_eq!((o.as_str(), back.name, back.data.get()), ("a", "GUILD_CREATE", ev.data.get()));
        let n = Notice::Join { user: Id(3), topic: Topic::Presence(Id(9)), first: Some(ev) };
        let (o, back) = read_notice(&notice_payload("b", &n)).unwrap();
        assert_eq!(o, "b");
        let Notice::Join { user, topic, first } = back else { panic!("{back:?}") };
        assert_eq!((user, topic, first.unwrap().name), (Id(3), Topic::Presence(Id(9)), "GUILD_CREATE"));
        let n = Notice::Revoked(Revoked { user: Id(1), login: "h".into() });
        assert!(matches!(read_notice(&notice_payload("c", &n)), Some((_, Notice::Revoked(r))) if r.login == "h"));
        assert!(matches!(read_notice(&notice_payload("d", &Notice::Resync)), Some((_, Notice::Resync))));
        assert!(read_notice(b"{\"o\":\"x\",\"n\":{\"unknown\":{}}}").is_none());
        assert!(read_event(b"not json").is_none());
    }
}

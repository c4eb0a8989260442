//! Room events for observers inside the process (the C ABI's callback, embedders, metrics), as
//! opposed to the frames participants receive. [`crate::rooms::Rooms`] emits them as
//! [`crate::rooms::Out::Event`]; [`crate::Voice::subscribe`] hands them out.

use serde::Serialize;

/// Something happened in a room. Serialises as `{"type": "participant_join", "room_id": …}`, ids as
/// strings like the rest of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum VoiceEvent {
    ParticipantJoin {
        room_id: String,
        user_id: String,
        username: String,
    },
    /// Left, was removed (media gone, room closed), or its resume window ran out.
    ParticipantLeave {
        room_id: String,
        user_id: String,
    },
    Speaking {
        room_id: String,
        user_id: String,
        speaking: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RoomMode;
    use crate::rooms::{Out, Rooms, SlotCounts, room_id};

    const SLOTS: SlotCounts = SlotCounts { audio: 5, video: 16, share: 2, share_max_bitrate: 2_500_000 };
    use chat::auth::VoiceGrant;
    use chat::id::Id;

    fn grant(user: i64, room: i64) -> VoiceGrant {
        VoiceGrant {
            user: Id(user),
            username: format!("u{user}"),
            guild: Id(1),
            room: Id(room),
            moderator: false,
            mode: Default::default(),
            expires_at: i64::MAX,
            login: None,
        }
    }

    fn events(out: &[Out]) -> Vec<&VoiceEvent> {
        out.iter().filter_map(|o| if let Out::Event(e) = o { Some(e) } else { None }).collect()
    }

    #[test]
    fn wire_format() {
        let e = VoiceEvent::Speaking { room_id: "9".into(), user_id: "1".into(), speaking: true };
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(s, r#"{"type":"speaking","room_id":"9","user_id":"1","speaking":true}"#);
    }

    #[test]
    fn join_speaking_leave_are_emitted_once() {
        let mut r = Rooms::default();
        let (a, out) = r.join(&grant(1, 9), "s1".into(), RoomMode::Hybrid, SLOTS).unwrap();
        let join = VoiceEvent::ParticipantJoin { room_id: "9".into(), user_id: "1".into(), username: "u1".into() };
        assert_eq!(events(&out), [&join]);
        let out = r.speaking(a, true);
        assert_eq!(events(&out), [&VoiceEvent::Speaking { room_id: "9".into(), user_id: "1".into(), speaking: true }]);
        assert!(events(&r.speaking(a, true)).is_empty(), "no change, no event");
        let out = r.leave(a);
        assert_eq!(events(&out), [&VoiceEvent::ParticipantLeave { room_id: "9".into(), user_id: "1".into() }]);
        assert!(r.leave(a).is_empty());
    }

    #[test]
    fn participants_and_close_room() {
        let mut r = Rooms::default();
        let (a, _) = r.join(&grant(1, 9), "s1".into(), RoomMode::Hybrid, SLOTS).unwrap();
        let (b, _) = r.join(&grant(2, 9), "s2".into(), RoomMode::Hybrid, SLOTS).unwrap();
        let (c, _) = r.join(&grant(3, 10), "s3".into(), RoomMode::Hybrid, SLOTS).unwrap();
        let names: Vec<_> = r.participants(room_id(Id(9))).into_iter().map(|p| p.username).collect();
        assert_eq!(names, ["u1", "u2"], "join order, this room only");

        let out = r.close_room(room_id(Id(9)));
        for p in [a, b] {
            assert!(out.contains(&Out::Close(p, crate::protocol::close::DISCONNECTED)));
            assert!(out.contains(&Out::RemovePeer(p)));
        }
        assert!(!out.contains(&Out::RemovePeer(c)), "other rooms are untouched");
        assert_eq!(events(&out).len(), 2, "a leave event per participant");
        assert!(r.participants(room_id(Id(9))).is_empty());
        assert!(r.is_closed(room_id(Id(9))) && !r.is_closed(room_id(Id(10))));
        assert_eq!(
            r.join(&grant(4, 9), "s4".into(), RoomMode::Hybrid, SLOTS).unwrap_err(),
            crate::rooms::JoinError::RoomClosed
        );
        assert!(r.is_member(c));
    }
}

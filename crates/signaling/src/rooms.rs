//! Voice rooms as the gateway sees them: participants, mute and speaking state, receive-slot
//! assignments, and resumable sessions. Sans-IO: every change returns the [`Out`]puts the driver
//! must carry out (frames to sockets, media-engine commands, voice states for the chat plane).

use crate::events::VoiceEvent;
use crate::protocol::{ErrorCode, Participant as WireParticipant, RoomMode, ServerMsg, Slot, SlotKind, close};
use chat::auth::VoiceGrant;
use chat::id::Id;
use chat::voice::VoiceState;
use sfu::{PeerId, RoomId, SlotInfo};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Member {
    user: Id,
    username: String,
    guild: Id,
    room: Id,
    moderator: bool,
    self_mute: bool,
    server_mute: bool,
    self_deaf: bool,
    /// Sharing a screen now (its offer had a share m-line and it said `share {on: true}`).
    sharing: bool,
    speaking: bool,
    /// Offered a camera m-line (known once negotiated).
    has_camera: bool,
    camera_on: bool,
    session_id: String,
    /// The login (hash of the chat bearer token) the voice token was minted for.
    login: Option<String>,
    negotiated: bool,
    slots: Vec<Slot>,
    detached_at: Option<Instant>,
}

impl Member {
    fn wire(&self) -> WireParticipant {
        WireParticipant {
            user_id: self.user.to_string(),
            username: self.username.clone(),
            self_mute: self.self_mute,
            server_mute: self.server_mute,
            self_deaf: self.self_deaf,
            share: self.sharing,
            speaking: self.speaking,
            camera: self.has_camera && self.camera_on,
        }
    }

    fn voice_state(&self, present: bool) -> VoiceState {
        VoiceState {
            guild_id: self.guild,
            channel_id: present.then_some(self.room),
            user_id: self.user,
            self_mute: self.self_mute,
            server_mute: self.server_mute,
            self_deaf: self.self_deaf,
        }
    }
}

/// What the driver must do.
#[derive(Debug, PartialEq)]
pub enum Out {
    Send(PeerId, ServerMsg),
    /// Close the participant's socket with a close code.
    Close(PeerId, u16),
    /// Remove the peer from the media engine.
    RemovePeer(PeerId),
    /// Set the media engine's forwarding mute for the peer.
    Mute(PeerId, bool),
    /// Deafen or undeafen the peer in the media engine (it is sent no audio).
    Deaf(PeerId, bool),
    /// Start or stop forwarding the peer's screen share.
    Share(PeerId, bool),
    /// Turn the peer's camera on or off in the media engine.
    Camera(PeerId, bool),
    /// Report a voice state to the chat plane.
    Voice(VoiceState),
    /// Tell in-process observers.
    Event(VoiceEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// The room was closed by [`Rooms::close_room`].
    RoomClosed,
}

/// Receive m-lines clients are told to offer (see [`crate::protocol`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCounts {
    pub audio: usize,
    /// Camera slots of `sfu` rooms; `hybrid` and `mcu` rooms have one, for the composite.
    pub video: usize,
    /// Screen-share slots, in every mode.
    pub share: usize,
    /// The bitrate a screen share is capped at (bits/s), told with the slots.
    pub share_max_bitrate: u32,
}

impl SlotCounts {
    /// What a room of `mode` asks for: a mixed room has one audio slot (the mix), a composited
    /// one one video slot (the composite).
    pub fn for_mode(self, mode: RoomMode) -> SlotCounts {
        match mode {
            RoomMode::Hybrid => SlotCounts { video: 1, ..self },
            RoomMode::Sfu => self,
            RoomMode::Mcu => SlotCounts { audio: 1, video: 1, ..self },
        }
    }
}

#[derive(Debug)]
struct Room {
    /// Fixed by the first join: later joiners get the room as it runs.
    mode: RoomMode,
    /// Join order.
    members: Vec<PeerId>,
}

#[derive(Debug, Default)]
pub struct Rooms {
    members: HashMap<PeerId, Member>,
    rooms: HashMap<RoomId, Room>,
    sessions: HashMap<String, PeerId>,
    /// Rooms closed for good. Only an operator's call adds one (ids are never reused), so it grows
    /// with operator actions, not with network input.
    closed: HashSet<RoomId>,
    next_peer: PeerId,
}

impl Rooms {
    /// Participants and rooms, for the node's load.
    pub fn counts(&self) -> (usize, usize) {
        (self.members.len(), self.rooms.len())
    }

    /// The rooms with participants (a cluster renews their placement).
    pub fn room_ids(&self) -> Vec<Id> {
        self.rooms.iter().filter(|(_, r)| !r.members.is_empty()).map(|(id, _)| Id(*id as i64)).collect()
    }
}

pub fn room_id(room: Id) -> RoomId {
    room.0 as RoomId
}

impl Rooms {
    /// Adds the grant's user to its room (opened in `mode` if it is new). Returns the new peer id
    /// and READY for it; the room hears of the join. A user already in the room (another tab, a
    /// reloaded page, a client retrying) is replaced at once: the old session is closed with
    /// [`close::REPLACED`] and leaves, as Discord moves a user who joins from another device.
    pub fn join(
        &mut self,
        grant: &VoiceGrant,
        session_id: String,
        mode: RoomMode,
        slots: SlotCounts,
    ) -> Result<(PeerId, Vec<Out>), JoinError> {
        let room = room_id(grant.room);
        if self.closed.contains(&room) {
            return Err(JoinError::RoomClosed);
        }
        let old: Vec<PeerId> = self.room_members(room).filter(|(_, m)| m.user == grant.user).map(|(p, _)| p).collect();
        let mut out = Vec::new();
        for peer in old {
            out.push(Out::Close(peer, close::REPLACED));
            out.extend(self.leave(peer));
        }
        self.next_peer += 1;
        let peer = self.next_peer;
        let m = Member {
            user: grant.user,
            username: grant.username.clone(),
            guild: grant.guild,
            room: grant.room,
            moderator: grant.moderator,
            self_mute: false,
            server_mute: false,
            self_deaf: false,
            sharing: false,
            speaking: false,
            has_camera: false,
            camera_on: true,
            session_id: session_id.clone(),
            login: grant.login.clone(),
            negotiated: false,
            slots: Vec::new(),
            detached_at: None,
        };
        out.extend(self.broadcast(room, None, ServerMsg::ParticipantJoin { participant: m.wire() }));
        out.push(Out::Voice(m.voice_state(true)));
        out.push(Out::Event(VoiceEvent::ParticipantJoin {
            room_id: m.room.to_string(),
            user_id: m.user.to_string(),
            username: m.username.clone(),
        }));
        self.members.insert(peer, m);
        self.rooms.entry(room).or_insert_with(|| Room { mode, members: Vec::new() }).members.push(peer);
        self.sessions.insert(session_id, peer);
        out.push(Out::Send(peer, self.ready(peer, slots)));
        Ok((peer, out))
    }

    fn ready(&self, peer: PeerId, slots: SlotCounts) -> ServerMsg {
        let m = &self.members[&peer];
        let room = room_id(m.room);
        let participants = self.room_members(room).map(|(_, o)| o.wire()).collect();
        let mode = self.mode(room);
        let slots = slots.for_mode(mode);
        ServerMsg::Ready {
            session_id: m.session_id.clone(),
            user_id: m.user.to_string(),
            room_id: m.room.to_string(),
            mode,
            audio_slots: slots.audio,
            video_slots: slots.video,
            share_slots: slots.share,
            share_max_bitrate: slots.share_max_bitrate,
            participants,
            // Filled in by the gateway as it sends READY: credentials need the wall clock.
            ice_servers: Vec::new(),
        }
    }

    /// The mode `room` runs in (the default for a room nobody is in).
    pub fn mode(&self, room: RoomId) -> RoomMode {
        self.rooms.get(&room).map(|r| r.mode).unwrap_or_default()
    }

    /// The room, mode and username of a participant: what the media engine needs to add it.
    pub fn media_info(&self, peer: PeerId) -> Option<(RoomId, RoomMode, String)> {
        let m = self.members.get(&peer)?;
        let room = room_id(m.room);
        Some((room, self.mode(room), m.username.clone()))
    }

    /// Reattaches a session after a dropped socket: RESUMED, a fresh READY and the current slots.
    pub fn resume(&mut self, session_id: &str, user: Id, slots: SlotCounts) -> Option<(PeerId, Vec<Out>)> {
        let peer = *self.sessions.get(session_id)?;
        let m = self.members.get_mut(&peer).filter(|m| m.user == user)?;
        m.detached_at = None;
        let current = m.slots.clone();
        let mut out = vec![Out::Send(peer, ServerMsg::Resumed {}), Out::Send(peer, self.ready(peer, slots))];
        if !current.is_empty() {
            out.push(Out::Send(peer, ServerMsg::Slots { slots: current }));
        }
        Some((peer, out))
    }

    /// The participant's socket is gone; it stays (media flowing) for the resume window. One that
    /// never made its offer has no media to keep: it leaves at once, so the room shows no ghost.
    pub fn detach(&mut self, peer: PeerId, now: Instant) -> Vec<Out> {
        match self.members.get_mut(&peer) {
            Some(m) if m.negotiated => {
                m.detached_at = Some(now);
                Vec::new()
            }
            Some(_) => self.leave(peer),
            None => Vec::new(),
        }
    }

    /// Ends every session joined with `login` (logged out, password changed, expired): closed with
    /// [`close::AUTHENTICATION_FAILED`], not resumable.
    pub fn revoke(&mut self, login: &str) -> Vec<Out> {
        let peers: Vec<PeerId> =
            self.members.iter().filter(|(_, m)| m.login.as_deref() == Some(login)).map(|(p, _)| *p).collect();
        let mut out = Vec::new();
        for peer in peers {
            out.push(Out::Close(peer, close::AUTHENTICATION_FAILED));
            out.extend(self.leave(peer));
        }
        out
    }

    /// Ends the sessions the chat plane removed (kicked, banned, channel or guild deleted): 4014.
    pub fn eject(&mut self, e: &chat::app::Ejection) -> Vec<Out> {
        let peers: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.guild == e.guild && e.user.is_none_or(|u| u == m.user) && e.channel.is_none_or(|c| c == m.room)
            })
            .map(|(p, _)| *p)
            .collect();
        let mut out = Vec::new();
        for peer in peers {
            out.push(Out::Close(peer, close::DISCONNECTED));
            out.extend(self.leave(peer));
        }
        out
    }

    /// (guild, user) of everyone in a room, for re-checking after missed ejections.
    pub fn present(&self) -> Vec<(Id, Id)> {
        let mut all: Vec<(Id, Id)> = self.members.values().map(|m| (m.guild, m.user)).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The logins of everyone in a room, for re-checking after missed revocations.
    pub fn logins(&self) -> Vec<String> {
        let mut all: Vec<String> = self.members.values().filter_map(|m| m.login.clone()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Ends participants detached for longer than `window`.
    pub fn expire(&mut self, now: Instant, window: Duration) -> Vec<Out> {
        let due: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(_, m)| m.detached_at.is_some_and(|t| now.saturating_duration_since(t) >= window))
            .map(|(p, _)| *p)
            .collect();
        due.into_iter().flat_map(|p| self.leave(p)).collect()
    }

    /// Removes the participant; the room hears of it, the media engine frees it.
    pub fn leave(&mut self, peer: PeerId) -> Vec<Out> {
        let Some(m) = self.members.remove(&peer) else { return Vec::new() };
        let room = room_id(m.room);
        self.sessions.remove(&m.session_id);
        if let Some(r) = self.rooms.get_mut(&room) {
            r.members.retain(|p| *p != peer);
            if r.members.is_empty() {
                self.rooms.remove(&room);
            }
        }
        let mut out = vec![Out::RemovePeer(peer), Out::Voice(m.voice_state(false))];
        out.extend(self.broadcast(room, None, ServerMsg::ParticipantLeave { user_id: m.user.to_string() }));
        out.push(Out::Event(VoiceEvent::ParticipantLeave { room_id: m.room.to_string(), user_id: m.user.to_string() }));
        out
    }

    /// Removes everyone from the room (their sockets close with 4014) and refuses joins from now on.
    pub fn close_room(&mut self, room: RoomId) -> Vec<Out> {
        self.closed.insert(room);
        let peers: Vec<PeerId> = self.room_members(room).map(|(p, _)| p).collect();
        let mut out = Vec::new();
        for peer in peers {
            out.push(Out::Close(peer, close::DISCONNECTED));
            out.extend(self.leave(peer));
        }
        out
    }

    pub fn is_closed(&self, room: RoomId) -> bool {
        self.closed.contains(&room)
    }

    /// The room's participants in join order.
    pub fn participants(&self, room: RoomId) -> Vec<WireParticipant> {
        self.room_members(room).map(|(_, m)| m.wire()).collect()
    }

    /// Marks the peer's one SDP exchange as done; `false` if it already happened.
    pub fn negotiate(&mut self, peer: PeerId) -> bool {
        self.members.get_mut(&peer).is_some_and(|m| !std::mem::replace(&mut m.negotiated, true))
    }

    /// The media engine accepted the offer; `camera`: it had a camera m-line. Returns the engine
    /// commands that apply the participant's state so far, and tells the room about the camera.
    pub fn negotiated(&mut self, peer: PeerId, camera: bool) -> Vec<Out> {
        let mut out = self.current_mute(peer);
        if camera {
            let on = self.members.get(&peer).is_some_and(|m| m.camera_on);
            out.extend(self.update(peer, |m| m.has_camera = true));
            if !on {
                out.push(Out::Camera(peer, false));
            }
        }
        out
    }

    /// Camera on or off (ignored until the offer had a camera, but remembered).
    pub fn set_camera(&mut self, peer: PeerId, on: bool) -> Vec<Out> {
        let has_camera = self.members.get(&peer).is_some_and(|m| m.has_camera);
        let mut out = self.update(peer, |m| m.camera_on = on);
        if has_camera && !out.is_empty() {
            out.insert(0, Out::Camera(peer, on));
        }
        out
    }

    /// Screen share on or off: the engine forwards it (or stops), the room sees who shares.
    pub fn set_share(&mut self, peer: PeerId, on: bool) -> Vec<Out> {
        let mut out = self.update(peer, |m| m.sharing = on);
        if !out.is_empty() {
            out.insert(0, Out::Share(peer, on));
        }
        out
    }

    /// The room's video ended (its compositor failed): everyone is told.
    pub fn video_ended(&mut self, room: RoomId, message: String) -> Vec<Out> {
        self.broadcast(room, None, ServerMsg::VideoEnded { message })
    }

    /// Undoes [`Rooms::negotiate`] after a refused offer, so the client may offer again.
    pub fn negotiation_failed(&mut self, peer: PeerId) -> Vec<Out> {
        if let Some(m) = self.members.get_mut(&peer) {
            m.negotiated = false;
        }
        Vec::new()
    }

    /// The engine commands that apply the peer's current mute and deafen (after its media peer
    /// exists).
    pub fn current_mute(&self, peer: PeerId) -> Vec<Out> {
        self.members
            .get(&peer)
            .map(|m| {
                let mut out = vec![Out::Mute(peer, m.self_mute || m.server_mute), Out::Deaf(peer, m.self_deaf)];
                if m.sharing {
                    out.push(Out::Share(peer, true));
                }
                out
            })
            .unwrap_or_default()
    }

    /// Self-mute and self-deafen (deafened implies muted, as in Discord).
    pub fn set_self_mute(&mut self, peer: PeerId, mute: bool, deaf: bool) -> Vec<Out> {
        self.update(peer, |m| (m.self_mute, m.self_deaf) = (mute || deaf, deaf))
    }

    /// Server-mutes `target` in `by`'s room; only moderators may.
    pub fn set_server_mute(&mut self, by: PeerId, target: &str, mute: bool) -> Result<Vec<Out>, ErrorCode> {
        let m = self.members.get(&by).ok_or(ErrorCode::UnknownParticipant)?;
        if !m.moderator {
            return Err(ErrorCode::Forbidden);
        }
        let room = room_id(m.room);
        let peer = self
            .room_members(room)
            .find(|(_, o)| o.user.to_string() == target)
            .map(|(p, _)| p)
            .ok_or(ErrorCode::UnknownParticipant)?;
        Ok(self.update(peer, |m| m.server_mute = mute))
    }

    /// Applies `f`; if the mutes changed, the engine and the chat plane hear of it; if anything
    /// participants see changed, the room does.
    fn update(&mut self, peer: PeerId, f: impl FnOnce(&mut Member)) -> Vec<Out> {
        let Some(m) = self.members.get_mut(&peer) else { return Vec::new() };
        let (mutes, deaf, wire) = ((m.self_mute, m.server_mute), m.self_deaf, m.wire());
        f(m);
        let mut out = Vec::new();
        if mutes != (m.self_mute, m.server_mute) {
            out.push(Out::Mute(peer, m.self_mute || m.server_mute));
        }
        if deaf != m.self_deaf {
            out.push(Out::Deaf(peer, m.self_deaf));
        }
        if mutes != (m.self_mute, m.server_mute) || deaf != m.self_deaf {
            out.push(Out::Voice(m.voice_state(true)));
        }
        let (now, room) = (m.wire(), room_id(m.room));
        if now != wire {
            out.extend(self.broadcast(room, None, ServerMsg::ParticipantUpdate { participant: now }));
        }
        out
    }

    pub fn speaking(&mut self, peer: PeerId, speaking: bool) -> Vec<Out> {
        let Some(m) = self.members.get_mut(&peer) else { return Vec::new() };
        if m.speaking == speaking {
            return Vec::new();
        }
        m.speaking = speaking;
        let (user, room_str, room) = (m.user.to_string(), m.room.to_string(), room_id(m.room));
        let mut out = self.broadcast(room, None, ServerMsg::Speaking { user_id: user.clone(), speaking });
        out.push(Out::Event(VoiceEvent::Speaking { room_id: room_str, user_id: user, speaking }));
        out
    }

    pub fn dominant(&mut self, room: RoomId, peer: Option<PeerId>) -> Vec<Out> {
        let user_id = peer.and_then(|p| self.members.get(&p)).map(|m| m.user.to_string());
        self.broadcast(room, None, ServerMsg::DominantSpeaker { user_id })
    }

    /// The engine's slot assignment for listener `peer`, translated to user ids.
    pub fn slots(&mut self, peer: PeerId, slots: Vec<SlotInfo>) -> Vec<Out> {
        let slots: Vec<Slot> = slots
            .into_iter()
            .map(|s| Slot {
                mid: s.mid,
                user_id: s.source.and_then(|s| self.members.get(&s)).map(|m| m.user.to_string()),
                kind: match (s.video, s.share) {
                    (_, true) => SlotKind::Share,
                    (true, false) => SlotKind::Video,
                    (false, false) => SlotKind::Audio,
                },
            })
            .collect();
        let Some(m) = self.members.get_mut(&peer) else { return Vec::new() };
        m.slots = slots.clone();
        vec![Out::Send(peer, ServerMsg::Slots { slots })]
    }

    pub fn is_member(&self, peer: PeerId) -> bool {
        self.members.contains_key(&peer)
    }

    fn room_members(&self, room: RoomId) -> impl Iterator<Item = (PeerId, &Member)> {
        self.rooms.get(&room).into_iter().flat_map(|r| &r.members).filter_map(|p| self.members.get(p).map(|m| (*p, m)))
    }

    fn broadcast(&self, room: RoomId, except: Option<PeerId>, msg: ServerMsg) -> Vec<Out> {
        self.room_members(room).filter(|(p, _)| Some(*p) != except).map(|(p, _)| Out::Send(p, msg.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RoomMode;

    const SLOTS: SlotCounts = SlotCounts { audio: 5, video: 16, share: 2, share_max_bitrate: 2_500_000 };

    fn grant(user: i64, moderator: bool) -> VoiceGrant {
        VoiceGrant {
            user: Id(user),
            username: format!("u{user}"),
            guild: Id(1),
            room: Id(9),
            moderator,
            mode: Default::default(),
            expires_at: i64::MAX,
            login: Some(format!("login{user}")),
        }
    }

    fn sent_to(out: &[Out], peer: PeerId) -> Vec<&ServerMsg> {
        out.iter().filter_map(|o| if let Out::Send(p, m) = o { (*p == peer).then_some(m) } else { None }).collect()
    }

    #[test]
    fn join_announces_and_a_second_join_replaces_the_first() {
        let mut r = Rooms::default();
        let (a, out) = r.join(&grant(1, true), "s1".into(), RoomMode::Hybrid, SLOTS).unwrap();
        assert!(
            matches!(sent_to(&out, a)[..], [ServerMsg::Ready { participants, audio_slots: 5, .. }] if participants.len() == 1)
        );
        let (b, out) = r.join(&grant(2, false), "s2".into(), RoomMode::Hybrid, SLOTS).unwrap();
        assert!(matches!(sent_to(&out, a)[..], [ServerMsg::ParticipantJoin { .. }]));
        assert!(out.contains(&Out::Voice(VoiceState {
            guild_id: Id(1),
            channel_id: Some(Id(9)),
            user_id: Id(2),
            self_mute: false,
            server_mute: false,
            self_deaf: false
        })));
        // The same user again (a reloaded tab): the old session is closed and leaves, at once.
        let (b2, out) = r.join(&grant(2, false), "s3".into(), RoomMode::Hybrid, SLOTS).unwrap();
        assert!(out.contains(&Out::Close(b, close::REPLACED)) && out.contains(&Out::RemovePeer(b)), "{out:?}");
        assert!(matches!(
            sent_to(&out, a)[..],
            [ServerMsg::ParticipantLeave { .. }, ServerMsg::ParticipantJoin { .. }]
        ));
        assert!(matches!(sent_to(&out, b2)[..], [ServerMsg::Ready { participants, .. }] if participants.len() == 2));
        assert!(r.resume("s2", Id(2), SLOTS).is_none(), "the replaced session is gone");
        let b = b2;
        let out = r.leave(b);
        assert!(out.contains(&Out::RemovePeer(b)));
        assert!(matches!(sent_to(&out, a)[..], [ServerMsg::ParticipantLeave { .. }]));
        assert!(r.join(&grant(2, false), "s4".into(), RoomMode::Hybrid, SLOTS).is_ok(), "may rejoin after leaving");
    }

    #[test]
    fn mutes_negotiation_and_moderation() {
        let mut r = Rooms::default();
        let (a, _) = r.join(&grant(1, true), "s1".into(), RoomMode::Hybrid, SLOTS).unwrap();
        let (b, _) = r.join(&grant(2, false), "s2".into(), RoomMode::Hybrid, SLOTS).unwrap();
        let out = r.set_self_mute(b, true, false);
        assert!(out.contains(&Out::Mute(b, true)));
        assert!(r.set_self_mute(b, true, false).is_empty(), "no change, no noise");
        // Deafened: the engine stops sending it audio, everyone sees it, and it is muted too.
        let out = r.set_self_mute(b, false, true);
        assert!(out.contains(&Out::Deaf(b, true)), "{out:?}");
        assert!(out.iter().any(|o| matches!(o, Out::Voice(v) if v.self_deaf && v.self_mute)));
        assert!(sent_to(&out, a).iter().any(|m| matches!(m, ServerMsg::ParticipantUpdate { participant } if participant.self_deaf && participant.self_mute)));
        assert_eq!(
            r.current_mute(b),
            vec![Out::Mute(b, true), Out::Deaf(b, true)],
            "applied again after renegotiation"
        );
        let out = r.set_self_mute(b, true, false);
        assert!(out.contains(&Out::Deaf(b, false)) && !out.iter().any(|o| matches!(o, Out::Mute(..))));
        assert_eq!(r.set_server_mute(b, "1", true).unwrap_err(), ErrorCode::Forbidden);
        assert_eq!(r.set_server_mute(a, "42", true).unwrap_err(), ErrorCode::UnknownParticipant);
        let out = r.set_server_mute(a, "2", true).unwrap();
        assert!(out.iter().any(|o| matches!(o, Out::Voice(v) if v.server_mute)));
        let out = r.set_self_mute(b, false, false);
        assert!(out.contains(&Out::Mute(b, true)), "still server-muted");
        assert!(r.negotiate(a) && !r.negotiate(a));
        r.negotiation_failed(a);
        assert!(r.negotiate(a));
    }

    #[test]
    fn resume_within_window_and_expiry() {
        let mut r = Rooms::default();
        let t = Instant::now();
        let (a, _) = r.join(&grant(1, false), "s1".into(), RoomMode::Hybrid, SLOTS).unwrap();
        assert!(r.negotiate(a));
        r.slots(a, vec![SlotInfo { mid: "1".into(), source: None, video: false, share: false }]);
        assert!(r.detach(a, t).is_empty(), "media flows on while the socket is away");
        assert!(r.resume("s1", Id(2), SLOTS).is_none(), "another user's session");
        let (p, out) = r.resume("s1", Id(1), SLOTS).unwrap();
        assert_eq!(p, a);
        assert!(matches!(
            sent_to(&out, a)[..],
            [ServerMsg::Resumed {}, ServerMsg::Ready { .. }, ServerMsg::Slots { .. }]
        ));
        r.detach(a, t);
        assert!(r.expire(t + Duration::from_secs(5), Duration::from_secs(10)).is_empty());
        let out = r.expire(t + Duration::from_secs(10), Duration::from_secs(10));
        assert!(out.contains(&Out::RemovePeer(a)));
        assert!(r.resume("s1", Id(1), SLOTS).is_none());
    }

    #[test]
    fn a_socket_that_never_offered_leaves_when_it_drops() {
        let mut r = Rooms::default();
        let (a, _) = r.join(&grant(1, false), "s1".into(), RoomMode::Hybrid, SLOTS).unwrap();
        let (b, _) = r.join(&grant(2, false), "s2".into(), RoomMode::Hybrid, SLOTS).unwrap();
        let out = r.detach(b, Instant::now());
        assert!(out.contains(&Out::RemovePeer(b)));
        assert!(matches!(sent_to(&out, a)[..], [ServerMsg::ParticipantLeave { .. }]));
        assert_eq!(r.participants(room_id(Id(9))).len(), 1);
    }

    #[test]
    fn revoking_a_login_ends_its_sessions() {
        let mut r = Rooms::default();
        let (a, _) = r.join(&grant(1, false), "s1".into(), RoomMode::Hybrid, SLOTS).unwrap();
        let (b, _) = r.join(&grant(2, false), "s2".into(), RoomMode::Hybrid, SLOTS).unwrap();
        assert_eq!(r.logins(), vec!["login1".to_string(), "login2".to_string()]);
        assert!(r.revoke("nobody").is_empty());
        let out = r.revoke("login2");
        assert!(out.contains(&Out::Close(b, close::AUTHENTICATION_FAILED)) && out.contains(&Out::RemovePeer(b)));
        assert!(matches!(sent_to(&out, a)[..], [ServerMsg::ParticipantLeave { .. }]));
        assert!(r.resume("s2", Id(2), SLOTS).is_none());
    }

    #[test]
    fn the_first_join_fixes_the_mode_and_slots_follow_it() {
        let mut r = Rooms::default();
        let (a, out) = r.join(&grant(1, false), "s1".into(), RoomMode::Mcu, SLOTS).unwrap();
        assert!(matches!(
            sent_to(&out, a)[..],
            [ServerMsg::Ready { mode: RoomMode::Mcu, audio_slots: 1, video_slots: 1, .. }]
        ));
        let (b, out) = r.join(&grant(2, false), "s2".into(), RoomMode::Sfu, SLOTS).unwrap();
        assert!(matches!(sent_to(&out, b)[..], [ServerMsg::Ready { mode: RoomMode::Mcu, .. }]), "the room's mode wins");
        assert_eq!(r.media_info(b), Some((room_id(Id(9)), RoomMode::Mcu, "u2".into())));
        r.leave(a);
        r.leave(b);
        let (c, out) = r.join(&grant(3, false), "s3".into(), RoomMode::Sfu, SLOTS).unwrap();
        assert!(matches!(
            sent_to(&out, c)[..],
            [ServerMsg::Ready { mode: RoomMode::Sfu, audio_slots: 5, video_slots: 16, .. }]
        ));
    }

    #[test]
    fn camera_state_reaches_the_engine_and_the_room() {
        let mut r = Rooms::default();
        let (a, _) = r.join(&grant(1, false), "s1".into(), RoomMode::Hybrid, SLOTS).unwrap();
        let (b, _) = r.join(&grant(2, false), "s2".into(), RoomMode::Hybrid, SLOTS).unwrap();
        // Before the offer there is no camera to switch: remembered, nothing sent.
        assert!(r.set_camera(b, false).is_empty());
        let out = r.negotiated(b, true);
        assert!(out.contains(&Out::Camera(b, false)), "the remembered state applies: {out:?}");
        assert!(sent_to(&out, a).is_empty(), "still no camera to show");
        let out = r.set_camera(b, true);
        assert_eq!(out[0], Out::Camera(b, true));
        assert!(matches!(sent_to(&out, a)[..], [ServerMsg::ParticipantUpdate { participant }] if participant.camera));
        assert!(r.set_camera(b, true).is_empty(), "no change, no noise");
        let out = r.negotiated(a, false);
        assert_eq!(out, vec![Out::Mute(a, false), Out::Deaf(a, false)]);
        let out = r.video_ended(room_id(Id(9)), "boom".into());
        assert!(matches!(sent_to(&out, a)[..], [ServerMsg::VideoEnded { .. }]));
        assert_eq!(out.len(), 2);
    }
}

//! The voice gateway's shared state: the room registry, the sockets of participants, the media
//! engine handle, and the chat plane it reports voice states to. Tokio tasks here only carry out
//! what [`Rooms`] decides.

use crate::events::VoiceEvent;
use crate::protocol::{Participant, RoomMode};
use crate::rooms::{Out, Rooms, SlotCounts, room_id};
use chat::app::App;
use chat::id::Id;
use serde::{Deserialize, Serialize};
use sfu::{PeerId, Sfu, SfuEvent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};

/// Room events kept for a slow subscriber before it starts missing some (it is told how many).
const EVENT_BACKLOG: usize = 1024;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceConfig {
    pub heartbeat_interval_ms: u64,
    /// How long a participant whose socket dropped keeps its place (and media) for RESUME.
    pub resume_window_secs: u64,
    /// Largest accepted frame; offers with many m-lines run to several KiB.
    pub max_frame_bytes: usize,
    pub frames_per_minute: u32,
    /// Receive audio slots each client offers (`recvonly` m-lines); the engine fills at most its
    /// last-N. Rooms that mix audio ask for one.
    pub audio_slots: usize,
    /// Receive video slots clients offer in `sfu` rooms (one camera each); composited rooms ask
    /// for one.
    pub video_slots: usize,
    /// Receive screen-share slots clients offer (every mode): how many shares one sees at once.
    pub share_slots: usize,
    /// A screen share's bitrate cap (kbit/s), told to clients (which set it on their sender).
    pub share_max_bitrate_kbps: u32,
    /// Runs every room in this mode, whatever its channel says (for benchmarks).
    pub mode: Option<RoomMode>,
    /// The operator's bearer token for `GET /voice/stats` (rooms, peers, addresses, RTTs); unset,
    /// the stats are not served.
    pub stats_token: Option<String>,
    /// The ICE servers clients get in READY: the server's top-level `[turn]`, copied in.
    #[serde(skip)]
    pub turn: crate::turn::TurnConfig,
}

impl VoiceConfig {
    pub fn slots(&self) -> SlotCounts {
        SlotCounts {
            audio: self.audio_slots,
            video: self.video_slots,
            share: self.share_slots,
            share_max_bitrate: self.share_max_bitrate_kbps.saturating_mul(1000),
        }
    }
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            heartbeat_interval_ms: 15_000,
            resume_window_secs: 30,
            max_frame_bytes: 64 * 1024,
            frames_per_minute: 600,
            audio_slots: 5,
            video_slots: 16,
            share_slots: 2,
            share_max_bitrate_kbps: 2500,
            mode: None,
            stats_token: None,
            turn: crate::turn::TurnConfig::default(),
        }
    }
}

/// What a participant's socket task is told to do.
#[derive(Debug)]
pub enum Outbound {
    Msg(crate::protocol::ServerMsg),
    Close(u16),
}

/// A participant's socket: its queue, and which connection it is (a resume replaces it).
pub struct Link {
    pub conn: u64,
    pub tx: mpsc::Sender<Outbound>,
}

#[derive(Clone)]
pub struct Voice(Arc<Inner>);

pub struct Inner {
    pub cfg: VoiceConfig,
    pub chat: App,
    pub sfu: Sfu,
    rooms: Mutex<Rooms>,
    links: Mutex<HashMap<PeerId, Link>>,
    events: broadcast::Sender<VoiceEvent>,
}

impl std::ops::Deref for Voice {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Voice {
    /// Starts the gateway's background tasks (engine events, resume expiry); they end with the chat
    /// plane's shutdown.
    pub fn new(chat: App, sfu: Sfu, events: mpsc::UnboundedReceiver<SfuEvent>, cfg: VoiceConfig) -> Voice {
        let observers = broadcast::Sender::new(EVENT_BACKLOG);
        let v = Voice(Arc::new(Inner {
            cfg,
            chat,
            sfu,
            rooms: Mutex::default(),
            links: Mutex::default(),
            events: observers,
        }));
        tokio::spawn(v.clone().pump(events));
        tokio::spawn(v.clone().expire());
        tokio::spawn(v.clone().revocations(v.chat.subscribe_revocations()));
        tokio::spawn(v.clone().ejections(v.chat.subscribe_ejections()));
        v
    }

    /// Runs `f` on the room registry and carries out what it returns.
    pub fn rooms<R>(&self, f: impl FnOnce(&mut Rooms) -> (R, Vec<Out>)) -> R {
        let (r, out) = f(&mut lock(&self.rooms));
        self.apply(out);
        r
    }

    /// Room events (joins, leaves, speaking) from now on, for in-process observers. A subscriber
    /// that falls `EVENT_BACKLOG` (1024) events behind gets `Lagged` and skips ahead.
    /// Participants and rooms on this node.
    pub fn counts(&self) -> (usize, usize) {
        self.rooms(|r| (r.counts(), Vec::new()))
    }

    /// The voice rooms with participants on this node.
    pub fn room_ids(&self) -> Vec<chat::id::Id> {
        self.rooms(|r| (r.room_ids(), Vec::new()))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<VoiceEvent> {
        self.events.subscribe()
    }

    /// Who is in voice channel `room`, in join order.
    pub fn participants(&self, room: Id) -> Vec<Participant> {
        lock(&self.rooms).participants(room_id(room))
    }

    /// Removes everyone from `room` (close code 4014) and refuses joins to it from now on.
    pub fn close_room(&self, room: Id) {
        self.rooms(|r| ((), r.close_room(room_id(room))));
    }

    pub fn is_room_closed(&self, room: Id) -> bool {
        lock(&self.rooms).is_closed(room_id(room))
    }

    pub fn link(&self, peer: PeerId, link: Link) {
        lock(&self.links).insert(peer, link);
    }

    /// Forgets the socket `conn` of `peer`, unless a resume already replaced it.
    pub fn unlink(&self, peer: PeerId, conn: u64) {
        let mut links = lock(&self.links);
        if links.get(&peer).is_some_and(|l| l.conn == conn) {
            links.remove(&peer);
        }
    }

    pub fn apply(&self, out: Vec<Out>) {
        for o in out {
            match o {
                Out::Send(peer, mut msg) => {
                    if let crate::protocol::ServerMsg::Ready { user_id, ice_servers, .. } = &mut msg {
                        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                        *ice_servers = self.cfg.turn.ice_servers(user_id, now.unwrap_or_default().as_secs());
                    }
                    self.to_socket(peer, Outbound::Msg(msg))
                }
                Out::Close(peer, code) => self.to_socket(peer, Outbound::Close(code)),
                Out::RemovePeer(peer) => self.sfu.remove_peer(peer),
                Out::Mute(peer, muted) => self.sfu.set_muted(peer, muted),
                Out::Deaf(peer, deaf) => self.sfu.set_deaf(peer, deaf),
                Out::Share(peer, on) => self.sfu.set_sharing(peer, on),
                Out::Camera(peer, on) => self.sfu.set_camera(peer, on),
                Out::Voice(state) => self.chat.update_voice_state(state),
                // No subscriber is not an error.
                Out::Event(ev) => {
                    let _ = self.events.send(ev);
                }
            }
        }
    }

    fn to_socket(&self, peer: PeerId, what: Outbound) {
        let mut links = lock(&self.links);
        if let Some(l) = links.get(&peer)
            && l.tx.try_send(what).is_err()
        {
            // A socket that cannot keep up is dropped; the participant may RESUME.
            links.remove(&peer);
        }
    }

    async fn pump(self, mut events: mpsc::UnboundedReceiver<SfuEvent>) {
        let shutdown = self.chat.shutdown.clone();
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.recv() => match ev { Some(ev) => ev, None => return },
            };
            self.rooms(|r| {
                let out = match ev {
                    SfuEvent::Speaking { peer, speaking, .. } => r.speaking(peer, speaking),
                    SfuEvent::DominantSpeaker { room, peer } => r.dominant(room, peer),
                    SfuEvent::Slots { peer, slots } => r.slots(peer, slots),
                    SfuEvent::VideoEnded { room, message } => r.video_ended(room, message),
                    SfuEvent::PeerGone { peer, reason, .. } => {
                        tracing::info!(peer, ?reason, "media connection gone; removing participant");
                        let mut out = Vec::new();
                        if reason == sfu::GoneReason::Unreachable {
                            out.push(Out::Send(peer, self.unreachable()));
                        }
                        out.push(Out::Close(peer, crate::protocol::close::DISCONNECTED));
                        out.extend(r.leave(peer));
                        out
                    }
                    _ => Vec::new(),
                };
                ((), out)
            });
        }
    }

    /// Why a peer's media never connected, in words a user can act on.
    fn unreachable(&self) -> crate::protocol::ServerMsg {
        let message = match self.cfg.turn.enabled() {
            true => "media could not connect: the media port was not reachable, not even through the TURN relay",
            false => {
                "media could not connect: the media port was reachable neither over UDP nor over TCP, and \
                 this server offers no TURN relay"
            }
        };
        crate::protocol::ServerMsg::Error {
            code: crate::protocol::ErrorCode::MediaUnreachable,
            message: message.into(),
        }
    }

    /// Ends the voice sessions of logins the chat plane revoked (logout, password change, expiry).
    async fn revocations(self, mut revoked: broadcast::Receiver<chat::app::Revoked>) {
        let shutdown = self.chat.shutdown.clone();
        loop {
            let r = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = revoked.recv() => r,
            };
            match r {
                Ok(r) => self.rooms(|rooms| ((), rooms.revoke(&r.login))),
                // Missed some: check every login in voice against the recent revocations.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let logins = lock(&self.rooms).logins();
                    for login in logins.iter().filter(|l| self.chat.is_revoked(l)) {
                        self.rooms(|rooms| ((), rooms.revoke(login)));
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Ends the voice sessions of members the chat plane removed (see [`chat::app::Ejection`]).
    async fn ejections(self, mut ejected: broadcast::Receiver<chat::app::Ejection>) {
        let shutdown = self.chat.shutdown.clone();
        loop {
            let e = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = ejected.recv() => e,
            };
            match e {
                Ok(e) => self.rooms(|rooms| ((), rooms.eject(&e))),
                // Missed some: everyone in voice must still be a member of the guild.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let present = lock(&self.rooms).present();
                    for (guild, user) in present {
                        if !self.chat.is_member(guild, user).await.unwrap_or(true) {
                            let e = chat::app::Ejection { guild, user: Some(user), channel: None };
                            self.rooms(|rooms| ((), rooms.eject(&e)));
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn expire(self) {
        let window = Duration::from_secs(self.cfg.resume_window_secs);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let shutdown = self.chat.shutdown.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.rooms(|r| ((), r.expire(Instant::now(), window)));
        }
    }
}

//! # sfu — confab's media engine
//!
//! Every peer is one [str0m](https://docs.rs/str0m) `Rtc` (ICE-lite, DTLS-SRTP); the engine runs
//! on `workers` threads, each one tokio task with its own UDP socket (and ICE-TCP listener), a
//! room's peers on one worker; [`Sfu`] is the cheap handle the signaling crate calls. What happens to media depends on the room's [`MediaMode`]:
//! - audio is forwarded without decoding (last-N, below), or in `mcu` rooms mixed by an
//!   [`AudioMixer`] (mix-minus: everyone hears everyone but themselves on one m-line);
//! - video is forwarded camera by camera in `sfu` rooms (one receive slot per camera, PLIs relayed
//!   to the publisher), or in `hybrid` and `mcu` rooms composited by a [`VideoMixer`] into one VP8
//!   stream written to every participant.
//!
//! The mixers live in the `mcu` crate, which links GStreamer; this crate only defines the traits
//! ([`mixer`]) and the binary injects them ([`Mixers`]) when it starts the engine.
//!
//! ## Module map
//! - [`lib.rs`](self): the public API — [`Sfu`], [`SfuConfig`], [`SfuEvent`], [`SfuError`].
//! - `offer`: validates a client offer and builds the peer's `Rtc` and SDP answer (in the caller's
//!   task, so the engine loop never parses SDP); `sdp_text`: what is read and completed on the
//!   SDP as text (the microphone's codecs; candidates in every m-section of the answer).
//! - [`ingest`]: publishers in no room (WHIP): their offer checked and answered like `offer`'s,
//!   their depacketised frames handed to an [`IngestSink`] instead of a room; `broadcast`: their
//!   WHEP viewers, written each frame untouched; `feed`: sources that are not peers (a transcoded
//!   RTMP stream) whose frames the caller pushes ([`Sfu::feed`]) to WHEP viewers.
//! - `workers`: the threads, their ports, which worker holds each room and peer, merged stats.
//! - `tcp`: ICE over TCP on each worker's port (RFC 4571 framing).
//! - `engine`: the task — socket reads, commands, the per-peer timer heap; the peers a datagram
//!   was forwarded to are drained and their copies sent (`udp`: one `sendmmsg`) before the next
//!   datagram is read (every few under a deep backlog).
//! - `lifecycle`: peers joining, leaving, timing out or failing; housekeeping; the stats snapshot.
//! - `peer`: one peer's `Rtc` and how it is drained (`poll_output` until `Timeout`).
//! - `forward`: audio fan-out (or into the room's mixer), speaker events and `Slots` updates.
//! - `video`: camera frames forwarded (`sfu`) or into the compositor; the composite and the audio
//!   mix written out; keyframe requests both ways.
//! - [`mixer`]: the traits the MCU is reached through.
//! - `demux`: which peer a datagram belongs to: by source address, else by the STUN USERNAME's
//!   server ufrag (confirmed by `Rtc::accepts`); no scan over peers.
//! - `room` (sans-IO): membership, mute, camera, slot assignment per kind (last-N audio, cameras).
//! - `slots` (sans-IO): sticky slot filling and RTP timestamp rebasing.
//! - [`speaker`] (sans-IO): speaking / dominant-speaker detection from RFC 6464 audio levels.
//! - [`stats`]: counters and the [`SfuStats`] snapshot; [`histogram`]: forwarding latency.
//!
//! ## Last-N over fixed receive slots
//! A client offers one `sendonly` audio m-line (its microphone) and K `recvonly` m-lines, its
//! receive *slots*; the server never renegotiates. Which speaker flows into which slot is
//! announced out of band with [`SfuEvent::Slots`].
//!
//! Per room, candidates are ranked: the speaker detector's ranking (current speakers first, then
//! smoothed loudness), then members never heard, in join order; muted members are left out. Each
//! listener is forwarded the first `min(last_n, K)` candidates other than itself. Assignment is
//! sticky: a source keeps its slot while it stays in the listener's set, and only freed slots
//! take newcomers, so a client's slot-to-speaker mapping churns as little as possible. The
//! assignment is recomputed on joins, leaves, mutes, speaking starts/stops, and every 250 ms
//! (loudness order drifts); a `Slots` event goes to each listener whose slots changed (and to a
//! joining peer, always).
//!
//! Each slot has one outgoing SSRC (str0m's), so when its source changes the RTP timestamp is
//! rebased: the new source's timeline continues from where the old one stopped plus the
//! wall-clock gap. Sequence numbers are str0m's own per slot, so they stay continuous too.

mod broadcast;
mod demux;
mod engine;
mod feed;
mod forward;
#[doc(hidden)]
pub mod harness;
pub mod histogram;
pub mod ingest;
mod lifecycle;
pub mod mixer;
mod offer;
mod peer;
mod room;
mod sdp_text;
mod slots;
pub mod speaker;
pub mod stats;
mod tcp;
mod udp;
mod video;
mod workers;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use str0m::config::{CryptoProvider, DtlsCert};
use tokio::sync::{mpsc, oneshot};

pub use feed::FeedMedia;
pub use ingest::{IngestCodec, IngestMedia, IngestSink};
pub use mixer::{AudioMixer, Mixed, Mixers, VideoMixer, VideoOut, VideoSink};
pub use speaker::SpeakerConfig;
pub use stats::{Counters, PeerStats, RoomStats, SfuStats, Totals};

use engine::Cmd;

pub type RoomId = u64;
pub type PeerId = u64;

#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The one UDP socket all peers share.
    pub bind: SocketAddr,
    /// Advertised in the host candidate instead of the bound IP (NAT, or a 0.0.0.0 bind).
    pub public_ip: Option<IpAddr>,
    /// At most this many speakers are forwarded to each listener.
    pub last_n: usize,
    /// Cap on the receive (`recvonly`) audio m-lines honoured per peer.
    pub max_slots: usize,
    /// Cap on the receive video m-lines honoured per peer (one camera each in `sfu` rooms).
    pub max_video_slots: usize,
    /// Cap on the receive screen-share m-lines honoured per peer.
    pub max_share_slots: usize,
    /// A peer that sends nothing (not even ICE consent checks) for this long is removed, and so
    /// is one not connected (ICE + DTLS) this long after it was added.
    pub peer_timeout: Duration,
    pub max_peers: usize,
    pub speaker: SpeakerConfig,
    /// ICE over TCP as well: a passive TCP candidate on the same address and port number, for
    /// clients whose network passes no UDP ([`tcp`]).
    pub ice_tcp: bool,
    /// Engine threads, each with its own socket (the bound port, then the next ones); 0: one per
    /// core available ([`workers`]).
    pub workers: usize,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_ip: None,
            last_n: 5,
            max_slots: 16,
            max_video_slots: 25,
            max_share_slots: 4,
            peer_timeout: Duration::from_secs(10),
            max_peers: 10_000,
            speaker: SpeakerConfig::default(),
            ice_tcp: true,
            workers: 1,
        }
    }
}

/// How a room carries media. Fixed when the room's first peer joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaMode {
    /// Audio forwarded, video composited.
    #[default]
    Hybrid,
    /// Audio and video forwarded.
    Sfu,
    /// Audio mixed (mix-minus), video composited.
    Mcu,
}

impl MediaMode {
    pub fn mixes_audio(self) -> bool {
        self == MediaMode::Mcu
    }

    pub fn composites_video(self) -> bool {
        self != MediaMode::Sfu
    }
}

/// What the engine needs to know of a joining peer besides its offer.
#[derive(Debug, Clone, Default)]
pub struct PeerOptions {
    /// The room's mode; a room keeps the mode of its first peer.
    pub mode: MediaMode,
    /// Shown on the peer's placeholder tile in a composite (its initials are drawn).
    pub label: String,
}

/// The engine's answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub sdp: String,
    /// The offer had a camera (a `sendonly` video m-line with VP8).
    pub camera: bool,
}

/// One receive m-line of a listener and the source flowing into it (`None`: unused, or the
/// room's mix or composite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    pub mid: String,
    pub source: Option<PeerId>,
    pub video: bool,
    /// A screen-share slot (then `video` is true too).
    pub share: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GoneReason {
    /// No datagram for `peer_timeout`.
    Timeout,
    /// The client closed DTLS.
    Closed,
    /// ICE/DTLS failed after connecting, or str0m gave up on the peer.
    Failed,
    /// ICE and DTLS never completed within `peer_timeout`: the peer's network cannot reach the
    /// media port (UDP blocked and no TURN relay, or the relay failed too).
    Unreachable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SfuEvent {
    /// ICE and DTLS are up: media can flow.
    PeerConnected {
        room: RoomId,
        peer: PeerId,
    },
    /// The engine dropped the peer on its own (not sent for [`Sfu::remove_peer`]).
    PeerGone {
        room: RoomId,
        peer: PeerId,
        reason: GoneReason,
    },
    Speaking {
        room: RoomId,
        peer: PeerId,
        speaking: bool,
    },
    DominantSpeaker {
        room: RoomId,
        peer: Option<PeerId>,
    },
    /// Listener `peer`: the source flowing into each of its receive m-lines, audio then video,
    /// each in offer order.
    Slots {
        peer: PeerId,
        slots: Vec<SlotInfo>,
    },
    /// The room's video composite failed or could not start; the room goes on without video.
    VideoEnded {
        room: RoomId,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    #[error("{0}")]
    BadSdp(String),
    #[error("the offer has no Opus audio")]
    NoOpus,
    #[error("the offer has no sendonly/sendrecv audio m-line")]
    NoSendAudio,
    #[error("the offer's video m-lines have no VP8")]
    NoVp8,
    #[error("the offer has no video m-line for this stream")]
    NoVideo,
    #[error("no such live source (the stream is not published now)")]
    NoSource,
    #[error("the offer's video m-line has no H.264 (packetization-mode 1), which this stream is sent in")]
    NoH264,
    #[error("this server cannot mix audio (no MCU)")]
    NoMixer,
    #[error("peer already added")]
    DuplicatePeer,
    #[error("the media engine is full")]
    Full,
    #[error("the media engine has stopped")]
    EngineGone,
}

/// Handle to the engine task; clones share it. The engine stops on [`Sfu::shutdown`] or when
/// every handle is dropped.
#[derive(Clone)]
pub struct Sfu {
    inner: Arc<Inner>,
}

struct Inner {
    workers: Vec<workers::Worker>,
    placement: Arc<Mutex<workers::Placement>>,
    crypto: Arc<CryptoProvider>,
    /// One DTLS certificate for every peer: generating one per peer costs milliseconds.
    cert: DtlsCert,
    max_slots: (usize, usize, usize),
    can_mix: bool,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu").field("addresses", &self.addresses()).finish()
    }
}

fn lock(m: &Mutex<workers::Placement>) -> std::sync::MutexGuard<'_, workers::Placement> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sfu {
    /// Binds the sockets and starts the engine's workers, each on a thread of its own (a
    /// current-thread runtime: the thread that polls a socket runs its engine, with no
    /// cross-thread wake-up per datagram, and chat or signaling load never queues in front of
    /// media); see [`workers`]. Without `mixers`, `mcu` rooms are refused and no room gets a
    /// composite.
    pub async fn start(
        cfg: SfuConfig,
        mixers: Option<Arc<dyn Mixers>>,
    ) -> std::io::Result<(Sfu, mpsc::UnboundedReceiver<SfuEvent>)> {
        let n = match cfg.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| std::io::Error::other("the crypto provider cannot generate a DTLS certificate"))?;
        let (wtx, mut wrx) = mpsc::unbounded_channel();
        let mut started = Vec::with_capacity(n);
        for i in 0..n {
            match workers::spawn(i, &cfg, mixers.clone(), wtx.clone()) {
                Ok(w) => started.push(w),
                Err(e) => {
                    for w in &started {
                        let _ = w.cmds.send(Cmd::Shutdown);
                    }
                    return Err(e);
                }
            }
        }
        drop(wtx);
        // Events pass through here so the placement forgets peers the engine removed itself.
        let placement = Arc::new(Mutex::new(workers::Placement::new(n)));
        let (events, event_rx) = mpsc::unbounded_channel();
        let forget = placement.clone();
        tokio::spawn(async move {
            while let Some(e) = wrx.recv().await {
                if let SfuEvent::PeerGone { peer, .. } = &e {
                    lock(&forget).remove(*peer);
                }
                if events.send(e).is_err() {
                    break;
                }
            }
        });
        let max_slots = (cfg.max_slots, cfg.max_video_slots, cfg.max_share_slots);
        let inner = Inner { workers: started, placement, crypto, cert, max_slots, can_mix: mixers.is_some() };
        Ok((Sfu { inner: Arc::new(inner) }, event_rx))
    }

    /// The first worker's bound address (with one worker: the only one).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.workers[0].local
    }

    /// The first worker's advertised address (what its ICE candidates carry).
    pub fn advertised_addr(&self) -> SocketAddr {
        self.inner.workers[0].advertised
    }

    /// Every worker's advertised address, in worker order.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.inner.workers.iter().map(|w| w.advertised).collect()
    }

    fn worker(&self, id: PeerId) -> Option<&workers::Worker> {
        let w = lock(&self.inner.placement).worker_of(id)?;
        self.inner.workers.get(w)
    }

    fn send(&self, id: PeerId, cmd: Cmd) {
        if let Some(w) = self.worker(id) {
            let _ = w.cmds.send(cmd);
        }
    }

    /// Sends `add` (built for worker `w`) and waits for the engine's verdict.
    async fn add_on(&self, w: usize, add: Cmd, rx: oneshot::Receiver<Result<(), SfuError>>) -> Result<(), SfuError> {
        self.inner.workers[w].cmds.send(add).map_err(|_| SfuError::EngineGone)?;
        rx.await.map_err(|_| SfuError::EngineGone)?
    }

    /// A sink that also forgets `peer` once its media is gone.
    fn forgetting(&self, peer: PeerId, sink: IngestSink) -> IngestSink {
        let placement = self.inner.placement.clone();
        Box::new(move |m| {
            if matches!(m, IngestMedia::Gone(_)) {
                lock(&placement).remove(peer);
            }
            sink(m)
        })
    }

    /// Answers `offer_sdp` and adds the peer to `room`, on the room's worker. The answer is
    /// ICE-lite, non-trickle: its host candidates are that worker's address.
    pub async fn add_peer(
        &self,
        room: RoomId,
        peer: PeerId,
        offer_sdp: &str,
        opts: PeerOptions,
    ) -> Result<Answer, SfuError> {
        let i = &self.inner;
        if opts.mode.mixes_audio() && !i.can_mix {
            return Err(SfuError::NoMixer);
        }
        let w = lock(&i.placement).for_room(room);
        let candidates = &i.workers[w].candidates;
        let prepared = offer::prepare(peer, offer_sdp, &i.crypto, &i.cert, candidates, i.max_slots, opts.mode);
        let prepared = prepared.inspect_err(|_| lock(&i.placement).release_room(room))?;
        let answer = Answer { sdp: prepared.answer.clone(), camera: prepared.camera.is_some() };
        let (reply, rx) = oneshot::channel();
        let add = Cmd::Add { room, peer, prepared: Box::new(prepared), opts, reply };
        match self.add_on(w, add, rx).await {
            Ok(()) => lock(&i.placement).add(peer, w, Some(room)),
            Err(e) => {
                lock(&i.placement).release_room(room);
                return Err(e);
            }
        }
        Ok(answer)
    }

    /// Adds a publisher that only sends, in no room ([`ingest`]), on the least-loaded worker: its
    /// frames go to `sink` as they arrive. Removed like any peer ([`Sfu::remove_peer`]); if it
    /// dies first, `sink` hears [`IngestMedia::Gone`].
    pub async fn add_ingest(&self, peer: PeerId, offer_sdp: &str, sink: IngestSink) -> Result<Answer, SfuError> {
        let i = &self.inner;
        let w = lock(&i.placement).least_loaded();
        let prepared = ingest::prepare(peer, offer_sdp, &i.crypto, &i.cert, &i.workers[w].candidates, false)?;
        let answer = Answer { sdp: prepared.answer.clone(), camera: true };
        let (reply, rx) = oneshot::channel();
        let sink = self.forgetting(peer, sink);
        self.add_on(w, Cmd::AddIngest { peer, prepared: Box::new(prepared), sink, reply }, rx).await?;
        lock(&i.placement).add(peer, w, None);
        Ok(answer)
    }

    /// Adds a WHEP viewer of ingest peer (or feed) `source`, on the source's worker: written its
    /// frames as they arrive. `sink` hears `Connected` and `Gone` (the viewer's, or its source's
    /// end).
    pub async fn add_viewer(
        &self,
        peer: PeerId,
        source: PeerId,
        offer_sdp: &str,
        sink: IngestSink,
    ) -> Result<Answer, SfuError> {
        let i = &self.inner;
        let w = lock(&i.placement).worker_of(source).ok_or(SfuError::NoSource)?;
        let prepared = ingest::prepare(peer, offer_sdp, &i.crypto, &i.cert, &i.workers[w].candidates, true)?;
        let answer = Answer { sdp: prepared.answer.clone(), camera: false };
        let (reply, rx) = oneshot::channel();
        let sink = self.forgetting(peer, sink);
        self.add_on(w, Cmd::AddViewer { peer, source, prepared: Box::new(prepared), sink, reply }, rx).await?;
        lock(&i.placement).add(peer, w, None);
        Ok(answer)
    }

    /// Registers a feed: a live source that is not a peer, whose frames are pushed with
    /// [`Sfu::feed`] and written to its viewers ([`Sfu::add_viewer`] with `source: id`).
    pub fn add_feed(&self, id: PeerId) {
        let w = {
            let mut p = lock(&self.inner.placement);
            let w = p.least_loaded();
            p.add(id, w, None);
            w
        };
        let _ = self.inner.workers[w].cmds.send(Cmd::AddFeed(id));
    }

    /// One frame of feed `id` (dropped if it is not registered). Cheap: a channel send.
    pub fn feed(&self, id: PeerId, media: FeedMedia) {
        self.send(id, Cmd::Feed(id, media));
    }

    /// Ends feed `id`; its viewers are closed (their sinks hear `Gone`).
    pub fn remove_feed(&self, id: PeerId) {
        self.send(id, Cmd::RemoveFeed(id));
        lock(&self.inner.placement).remove(id);
    }

    /// Asks the peer's camera (an ingest's video) for a keyframe (a PLI, rate-limited).
    pub fn request_keyframe(&self, peer: PeerId) {
        self.send(peer, Cmd::Keyframe(peer));
    }

    /// Frees the peer; the room's other listeners get `Slots` updates. No `PeerGone` follows.
    pub fn remove_peer(&self, peer: PeerId) {
        self.send(peer, Cmd::Remove(peer));
        lock(&self.inner.placement).remove(peer);
    }

    /// A muted peer's audio is dropped: not forwarded, not ranked, not speaking.
    pub fn set_muted(&self, peer: PeerId, muted: bool) {
        self.send(peer, Cmd::Mute(peer, muted));
    }

    /// A deafened peer is sent no audio (no forwarded voices, no mix) until undeafened.
    pub fn set_deaf(&self, peer: PeerId, deaf: bool) {
        self.send(peer, Cmd::Deaf(peer, deaf));
    }

    /// Screen share on or off: on, the share m-line's video is forwarded into other peers' share
    /// slots (every room mode, never composited).
    pub fn set_sharing(&self, peer: PeerId, on: bool) {
        self.send(peer, Cmd::Share(peer, on));
    }

    /// Camera off: its tile shows the placeholder (composite) or its slots free up (`sfu`).
    pub fn set_camera(&self, peer: PeerId, on: bool) {
        self.send(peer, Cmd::Camera(peer, on));
    }

    /// A snapshot of the counters of every worker, added up (empty once the engine has stopped).
    pub async fn stats(&self) -> SfuStats {
        let mut waiting = Vec::new();
        for w in &self.inner.workers {
            let (reply, rx) = oneshot::channel();
            if w.cmds.send(Cmd::Stats(reply)).is_ok() {
                waiting.push(rx);
            }
        }
        let mut parts = Vec::with_capacity(waiting.len());
        for rx in waiting {
            parts.extend(rx.await.ok());
        }
        workers::merge(parts)
    }

    /// Stops the engine: every peer is closed, the event channel ends.
    pub fn shutdown(&self) {
        for w in &self.inner.workers {
            let _ = w.cmds.send(Cmd::Shutdown);
        }
    }
}

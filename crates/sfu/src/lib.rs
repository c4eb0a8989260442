//! # sfu — confab's media engine
//!
//! An audio SFU: every peer is one [str0m](https://docs.rs/str0m) `Rtc` (ICE-lite, DTLS-SRTP), all
//! peers share one UDP socket, and Opus frames are forwarded without decoding. The engine runs in
//! one tokio task; [`Sfu`] is the cheap handle the signaling crate calls.
//!
//! ## Module map
//! - [`lib.rs`](self): the public API — [`Sfu`], [`SfuConfig`], [`SfuEvent`], [`SfuError`].
//! - `offer`: validates a client offer and builds the peer's `Rtc` and SDP answer (in the caller's
//!   task, so the engine loop never parses SDP).
//! - `engine`: the task — socket reads, commands, the per-peer timer heap.
//! - `lifecycle`: peers joining, leaving, timing out or failing; housekeeping; the stats snapshot.
//! - `peer`: one peer's `Rtc` and how it is drained (`poll_output` until `Timeout`).
//! - `forward`: frame fan-out, speaker events and `Slots` updates.
//! - `demux`: which peer a datagram belongs to: by source address, else by the STUN USERNAME's
//!   server ufrag (confirmed by `Rtc::accepts`); no scan over peers.
//! - `room` (sans-IO): membership, mute, last-N slot assignment, RTP timestamp rebasing.
//! - [`speaker`] (sans-IO): speaking / dominant-speaker detection from RFC 6464 audio levels.
//! - [`stats`]: counters and the [`SfuStats`] snapshot.
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

mod demux;
mod engine;
mod forward;
mod lifecycle;
mod offer;
mod peer;
mod room;
pub mod speaker;
pub mod stats;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use str0m::Candidate;
use str0m::config::{CryptoProvider, DtlsCert};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

pub use speaker::SpeakerConfig;
pub use stats::{Counters, PeerStats, RoomStats, SfuStats};

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
    /// Cap on the receive (`recvonly`) m-lines honoured per peer.
    pub max_slots: usize,
    /// A peer that sends nothing (not even ICE consent checks) for this long is removed, and so
    /// is one not connected (ICE + DTLS) this long after it was added.
    pub peer_timeout: Duration,
    pub max_peers: usize,
    pub speaker: SpeakerConfig,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_ip: None,
            last_n: 5,
            max_slots: 16,
            peer_timeout: Duration::from_secs(10),
            max_peers: 10_000,
            speaker: SpeakerConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GoneReason {
    /// No datagram for `peer_timeout`.
    Timeout,
    /// The client closed DTLS.
    Closed,
    /// ICE/DTLS failed or did not complete within `peer_timeout`, or str0m gave up on the peer.
    Failed,
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
    /// Listener `peer`: the source flowing into each of its receive m-lines (by mid), in offer order.
    Slots {
        peer: PeerId,
        slots: Vec<(String, Option<PeerId>)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    #[error("bad SDP offer: {0}")]
    BadSdp(String),
    #[error("the offer has no Opus audio")]
    NoOpus,
    #[error("the offer has no sendonly/sendrecv audio m-line")]
    NoSendAudio,
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
    cmds: mpsc::UnboundedSender<Cmd>,
    local: SocketAddr,
    advertised: SocketAddr,
    crypto: Arc<CryptoProvider>,
    /// One DTLS certificate for every peer: generating one per peer costs milliseconds.
    cert: DtlsCert,
    candidate: Candidate,
    max_slots: usize,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu").field("local", &self.inner.local).field("advertised", &self.inner.advertised).finish()
    }
}

impl Sfu {
    /// Binds the socket and spawns the engine task (call inside a tokio runtime).
    pub async fn start(cfg: SfuConfig) -> std::io::Result<(Sfu, mpsc::UnboundedReceiver<SfuEvent>)> {
        use std::io::{Error, ErrorKind};
        let socket = UdpSocket::bind(cfg.bind).await?;
        let local = socket.local_addr()?;
        let advertised = SocketAddr::new(cfg.public_ip.unwrap_or(local.ip()), local.port());
        // str0m drops STUN whose destination is not a local candidate, so this one address is both.
        let candidate = Candidate::host(advertised, "udp").map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("{advertised} cannot be advertised (set public_ip): {e}"))
        })?;
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| Error::other("the crypto provider cannot generate a DTLS certificate"))?;
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::unbounded_channel();
        let max_slots = cfg.max_slots;
        tokio::spawn(engine::Engine::new(cfg, socket, advertised, events).run(cmd_rx));
        tracing::info!(%local, %advertised, "sfu started");
        let inner = Inner { cmds, local, advertised, crypto, cert, candidate, max_slots };
        Ok((Sfu { inner: Arc::new(inner) }, event_rx))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    pub fn advertised_addr(&self) -> SocketAddr {
        self.inner.advertised
    }

    /// Answers `offer_sdp` and adds the peer to `room`. The answer is ICE-lite, non-trickle: its
    /// one host candidate is [`Sfu::advertised_addr`].
    pub async fn add_peer(&self, room: RoomId, peer: PeerId, offer_sdp: &str) -> Result<String, SfuError> {
        let i = &self.inner;
        let prepared = offer::prepare(peer, offer_sdp, &i.crypto, &i.cert, &i.candidate, i.max_slots)?;
        let answer = prepared.answer.clone();
        let (reply, rx) = oneshot::channel();
        i.cmds.send(Cmd::Add { room, peer, prepared: Box::new(prepared), reply }).map_err(|_| SfuError::EngineGone)?;
        rx.await.map_err(|_| SfuError::EngineGone)??;
        Ok(answer)
    }

    /// Frees the peer; the room's other listeners get `Slots` updates. No `PeerGone` follows.
    pub fn remove_peer(&self, peer: PeerId) {
        let _ = self.inner.cmds.send(Cmd::Remove(peer));
    }

    /// A muted peer's audio is dropped: not forwarded, not ranked, not speaking.
    pub fn set_muted(&self, peer: PeerId, muted: bool) {
        let _ = self.inner.cmds.send(Cmd::Mute(peer, muted));
    }

    /// A snapshot of the counters (empty once the engine has stopped).
    pub async fn stats(&self) -> SfuStats {
        let (reply, rx) = oneshot::channel();
        if self.inner.cmds.send(Cmd::Stats(reply)).is_err() {
            return SfuStats::default();
        }
        rx.await.unwrap_or_default()
    }

    /// Stops the engine: every peer is closed, the event channel ends.
    pub fn shutdown(&self) {
        let _ = self.inner.cmds.send(Cmd::Shutdown);
    }
}

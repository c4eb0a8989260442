//! [`Sfu`], the handle every caller holds: it prepares offers in the caller's task and sends the
//! engine worker holding a peer its commands ([`crate::workers`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use str0m::config::{CryptoProvider, DtlsCert};
use tokio::sync::{mpsc, oneshot};

use crate::engine::Cmd;
use crate::{
    Answer, FeedMedia, IngestMedia, IngestSink, Mixers, PeerId, PeerOptions, RoomId, SfuConfig, SfuError, SfuEvent,
    SfuStats, ingest, offer, workers,
};

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

//! The engine task (on the `sfu-engine` thread): one UDP socket, every peer's `Rtc`, the rooms.
//! Commands arrive from [`Sfu`] handles; datagrams are demultiplexed to peers; each peer's str0m
//! timeout is honoured through one timer heap, so nothing per packet or per wake-up walks all peers.
//!
//! [`Sfu`]: crate::Sfu

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use str0m::Input;
use str0m::net::{Protocol, Receive};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tracing::Span;

use crate::demux::Router;
use crate::histogram::Histogram;
use crate::mixer::{AudioMixer, Mixers, VideoMixer, VideoOut};
use crate::offer::Prepared;
use crate::peer::{Io, Peer, Pending, Timers};
use crate::room::Room;
use crate::speaker::SpeakerEvent;
use crate::stats::{Counters, SfuStats};
use crate::udp::{self, Outgoing};
use crate::{GoneReason, PeerId, PeerOptions, RoomId, SfuConfig, SfuError, SfuEvent};

/// Housekeeping: peer timeouts, speaker hangovers.
const TICK: Duration = Duration::from_millis(50);
/// Datagrams read per wake-up before timers get a look in.
const READ_BATCH: usize = 64;
/// Each datagram's copies are sent before the next is read, while the engine keeps up: at 250-500
/// streams (server on a core of its own), batching eight (a listener drained once for them) held
/// copies ~3x longer (p99 from read to sent 0.3 ms against 0.6-1.0 ms) for ~10% fewer packets
/// per core-second, as a listener is rarely written twice within one wake-up.
/// A datagram that waited longer than this in the socket says the engine is behind: then copies
/// leave every [`FLUSH_BACKLOG`] datagrams, whose batching it needs to catch up (sending one by
/// one, a saturated box's 1,000 streams built a queue of ~0.6 s and lost 28% of the uplink).
const BEHIND: Duration = Duration::from_millis(1);
/// Datagrams per flush while behind.
const FLUSH_BACKLOG: usize = 8;
/// Composite output waiting for the engine (several seconds of frames): a mixer never blocks on
/// the engine; if the engine is that far behind, frames are dropped and a keyframe requested.
const VIDEO_QUEUE: usize = 256;

pub(crate) enum Cmd {
    Add {
        room: RoomId,
        peer: PeerId,
        prepared: Box<Prepared>,
        opts: PeerOptions,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    AddIngest {
        peer: PeerId,
        prepared: Box<Prepared>,
        sink: crate::IngestSink,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    AddViewer {
        peer: PeerId,
        source: PeerId,
        prepared: Box<Prepared>,
        sink: crate::IngestSink,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Keyframe(PeerId),
    AddFeed(PeerId),
    Feed(PeerId, crate::FeedMedia),
    RemoveFeed(PeerId),
    Remove(PeerId),
    Mute(PeerId, bool),
    Camera(PeerId, bool),
    Deaf(PeerId, bool),
    Share(PeerId, bool),
    Stats(oneshot::Sender<SfuStats>),
    Shutdown,
}

/// A room's running video compositor.
pub(crate) struct RoomVideo {
    pub mixer: Box<dyn VideoMixer>,
    /// Tags its output, so frames of a replaced mixer are told apart.
    pub generation: u64,
    /// Output the sink could not queue; when it grows, receivers lost a frame.
    pub dropped: Arc<AtomicU64>,
    pub seen_dropped: u64,
    /// Added to this compositor's timestamps (90 kHz) so a restarted composite's RTP time goes
    /// on from the last one's, with the wall-clock pause between them; set at its first frame.
    pub time_offset: Option<i64>,
}

/// Per-room counters of the mixers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MixCounters {
    pub composite_frames: u64,
    pub composite_keyframes: u64,
    pub mix_ticks: u64,
}

pub(crate) struct RoomState {
    pub room: Room,
    /// Counters of members who left, so room totals do not shrink.
    pub departed: Counters,
    pub span: Span,
    pub video: Option<RoomVideo>,
    /// Set once the composite failed or could not start: it is not retried for this room.
    pub video_ended: bool,
    /// The last composite frame's RTP time (90 kHz) and when it was written.
    pub composite_clock: Option<(u64, Instant)>,
    pub audio: Option<Box<dyn AudioMixer>>,
    pub mix: MixCounters,
}

pub(crate) struct Engine {
    pub cfg: SfuConfig,
    pub socket: Arc<UdpSocket>,
    /// Our host candidate: the `destination` of every `Receive`.
    pub dest: SocketAddr,
    pub router: Router,
    /// Fx hashing: ids are ours (sequential), and these maps are looked up per packet.
    pub peers: FxHashMap<PeerId, Peer>,
    pub rooms: FxHashMap<RoomId, RoomState>,
    /// Ingest peer → its WHEP viewers.
    pub watchers: FxHashMap<PeerId, Vec<PeerId>>,
    /// Sources that are not peers (`feed`), by id.
    pub feeds: FxHashMap<PeerId, crate::feed::Feed>,
    pub timers: Timers,
    pub events: UnboundedSender<SfuEvent>,
    pub pending: Pending,
    pub gone: Vec<(PeerId, GoneReason)>,
    pub mixers: Option<Arc<dyn Mixers>>,
    pub video_tx: mpsc::Sender<(RoomId, u64, VideoOut)>,
    video_rx: Option<mpsc::Receiver<(RoomId, u64, VideoOut)>>,
    pub next_generation: u64,
    /// Due ticks of audio mixers; entries may be stale (the room gone or re-armed).
    pub mix_timers: BinaryHeap<Reverse<(Instant, RoomId)>>,
    pub garbage: u64,
    /// What rooms closed so far had counted (see [`crate::stats::Totals`]).
    pub closed: crate::stats::Totals,
    pub forward_latency: Histogram,
    /// Datagrams drained from peers, not yet sent.
    pub outbox: Vec<Outgoing>,
    /// Peers written to since the last flush.
    pub dirty: Vec<PeerId>,
    /// When each audio copy written since the last flush arrived on the socket.
    pub copy_times: Vec<Instant>,
    /// How long the datagram being handled waited in the socket before it was read.
    pub rx_wait: Duration,
    next_tick: Instant,
    pub next_assign: Instant,
    // Scratch buffers reused on the hot path.
    /// The packets of the video frame being forwarded (reused: no allocation per frame).
    pub packets: Vec<Arc<[u8]>>,
    pub targets: Vec<(PeerId, usize, u64)>,
    pub speaker_events: Vec<SpeakerEvent<PeerId>>,
    pub changed: Vec<PeerId>,
    pub keyframes: Vec<PeerId>,
    /// Shares whose keyframe request waited out the rate limit (housekeeping's scratch).
    pub shares_deferred: Vec<PeerId>,
    /// ICE-TCP connections by remote address, and their events ([`crate::tcp`]).
    pub tcp: FxHashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    pub tcp_rx: Option<mpsc::Receiver<crate::tcp::TcpEvent>>,
}

enum Wake {
    Cmd(Option<Cmd>),
    Udp(std::io::Result<()>),
    Tcp(Option<crate::tcp::TcpEvent>),
    Video(Option<(RoomId, u64, VideoOut)>),
    Timer,
}

impl Engine {
    pub fn new(
        cfg: SfuConfig,
        socket: UdpSocket,
        dest: SocketAddr,
        events: UnboundedSender<SfuEvent>,
        mixers: Option<Arc<dyn Mixers>>,
    ) -> Self {
        let now = Instant::now();
        let (video_tx, video_rx) = mpsc::channel(VIDEO_QUEUE);
        Engine {
            cfg,
            socket: Arc::new(socket),
            dest,
            router: Router::default(),
            peers: FxHashMap::default(),
            rooms: FxHashMap::default(),
            watchers: FxHashMap::default(),
            feeds: FxHashMap::default(),
            timers: Timers::new(),
            events,
            pending: Pending::default(),
            gone: Vec::new(),
            mixers,
            video_tx,
            video_rx: Some(video_rx),
            next_generation: 0,
            mix_timers: BinaryHeap::new(),
            garbage: 0,
            closed: crate::stats::Totals::default(),
            forward_latency: Histogram::default(),
            outbox: Vec::new(),
            dirty: Vec::new(),
            copy_times: Vec::new(),
            rx_wait: Duration::ZERO,
            next_tick: now,
            next_assign: now,
            targets: Vec::new(),
            packets: Vec::new(),
            speaker_events: Vec::new(),
            changed: Vec::new(),
            keyframes: Vec::new(),
            shares_deferred: Vec::new(),
            tcp: FxHashMap::default(),
            tcp_rx: None,
        }
    }

    pub async fn run(mut self, mut cmds: UnboundedReceiver<Cmd>) {
        let socket = self.socket.clone();
        let mut buf = vec![0u8; 2048];
        let sleep = tokio::time::sleep_until(Instant::now().into());
        tokio::pin!(sleep);
        let Some(mut video_rx) = self.video_rx.take() else { return };
        let mut tcp_rx = self.tcp_rx.take();
        loop {
            let now = Instant::now();
            self.run_timers(now);
            self.flush(now);
            let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
            let next_mix = self.mix_timers.peek().map(|Reverse((t, _))| *t);
            let deadline = [next_timer, next_mix].into_iter().flatten().fold(self.next_tick, Instant::min);
            sleep.as_mut().reset(deadline.into());
            let wake = tokio::select! {
                biased;
                c = cmds.recv() => Wake::Cmd(c),
                v = video_rx.recv() => Wake::Video(v),
                r = socket.readable() => Wake::Udp(r),
                e = async {
                    match tcp_rx.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => Wake::Tcp(e),
                _ = &mut sleep => Wake::Timer,
            };
            match wake {
                Wake::Cmd(None | Some(Cmd::Shutdown)) => break,
                Wake::Cmd(Some(c)) => self.command(c),
                Wake::Video(Some((room, generation, out))) => self.video_out(room, generation, out, Instant::now()),
                Wake::Video(None) => {}
                Wake::Tcp(Some(e)) => self.tcp_event(e, Instant::now()),
                Wake::Tcp(None) => tcp_rx = None,
                Wake::Udp(Err(e)) => tracing::warn!(error = %e, "udp socket failed"),
                Wake::Udp(Ok(())) => {
                    for i in 1..=READ_BATCH {
                        let behind = match udp::try_recv(&socket, &mut buf) {
                            Ok(rx) => {
                                let now = Instant::now();
                                let waited = now.saturating_duration_since(rx.arrived);
                                self.datagram_waited(&buf[..rx.len], rx.from, waited, now);
                                waited > BEHIND
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) => {
                                tracing::debug!(error = %e, "udp receive failed");
                                false
                            }
                        };
                        if !behind || i % FLUSH_BACKLOG == 0 {
                            self.flush(Instant::now());
                        }
                    }
                }
                Wake::Timer => {}
            }
            self.reap(Instant::now());
            self.flush(Instant::now());
        }
        for (_, mut p) in self.peers.drain() {
            let _ = p.rtc.close();
            p.drain(
                &mut Io {
                    outbox: &mut self.outbox,
                    timers: &mut self.timers,
                    events: &self.events,
                    pending: &mut self.pending,
                },
                Instant::now(),
            );
        }
        udp::send_all(&socket, &mut self.outbox, |_| {});
        // Mixers stop as they are dropped.
        self.rooms.clear();
        tracing::info!("sfu stopped");
    }

    fn command(&mut self, c: Cmd) {
        let now = Instant::now();
        match c {
            Cmd::Add { room, peer, prepared, opts, reply } => {
                let _ = reply.send(self.add(room, peer, *prepared, opts, now));
            }
            Cmd::AddIngest { peer, prepared, sink, reply } => {
                let _ = reply.send(self.add_ingest(peer, *prepared, sink, now));
            }
            Cmd::AddViewer { peer, source, prepared, sink, reply } => {
                let _ = reply.send(self.add_viewer(peer, source, *prepared, sink, now));
            }
            Cmd::Keyframe(peer) => self.ask_keyframe(peer, now),
            Cmd::AddFeed(id) => self.add_feed(id),
            Cmd::Feed(id, m) => self.feed(id, m, now),
            Cmd::RemoveFeed(id) => self.remove_feed(id),
            Cmd::Remove(peer) => self.remove(peer, None, now),
            Cmd::Mute(peer, muted) => {
                let Some(room) = self.peers.get(&peer).map(|p| p.room) else { return };
                if let Some(r) = self.rooms.get_mut(&room)
                    && r.room.set_muted(peer, muted, now)
                {
                    tracing::debug!(parent: &r.span, peer, muted, "mute");
                    if let Some(audio) = &mut r.audio {
                        audio.set_muted(peer, muted);
                    }
                    self.after_room_change(room, None);
                }
            }
            Cmd::Camera(peer, on) => self.set_camera(peer, on, now),
            Cmd::Share(peer, on) => self.set_sharing(peer, on, now),
            Cmd::Deaf(peer, deaf) => {
                let Some(room) = self.peers.get(&peer).map(|p| p.room) else { return };
                if let Some(r) = self.rooms.get_mut(&room)
                    && r.room.set_deaf(peer, deaf)
                {
                    tracing::debug!(parent: &r.span, peer, deaf, "deafen");
                    self.after_room_change(room, None);
                }
            }
            Cmd::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            Cmd::Shutdown => {}
        }
    }

    pub(crate) fn datagram(&mut self, buf: &[u8], src: SocketAddr, now: Instant) {
        self.datagram_waited(buf, src, Duration::ZERO, now)
    }

    /// A datagram read at `now` after `waited` in the socket: str0m gets `now` (its clock must not
    /// go back), forwarding latency counts the wait too.
    fn datagram_waited(&mut self, buf: &[u8], src: SocketAddr, waited: Duration, now: Instant) {
        self.rx_wait = waited;
        self.handle_datagram(buf, src, Protocol::Udp, now);
        self.rx_wait = Duration::ZERO;
    }

    pub(crate) fn handle_datagram(&mut self, buf: &[u8], src: SocketAddr, proto: Protocol, now: Instant) {
        let Ok(recv) = Receive::new(proto, src, self.dest, buf) else {
            self.garbage += 1;
            return;
        };
        let input = Input::Receive(now, recv);
        let id = match self.router.by_addr(src) {
            Some(id) if self.peers.get(&id).is_some_and(|p| p.rtc.accepts(&input)) => id,
            _ => {
                match self.router.by_stun(buf).filter(|id| self.peers.get(id).is_some_and(|p| p.rtc.accepts(&input))) {
                    Some(id) => {
                        self.router.learn(src, id);
                        id
                    }
                    None => {
                        tracing::trace!(%src, len = buf.len(), "datagram matches no peer");
                        self.garbage += 1;
                        return;
                    }
                }
            }
        };
        let Some(p) = self.peers.get_mut(&id) else { return };
        p.last_rx = now;
        p.counters.packets_in += 1;
        p.counters.bytes_in += buf.len() as u64;
        if let Err(e) = p.rtc.handle_input(input) {
            // Before the handshake completes an error is fatal (e.g. DTLS failed); afterwards a bad
            // datagram (possibly spoofed) must not cost the peer its call.
            tracing::trace!(parent: &p.span, error = %e, "input rejected");
            p.counters.dropped_errors += 1;
            if !p.connected {
                p.rtc.disconnect();
            }
        }
        self.drain(id, now);
        self.forward_pending(now);
    }

    /// Drains one peer and notes its death.
    pub fn drain(&mut self, id: PeerId, now: Instant) {
        self.drain_peer(id, now, false)
    }

    /// Drains a peer that was written to ([`Peer::drain_written`]), or had its timeout handled.
    fn drain_peer(&mut self, id: PeerId, now: Instant, written: bool) {
        let Some(p) = self.peers.get_mut(&id) else { return };
        let mut io =
            Io { outbox: &mut self.outbox, timers: &mut self.timers, events: &self.events, pending: &mut self.pending };
        if written {
            p.drain_written(&mut io, now);
        } else {
            p.drain(&mut io, now);
        }
        if !p.rtc.is_alive() {
            self.gone.push((id, if p.closed { GoneReason::Closed } else { GoneReason::Failed }));
        }
    }

    /// Marks a peer that was written to; [`Engine::flush`] drains it.
    pub fn mark_dirty(&mut self, id: PeerId) {
        if let Some(p) = self.peers.get_mut(&id)
            && !std::mem::replace(&mut p.dirty, true)
        {
            self.dirty.push(id);
        }
    }

    /// Drains every peer written to since the last flush and sends all queued datagrams. Called
    /// after each datagram (every few under a backlog) and before the engine sleeps.
    pub(crate) fn flush(&mut self, now: Instant) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for id in dirty.drain(..) {
            if let Some(p) = self.peers.get_mut(&id) {
                p.dirty = false;
            }
            self.drain_peer(id, now, true);
        }
        self.dirty = dirty;
        if !self.tcp.is_empty() {
            self.send_tcp();
        }
        if self.outbox.is_empty() {
            return;
        }
        let peers = &mut self.peers;
        udp::send_all(&self.socket, &mut self.outbox, |o| {
            if let Some(p) = peers.get_mut(&o.peer) {
                p.counters.packets_out -= 1;
                p.counters.bytes_out -= o.data.len() as u64;
                p.counters.dropped_errors += 1;
            }
        });
        let sent = Instant::now();
        for t in self.copy_times.drain(..) {
            self.forward_latency.record(sent.saturating_duration_since(t));
        }
    }

    pub(crate) fn run_timers(&mut self, now: Instant) {
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(p) = self.peers.get_mut(&id) else { continue };
            if p.scheduled != Some(t) {
                continue; // superseded by an earlier entry
            }
            p.scheduled = None;
            if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(parent: &p.span, error = %e, "timeout handling failed");
                p.rtc.disconnect();
            }
            self.drain(id, now);
        }
        self.forward_pending(now);
        self.run_mixers(now);
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.housekeeping(now);
        }
    }
}

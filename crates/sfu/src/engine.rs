//! The engine task: one UDP socket, every peer's `Rtc`, the rooms. Commands arrive from [`Sfu`]
//! handles; datagrams are demultiplexed to peers; each peer's str0m timeout is honoured through
//! one timer heap, so nothing per packet or per wake-up walks all peers.
//!
//! [`Sfu`]: crate::Sfu

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::Input;
use str0m::media::MediaData;
use str0m::net::{Protocol, Receive};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tracing::Span;

use crate::demux::Router;
use crate::offer::Prepared;
use crate::peer::{Io, Peer, Timers};
use crate::room::Room;
use crate::speaker::SpeakerEvent;
use crate::stats::{Counters, SfuStats};
use crate::{GoneReason, PeerId, RoomId, SfuConfig, SfuError, SfuEvent};

/// Housekeeping: peer timeouts, speaker hangovers.
const TICK: Duration = Duration::from_millis(50);
/// Datagrams read per wake-up before timers get a look in.
const READ_BATCH: usize = 64;

pub(crate) enum Cmd {
    Add { room: RoomId, peer: PeerId, prepared: Box<Prepared>, reply: oneshot::Sender<Result<(), SfuError>> },
    Remove(PeerId),
    Mute(PeerId, bool),
    Stats(oneshot::Sender<SfuStats>),
    Shutdown,
}

pub(crate) struct RoomState {
    pub room: Room,
    /// Counters of members who left, so room totals do not shrink.
    pub departed: Counters,
    pub span: Span,
}

pub(crate) struct Engine {
    pub cfg: SfuConfig,
    pub socket: Arc<UdpSocket>,
    /// Our host candidate: the `destination` of every `Receive`.
    pub dest: SocketAddr,
    pub router: Router,
    pub peers: HashMap<PeerId, Peer>,
    pub rooms: HashMap<RoomId, RoomState>,
    pub timers: Timers,
    pub events: UnboundedSender<SfuEvent>,
    pub media: VecDeque<(PeerId, MediaData)>,
    pub gone: Vec<(PeerId, GoneReason)>,
    pub garbage: u64,
    next_tick: Instant,
    pub next_assign: Instant,
    // Scratch buffers reused on the hot path.
    pub targets: Vec<(PeerId, usize, u64)>,
    pub speaker_events: Vec<SpeakerEvent<PeerId>>,
    pub changed: Vec<PeerId>,
}

enum Wake {
    Cmd(Option<Cmd>),
    Udp(std::io::Result<(usize, SocketAddr)>),
    Timer,
}

impl Engine {
    pub fn new(cfg: SfuConfig, socket: UdpSocket, dest: SocketAddr, events: UnboundedSender<SfuEvent>) -> Self {
        let now = Instant::now();
        Engine {
            cfg,
            socket: Arc::new(socket),
            dest,
            router: Router::default(),
            peers: HashMap::new(),
            rooms: HashMap::new(),
            timers: Timers::new(),
            events,
            media: VecDeque::new(),
            gone: Vec::new(),
            garbage: 0,
            next_tick: now,
            next_assign: now,
            targets: Vec::new(),
            speaker_events: Vec::new(),
            changed: Vec::new(),
        }
    }

    pub async fn run(mut self, mut cmds: UnboundedReceiver<Cmd>) {
        let socket = self.socket.clone();
        let mut buf = vec![0u8; 2048];
        let sleep = tokio::time::sleep_until(Instant::now().into());
        tokio::pin!(sleep);
        loop {
            let now = Instant::now();
            self.run_timers(now);
            let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
            let deadline = next_timer.map_or(self.next_tick, |t| t.min(self.next_tick));
            sleep.as_mut().reset(deadline.into());
            let wake = tokio::select! {
                biased;
                c = cmds.recv() => Wake::Cmd(c),
                r = socket.recv_from(&mut buf) => Wake::Udp(r),
                _ = &mut sleep => Wake::Timer,
            };
            match wake {
                Wake::Cmd(None | Some(Cmd::Shutdown)) => break,
                Wake::Cmd(Some(c)) => self.command(c),
                Wake::Udp(r) => {
                    let mut r = r;
                    for _ in 0..READ_BATCH {
                        match r {
                            Ok((n, src)) => self.datagram(&buf[..n], src, Instant::now()),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) => tracing::debug!(error = %e, "udp receive failed"),
                        }
                        r = socket.try_recv_from(&mut buf);
                    }
                }
                Wake::Timer => {}
            }
            self.reap(Instant::now());
        }
        for (_, mut p) in self.peers.drain() {
            let _ = p.rtc.close();
            p.drain(
                &mut Io { socket: &socket, timers: &mut self.timers, events: &self.events, media: &mut self.media },
                Instant::now(),
            );
        }
        tracing::info!("sfu stopped");
    }

    fn command(&mut self, c: Cmd) {
        let now = Instant::now();
        match c {
            Cmd::Add { room, peer, prepared, reply } => {
                let _ = reply.send(self.add(room, peer, *prepared, now));
            }
            Cmd::Remove(peer) => self.remove(peer, None, now),
            Cmd::Mute(peer, muted) => {
                let Some(room) = self.peers.get(&peer).map(|p| p.room) else { return };
                if let Some(r) = self.rooms.get_mut(&room)
                    && r.room.set_muted(peer, muted, now)
                {
                    tracing::debug!(parent: &r.span, peer, muted, "mute");
                    self.after_room_change(room, None);
                }
            }
            Cmd::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            Cmd::Shutdown => {}
        }
    }

    fn datagram(&mut self, buf: &[u8], src: SocketAddr, now: Instant) {
        let Ok(recv) = Receive::new(Protocol::Udp, src, self.dest, buf) else {
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
        let Some(p) = self.peers.get_mut(&id) else { return };
        let mut io =
            Io { socket: &self.socket, timers: &mut self.timers, events: &self.events, media: &mut self.media };
        p.drain(&mut io, now);
        if !p.rtc.is_alive() {
            self.gone.push((id, if p.closed { GoneReason::Closed } else { GoneReason::Failed }));
        }
    }

    fn run_timers(&mut self, now: Instant) {
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
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.housekeeping(now);
        }
    }
}

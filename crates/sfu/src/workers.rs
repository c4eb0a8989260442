//! The engine on every core: `workers` threads, each with its own engine loop, UDP socket (and
//! ICE-TCP listener) on its own port: the bound port for the first, the next ports upward for the
//! others (port 0: each a free one). All peers of a room live on one worker (forwarding never
//! crosses threads); a new room, an ingest or a feed goes to the least-loaded worker, a WHEP
//! viewer to its source's. One port per worker rather than `SO_REUSEPORT`: the kernel's
//! reuseport hash spreads by source address, so a room's peers would land on different sockets,
//! and steering them back needs a BPF program; distinct ports cost the firewall a range instead.
//!
//! [`Placement`] is the sans-IO bookkeeping; [`spawn`] starts one worker; [`merge`] adds the
//! workers' stats up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use str0m::Candidate;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::engine::{Cmd, Engine};
use crate::histogram::LatencySummary;
use crate::{Mixers, PeerId, RoomId, RoomStats, SfuConfig, SfuEvent, SfuStats, tcp, udp};

/// One running worker, as the handle reaches it.
pub(crate) struct Worker {
    pub cmds: mpsc::UnboundedSender<Cmd>,
    pub local: SocketAddr,
    pub advertised: SocketAddr,
    /// The host candidates its answers carry: UDP, and passive TCP with `ice_tcp`.
    pub candidates: Vec<Candidate>,
}

/// Binds worker `i`'s sockets and starts its thread; its events go to `events`.
pub(crate) fn spawn(
    i: usize,
    cfg: &SfuConfig,
    mixers: Option<Arc<dyn Mixers>>,
    events: mpsc::UnboundedSender<SfuEvent>,
) -> std::io::Result<Worker> {
    use std::io::{Error, ErrorKind};
    let mut bind = cfg.bind;
    if bind.port() != 0 {
        let port = u16::try_from(usize::from(bind.port()) + i).map_err(|_| {
            Error::new(ErrorKind::InvalidInput, format!("no port {} + {i} for worker {i}", bind.port()))
        })?;
        bind.set_port(port);
    }
    let (socket, listener) = tcp::bind_both(bind, cfg.ice_tcp)?;
    socket.set_nonblocking(true)?;
    udp::size_buffers(&socket);
    udp::stamp_arrivals(&socket);
    let local = socket.local_addr()?;
    let advertised = SocketAddr::new(cfg.public_ip.unwrap_or(local.ip()), local.port());
    // str0m drops STUN whose destination is not a local candidate, so this one address is both.
    let unadvertisable =
        |e| Error::new(ErrorKind::InvalidInput, format!("{advertised} cannot be advertised (set public_ip): {e}"));
    let mut candidates = vec![Candidate::host(advertised, "udp").map_err(unadvertisable)?];
    if listener.is_some() {
        let passive = Candidate::builder().tcp().host(advertised).tcptype(str0m::net::TcpType::Passive);
        candidates.push(passive.build().map_err(unadvertisable)?);
    }
    let (cmds, cmd_rx) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cfg = cfg.clone();
    std::thread::Builder::new().name(format!("sfu-engine-{i}")).spawn(move || {
        runtime.block_on(async move {
            let socket = match UdpSocket::from_std(socket) {
                Ok(socket) => socket,
                Err(e) => return tracing::error!(error = %e, "sfu socket"),
            };
            let mut engine = Engine::new(cfg, socket, advertised, events, mixers);
            if let Some(l) = listener.and_then(|l| tokio::net::TcpListener::from_std(l).ok()) {
                let (tx, rx) = mpsc::channel(tcp::EVENT_QUEUE);
                engine.tcp_rx = Some(rx);
                tokio::spawn(tcp::accept(l, tx));
            }
            engine.run(cmd_rx).await
        })
    })?;
    tracing::info!(worker = i, %local, %advertised, "sfu worker started");
    Ok(Worker { cmds, local, advertised, candidates })
}

/// Which worker holds each room, peer and feed (sans-IO).
#[derive(Debug)]
pub(crate) struct Placement {
    /// Room → (worker, peers in it).
    rooms: HashMap<RoomId, (usize, usize)>,
    /// Peer or feed → (worker, its room).
    ids: HashMap<PeerId, (usize, Option<RoomId>)>,
    /// Peers and feeds per worker.
    load: Vec<usize>,
}

impl Placement {
    pub fn new(workers: usize) -> Placement {
        Placement { rooms: HashMap::new(), ids: HashMap::new(), load: vec![0; workers.max(1)] }
    }

    /// The worker with the fewest peers (the lowest index among equals).
    pub fn least_loaded(&self) -> usize {
        (0..self.load.len()).min_by_key(|&w| (self.load[w], w)).unwrap_or(0)
    }

    /// `room`'s worker: where it is, or (a new room) the least-loaded one, reserved at once so a
    /// second peer joining meanwhile lands beside the first.
    pub fn for_room(&mut self, room: RoomId) -> usize {
        let least = self.least_loaded();
        self.rooms.entry(room).or_insert((least, 0)).0
    }

    /// `id` now lives on `worker` (in `room`).
    pub fn add(&mut self, id: PeerId, worker: usize, room: Option<RoomId>) {
        self.remove(id);
        self.ids.insert(id, (worker, room));
        self.load[worker] += 1;
        if let Some(r) = room {
            self.rooms.entry(r).or_insert((worker, 0)).1 += 1;
        }
    }

    pub fn worker_of(&self, id: PeerId) -> Option<usize> {
        self.ids.get(&id).map(|(w, _)| *w)
    }

    /// `id` is gone; a room left empty is forgotten (its next peer may go elsewhere).
    pub fn remove(&mut self, id: PeerId) {
        let Some((w, room)) = self.ids.remove(&id) else { return };
        self.load[w] = self.load[w].saturating_sub(1);
        if let Some(r) = room
            && let Some(entry) = self.rooms.get_mut(&r)
        {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                self.rooms.remove(&r);
            }
        }
    }

    /// A room reserved by [`Placement::for_room`] whose first peer did not make it.
    pub fn release_room(&mut self, room: RoomId) {
        if self.rooms.get(&room).is_some_and(|(_, n)| *n == 0) {
            self.rooms.remove(&room);
        }
    }
}

/// The workers' snapshots as one.
pub(crate) fn merge(parts: Vec<SfuStats>) -> SfuStats {
    let mut out = SfuStats::default();
    let mut latencies = Vec::with_capacity(parts.len());
    for (worker, p) in parts.into_iter().enumerate() {
        out.peers.extend(p.peers);
        out.rooms.extend(p.rooms.into_iter().map(|r| RoomStats { worker, ..r }));
        out.garbage_datagrams += p.garbage_datagrams;
        out.totals += p.totals;
        latencies.push(p.forward_latency);
    }
    out.peers.sort_by_key(|p| p.peer);
    out.rooms.sort_by_key(|r| r.room);
    out.forward_latency = LatencySummary::merge(&latencies);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_stay_together_and_spread_by_load() {
        let mut p = Placement::new(2);
        let a = p.for_room(10);
        p.add(1, a, Some(10));
        assert_eq!(p.for_room(10), a, "a room's peers share a worker");
        p.add(2, a, Some(10));
        let b = p.for_room(20);
        assert_ne!(a, b, "a new room goes to the less loaded worker");
        p.add(3, b, Some(20));
        p.remove(1);
        p.remove(2);
        assert_eq!(p.for_room(10), a, "an empty room was forgotten; worker {a} is now the lighter");
        p.release_room(10);
        assert!(!p.rooms.contains_key(&10));
        assert_eq!(p.worker_of(3), Some(b));
        p.remove(3);
        assert_eq!((p.load.iter().sum::<usize>(), p.rooms.len(), p.ids.len()), (0, 0, 0));
    }
}

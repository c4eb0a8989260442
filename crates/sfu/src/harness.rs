//! For benchmarks and profiling: the engine's forwarding path driven by hand, in one thread. Not
//! part of the API (hidden from the docs).
//!
//! [`ForwardHarness::new`] builds an engine that is not spawned, connects one source and N
//! listeners (str0m clients on loopback sockets, real ICE and DTLS), then has the source encrypt a
//! supply of audio packets without sending them. [`ForwardHarness::forward_one`] hands the next
//! one to the engine exactly as its socket loop would: SRTP decrypt, route, write into each
//! listener's slot, SRTP encrypt, `sendto` (the listeners never read; the kernel drops the
//! copies). Only the `recvfrom` of the incoming packet is left out.
//!
//! [`ForwardHarness::rooms`] loads it as the end-to-end benchmark does: many rooms where
//! everyone speaks and hears the others. [`ForwardHarness::video`] does the same for a camera in an `sfu` room: the source sends VP8
//! keyframes of [`VIDEO_FRAME`] bytes (three packets each), every listener has one video slot.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::sync::mpsc;

use crate::engine::Engine;
use crate::{PeerOptions, SfuConfig, SfuEvent};

/// One str0m client on its own loopback socket.
struct Client {
    rtc: Rtc,
    socket: StdSocket,
    addr: SocketAddr,
    mic: Mid,
    camera: Option<Mid>,
    connected: bool,
}

/// The size of the harness camera's frames: three packets at str0m's payload budget.
pub const VIDEO_FRAME: usize = 2500;

pub struct ForwardHarness {
    engine: Engine,
    events: mpsc::UnboundedReceiver<SfuEvent>,
    /// The clients that send: one, or (in [`Self::rooms`]) every client.
    sources: Vec<Client>,
    listeners: Vec<Client>,
    /// Prepared datagrams and who sent each.
    packets: VecDeque<(Vec<u8>, SocketAddr)>,
    frame: u64,
    /// The source that prepares next (round robin).
    next: usize,
}

/// What a harness builds: `rooms` rooms of `per_room` clients, each offering `slots` receive audio
/// m-lines; in each room the first client sends (or every client does).
struct Shape {
    rooms: usize,
    per_room: usize,
    slots: usize,
    video: bool,
    all_send: bool,
}

impl ForwardHarness {
    /// A room of one source and `listeners` listeners, every one connected; takes a few hundred
    /// milliseconds. Async only so the runtime's reactor sees the engine's socket become ready:
    /// afterwards the harness is driven synchronously (inside the same runtime's context).
    pub async fn new(listeners: usize) -> std::io::Result<ForwardHarness> {
        Self::build(Shape { rooms: 1, per_room: listeners + 1, slots: 1, video: false, all_send: false }).await
    }

    /// As [`Self::new`], each listener offering `slots` receive audio m-lines (a room's shape: a
    /// client hears up to last-N others), one of them carrying the source.
    pub async fn with_slots(listeners: usize, slots: usize) -> std::io::Result<ForwardHarness> {
        Self::build(Shape { rooms: 1, per_room: listeners + 1, slots: slots.max(1), video: false, all_send: false })
            .await
    }

    /// `rooms` rooms of `per_room` clients where everyone speaks and hears the others (each with
    /// `per_room - 1` slots), as the end-to-end benchmark loads the server: the same path across
    /// many more `Rtc`s. Prepared packets come from every client in turn.
    pub async fn rooms(rooms: usize, per_room: usize) -> std::io::Result<ForwardHarness> {
        let per_room = per_room.max(2);
        Self::build(Shape { rooms, per_room, slots: per_room - 1, video: false, all_send: true }).await
    }

    /// A room in `sfu` mode whose source sends camera frames (and nothing on its microphone),
    /// each listener with one video slot. Prepared packets are the frames' packets, in order.
    pub async fn video(listeners: usize) -> std::io::Result<ForwardHarness> {
        let mut h =
            Self::build(Shape { rooms: 1, per_room: listeners + 1, slots: 1, video: true, all_send: false }).await?;
        h.engine.set_camera(1, true, Instant::now());
        while h.events.try_recv().is_ok() {}
        Ok(h)
    }

    async fn build(shape: Shape) -> std::io::Result<ForwardHarness> {
        let Shape { rooms, per_room, slots, video, all_send } = shape;
        let cfg = SfuConfig { last_n: (per_room - 1).max(1), max_peers: rooms * per_room + 8, ..SfuConfig::default() };
        let socket = tokio::net::UdpSocket::from_std({
            let s = StdSocket::bind("127.0.0.1:0")?;
            s.set_nonblocking(true)?;
            s
        })?;
        let dest = socket.local_addr()?;
        let (tx, events) = mpsc::unbounded_channel();
        let mut engine = Engine::new(cfg, socket, dest, tx, None);
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto.dtls_provider.generate_certificate().ok_or_else(|| std::io::Error::other("no cert"))?;
        let candidate = Candidate::host(dest, "udp").map_err(std::io::Error::other)?;
        let (mut sources, mut listeners) = (Vec::new(), Vec::new());
        for n in 0..rooms * per_room {
            let (id, room, first) = (n as u64 + 1, (n / per_room) as u64 + 1, n % per_room == 0);
            let socket = StdSocket::bind("127.0.0.1:0")?;
            socket.set_nonblocking(true)?;
            let addr = socket.local_addr()?;
            let mut rtc = Rtc::new(Instant::now());
            rtc.add_local_candidate(Candidate::host(addr, "udp").map_err(std::io::Error::other)?);
            let mut api = rtc.sdp_api();
            let mic = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
            for _ in 0..slots {
                api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
            }
            let camera =
                (video && first).then(|| api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
            if video && !first {
                api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
            }
            let (offer, pending) = api.apply().ok_or_else(|| std::io::Error::other("no offer"))?;
            let prepared = crate::offer::prepare(
                id,
                &offer.to_sdp_string(),
                &crypto,
                &cert,
                std::slice::from_ref(&candidate),
                (slots, usize::from(video), 0),
                if video { crate::MediaMode::Sfu } else { crate::MediaMode::Hybrid },
            )
            .map_err(std::io::Error::other)?;
            let answer = SdpAnswer::from_sdp_string(&prepared.answer).map_err(std::io::Error::other)?;
            rtc.sdp_api().accept_answer(pending, answer).map_err(std::io::Error::other)?;
            let opts = PeerOptions {
                mode: if video { crate::MediaMode::Sfu } else { crate::MediaMode::Hybrid },
                ..PeerOptions::default()
            };
            engine.add(room, id, prepared, opts, Instant::now()).map_err(std::io::Error::other)?;
            let c = Client { rtc, socket, addr, mic, camera, connected: false };
            if first || all_send { sources.push(c) } else { listeners.push(c) }
        }
        let mut h = ForwardHarness { engine, events, sources, listeners, packets: VecDeque::new(), frame: 0, next: 0 };
        h.connect().await?;
        Ok(h)
    }

    /// Pumps datagrams between the clients and the engine until everyone is connected.
    async fn connect(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = vec![0u8; 2048];
        while !self.sources.iter().chain(&self.listeners).all(|c| c.connected) {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("clients did not connect"));
            }
            let now = Instant::now();
            for c in self.sources.iter_mut().chain(self.listeners.iter_mut()) {
                c.pump(self.engine.dest, &mut buf, now)?;
            }
            while let Ok((n, src)) = self.engine.socket.try_recv_from(&mut buf) {
                self.engine.datagram(&buf[..n], src, Instant::now());
            }
            self.engine.run_timers(Instant::now());
            self.engine.flush(Instant::now());
            while self.events.try_recv().is_ok() {}
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Has the source (the sources, in turn) encrypt `n` more 20 ms Opus-sized packets (~100 bytes
    /// of payload), or (a [`Self::video`] harness) camera frames until `n` more packets are
    /// prepared.
    pub fn prepare(&mut self, n: usize) {
        let target = self.packets.len() + n;
        // Bounded: a source that stops sending (it never should) must not hang a benchmark.
        for _ in 0..=n {
            if self.packets.len() >= target {
                return;
            }
            let i = self.next % self.sources.len();
            self.next = self.next.wrapping_add(1);
            let c = &mut self.sources[i];
            let written = match c.camera {
                Some(camera) => c.rtc.writer(camera).and_then(|w| {
                    let pt = w.payload_params().find(|p| p.spec().codec == Codec::Vp8)?.pt();
                    let time = MediaTime::new(self.frame * 3000, Frequency::NINETY_KHZ);
                    w.write(pt, Instant::now(), time, vp8_keyframe()).ok()
                }),
                None => c.rtc.writer(c.mic).and_then(|w| {
                    let pt = w.payload_params().find(|p| p.spec().codec == Codec::Opus)?.pt();
                    let time = MediaTime::new(self.frame * 960, Frequency::FORTY_EIGHT_KHZ);
                    w.audio_level(-30, true).write(pt, Instant::now(), time, vec![0x78u8; 100]).ok()
                }),
            };
            if written.is_none() {
                return;
            }
            self.frame += 1;
            // Media goes out on the next timeout handling (str0m's pacer), as in a real client.
            let _ = c.rtc.handle_input(Input::Timeout(Instant::now()));
            while let Ok(out) = c.rtc.poll_output() {
                match out {
                    Output::Transmit(t) if t.destination == self.engine.dest => {
                        self.packets.push_back((t.contents.to_vec(), c.addr))
                    }
                    Output::Timeout(_) => break,
                    _ => {}
                }
            }
        }
    }

    /// Packets prepared and not yet forwarded.
    pub fn prepared(&self) -> usize {
        self.packets.len()
    }

    /// Forwards the next prepared packet; returns the datagrams the engine sent for it.
    pub fn forward_one(&mut self) -> u64 {
        self.forward_batch(1)
    }

    /// Forwards the next `n` prepared packets as one read batch of the engine's loop (each
    /// listener is drained once for the lot); returns the datagrams sent.
    pub fn forward_batch(&mut self, n: usize) -> u64 {
        let before = self.sent();
        for _ in 0..n {
            let Some((p, from)) = self.packets.pop_front() else { break };
            self.engine.datagram(&p, from, Instant::now());
        }
        self.engine.flush(Instant::now());
        self.sent() - before
    }

    /// For the UDP fuzz test: `datagram` handed to the engine as if it came from `from` (`None`:
    /// the source's own address), with its timers and writes run after it.
    pub fn inject(&mut self, datagram: &[u8], from: Option<SocketAddr>) {
        let now = Instant::now();
        self.engine.datagram(datagram, from.unwrap_or(self.sources[0].addr), now);
        self.engine.run_timers(now);
        self.engine.flush(now);
    }

    /// A copy of prepared packet `i` (real SRTP from the source), left in place.
    pub fn sample(&self, i: usize) -> Option<Vec<u8>> {
        self.packets.get(i).map(|(p, _)| p.clone())
    }

    /// Datagrams that matched no peer, and peers still connected.
    pub fn garbage(&self) -> u64 {
        self.engine.garbage
    }

    /// Audio frames written to listeners so far (copies, whatever else the engine sent).
    pub fn frames_out(&self) -> u64 {
        self.engine.peers.values().map(|p| p.counters.frames_out).sum()
    }

    pub fn connected(&self) -> usize {
        self.engine.peers.values().filter(|p| p.connected).count()
    }

    fn sent(&self) -> u64 {
        self.engine.peers.values().map(|p| p.counters.packets_out).sum()
    }

    /// The engine's forwarding-latency percentiles so far.
    pub fn latency(&self) -> crate::histogram::LatencySummary {
        self.engine.forward_latency.summary()
    }
}

/// A VP8 keyframe of [`VIDEO_FRAME`] bytes: a real frame tag and header (RFC 6386 §9.1, 64x64),
/// then filler.
fn vp8_keyframe() -> Vec<u8> {
    let tag = (8u32 << 5) | (1 << 4);
    let mut f = tag.to_le_bytes()[..3].to_vec();
    f.extend_from_slice(&[0x9d, 0x01, 0x2a, 64, 0, 64, 0]);
    f.resize(VIDEO_FRAME, 0x5a);
    f
}

impl Client {
    fn pump(&mut self, server: SocketAddr, buf: &mut [u8], now: Instant) -> std::io::Result<()> {
        while let Ok((n, src)) = self.socket.recv_from(buf) {
            if let Ok(r) = Receive::new(Protocol::Udp, src, self.addr, &buf[..n]) {
                let _ = self.rtc.handle_input(Input::Receive(now, r));
            }
        }
        let _ = self.rtc.handle_input(Input::Timeout(now));
        while let Ok(out) = self.rtc.poll_output() {
            match out {
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, server);
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_prepared_packet_is_forwarded_to_every_listener() {
        let mut h = ForwardHarness::new(3).await.unwrap();
        h.prepare(20);
        assert!(h.prepared() >= 20, "{}", h.prepared());
        let copies: u64 = (0..20).map(|_| h.forward_one()).sum();
        let c: Vec<_> = h.engine.peers.values().map(|p| (p.id, p.connected, p.counters)).collect();
        assert!(copies >= 60, "{copies} copies {c:?}");
        assert!(h.latency().count >= 60);
    }

    /// Under a backlog the engine drains each listener once for several frames: all of them must
    /// leave then, not one per drain with the rest waiting for the peer's next timer (as copies
    /// written through str0m's `Writer` did: its payloader takes one frame per timeout handling).
    #[tokio::test]
    async fn a_listener_drained_once_for_four_frames_sends_all_four() {
        let mut h = ForwardHarness::new(3).await.unwrap();
        h.prepare(16);
        let sent: Vec<u64> = (0..4).map(|_| h.forward_batch(4)).collect();
        // The first drain may carry an RTCP report besides the copies.
        assert!(sent.iter().all(|&n| n >= 12), "{sent:?}");
    }

    /// Everyone speaks in rooms of three: each packet reaches the two others of its room.
    #[tokio::test]
    async fn in_rooms_every_packet_reaches_the_others_of_its_room() {
        let mut h = ForwardHarness::rooms(2, 3).await.unwrap();
        h.prepare(24);
        let copies: u64 = (0..24).map(|_| h.forward_one()).sum();
        assert!(h.frames_out() >= 48, "frames written: {}", h.frames_out());
        assert!(copies >= 48, "packets sent: {copies}");
    }

    /// A camera frame is three packets; each listener gets all three, from one packetising.
    #[tokio::test]
    async fn every_packet_of_a_camera_frame_reaches_every_listener() {
        let mut h = ForwardHarness::video(3).await.unwrap();
        h.prepare(30);
        let copies: u64 = (0..10).map(|_| h.forward_batch(3)).sum();
        let video_out: u64 = h.engine.peers.values().map(|p| p.counters.video_frames_out).sum();
        assert!(video_out >= 27, "frames written to listeners: {video_out}");
        assert!(copies >= 81, "packets sent: {copies}");
    }
}

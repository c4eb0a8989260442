//! ICE over TCP (RFC 6544) on the media port, for clients whose network passes no UDP at all: a
//! passive TCP host candidate beside the UDP one, at the same address and port number. Each
//! connection carries the peer's STUN, DTLS and SRTP as RFC 4571 frames (a 16-bit big-endian
//! length, then the datagram); its task turns frames into [`TcpEvent`]s for the engine and writes
//! what the engine queues for it. The engine feeds the frames to str0m as `Protocol::Tcp` input,
//! so everything above the socket is the same as for UDP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

/// Connection events queued towards the engine.
pub const EVENT_QUEUE: usize = 4096;

/// Binds the UDP socket and, with `tcp`, a TCP listener on the same address and port number. With
/// port 0 the UDP port is picked first; if its TCP twin is taken, another pair is tried.
pub fn bind_both(addr: SocketAddr, tcp: bool) -> std::io::Result<(std::net::UdpSocket, Option<std::net::TcpListener>)> {
    for _ in 0..8 {
        let udp = std::net::UdpSocket::bind(addr)?;
        if !tcp {
            return Ok((udp, None));
        }
        match std::net::TcpListener::bind(udp.local_addr()?) {
            Ok(l) => {
                l.set_nonblocking(true)?;
                return Ok((udp, Some(l)));
            }
            Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no UDP and TCP port pair free"))
}

/// Connections at once; more are closed as they are accepted.
pub const MAX_CONNECTIONS: usize = 4096;
/// A connection that carries nothing this long is closed (ICE consent checks arrive every few
/// seconds on a live one).
const IDLE: Duration = Duration::from_secs(30);
/// A connection must carry its first frame (the client's first ICE check) this soon: idle
/// connections cannot hold the slots of [`MAX_CONNECTIONS`] for long.
const FIRST_FRAME: Duration = Duration::from_secs(5);
/// Frames queued towards one connection; more are dropped (as a full UDP buffer would).
const OUT_QUEUE: usize = 512;
/// Largest frame accepted: a datagram the engine could get over UDP.
const MAX_FRAME: usize = 2048;

/// What connections tell the engine.
#[derive(Debug)]
pub enum TcpEvent {
    /// A connection from `from`; frames for it go to the sender.
    Open(SocketAddr, mpsc::Sender<Vec<u8>>),
    Frame(SocketAddr, Vec<u8>),
    Closed(SocketAddr),
}

/// RFC 4571 framing, sans-IO: bytes in, whole frames out.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    /// Appends `bytes`; returns the frames now complete, or an error for a frame over
    /// [`MAX_FRAME`] (the connection is then closed: nothing after it can be trusted).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, usize> {
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut at = 0;
        while self.buf.len() - at >= 2 {
            let len = usize::from(u16::from_be_bytes([self.buf[at], self.buf[at + 1]]));
            if len > MAX_FRAME {
                return Err(len);
            }
            if self.buf.len() - at - 2 < len {
                break;
            }
            frames.push(self.buf[at + 2..at + 2 + len].to_vec());
            at += 2 + len;
        }
        self.buf.drain(..at);
        Ok(frames)
    }
}

/// `data` with its RFC 4571 length prefix (`None` if it cannot be framed).
pub fn frame(data: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(data.len()).ok()?;
    let mut out = Vec::with_capacity(data.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    Some(out)
}

/// Accepts connections until the engine goes (its receiver dropped).
pub async fn accept(listener: TcpListener, events: mpsc::Sender<TcpEvent>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if events.is_closed() {
            return;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%from, "ICE-TCP connections at their limit; closing a new one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let events = events.clone();
        tokio::spawn(async move {
            connection(stream, from, events).await;
            drop(permit);
        });
    }
}

async fn connection(mut stream: TcpStream, from: SocketAddr, events: mpsc::Sender<TcpEvent>) {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(OUT_QUEUE);
    if events.send(TcpEvent::Open(from, tx)).await.is_err() {
        return;
    }
    let (mut deframer, mut buf) = (Deframer::default(), vec![0u8; 4096]);
    let mut idle = FIRST_FRAME;
    loop {
        tokio::select! {
            read = tokio::time::timeout(idle, stream.read(&mut buf)) => {
                let n = match read {
                    Ok(Ok(n)) if n > 0 => n,
                    _ => break,
                };
                let Ok(frames) = deframer.push(&buf[..n]) else { break };
                if !frames.is_empty() {
                    idle = IDLE;
                }
                for f in frames {
                    if events.send(TcpEvent::Frame(from, f)).await.is_err() {
                        return;
                    }
                }
            }
            out = rx.recv() => match out {
                Some(framed) => {
                    if stream.write_all(&framed).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    let _ = events.send(TcpEvent::Closed(from)).await;
}

impl crate::engine::Engine {
    /// A connection opened, closed or carried a frame.
    pub(crate) fn tcp_event(&mut self, e: TcpEvent, now: std::time::Instant) {
        match e {
            TcpEvent::Open(from, tx) => {
                self.tcp.insert(from, tx);
            }
            TcpEvent::Closed(from) => {
                self.tcp.remove(&from);
            }
            TcpEvent::Frame(from, data) => {
                self.handle_datagram(&data, from, str0m::net::Protocol::Tcp, now);
                self.flush(now);
            }
        }
    }

    /// Moves what the outbox holds for ICE-TCP connections onto them; a full or gone connection
    /// loses the frame, as a full UDP socket would.
    pub(crate) fn send_tcp(&mut self) {
        let (tcp, peers) = (&self.tcp, &mut self.peers);
        self.outbox.retain(|o| {
            if !o.tcp {
                return true;
            }
            let sent = tcp.get(&o.to).zip(frame(&o.data)).is_some_and(|(tx, f)| tx.try_send(f).is_ok());
            if !sent && let Some(p) = peers.get_mut(&o.peer) {
                p.counters.packets_out -= 1;
                p.counters.bytes_out -= o.data.len() as u64;
                p.counters.dropped_errors += 1;
            }
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_across_reads_and_refuses_giants() {
        let mut d = Deframer::default();
        let mut wire = frame(b"hello").unwrap();
        wire.extend(frame(b"").unwrap());
        wire.extend(frame(&[7u8; 300]).unwrap());
        let (a, b) = wire.split_at(4);
        assert!(d.push(a).unwrap().is_empty());
        let frames = d.push(b).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!((frames[0].as_slice(), frames[1].len(), frames[2].len()), (&b"hello"[..], 0, 300));
        assert_eq!(d.push(&[0xff, 0xff]), Err(0xffff));
        assert!(frame(&vec![0u8; 70_000]).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(
            std::env::var("CONFAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
        ))]

        /// Frames survive any split into reads; noise never panics nor piles up past one frame.
        #[test]
        fn any_split_and_any_noise(
            frames in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..8),
            cuts in proptest::collection::vec(1usize..64, 1..8),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
        ) {
            let wire: Vec<u8> = frames.iter().flat_map(|f| frame(f).unwrap()).collect();
            let (mut d, mut got, mut at, mut i) = (Deframer::default(), Vec::new(), 0, 0);
            while at < wire.len() {
                let n = cuts[i % cuts.len()].min(wire.len() - at);
                got.extend(d.push(&wire[at..at + n]).unwrap());
                (at, i) = (at + n, i + 1);
            }
            proptest::prop_assert_eq!(got, frames);
            let mut d = Deframer::default();
            for chunk in noise.chunks(97) {
                if d.push(chunk).is_err() {
                    break;
                }
                proptest::prop_assert!(d.buf.len() <= MAX_FRAME + 2);
            }
        }
    }
}

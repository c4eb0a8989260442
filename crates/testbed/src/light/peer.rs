//! One light peer: a str0m `Rtc` in RTP mode on its own loopback socket, driven by one tokio task.
//! It sends a pre-encoded packet every 20 ms on its send m-line (if it has one) and counts what
//! arrives on the others without depacketising or decoding it.
//!
//! Each payload starts with [`MAGIC`] and the send time (nanoseconds since the run's epoch), so a
//! receiver in the same process tells the one-way latency of every copy, whatever the server
//! rewrites in the RTP header. The rest of the payload is filler of an Opus packet's size: the
//! servers under test forward it without looking inside.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use str0m::media::{Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo};
use str0m::{Event, Input, Output, Rtc};
use tokio::net::UdpSocket;

use crate::hist::Histogram;

/// Marks a stamped payload.
pub const MAGIC: [u8; 4] = *b"CFLB";
/// An Opus packet of a 20 ms voice frame at ~40 kbit/s.
pub const PAYLOAD_BYTES: usize = 100;
const FRAME: Duration = Duration::from_millis(20);
/// 20 ms at 48 kHz.
const FRAME_TICKS: u32 = 960;

/// This machine's address on its default route (no packet is sent to find it), else loopback:
/// Janus (libnice) gathers no loopback candidates, so its peers meet it there.
pub fn primary_ip() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("192.0.2.1:9")?;
        s.local_addr()
    });
    match probe {
        Ok(a) if !a.ip().is_unspecified() => a.ip(),
        _ => std::net::IpAddr::from([127, 0, 0, 1]),
    }
}

/// The clock every stamp counts from (one per process).
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// What a peer counted; the runner resets it when a measurement window starts.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub sent: u64,
    pub received: u64,
    /// Received packets that carried no stamp (not from a light peer).
    pub unstamped: u64,
    pub latency: Histogram,
    pub connected: bool,
}

pub type Shared = Arc<Mutex<Counts>>;

/// A socket bound on `ip` for a peer, and its address (the peer's host candidate).
pub async fn bind(ip: std::net::IpAddr) -> Result<(UdpSocket, SocketAddr)> {
    let socket = UdpSocket::bind((ip, 0)).await.context("binding a light peer's socket")?;
    let addr = socket.local_addr()?;
    Ok((socket, addr))
}

/// What a peer sends every 20 ms.
#[derive(Clone)]
pub enum Payload {
    /// [`MAGIC`], the send time, filler: for forwarding servers, which never look inside.
    Stamped,
    /// A pre-encoded loop of Opus packets ([`opus_loop`]): for mixing servers, which decode.
    Opus(Arc<Vec<Vec<u8>>>),
}

/// One second of a `hz` tone at -20 dBFS as Opus packets, from a settled encoder.
pub fn opus_loop(hz: f32) -> Result<Arc<Vec<Vec<u8>>>> {
    let mut enc = crate::opus_io::Encoder::new()?;
    let mut tone = crate::tone::ToneGenerator::new(hz.round(), -20.0);
    for _ in 0..10 {
        enc.encode(&tone.next_frame())?;
    }
    let frames = (0..50).map(|_| enc.encode(&tone.next_frame())).collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(frames))
}

/// Runs `rtc` until `stop` fires or the `Rtc` dies: sends `payload` on `send` (its Opus payload
/// type) once connected, starting `phase` into the 20 ms period.
pub async fn run(
    mut rtc: Rtc,
    socket: UdpSocket,
    send: Option<(Mid, Pt, Payload)>,
    phase: Duration,
    counts: Shared,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let mut buf = vec![0u8; 2048];
    let mut payload = vec![0x5au8; PAYLOAD_BYTES];
    payload[..4].copy_from_slice(&MAGIC);
    let mut next_send: Option<Instant> = None;
    let (mut seq, mut time) = (u64::from(rand::random::<u16>() & 0x7fff), rand::random::<u32>());
    let exts = ExtensionValues { audio_level: Some(-30), voice_activity: Some(true), ..Default::default() };
    // One timer, re-armed: a fresh `Sleep` per wake-up was a tenth of a peer's CPU.
    let sleep = tokio::time::sleep_until(Instant::now().into());
    tokio::pin!(sleep);
    loop {
        let timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => on_event(e, &counts, &mut next_send, send.is_some(), phase),
                Err(_) => return,
            }
        };
        if !rtc.is_alive() {
            return;
        }
        let wake = next_send.map_or(timeout, |s| s.min(timeout));
        sleep.as_mut().reset(wake.into());
        tokio::select! {
            r = socket.readable() => {
                if r.is_err() {
                    return;
                }
                while let Ok((n, from)) = socket.try_recv_from(&mut buf) {
                    if let Ok(r) = Receive::new(Protocol::Udp, from, local, &buf[..n]) {
                        let _ = rtc.handle_input(Input::Receive(Instant::now(), r));
                    }
                    drain_events(&mut rtc, &socket, &counts, &mut next_send, send.is_some(), phase);
                }
            }
            _ = &mut sleep => {}
            _ = stop.changed() => return,
        }
        let now = Instant::now();
        let mut wrote = false;
        if let (Some((mid, pt, kind)), Some(at)) = (&send, next_send)
            && now >= at
        {
            let data = match kind {
                Payload::Stamped => {
                    let stamp = now.duration_since(epoch()).as_nanos() as u64;
                    payload[4..12].copy_from_slice(&stamp.to_be_bytes());
                    payload.clone()
                }
                Payload::Opus(frames) => frames[seq as usize % frames.len()].clone(),
            };
            if let Some(stream) = rtc.direct_api().stream_tx_by_mid(*mid, None) {
                let w = RtpWrite::new(*pt, SeqNo::from(seq), time, now, data).ext_vals(exts.clone());
                stream.write_rtp(w);
                wrote = true;
                seq += 1;
                time = time.wrapping_add(FRAME_TICKS);
                lock(&counts).sent += 1;
            }
            // Keep the cadence; after a stall, skip ahead rather than burst.
            let mut next = at + FRAME;
            if next < now {
                next = now + FRAME;
            }
            next_send = Some(next);
        }
        // A timeout pass only when one is due or a write waits for it (str0m sends what was
        // written on its next one): each pass weighs every stream of the `Rtc`.
        if (now >= timeout || wrote) && rtc.handle_input(Input::Timeout(now)).is_err() {
            return;
        }
    }
}

/// Polls events between datagrams of one burst (transmits wait for the loop's drain).
fn drain_events(
    rtc: &mut Rtc,
    socket: &UdpSocket,
    counts: &Shared,
    next: &mut Option<Instant>,
    sends: bool,
    phase: Duration,
) {
    while let Ok(out) = rtc.poll_output() {
        match out {
            Output::Timeout(_) => break,
            Output::Transmit(t) => {
                let _ = socket.try_send_to(&t.contents, t.destination);
            }
            Output::Event(e) => on_event(e, counts, next, sends, phase),
        }
    }
}

fn on_event(e: Event, counts: &Shared, next_send: &mut Option<Instant>, sends: bool, phase: Duration) {
    match e {
        Event::Connected => {
            lock(counts).connected = true;
            if sends && next_send.is_none() {
                *next_send = Some(Instant::now() + phase);
            }
        }
        Event::RtpPacket(p) => {
            let now = Instant::now();
            let mut c = lock(counts);
            c.received += 1;
            match p.payload.get(..12).filter(|h| h[..4] == MAGIC) {
                Some(h) => {
                    let mut stamp = [0u8; 8];
                    stamp.copy_from_slice(&h[4..12]);
                    let sent = epoch() + Duration::from_nanos(u64::from_be_bytes(stamp));
                    c.latency.record(now.saturating_duration_since(sent));
                }
                None => c.unstamped += 1,
            }
        }
        _ => {}
    }
}

/// A peer's counts, whatever a panicking holder left.
pub fn lock(c: &Shared) -> std::sync::MutexGuard<'_, Counts> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

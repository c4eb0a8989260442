//! Test harness: str0m clients driven sans-IO on their own sockets, and the engine's events.
//!
//! Each client is a non-lite `Rtc` offering one sendonly mic and K recvonly slots; it sends a fake
//! Opus frame every 20 ms whose payload starts with its id, so receivers can tell who they got.
//! With video, it also offers a camera (a fake VP8 frame every 100 ms: a real frame header, then
//! its id) and V recvonly video slots, and answers keyframe requests with a keyframe.

#![allow(dead_code)] // shared by several test binaries, each using a part

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sfu::{PeerId, PeerOptions, Sfu, SfuConfig, SfuError, SfuEvent};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{AbsCaptureTime, Extension};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

pub const MS: Duration = Duration::from_millis(1);

#[derive(Default)]
pub struct Seen {
    pub connected: bool,
    /// Frames received per sender id.
    pub frames: HashMap<PeerId, usize>,
    /// Last sender seen on each receive mid.
    pub by_mid: HashMap<String, PeerId>,
    /// Last RFC 6464 level received per sender.
    pub levels: HashMap<PeerId, i8>,
    /// Last RTP time per receive mid, and how often a mid's timeline jumped (backwards, or
    /// forwards by more than a second): what a jitter buffer would choke on.
    last_time: HashMap<String, u64>,
    pub time_jumps: usize,
    /// Video frames received per sender id, keyframes among them, and the sender per video mid.
    pub video_frames: HashMap<PeerId, usize>,
    pub video_keyframes: HashMap<PeerId, usize>,
    pub video_by_mid: HashMap<String, PeerId>,
    /// Video frames that did not arrive as sent (wrong length or bytes).
    pub video_corrupt: usize,
    /// Keyframe requests (PLI/FIR) the server sent for our camera.
    pub keyframe_requests: usize,
    /// Audio frames that arrived with the sender's abs-capture-time, and the largest age seen.
    pub capture_times: usize,
    pub max_capture_age: Duration,
    /// When each (sender, frame number) first arrived, and when each of our own frames was written.
    pub arrivals: HashMap<(PeerId, u64), Instant>,
    pub sent: HashMap<u64, Instant>,
}

/// What a test client offers.
#[derive(Debug, Clone, Copy)]
pub struct Offer {
    pub slots: usize,
    pub level: i8,
    pub camera: bool,
    pub video_slots: usize,
}

/// Fake VP8: a keyframe or delta frame tag (RFC 6386 §9.1, 64x64), then the sender's id, then
/// a counting pattern. A keyframe is [`KEYFRAME_LEN`] bytes, more than one packet carries.
fn fake_vp8(id: PeerId, keyframe: bool) -> Vec<u8> {
    let partition: u32 = 8;
    let tag = (partition << 5) | (1 << 4) | u32::from(!keyframe);
    let mut f = tag.to_le_bytes()[..3].to_vec();
    f.extend_from_slice(&[0x9d, 0x01, 0x2a, 64, 0, 64, 0]);
    f.extend_from_slice(&id.to_le_bytes());
    let len = if keyframe { KEYFRAME_LEN } else { DELTA_LEN };
    f.extend((f.len()..len).map(|i| (i * 7) as u8));
    f
}

const KEYFRAME_LEN: usize = 3000;
const DELTA_LEN: usize = 40;

/// Whether a fake VP8 frame arrived whole: its length and pattern as sent.
fn vp8_intact(data: &[u8], keyframe: bool) -> bool {
    let len = if keyframe { KEYFRAME_LEN } else { DELTA_LEN };
    data.len() == len && data.iter().enumerate().skip(18).all(|(i, b)| *b == (i * 7) as u8)
}

/// The sender id of a fake VP8 frame.
fn vp8_sender(data: &[u8]) -> Option<PeerId> {
    Some(u64::from_le_bytes(data.get(10..18)?.try_into().ok()?))
}

enum Ctl {
    Level(i8),
    /// Send these bytes from the client's socket to the server.
    Raw(Vec<u8>),
    /// Ask the server for a keyframe on every video receive m-line (PLI).
    RequestKeyframes,
    /// Close the session politely (DTLS close_notify).
    Close,
    /// Lose this many of the next outgoing RTP packets, as a lossy uplink would.
    DropRtp(usize),
}

pub struct Client {
    pub id: PeerId,
    ctl: mpsc::UnboundedSender<Ctl>,
    pub seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    /// An audio-only client in a hybrid room.
    pub async fn join(sfu: &Sfu, room: u64, id: PeerId, slots: usize, level: i8) -> Client {
        let offer = Offer { slots, level, camera: false, video_slots: 0 };
        Client::join_with(sfu, room, id, offer, PeerOptions::default()).await
    }

    pub async fn join_with(sfu: &Sfu, room: u64, id: PeerId, o: Offer, opts: PeerOptions) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder()
            .set_rtcp_report_interval_audio(Duration::from_secs(1))
            .set_extension(7, Extension::AbsoluteCaptureTime)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mic = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        for _ in 0..o.slots {
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        }
        let camera = o.camera.then(|| api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
        let video_slots: Vec<Mid> = (0..o.video_slots)
            .map(|_| api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None))
            .collect();
        let (offer, pending) = api.apply().unwrap();
        let answer = sfu.add_peer(room, id, &offer.to_sdp_string(), opts).await.unwrap();
        assert_eq!(answer.camera, o.camera);
        rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer.sdp).unwrap()).unwrap();
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let media = Media { mic, camera, video_slots };
        let task = tokio::spawn(drive(rtc, socket, sfu.local_addr(), media, id, o.level, ctl_rx, seen.clone()));
        Client { id, ctl, seen, task }
    }

    /// Video frames received from `sender`.
    pub fn video_from(&self, sender: PeerId) -> usize {
        self.seen.lock().unwrap().video_frames.get(&sender).copied().unwrap_or(0)
    }

    pub fn request_keyframes(&self) {
        self.ctl.send(Ctl::RequestKeyframes).unwrap();
    }

    pub fn level(&self, level: i8) {
        self.ctl.send(Ctl::Level(level)).unwrap();
    }

    pub fn frames(&self) -> HashMap<PeerId, usize> {
        self.seen.lock().unwrap().frames.clone()
    }

    pub fn from(&self, sender: PeerId) -> usize {
        self.seen.lock().unwrap().frames.get(&sender).copied().unwrap_or(0)
    }

    /// Sends raw bytes from the client's own socket to the server.
    pub fn raw(&self, bytes: Vec<u8>) {
        self.ctl.send(Ctl::Raw(bytes)).unwrap();
    }

    /// Loses the next `n` RTP packets this client sends.
    pub fn drop_rtp(&self, n: usize) {
        self.ctl.send(Ctl::DropRtp(n)).unwrap();
    }

    /// Hangs up politely.
    pub fn close(&self) {
        self.ctl.send(Ctl::Close).unwrap();
    }

    /// Stops driving the client: it vanishes without a goodbye.
    pub fn vanish(&self) {
        self.task.abort();
    }
}

struct Media {
    mic: Mid,
    camera: Option<Mid>,
    video_slots: Vec<Mid>,
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    mut rtc: Rtc,
    socket: UdpSocket,
    server: SocketAddr,
    media: Media,
    id: PeerId,
    mut level: i8,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    seen: Arc<Mutex<Seen>>,
) {
    let local = socket.local_addr().unwrap();
    let mut buf = vec![0u8; 2048];
    let mut tick = tokio::time::interval(20 * MS);
    // Each client's timeline starts elsewhere, as real ones do (random initial RTP timestamp).
    let mut frame: u64 = 0;
    let base = id * 10_000_000;
    // Video: a frame every 100 ms (every fifth audio tick), a keyframe first and whenever one is asked for.
    let mut send_key = true;
    let mut drop_rtp = 0;
    loop {
        let timeout = loop {
            match rtc.poll_output().unwrap() {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    // RTP, not RTCP (packet types 192-223 in the second byte), not STUN or DTLS.
                    let rtp = t.contents.len() > 12 && t.contents[0] >> 6 == 2 && !(192..=223).contains(&t.contents[1]);
                    if rtp && drop_rtp > 0 {
                        drop_rtp -= 1;
                        continue;
                    }
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::Connected) => seen.lock().unwrap().connected = true,
                Output::Event(Event::KeyframeRequest(_)) => {
                    send_key = true;
                    seen.lock().unwrap().keyframe_requests += 1;
                }
                Output::Event(Event::MediaData(d)) if media.video_slots.contains(&d.mid) => {
                    let Some(sender) = vp8_sender(&d.data) else { continue };
                    let mut s = seen.lock().unwrap();
                    *s.video_frames.entry(sender).or_default() += 1;
                    s.video_corrupt += usize::from(!vp8_intact(&d.data, d.is_keyframe()));
                    if d.is_keyframe() {
                        *s.video_keyframes.entry(sender).or_default() += 1;
                    }
                    s.video_by_mid.insert(d.mid.to_string(), sender);
                }
                Output::Event(Event::MediaData(d)) => {
                    let sender = u64::from_le_bytes(d.data[..8].try_into().unwrap());
                    let number = u64::from_le_bytes(d.data[8..16].try_into().unwrap());
                    let mut s = seen.lock().unwrap();
                    s.arrivals.entry((sender, number)).or_insert_with(Instant::now);
                    *s.frames.entry(sender).or_default() += 1;
                    if let Some(level) = d.ext_vals.audio_level {
                        s.levels.insert(sender, level);
                    }
                    if let Some(c) = d.ext_vals.abs_capture_time {
                        s.capture_times += 1;
                        let age = SystemTime::now().duration_since(c.capture_time).unwrap_or_default();
                        s.max_capture_age = s.max_capture_age.max(age);
                    }
                    let t = d.time.numer();
                    if let Some(last) = s.last_time.insert(d.mid.to_string(), t)
                        && (t <= last || t - last > 48_000)
                    {
                        s.time_jumps += 1;
                    }
                    s.by_mid.insert(d.mid.to_string(), sender);
                }
                Output::Event(_) => {}
            }
        };
        let input = tokio::select! {
            c = ctl.recv() => {
                match c {
                    Some(Ctl::Level(l)) => level = l,
                    Some(Ctl::Raw(b)) => { let _ = socket.send_to(&b, server).await; }
                    Some(Ctl::Close) => rtc.close().unwrap(),
                    Some(Ctl::DropRtp(n)) => drop_rtp = n,
                    Some(Ctl::RequestKeyframes) => {
                        for &mid in &media.video_slots {
                            if let Some(mut w) = rtc.writer(mid) {
                                let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
                            }
                        }
                    }
                    None => return,
                }
                Input::Timeout(Instant::now())
            }
            r = socket.recv_from(&mut buf) => {
                let (n, src) = r.unwrap();
                match Receive::new(Protocol::Udp, src, local, &buf[..n]) {
                    Ok(r) => Input::Receive(Instant::now(), r),
                    Err(_) => continue,
                }
            }
            _ = tick.tick() => {
                // No writer once the client is closing.
                if rtc.is_connected() && let Some(w) = rtc.writer(media.mic) {
                    let pt = w.payload_params().find(|p| p.spec().codec == Codec::Opus).unwrap().pt();
                    let mut payload = id.to_le_bytes().to_vec();
                    payload.extend_from_slice(&frame.to_le_bytes());
                    let time = MediaTime::new(base + frame * 960, Frequency::FORTY_EIGHT_KHZ);
                    let capture = AbsCaptureTime { capture_time: SystemTime::now(), clock_offset: None };
                    let w = w.audio_level(level, level > -50).abs_capture_time(capture);
                    w.write(pt, Instant::now(), time, payload).unwrap();
                    seen.lock().unwrap().sent.insert(frame, Instant::now());
                }
                if frame.is_multiple_of(5) && rtc.is_connected()
                    && let Some(w) = media.camera.and_then(|c| rtc.writer(c))
                {
                    let pt = w.payload_params().find(|p| p.spec().codec == Codec::Vp8).unwrap().pt();
                    let time = MediaTime::new(base + frame * 1800, Frequency::NINETY_KHZ);
                    w.write(pt, Instant::now(), time, fake_vp8(id, send_key)).unwrap();
                    send_key = false;
                }
                if rtc.is_connected() {
                    frame += 1;
                }
                Input::Timeout(Instant::now())
            }
            _ = tokio::time::sleep_until(timeout.into()) => Input::Timeout(Instant::now()),
        };
        rtc.handle_input(input).unwrap();
    }
}

/// The engine's events, with a way to wait for one.
pub struct Events(mpsc::UnboundedReceiver<SfuEvent>);

impl Events {
    /// Forgets the events so far.
    pub fn clear(&mut self) {
        while self.0.try_recv().is_ok() {}
    }

    pub async fn wait(&mut self, within: Duration, pred: impl Fn(&SfuEvent) -> bool) -> SfuEvent {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.0.recv()).await {
                Ok(Some(e)) if pred(&e) => return e,
                Ok(Some(_)) => {}
                Ok(None) => panic!("engine gone"),
                Err(_) => panic!("no matching event within {within:?}"),
            }
        }
    }
}

pub async fn start(cfg: SfuConfig) -> (Sfu, Events) {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    let (sfu, events) = Sfu::start(cfg, None).await.unwrap();
    (sfu, Events(events))
}

/// Adds a peer to a hybrid room (audio forwarded), returning the answer's SDP.
pub async fn add(sfu: &Sfu, room: u64, peer: PeerId, offer: &str) -> Result<String, SfuError> {
    sfu.add_peer(room, peer, offer, PeerOptions::default()).await.map(|a| a.sdp)
}

/// Polls `done` every `every` until it holds; fails with `why()` once `within` has passed.
pub async fn eventually(within: Duration, every: Duration, done: impl Fn() -> bool, why: impl Fn() -> String) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{}", why());
        tokio::time::sleep(every).await;
    }
}

/// Waits until every client's ICE and DTLS are up.
pub async fn connected(clients: &[&Client]) {
    let up = || clients.iter().all(|c| c.seen.lock().unwrap().connected);
    eventually(Duration::from_secs(3), 10 * MS, up, || "clients did not connect".into()).await;
}

/// Frames received per sender during `dur`.
pub async fn received_during(c: &Client, dur: Duration) -> HashMap<PeerId, usize> {
    let before = c.frames();
    tokio::time::sleep(dur).await;
    let mut after = c.frames();
    for (k, v) in after.iter_mut() {
        *v -= before.get(k).copied().unwrap_or(0);
    }
    after.retain(|_, v| *v > 0);
    after
}

/// Audio slots as (mid, source).
pub type Slots = Vec<(String, Option<PeerId>)>;

/// A `Slots` event's audio slots.
pub fn slots_of(e: &SfuEvent) -> Option<(PeerId, Slots)> {
    match e {
        SfuEvent::Slots { peer, slots } => {
            Some((*peer, slots.iter().filter(|s| !s.video).map(|s| (s.mid.clone(), s.source)).collect()))
        }
        _ => None,
    }
}

//! One peer: its `Rtc` and how the engine drains it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use str0m::media::{MediaData, Mid};
use str0m::{Event, Input, Output, Rtc};
use tokio::sync::mpsc::UnboundedSender;
use tracing::Span;

use crate::stats::Counters;
use crate::udp::Outgoing;
use crate::{PeerId, RoomId, SfuEvent};

/// Per-peer wake-ups, earliest first. Entries may be stale; [`Peer::scheduled`] tells.
pub(crate) type Timers = BinaryHeap<Reverse<(Instant, PeerId)>>;

pub(crate) struct Peer {
    pub id: PeerId,
    pub room: RoomId,
    pub rtc: Rtc,
    pub mic: Mid,
    /// Receive audio m-lines (slots).
    pub slots: Vec<Mid>,
    pub camera: Option<Mid>,
    /// Receive video m-lines: one camera each (`sfu`), or the composite on the first.
    pub video_slots: Vec<Mid>,
    /// The screen-share send m-line, and the receive m-lines for others' shares.
    pub share: Option<Mid>,
    pub share_slots: Vec<Mid>,
    /// When a keyframe was last asked of this peer's share, and whether one waits.
    pub share_last_pli: Option<Instant>,
    pub share_pli_deferred: bool,
    /// When a keyframe was last asked of this peer's camera (PLIs are rate-limited).
    pub last_pli: Option<Instant>,
    /// A keyframe was asked for inside the rate limit: asked when it ends (housekeeping).
    pub pli_deferred: bool,
    /// A keyframe of the composite (or of the feed it watches) went out to this peer: it can
    /// follow the deltas.
    pub composite_keyed: bool,
    /// Written to since the engine last flushed: to be drained then.
    pub dirty: bool,
    pub added: Instant,
    pub last_rx: Instant,
    /// The earliest timer entry of this peer that is still live.
    pub scheduled: Option<Instant>,
    pub connected: bool,
    /// The client closed DTLS (`Event::Closed`).
    pub closed: bool,
    pub counters: Counters,
    pub rtt: Option<Duration>,
    /// Microphone packets received as of the last ingress stats, and those estimated lost on
    /// the way in (fractional; `counters.uplink_lost` rounds it).
    pub mic_packets: u64,
    pub uplink_lost: f64,
    /// Shown on the peer's placeholder tile.
    pub label: String,
    /// An ingest peer's media (or a WHEP viewer's end) goes here, not to a room.
    pub ingest: Option<crate::IngestSink>,
    /// The ingest peer a WHEP viewer watches.
    pub source: Option<PeerId>,
    /// Send streams written through the direct API ([`crate::direct`]).
    pub direct: Vec<crate::direct::DirectTx>,
    /// Packetises this peer's camera, share or ingest video once for every copy.
    pub packetizer: crate::direct::Packetizer,
    pub span: Span,
}

/// What draining peers leaves for the engine to act on.
#[derive(Default)]
pub(crate) struct Pending {
    /// Microphone and camera frames waiting to be forwarded, by sender.
    pub media: VecDeque<(PeerId, MediaData)>,
    /// Keyframe requests (PLI/FIR) that peers sent for one of their receive video m-lines.
    pub keyframe_requests: Vec<(PeerId, Mid)>,
    /// Peers whose ICE and DTLS just came up.
    pub connected: Vec<PeerId>,
}

/// What draining a peer may touch besides the peer.
pub(crate) struct Io<'a> {
    /// Datagrams to send, sent in batches by the engine.
    pub outbox: &'a mut Vec<Outgoing>,
    pub timers: &'a mut Timers,
    pub events: &'a UnboundedSender<SfuEvent>,
    pub pending: &'a mut Pending,
}

impl Peer {
    pub fn new(id: PeerId, room: RoomId, p: crate::offer::Prepared, label: String, span: Span, now: Instant) -> Peer {
        Peer {
            id,
            room,
            rtc: p.rtc,
            mic: p.mic,
            slots: p.slots,
            camera: p.camera,
            video_slots: p.video_slots,
            share: p.share,
            share_slots: p.share_slots,
            share_last_pli: None,
            share_pli_deferred: false,
            last_pli: None,
            pli_deferred: false,
            composite_keyed: false,
            dirty: false,
            added: now,
            last_rx: now,
            scheduled: None,
            connected: false,
            closed: false,
            counters: Counters::default(),
            rtt: None,
            mic_packets: 0,
            uplink_lost: 0.0,
            label,
            ingest: None,
            source: None,
            direct: Vec::new(),
            packetizer: Default::default(),
            span,
        }
    }

    /// Polls the `Rtc` until it only has a timeout left: sends datagrams, collects events, and
    /// schedules the next wake-up. Required after every input or write.
    pub fn drain(&mut self, io: &mut Io<'_>, now: Instant) {
        self.drain_after(io, now, false)
    }

    /// [`Peer::drain`] for a peer written to: str0m releases what was written on its next timeout
    /// handling, so that is done first rather than on being told by a first `poll_output` (each
    /// call of which weighs every timer of the `Rtc`: a tenth of a copy's cost in the criterion
    /// path).
    pub fn drain_written(&mut self, io: &mut Io<'_>, now: Instant) {
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            tracing::debug!(parent: &self.span, error = %e, "timeout handling failed; dropping peer");
            self.rtc.disconnect();
        }
        self.drain_after(io, now, true)
    }

    fn drain_after(&mut self, io: &mut Io<'_>, now: Instant, mut handled_due: bool) {
        let span = self.span.clone();
        let _span = span.enter();
        // str0m releases what was just written (and its pacer's due packets) on the next timeout
        // handling, and says so with a timeout that is already due: handle it at once, once, so
        // forwarded media leaves now rather than on the next timer tick.
        while self.rtc.is_alive() {
            let out = match self.rtc.poll_output() {
                Ok(out) => out,
                Err(e) => {
                    tracing::debug!(error = %e, "poll_output failed; dropping peer");
                    self.rtc.disconnect();
                    break;
                }
            };
            match out {
                Output::Timeout(t) if t <= now && !handled_due => {
                    handled_due = true;
                    if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
                        tracing::debug!(error = %e, "timeout handling failed; dropping peer");
                        self.rtc.disconnect();
                        break;
                    }
                }
                Output::Timeout(t) => {
                    // A timeout still due is retried a millisecond later rather than in a hot loop.
                    let t = t.max(now + Duration::from_millis(1));
                    if self.scheduled.is_none_or(|s| t < s) {
                        self.scheduled = Some(t);
                        io.timers.push(Reverse((t, self.id)));
                    }
                    break;
                }
                Output::Transmit(t) => {
                    self.counters.packets_out += 1;
                    self.counters.bytes_out += t.contents.len() as u64;
                    let tcp = t.proto == str0m::net::Protocol::Tcp;
                    io.outbox.push(Outgoing { peer: self.id, to: t.destination, data: t.contents.into(), tcp });
                }
                Output::Event(e) => self.on_event(e, io),
            }
        }
    }

    fn on_event(&mut self, e: Event, io: &mut Io<'_>) {
        match e {
            Event::MediaData(d) if d.mid == self.mic || Some(d.mid) == self.camera || Some(d.mid) == self.share => {
                match &self.ingest {
                    Some(sink) => {
                        if let Some(m) = crate::ingest::media(&d) {
                            sink(m)
                        }
                        // Its WHEP viewers get it too (the engine drops it if there are none).
                        io.pending.media.push_back((self.id, d));
                    }
                    None => io.pending.media.push_back((self.id, d)),
                }
            }
            Event::KeyframeRequest(r) if self.video_slots.contains(&r.mid) => {
                self.counters.keyframe_requests_in += 1;
                io.pending.keyframe_requests.push((self.id, r.mid))
            }
            Event::Connected => {
                tracing::info!("connected");
                self.connected = true;
                match &self.ingest {
                    Some(sink) => {
                        sink(crate::IngestMedia::Connected);
                        io.pending.connected.push(self.id);
                    }
                    None => {
                        io.pending.connected.push(self.id);
                        let _ = io.events.send(SfuEvent::PeerConnected { room: self.room, peer: self.id });
                    }
                }
            }
            Event::Closed => {
                tracing::info!("closed by the client");
                self.closed = true;
            }
            Event::MediaEgressStats(s) if s.rtt.is_some() => self.rtt = s.rtt,
            Event::MediaIngressStats(s) => {
                self.rtt = s.rtt.or(self.rtt);
                if s.mid == self.mic {
                    // `loss` is the fraction lost since the previous report: of the packets
                    // expected, `got` arrived, so `got * f / (1 - f)` did not.
                    let got = s.packets.saturating_sub(self.mic_packets);
                    self.mic_packets = s.packets;
                    if let Some(f) = s.loss.map(f64::from).filter(|f| *f > 0.0 && *f < 1.0) {
                        self.uplink_lost += got as f64 * f / (1.0 - f);
                        self.counters.uplink_lost = self.uplink_lost.round() as u64;
                    }
                }
            }
            Event::PeerStats(s) if s.rtt.is_some() => self.rtt = s.rtt,
            _ => {}
        }
    }
}

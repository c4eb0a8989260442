//! One peer: its `Rtc` and how the engine drains it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use str0m::media::{MediaData, Mid};
use str0m::{Event, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedSender;
use tracing::Span;

use crate::stats::Counters;
use crate::{PeerId, RoomId, SfuEvent};

/// Per-peer wake-ups, earliest first. Entries may be stale; [`Peer::scheduled`] tells.
pub(crate) type Timers = BinaryHeap<Reverse<(Instant, PeerId)>>;

pub(crate) struct Peer {
    pub id: PeerId,
    pub room: RoomId,
    pub rtc: Rtc,
    pub mic: Mid,
    pub slots: Vec<Mid>,
    pub added: Instant,
    pub last_rx: Instant,
    /// The earliest timer entry of this peer that is still live.
    pub scheduled: Option<Instant>,
    pub connected: bool,
    /// The client closed DTLS (`Event::Closed`).
    pub closed: bool,
    pub counters: Counters,
    pub rtt: Option<Duration>,
    pub span: Span,
}

/// What draining a peer may touch besides the peer.
pub(crate) struct Io<'a> {
    pub socket: &'a UdpSocket,
    pub timers: &'a mut Timers,
    pub events: &'a UnboundedSender<SfuEvent>,
    /// Microphone frames waiting to be forwarded, by sender.
    pub media: &'a mut VecDeque<(PeerId, MediaData)>,
}

impl Peer {
    /// Polls the `Rtc` until it only has a timeout left: sends datagrams, collects events, and
    /// schedules the next wake-up. Required after every input or write.
    pub fn drain(&mut self, io: &mut Io<'_>, now: Instant) {
        let span = self.span.clone();
        let _span = span.enter();
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
                Output::Timeout(t) => {
                    // A due timeout is retried a millisecond later rather than in a hot loop.
                    let t = t.max(now + Duration::from_millis(1));
                    if self.scheduled.is_none_or(|s| t < s) {
                        self.scheduled = Some(t);
                        io.timers.push(Reverse((t, self.id)));
                    }
                    break;
                }
                Output::Transmit(t) => match io.socket.try_send_to(&t.contents, t.destination) {
                    Ok(n) => {
                        self.counters.packets_out += 1;
                        self.counters.bytes_out += n as u64;
                    }
                    Err(e) => {
                        tracing::trace!(error = %e, "send failed");
                        self.counters.dropped_errors += 1;
                    }
                },
                Output::Event(e) => self.on_event(e, io),
            }
        }
    }

    fn on_event(&mut self, e: Event, io: &mut Io<'_>) {
        match e {
            Event::MediaData(d) if d.mid == self.mic => io.media.push_back((self.id, d)),
            Event::Connected => {
                tracing::info!("connected");
                self.connected = true;
                let _ = io.events.send(SfuEvent::PeerConnected { room: self.room, peer: self.id });
            }
            Event::Closed => {
                tracing::info!("closed by the client");
                self.closed = true;
            }
            Event::MediaEgressStats(s) if s.rtt.is_some() => self.rtt = s.rtt,
            Event::MediaIngressStats(s) if s.rtt.is_some() => self.rtt = s.rtt,
            Event::PeerStats(s) if s.rtt.is_some() => self.rtt = s.rtt,
            _ => {}
        }
    }
}

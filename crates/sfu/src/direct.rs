//! Forwarded copies written through str0m's direct API: each copy goes straight onto the
//! listener's send stream as RTP payloads (`StreamTx::write_rtp`), so there is no packetizer per
//! copy and each payload is one shared allocation for every copy. The receive side stays in
//! frame mode (an `Rtc` is in RTP mode for all its m-lines or none, and the compositor, the mixer
//! and WHIP ingest want depacketised frames): a frame is depacketised once, on arrival.
//!
//! What goes this way: forwarded microphone frames (one payload each), cameras and screen shares
//! forwarded in rooms, and what WHEP viewers are written (a WHIP publisher's or a feed's frames).
//! A video frame is packetised once, by its source's [`Packetizer`], and its packets shared by
//! every copy. The mixers' output (one stream per listener, nothing to share) stays on the
//! `Writer`; no m-line is written both ways, and a direct stream's sequence numbers are ours.
//!
//! What writing through the `Writer` cost per copy, and this path does not: a `Vec` clone of the
//! payload, a queue entry the next timeout handling pops (one per m-line per handling), and the
//! payloader (for video: the packetising of every copy).
//!
//! The packetizers are str0m's own, public behind its `unversioned` feature (no semver promise):
//! the workspace pins str0m's exact version, so a change there shows up when it is raised, and
//! writing our own VP8 and H.264 packetizers would duplicate what str0m's `Writer` already runs.
//!
//! ## What each step bought (criterion `sfu_forward`, 9 listeners, one packet per drain)
//! Medians of three runs of each build, interleaved, with the raw `sendto` loop of the same runs
//! (299k/s; this shared box moves every figure by up to a fifth between runs):
//! - through the `Writer`: 162k copies/s, **0.54×** `sendto`. Drained once for four frames, a
//!   listener sent one and left three for its next timer (the payloader takes one frame per
//!   timeout handling): the old "x4" figure counted copies that had not left.
//! - direct writes: 175k/s (+8%), and a listener drained once for N copies sends all N.
//! - the timeout handled before the first poll of a written peer ([`crate::peer::Peer::drain_written`]):
//!   195k/s (+11%), **0.65×**.
//!
//! - camera frames packetised once per source instead of once per listener (`video_9_listeners`:
//!   a 2,500-byte VP8 frame, three packets, to 9 listeners): 193k → 223k packets/s (+16%, medians
//!   of three interleaved runs; `sendto` 308–345k/s in the same runs: **0.67×**). Less than audio
//!   gained: one `Writer` write already made all three packets in one payloader pass.
//!
//! Allocations (the bench counts them): one per copy, the datagram str0m encrypts into (its
//! `DatagramSend`, moved to the socket batch, not copied), and five per incoming datagram, all in
//! str0m's receive side; the engine's own buffers are reused, so its per-copy path allocates
//! nothing.
//!
//! What is left of the audio path, by a profile of the timeout-first run (`perf record
//! --call-graph dwarf`): the kernel's send ~52% (`sendmmsg` to loopback, its receive side
//! included), str0m's drain ~29% (per copy: one `poll_packet` with header and extension writing
//! ~7%, SRTP ~5%, moving each `Output` ~4%, a timeout pass ~5%), the incoming datagram ~10%
//! (decrypt, demux, depacketise, the writes).
//!
//! ## Why end to end is slower than the benchmark
//! Measured step by step from the criterion path to the running server (criterion medians of
//! three runs, `sendto` 304-328k/s in the same runs; the end-to-end figure from
//! `confab-testbed forward`, 34 rooms of 6 light peers, the server alone on a core):
//! - 9 listeners of one source, one slot each (`9_listeners_x1`): ~204k copies/s;
//! - a room's shape (`1_rooms_of_6`: everyone speaks, five copies a datagram, five slots a peer:
//!   str0m's timeout handling and every poll walk all six m-lines): ~179k (-12%);
//! - the same across 34 rooms (`34_rooms_of_6`, 204 `Rtc`s; each datagram touches six of them
//!   cold where one room keeps six hot): **~107k (-40%)**;
//! - the running server on that load: 62-69k (-38% more). A profile of it (`perf record
//!   --call-graph dwarf`) puts flushing at 68% (the listeners' drains 39%: timeout handling 17%,
//!   polls 22%; `sendmmsg` 28%), incoming datagrams 21%, timers 4%. Its listeners read, so each
//!   send wakes one (`sock_def_readable`, an inter-processor wake-up): ~5 µs a packet in the
//!   kernel, more than a whole raw `sendto` (~3.2 µs) to a socket nobody reads (the report's
//!   second yardstick, `sendto` to sockets read on the other core, runs at ~0.65× the first).
//!
//! All but the last step are str0m's per-`Rtc` work and its memory; the last is mostly the
//! kernel. A per-copy send path of our own was weighed in `docs/forwarding-send-path.md` and not
//! taken: it needs str0m's SRTP keys (not exported), would redo RTCP, NACK/RTX and TWCC per
//! forwarded stream, and would buy ~1.5×, not the 3× the end-to-end target asks.

use std::sync::Arc;
use std::time::Instant;

use str0m::Rtc;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Mid, Pt};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo};
use str0m::unversioned::{H264Packetizer, Packetizer as _, Vp8Packetizer};

use crate::peer::Peer;

/// The RTP payload budget of one packet, as str0m's `Writer` packetises: its MTU target (1150)
/// less the SRTP tag (16), rounded down to the SRTP block (16), so header extensions still fit.
pub(crate) const PAYLOAD_MTU: usize = 1120;

/// One send stream written through the direct API.
pub(crate) struct DirectTx {
    mid: Mid,
    /// The next sequence number, extended (its high bits are SRTP's rollover counter).
    seq: u64,
    /// The payload type last found: the source's (`None` for a picked one) and ours.
    pt: Option<(Option<Pt>, Pt)>,
}

/// How a copy's payload type is found on the listener.
#[derive(Clone, Copy)]
pub(crate) enum PtFrom {
    /// The listener's payload type for the source's codec (matched once per source PT, cached).
    Source(PayloadParams),
    /// Picked on the listener's m-line by the caller's rule (a feed has no source PT), once per
    /// stream: only one source ever writes a stream.
    Pick(fn(&mut Rtc, Mid) -> Option<Pt>),
}

/// One copy of a forwarded frame.
pub(crate) struct Copy<'a> {
    pub pt: PtFrom,
    /// In the stream's clock (already rebased to the slot's timeline).
    pub time: u32,
    pub wallclock: Instant,
    /// The first packet's; later packets of a frame go without the capture time (as str0m's
    /// `Writer` does).
    pub exts: &'a ExtensionValues,
    /// The frame's RTP payloads, in order: one for audio, a [`Packetizer`]'s output for video.
    pub payloads: &'a [Arc<[u8]>],
    /// Video: the last packet carries the marker, and packets may be resent on a NACK.
    pub video: bool,
}

#[derive(Debug)]
pub(crate) enum DirectError {
    /// The listener negotiated no payload type for the source's codec.
    NoPayloadType,
    /// The m-line has no send stream (not negotiated for sending).
    NoStream,
    /// Not a codec confab forwards as video (VP8, H.264), or str0m refused the frame.
    Packetize,
}

/// A source's video packetizer: packetises each frame once for all its copies. H.264's keeps
/// state (the last SPS and PPS, sent ahead of each IDR), so each video source has its own.
#[derive(Debug, Default)]
pub(crate) struct Packetizer {
    vp8: Vp8Packetizer,
    h264: H264Packetizer,
}

impl Packetizer {
    /// Replaces `out` with `frame`'s RTP payloads.
    pub fn packetize(&mut self, codec: Codec, frame: &[u8], out: &mut Vec<Arc<[u8]>>) -> Result<(), DirectError> {
        out.clear();
        let packets = match codec {
            Codec::Vp8 => self.vp8.packetize(PAYLOAD_MTU, frame),
            Codec::H264 => self.h264.packetize(PAYLOAD_MTU, frame),
            _ => return Err(DirectError::Packetize),
        };
        let packets = packets.map_err(|_| DirectError::Packetize)?;
        out.extend(packets.into_iter().map(Arc::from));
        if out.is_empty() { Err(DirectError::Packetize) } else { Ok(()) }
    }
}

impl Peer {
    /// Queues `copy` on the send stream of `mid`; it leaves on the peer's next drain.
    pub fn write_direct(&mut self, mid: Mid, copy: Copy<'_>) -> Result<(), DirectError> {
        let i = match self.direct.iter().position(|d| d.mid == mid) {
            Some(i) => i,
            None => {
                let ssrc = self.rtc.direct_api().stream_tx_by_mid(mid, None).ok_or(DirectError::NoStream)?.ssrc();
                // A random start (RFC 3550 §5.1), below 2^15 so the first rollover is far off.
                self.direct.push(DirectTx { mid, seq: u64::from(*ssrc) & 0x7fff, pt: None });
                self.direct.len() - 1
            }
        };
        let d = &mut self.direct[i];
        let from = match copy.pt {
            PtFrom::Source(params) => Some(params.pt()),
            PtFrom::Pick(_) => None,
        };
        let pt = match d.pt {
            Some((cached, to)) if cached == from => to,
            _ => {
                let to = match copy.pt {
                    PtFrom::Source(params) => matched_pt(&self.rtc, params),
                    PtFrom::Pick(pick) => pick(&mut self.rtc, mid),
                };
                let to = to.ok_or(DirectError::NoPayloadType)?;
                d.pt = Some((from, to));
                to
            }
        };
        let mut api = self.rtc.direct_api();
        let stream = api.stream_tx_by_mid(mid, None).ok_or(DirectError::NoStream)?;
        let last = copy.payloads.len().saturating_sub(1);
        for (n, payload) in copy.payloads.iter().enumerate() {
            let seq = SeqNo::from(d.seq);
            d.seq += 1;
            let mut exts = copy.exts.clone();
            if n > 0 {
                exts.abs_capture_time = None;
            }
            stream.write_rtp(
                RtpWrite::new(pt, seq, copy.time, copy.wallclock, payload.clone())
                    .marker(copy.video && n == last)
                    .nackable(copy.video)
                    .ext_vals(exts),
            );
        }
        Ok(())
    }
}

fn matched_pt(rtc: &Rtc, params: PayloadParams) -> Option<Pt> {
    rtc.codec_config().match_params(params).map(|p| p.pt())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// A WHIP publisher's frames are whatever it sent, depacketised: the packetizers must
        /// take any bytes without panicking, and each packet must fit the payload budget.
        #[test]
        fn any_frame_packetises_within_the_budget(frame in proptest::collection::vec(any::<u8>(), 0..5000), h264 in any::<bool>()) {
            let mut p = Packetizer::default();
            let mut out = Vec::new();
            let codec = if h264 { Codec::H264 } else { Codec::Vp8 };
            if p.packetize(codec, &frame, &mut out).is_ok() {
                prop_assert!(!out.is_empty());
            }
            prop_assert!(out.iter().all(|pkt| pkt.len() <= PAYLOAD_MTU), "{:?}", out.iter().map(|p| p.len()).collect::<Vec<_>>());
        }

        /// VP8 keeps every byte, in order, behind a one-byte descriptor per packet.
        #[test]
        fn vp8_packets_carry_the_frame(frame in proptest::collection::vec(any::<u8>(), 1..5000)) {
            let mut out = Vec::new();
            Packetizer::default().packetize(Codec::Vp8, &frame, &mut out).unwrap();
            prop_assert_eq!(out[0][0] & 0x10, 0x10, "the first packet starts the frame");
            let joined: Vec<u8> = out.iter().flat_map(|p| p[1..].iter().copied()).collect();
            prop_assert_eq!(joined, frame);
        }
    }

    #[test]
    fn other_codecs_are_refused() {
        let mut out = Vec::new();
        assert!(Packetizer::default().packetize(Codec::Opus, &[1, 2, 3], &mut out).is_err());
        assert!(Packetizer::default().packetize(Codec::Vp8, &[], &mut out).is_err());
    }
}

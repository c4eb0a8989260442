//! Forwarded copies written through str0m's direct API: each copy goes straight onto the
//! listener's send stream as an RTP payload (`StreamTx::write_rtp`), so there is no packetizer per
//! copy and the payload is one shared allocation for every copy of a frame. The receive side
//! stays in frame mode (an `Rtc` is in RTP mode for all its m-lines or none, and the compositor,
//! the mixer and WHIP ingest want depacketised frames): a frame is depacketised once, on arrival.
//!
//! What writing through the `Writer` cost per copy, and this path does not: a `Vec` clone of the
//! payload, a queue entry the next timeout handling pops (one per m-line per handling), and the
//! payloader. The stream's sequence numbers are ours (only this path writes a slot's stream).
//!
//! Camera and share frames still go through the `Writer`: a VP8 frame must be packetised, and
//! str0m's packetizers are public only behind its `unversioned` feature ("no guarantees"). The
//! way there inside the public API is RTP mode for the peers of `sfu` rooms, forwarding their
//! packets with `RtpWrite::vp8_patch` rewriting picture ids: the next step, not taken yet.
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
//! What is left, by a profile of that run (`perf record --call-graph dwarf`): the kernel's send
//! ~52% (`sendmmsg` to loopback, its receive side included), str0m's drain ~29% (per copy: one
//! `poll_packet` with header and extension writing ~7%, SRTP ~5%, moving each `Output` ~4%, a
//! timeout pass ~5%), the incoming datagram ~10% (decrypt, demux, depacketise, the writes).

use std::sync::Arc;
use std::time::Instant;

use str0m::format::PayloadParams;
use str0m::media::{Mid, Pt};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo};

use crate::peer::Peer;

/// One send stream written through the direct API.
pub(crate) struct DirectTx {
    mid: Mid,
    /// The next sequence number, extended (its high bits are SRTP's rollover counter).
    seq: u64,
    /// The payload type last matched: the source's and ours for the same codec.
    pt: Option<(Pt, Pt)>,
}

/// One copy of a forwarded RTP payload.
pub(crate) struct Copy<'a> {
    pub params: PayloadParams,
    /// In the stream's clock (already rebased to the slot's timeline).
    pub time: u32,
    pub wallclock: Instant,
    pub marker: bool,
    pub exts: &'a ExtensionValues,
    pub payload: &'a Arc<[u8]>,
}

#[derive(Debug)]
pub(crate) enum DirectError {
    /// The listener negotiated no payload type for the source's codec.
    NoPayloadType,
    /// The m-line has no send stream (not negotiated for sending).
    NoStream,
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
        let pt = match d.pt {
            Some((from, to)) if from == copy.params.pt() => to,
            _ => {
                let to = self.rtc.codec_config().match_params(copy.params).map(|p| p.pt());
                let to = to.ok_or(DirectError::NoPayloadType)?;
                d.pt = Some((copy.params.pt(), to));
                to
            }
        };
        let seq = SeqNo::from(d.seq);
        d.seq += 1;
        let mut api = self.rtc.direct_api();
        let stream = api.stream_tx_by_mid(mid, None).ok_or(DirectError::NoStream)?;
        stream.write_rtp(
            RtpWrite::new(pt, seq, copy.time, copy.wallclock, copy.payload.clone())
                .marker(copy.marker)
                .ext_vals(copy.exts.clone()),
        );
        Ok(())
    }
}

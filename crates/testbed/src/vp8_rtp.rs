//! Receiving VP8 over RTP (RFC 7741), sans-IO: packets in, pictures and keyframe requests out.
//!
//! [`FrameAssembler`] joins packets into frames by RTP timestamp, the payload descriptor's start
//! bit and the marker bit, and hands out only frames that arrived whole. [`VideoReceiver`] decodes
//! them and decides when to ask for a keyframe: after lost packets, a broken frame or a decode
//! error it skips delta frames (decoding them against a missing reference would only paint
//! garbage) and requests a keyframe, at most every [`PLI_INTERVAL`], until one arrives.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::picture::I420;
use crate::vp8::Vp8Decoder;

/// At most two keyframe requests a second while waiting for one.
pub const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// A frame larger than this is dropped (a 1080p keyframe is ~200 kB); bounds the buffer.
const MAX_FRAME: usize = 4 << 20;
/// A forward sequence jump at least this large is a new source, not loss.
const MAX_COUNTED_GAP: u16 = 1000;

/// The parts of the VP8 payload descriptor a receiver needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// S=1 and partition 0: the first packet of a frame.
    pub frame_start: bool,
    /// Bytes of descriptor before the VP8 data.
    pub len: usize,
}

/// Parses the descriptor at the front of an RTP payload; `None` if it is truncated.
pub fn parse_descriptor(payload: &[u8]) -> Option<Descriptor> {
    let first = *payload.first()?;
    let mut len = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(1)?;
        len += 1;
        if ext & 0x80 != 0 {
            // Picture id: 7 bits, or 15 with the M bit.
            len += if payload.get(len)? & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            len += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            len += 1; // TID/Y/KEYIDX
        }
    }
    (payload.len() > len).then_some(Descriptor { frame_start: first & 0x10 != 0 && first & 0x07 == 0, len })
}

/// A complete VP8 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub data: Vec<u8>,
    /// From the frame tag: bit 0 of the first byte is 0 on keyframes.
    pub keyframe: bool,
    pub timestamp: u32,
}

/// What one packet did to the assembler.
#[derive(Debug, Default)]
pub struct Pushed {
    pub frame: Option<Frame>,
    /// Packets missing just before this one.
    pub lost: u64,
    /// Something was lost or unusable (gap, bad descriptor, oversize, missing start): the stream
    /// cannot be trusted until the next keyframe.
    pub broken: bool,
    /// Older than what was already seen (reordered or duplicate); ignored.
    pub late: bool,
}

/// Joins packets into frames. Bounded: one frame in progress, at most `MAX_FRAME` bytes.
#[derive(Debug, Default)]
pub struct FrameAssembler {
    expected_seq: Option<u16>,
    timestamp: Option<u32>,
    data: Vec<u8>,
    /// The frame in progress is missing a part; it is dropped at its end.
    incomplete: bool,
}

impl FrameAssembler {
    pub fn push(&mut self, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Pushed {
        let mut out = Pushed::default();
        if let Some(expected) = self.expected_seq {
            let ahead = seq.wrapping_sub(expected);
            if ahead >= 0x8000 {
                out.late = true;
                return out;
            }
            if ahead > 0 {
                out.lost = if ahead < MAX_COUNTED_GAP { u64::from(ahead) } else { 0 };
                out.broken = true;
                self.incomplete = true;
            }
        }
        self.expected_seq = Some(seq.wrapping_add(1));
        if payload.is_empty() {
            return out; // padding only (bandwidth probes): takes a sequence number, carries nothing
        }
        let Some(descriptor) = parse_descriptor(payload) else {
            out.broken = true;
            self.incomplete = true;
            return out;
        };
        if self.timestamp != Some(timestamp) {
            // A new frame. One still in progress never got its marker: it is lost (and counted as
            // broken through the gap that must precede this packet).
            self.timestamp = Some(timestamp);
            self.data.clear();
            self.incomplete = !descriptor.frame_start;
            out.broken |= self.incomplete;
        }
        let body = &payload[descriptor.len..];
        if !self.incomplete && self.data.len() + body.len() > MAX_FRAME {
            self.incomplete = true;
            out.broken = true;
        }
        if !self.incomplete {
            self.data.extend_from_slice(body);
        }
        if marker {
            if !self.incomplete
                && let Some(&tag) = self.data.first()
            {
                let data = std::mem::take(&mut self.data);
                out.frame = Some(Frame { keyframe: tag & 1 == 0, data, timestamp });
            }
            self.data.clear();
            self.timestamp = None;
            self.incomplete = false;
        }
        out
    }
}

/// What one packet produced on a video track.
#[derive(Debug, Default)]
pub struct Received {
    /// A whole frame arrived: whether it was a keyframe.
    pub frame: Option<bool>,
    pub picture: Option<I420>,
    pub lost: u64,
    /// A delta frame not decoded because a keyframe is awaited.
    pub skipped: bool,
    pub decode_error: Option<String>,
    /// Send a keyframe request (PLI) now.
    pub send_pli: bool,
}

/// One video track's receive logic: assemble, decode, request keyframes.
pub struct VideoReceiver {
    assembler: FrameAssembler,
    decoder: Vp8Decoder,
    /// Nothing decodable until a keyframe: at the start, and after any loss or error.
    awaiting_keyframe: bool,
    last_pli: Option<Instant>,
}

impl VideoReceiver {
    pub fn new() -> Result<Self> {
        Ok(Self {
            assembler: FrameAssembler::default(),
            decoder: Vp8Decoder::new()?,
            awaiting_keyframe: true,
            last_pli: None,
        })
    }

    pub fn push(&mut self, now: Instant, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Received {
        let pushed = self.assembler.push(seq, timestamp, marker, payload);
        let mut out = Received { lost: pushed.lost, ..Received::default() };
        self.awaiting_keyframe |= pushed.broken;
        if let Some(frame) = pushed.frame {
            out.frame = Some(frame.keyframe);
            if self.awaiting_keyframe && !frame.keyframe {
                out.skipped = true;
            } else {
                match self.decoder.decode(&frame.data) {
                    Ok(picture) => {
                        out.picture = picture;
                        self.awaiting_keyframe = false;
                    }
                    Err(e) => {
                        out.decode_error = Some(format!("{e:#}"));
                        self.awaiting_keyframe = true;
                    }
                }
            }
        }
        if self.awaiting_keyframe && self.last_pli.is_none_or(|t| now.duration_since(t) >= PLI_INTERVAL) {
            // Not before the first packet's frame is judged: a stream that starts with a keyframe
            // needs no request. Anything that leaves us waiting after a frame or a loss does.
            if out.frame.is_some() || pushed.broken {
                self.last_pli = Some(now);
                out.send_pli = true;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vp8::Vp8Encoder;
    use bytes::Bytes;
    use rtc::rtp::codec::vp8::Vp8Payloader;
    use rtc::rtp::packetizer::Payloader;

    #[test]
    fn descriptors() {
        assert_eq!(parse_descriptor(&[0x10, 0xaa]), Some(Descriptor { frame_start: true, len: 1 }));
        // X, I with a 15-bit picture id, L, T: 1 + 1 + 2 + 1 + 1.
        let d = parse_descriptor(&[0x90, 0xe0, 0x81, 0x02, 0x00, 0x00, 0xaa]).unwrap();
        assert_eq!(d, Descriptor { frame_start: true, len: 6 });
        assert_eq!(parse_descriptor(&[0x00, 0xaa]).map(|d| d.frame_start), Some(false));
        assert_eq!(parse_descriptor(&[0x11, 0xaa]).map(|d| d.frame_start), Some(false), "partition 1");
        for truncated in [&[][..], &[0x10], &[0x90], &[0x90, 0x80], &[0x90, 0x80, 0x81, 0x02]] {
            assert_eq!(parse_descriptor(truncated), None, "{truncated:?}");
        }
    }

    /// RTP payloads (seq, ts, marker, payload) of `frames` as webrtc-rs packetises them.
    fn packetise(frames: &[(Vec<u8>, bool)], mtu: usize) -> Vec<(u16, u32, bool, Bytes)> {
        let mut payloader = Vp8Payloader::default();
        payloader.enable_picture_id = true; // as webrtc-rs sends
        let mut out = Vec::new();
        for (i, (frame, _)) in frames.iter().enumerate() {
            let parts = payloader.payload(mtu, &Bytes::copy_from_slice(frame)).unwrap();
            let n = parts.len();
            for (j, p) in parts.into_iter().enumerate() {
                out.push((65_530u16.wrapping_add(out.len() as u16), 3000 * i as u32, j + 1 == n, p));
            }
        }
        out
    }

    fn encoded(n: usize, keyframes: &[usize]) -> Vec<(Vec<u8>, bool)> {
        let mut enc = Vp8Encoder::new(64, 48, 30, 200).unwrap();
        let mut picture = I420::solid(64, 48, [0, 0, 255]);
        (0..n)
            .map(|i| {
                picture.fill_rect((i % 8) as u32 * 8, 0, 8, 8, [255, 255, 0]); // something changes
                if keyframes.contains(&i) {
                    enc.force_keyframe();
                }
                enc.encode(&picture).unwrap().remove(0)
            })
            .collect()
    }

    #[test]
    fn frames_reassemble_across_packets_and_wraparound() {
        let frames = encoded(4, &[]);
        let mut asm = FrameAssembler::default();
        let mut out = Vec::new();
        for (seq, ts, marker, p) in packetise(&frames, 40) {
            let pushed = asm.push(seq, ts, marker, &p);
            assert!(!pushed.broken && pushed.lost == 0);
            out.extend(pushed.frame.map(|f| (f.data, f.keyframe)));
        }
        assert_eq!(out, frames);
        assert!(asm.push(65_530, 0, true, &[0x10, 1]).late, "an old sequence number is ignored");
    }

    #[test]
    fn loss_skips_deltas_and_requests_a_keyframe_rate_limited() {
        let frames = encoded(8, &[6]);
        let packets = packetise(&frames, 1200);
        assert_eq!(packets.len(), 8, "one packet per small frame");
        let mut rx = VideoReceiver::new().unwrap();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);

        let first = rx.push(ms(0), packets[0].0, packets[0].1, packets[0].2, &packets[0].3);
        assert!(first.picture.is_some() && !first.send_pli, "starts with a keyframe: no request");
        assert!(rx.push(ms(30), packets[1].0, packets[1].1, true, &packets[1].3).picture.is_some());
        // Frame 2 is lost: frame 3 is skipped and a keyframe requested, then again only after 500 ms.
        let r = rx.push(ms(100), packets[3].0, packets[3].1, true, &packets[3].3);
        assert_eq!((r.lost, r.skipped, r.send_pli, r.picture.is_none()), (1, true, true, true));
        let r = rx.push(ms(200), packets[4].0, packets[4].1, true, &packets[4].3);
        assert!(r.skipped && !r.send_pli);
        let r = rx.push(ms(700), packets[5].0, packets[5].1, true, &packets[5].3);
        assert!(r.skipped && r.send_pli);
        // The keyframe (6) resumes decoding; the delta after it decodes too, with no more requests.
        let r = rx.push(ms(800), packets[6].0, packets[6].1, true, &packets[6].3);
        assert_eq!((r.frame, r.picture.is_some(), r.send_pli), (Some(true), true, false));
        let r = rx.push(ms(1500), packets[7].0, packets[7].1, true, &packets[7].3);
        assert!(r.picture.is_some() && !r.send_pli);
    }

    #[test]
    fn a_stream_joined_mid_way_asks_for_a_keyframe() {
        let frames = encoded(3, &[]);
        let packets = packetise(&frames, 1200);
        let mut rx = VideoReceiver::new().unwrap();
        let r = rx.push(Instant::now(), packets[1].0, packets[1].1, true, &packets[1].3);
        assert_eq!((r.frame, r.skipped, r.send_pli), (Some(false), true, true));
        let r = rx.push(Instant::now(), packets[2].0, packets[2].1, true, &[]);
        assert!(r.frame.is_none() && !r.send_pli, "padding is neither a frame nor a loss");
        let r = rx.push(Instant::now(), packets[2].0.wrapping_add(1), 9, true, &[0x10]);
        assert!(r.frame.is_none(), "a descriptor with no data is unusable");
    }
}

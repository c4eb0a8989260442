//! Sans-IO H.264 receive: RTP payloads (RFC 6184: single NAL units, STAP-A, FU-A) reassembled
//! into Annex B access units, so a WHEP viewer's H.264 can be handed whole to ffmpeg. After a gap
//! in the sequence nothing is kept until the next keyframe (a decoder could not use it).

use bytes::Bytes;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;

/// One reassembled access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// Annex B: each NAL unit after a `00 00 00 01` start code.
    pub data: Vec<u8>,
    /// It holds an IDR slice.
    pub keyframe: bool,
}

#[derive(Default)]
pub struct H264Assembler {
    depacketizer: H264Packet,
    au: Vec<u8>,
    last_seq: Option<u16>,
    /// Packets were lost: waiting for a keyframe.
    broken: bool,
    /// Access units dropped while broken.
    pub skipped: u64,
}

impl H264Assembler {
    /// One RTP packet; a whole access unit when `marker` ends one.
    pub fn push(&mut self, seq: u16, marker: bool, payload: &[u8]) -> Option<AccessUnit> {
        if self.last_seq.is_some_and(|last| seq != last.wrapping_add(1)) {
            self.au.clear();
            self.depacketizer = H264Packet::default();
            self.broken = true;
        }
        self.last_seq = Some(seq);
        match self.depacketizer.depacketize(&Bytes::copy_from_slice(payload)) {
            Ok(nals) => self.au.extend_from_slice(&nals),
            Err(_) => self.broken = true,
        }
        if !marker {
            return None;
        }
        let data = std::mem::take(&mut self.au);
        let keyframe = nal_types(&data).any(|t| t == 5);
        if self.broken && !keyframe {
            self.skipped += 1;
            return None;
        }
        self.broken = false;
        (!data.is_empty()).then_some(AccessUnit { data, keyframe })
    }
}

/// The NAL unit types of an Annex B buffer.
pub fn nal_types(annexb: &[u8]) -> impl Iterator<Item = u8> + '_ {
    annexb.windows(4).enumerate().filter(|(_, w)| w[..3] == [0, 0, 1]).map(|(_, w)| w[3] & 0x1f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_nals_stap_a_and_fragments_make_access_units() {
        let mut a = H264Assembler::default();
        // STAP-A: SPS (7) and PPS (8), then an IDR slice (5) in two FU-A fragments.
        let stap = [24, 0, 2, 0x67, 1, 0, 2, 0x68, 2];
        assert_eq!(a.push(1, false, &stap), None);
        assert_eq!(a.push(2, false, &[0x7c, 0x85, 10, 11]), None);
        let au = a.push(3, true, &[0x7c, 0x45, 12]).unwrap();
        assert!(au.keyframe);
        assert_eq!(nal_types(&au.data).collect::<Vec<_>>(), [7, 8, 5]);
        // A delta frame as one NAL unit.
        let au = a.push(4, true, &[0x41, 9, 9]).unwrap();
        assert!(!au.keyframe);
        assert_eq!(au.data, [0, 0, 0, 1, 0x41, 9, 9]);
        // A gap: deltas are dropped until the next keyframe.
        assert_eq!(a.push(6, true, &[0x41, 1, 2]), None);
        assert_eq!(a.skipped, 1);
        assert!(a.push(7, true, &[0x65, 1, 2]).unwrap().keyframe);
    }
}

//! H.264 from AVCC (length-prefixed NAL units, parameter sets in the `AVCDecoderConfigurationRecord`,
//! as FLV and MP4 carry it) to Annex B (start codes, parameter sets in-band, as RTP packetisers
//! and WebRTC decoders want it).

use crate::codec::BadConfig;

const START: [u8; 4] = [0, 0, 0, 1];

/// What converting one stream's frames needs from its decoder configuration record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcToAnnexB {
    /// Bytes in each NAL unit's length prefix (1, 2 or 4).
    length_size: usize,
    /// Every SPS and PPS, each after a start code: put before each keyframe.
    parameter_sets: Vec<u8>,
}

impl AvcToAnnexB {
    pub fn new(record: &[u8]) -> Result<AvcToAnnexB, BadConfig> {
        let bad = BadConfig("H.264");
        if record.len() < 7 || record[0] != 1 {
            return Err(bad);
        }
        let length_size = usize::from(record[4] & 3) + 1;
        if length_size == 3 {
            return Err(bad);
        }
        let mut parameter_sets = Vec::new();
        let mut at = 5;
        // The SPS count (low 5 bits), the SPSs; then the PPS count (a whole byte), the PPSs.
        for mask in [0x1f, 0xff] {
            let count = record.get(at).ok_or(bad)? & mask;
            at += 1;
            for _ in 0..count {
                let len =
                    usize::from(u16::from_be_bytes([*record.get(at).ok_or(bad)?, *record.get(at + 1).ok_or(bad)?]));
                let nal = record.get(at + 2..at + 2 + len).ok_or(bad)?;
                parameter_sets.extend_from_slice(&START);
                parameter_sets.extend_from_slice(nal);
                at += 2 + len;
            }
        }
        Ok(AvcToAnnexB { length_size, parameter_sets })
    }

    /// One frame's NAL units with start codes, the parameter sets first on a keyframe.
    pub fn convert(&self, frame: &[u8], keyframe: bool) -> Result<Vec<u8>, BadConfig> {
        let bad = BadConfig("H.264 frame");
        let mut out = Vec::with_capacity(frame.len() + 16 + if keyframe { self.parameter_sets.len() } else { 0 });
        if keyframe {
            out.extend_from_slice(&self.parameter_sets);
        }
        let mut rest = frame;
        while !rest.is_empty() {
            let prefix = rest.get(..self.length_size).ok_or(bad)?;
            let len = prefix.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
            let nal = rest.get(self.length_size..self.length_size + len).ok_or(bad)?;
            out.extend_from_slice(&START);
            out.extend_from_slice(nal);
            rest = &rest[self.length_size + len..];
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_get_start_codes_and_keyframes_their_parameter_sets() {
        // Version 1, High profile, level 3.1, 4-byte lengths; one SPS, one PPS.
        let record = [1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 9];
        let c = AvcToAnnexB::new(&record).unwrap();
        let frame = [0, 0, 0, 2, 0x65, 7, 0, 0, 0, 1, 0x06];
        assert_eq!(
            c.convert(&frame, true).unwrap(),
            [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 9, 0, 0, 0, 1, 0x65, 7, 0, 0, 0, 1, 0x06]
        );
        assert_eq!(c.convert(&[0, 0, 0, 2, 0x41, 5], false).unwrap(), [0, 0, 0, 1, 0x41, 5]);
        // A length running past the frame, a truncated record, a 3-byte length: errors.
        assert!(c.convert(&[0, 0, 0, 9, 0x41], false).is_err());
        assert!(AvcToAnnexB::new(&record[..10]).is_err());
        assert!(AvcToAnnexB::new(&[1, 0x64, 0, 0x1f, 0xfe, 0xe0, 0]).is_err());
    }
}

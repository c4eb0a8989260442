//! Just enough of the VP8 frame header (RFC 6386 §9.1) to vet input before it reaches a decoder
//! (sans-IO): is it a keyframe, and how big would the decoder's picture be.
//!
//! The bitstream's own frame tag decides whether a frame is a keyframe (a depacketiser's flag
//! can be wrong), and a keyframe announcing a huge picture is refused: a publisher must not be
//! able to make the server allocate and decode a 16383x16383 picture.

/// Largest source picture decoded (1080p); bigger keyframes are dropped with their deltas.
pub const MAX_SOURCE_PIXELS: u32 = 1920 * 1088;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Key {
        width: u16,
        height: u16,
    },
    Delta,
    /// Not a VP8 frame we accept: too short, a keyframe without the start code, zero or
    /// oversized dimensions.
    Invalid,
}

pub fn inspect(frame: &[u8]) -> FrameKind {
    if frame.len() < 3 {
        return FrameKind::Invalid;
    }
    // Frame tag bit 0: 0 = keyframe. Bits 5.. = first partition size, which must fit the frame.
    let tag = u32::from_le_bytes([frame[0], frame[1], frame[2], 0]);
    let first_partition = (tag >> 5) as usize;
    if tag & 1 == 1 {
        return if first_partition <= frame.len() - 3 { FrameKind::Delta } else { FrameKind::Invalid };
    }
    if frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] || first_partition > frame.len() - 10 {
        return FrameKind::Invalid;
    }
    // 14 bits of size, 2 bits of upscaling hint.
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    if width == 0 || height == 0 || width as u32 * height as u32 > MAX_SOURCE_PIXELS {
        return FrameKind::Invalid;
    }
    FrameKind::Key { width, height }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyframe(width: u16, height: u16, partition: u32) -> Vec<u8> {
        let tag = (partition << 5) | (1 << 4); // keyframe, version 0, shown
        let mut f = tag.to_le_bytes()[..3].to_vec();
        f.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        f.extend_from_slice(&width.to_le_bytes());
        f.extend_from_slice(&height.to_le_bytes());
        f.resize(10 + partition as usize, 0);
        f
    }

    #[test]
    fn keyframes_report_their_size() {
        assert_eq!(inspect(&keyframe(640, 360, 20)), FrameKind::Key { width: 640, height: 360 });
        let mut scaled = keyframe(320, 180, 4);
        scaled[7] |= 0xc0; // upscaling bits are not part of the size
        assert_eq!(inspect(&scaled), FrameKind::Key { width: 320, height: 180 });
    }

    #[test]
    fn oversized_truncated_or_garbage_keyframes_are_invalid() {
        assert_eq!(inspect(&keyframe(16383, 16383, 4)), FrameKind::Invalid);
        assert_eq!(inspect(&keyframe(0, 360, 4)), FrameKind::Invalid);
        let mut short = keyframe(640, 360, 20);
        short.truncate(20);
        assert_eq!(inspect(&short), FrameKind::Invalid);
        let mut no_start = keyframe(640, 360, 4);
        no_start[3] = 0;
        assert_eq!(inspect(&no_start), FrameKind::Invalid);
        assert_eq!(inspect(&[0, 0]), FrameKind::Invalid);
    }

    #[test]
    fn delta_frames() {
        let tag: u32 = 1 | (1 << 4) | (5 << 5);
        let mut f = tag.to_le_bytes()[..3].to_vec();
        f.resize(8, 0xab);
        assert_eq!(inspect(&f), FrameKind::Delta);
        f.truncate(6);
        assert_eq!(inspect(&f), FrameKind::Invalid, "first partition longer than the frame");
    }
}

//! What the players' playlists and the init segment need to know of a stream's codecs, read from
//! the configs the publisher sends: picture size and the `avc1.PPCCLL` string from H.264's SPS,
//! sample rate and channels from AAC's `AudioSpecificConfig`. Sans-IO, bounds-checked: a config a
//! publisher made up is an error, never a panic.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcInfo {
    pub width: u32,
    pub height: u32,
    /// RFC 6381: `avc1.` and profile, constraints and level in hex.
    pub codec: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacInfo {
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

impl AacInfo {
    pub fn codec(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unreadable {0} config")]
pub struct BadConfig(pub &'static str);

const RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

pub fn aac(asc: &[u8]) -> Result<AacInfo, BadConfig> {
    let mut r = Bits::new(asc);
    let bad = BadConfig("AAC");
    let object_type = r.bits(5).ok_or(bad)? as u8;
    let index = r.bits(4).ok_or(bad)? as usize;
    let sample_rate = if index == 15 { r.bits(24).ok_or(bad)? } else { *RATES.get(index).ok_or(bad)? };
    let channels = r.bits(4).ok_or(bad)? as u8;
    Ok(AacInfo { object_type, sample_rate, channels })
}

/// Reads the first SPS of an `AVCDecoderConfigurationRecord`.
pub fn avc(record: &[u8]) -> Result<AvcInfo, BadConfig> {
    let bad = BadConfig("H.264");
    if record.len() < 8 || record[0] != 1 || record[5] & 0x1f == 0 {
        return Err(bad);
    }
    let codec = format!("avc1.{:02x}{:02x}{:02x}", record[1], record[2], record[3]);
    let len = usize::from(u16::from_be_bytes([record[6], record[7]]));
    let nal = record.get(8..8 + len).ok_or(bad)?;
    let rbsp = unescape(nal.get(1..).ok_or(bad)?);
    let (width, height) = sps_size(&rbsp).ok_or(bad)?;
    Ok(AvcInfo { width, height, codec })
}

/// The picture size from the SPS in an H.264 frame in Annex B (start codes), if it carries one
/// (WebRTC senders put SPS and PPS before each keyframe).
pub fn annexb_size(frame: &[u8]) -> Option<(u32, u32)> {
    let sps = nal_units(frame).find(|n| n.first().is_some_and(|b| b & 0x1f == 7))?;
    sps_size(&unescape(sps.get(1..)?))
}

/// The NAL units of an Annex B byte stream (split at `00 00 01`; a 4-byte start code's extra
/// zero is trailing zero bytes of the unit before it, which are dropped).
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts.iter().skip(1).map(|s| s - 3).chain(std::iter::once(data.len())).collect();
    starts.into_iter().zip(ends).map(move |(s, e)| {
        let mut unit = &data[s..e.max(s)];
        while let [rest @ .., 0] = unit {
            unit = rest;
        }
        unit
    })
}

/// Drops emulation-prevention bytes (`00 00 03` → `00 00`).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn sps_size(rbsp: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits::new(rbsp);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma = 1;
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        chroma = r.ue()?;
        if chroma == 3 {
            r.bits(1)?;
        }
        r.ue()?;
        r.ue()?;
        r.bits(1)?;
        if r.bits(1)? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.bits(1)? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bits(1)?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?;
    let width_mbs = r.ue()? + 1;
    let height_units = r.ue()? + 1;
    let frame_mbs_only = r.bits(1)?;
    if frame_mbs_only == 0 {
        r.bits(1)?;
    }
    r.bits(1)?;
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bits(1)? == 1 {
        (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let (sub_w, sub_h) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_x = if chroma == 0 { 1 } else { sub_w };
    let crop_y = (2 - frame_mbs_only) * if chroma == 0 { 1 } else { sub_h };
    let width = (width_mbs * 16).checked_sub(crop_x * (left + right))?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub(crop_y * (top + bottom))?;
    (width > 0 && height > 0 && width <= 8192 && height <= 8192).then_some((width, height))
}

/// An MSB-first bit reader with Exp-Golomb codes.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An avcC record around one SPS (from x264 via ffmpeg) and a dummy PPS.
    fn record(sps_hex: &str) -> Vec<u8> {
        let sps: Vec<u8> =
            (0..sps_hex.len()).step_by(2).map(|i| u8::from_str_radix(&sps_hex[i..i + 2], 16).unwrap()).collect();
        let mut r = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1, 0, sps.len() as u8];
        r.extend_from_slice(&sps);
        r.extend_from_slice(&[1, 0, 4, 0x68, 0xce, 0x3c, 0x80]);
        r
    }

    #[test]
    fn sps_of_x264_1080p_and_320x240() {
        // `ffmpeg -f lavfi -i testsrc2=size=WxH -c:v libx264 -preset ultrafast -f h264`, its SPS.
        let hd = avc(&record("6742c028da01e0089f970110000003001000000303c0f1832a")).unwrap();
        assert_eq!((hd.width, hd.height, hd.codec.as_str()), (1920, 1080, "avc1.42c028"), "1088 coded, cropped");
        let small = avc(&record("6742c00dda0507ec0440000003004000000f03c50aa8")).unwrap();
        assert_eq!((small.width, small.height, small.codec.as_str()), (320, 240, "avc1.42c00d"));
        let full = record("6742c00dda0507ec0440000003004000000f03c50aa8");
        assert_eq!(avc(&full[..12]), Err(BadConfig("H.264")), "cut short");
        assert_eq!(avc(&[1, 2, 3]), Err(BadConfig("H.264")));
    }

    #[test]
    fn annexb_frames_split_and_size() {
        let hex = |h: &str| -> Vec<u8> {
            (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
        };
        let sps = hex("6742c028da01e0089f970110000003001000000303c0f1832a");
        let mut frame = vec![0, 0, 0, 1];
        frame.extend_from_slice(&sps);
        frame.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 1, 0x65, 0x88, 0x84]);
        let units: Vec<&[u8]> = nal_units(&frame).collect();
        assert_eq!(units, vec![&sps[..], &[0x68, 0xce, 0x3c, 0x80][..], &[0x65, 0x88, 0x84][..]]);
        assert_eq!(annexb_size(&frame), Some((1920, 1080)));
        assert_eq!(annexb_size(&[0, 0, 1, 0x65, 1, 2]), None, "no SPS");
        assert_eq!(annexb_size(&[0, 0, 1, 0x67]), None, "an empty SPS");
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn aac_config() {
        assert_eq!(aac(&[0x11, 0x90]).unwrap(), AacInfo { object_type: 2, sample_rate: 48000, channels: 2 });
        assert_eq!(aac(&[0x12, 0x08]).unwrap(), AacInfo { object_type: 2, sample_rate: 44100, channels: 1 });
        assert_eq!(aac(&[0x11]), Err(BadConfig("AAC")));
        assert_eq!(aac(&[0x17, 0x80]), Err(BadConfig("AAC")), "sample-rate index 15 needs 24 more bits");
    }
}

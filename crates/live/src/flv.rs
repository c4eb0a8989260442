//! What an RTMP audio or video message carries: an FLV tag body. Sans-IO; only what the ingest
//! needs to check and forward: H.264 (AVC) sequence headers and frames, AAC configs and frames.
//! Anything else is named, so the publisher can be told which codec it sent.

use bytes::Bytes;

/// One video message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Video {
    /// `AVCDecoderConfigurationRecord`: SPS/PPS, sent before the first frame and on changes.
    AvcConfig(Bytes),
    /// AVCC NAL units (length-prefixed) of one frame.
    AvcFrame { keyframe: bool, composition_ms: i32, data: Bytes },
    /// End of sequence.
    AvcEnd,
    /// A codec this server does not take (FLV codec id, or the enhanced-RTMP FourCC).
    Unsupported(String),
}

/// One audio message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audio {
    /// `AudioSpecificConfig`.
    AacConfig(Bytes),
    /// One raw AAC frame.
    AacFrame(Bytes),
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed FLV {0} tag")]
pub struct Malformed(pub &'static str);

pub fn video(body: &Bytes) -> Result<Video, Malformed> {
    let first = *body.first().ok_or(Malformed("video"))?;
    // Enhanced RTMP (IsExHeader): a FourCC follows; hvc1, av01, vp09 are not taken here.
    if first & 0x80 != 0 {
        let fourcc = body.get(1..5).ok_or(Malformed("video"))?;
        return Ok(Video::Unsupported(String::from_utf8_lossy(fourcc).into_owned()));
    }
    let (frame_type, codec) = (first >> 4, first & 0x0f);
    if codec != 7 {
        let name = match codec {
            2 => "Sorenson H.263",
            3 => "Screen video",
            4 => "VP6",
            5 => "VP6 with alpha",
            6 => "Screen video 2",
            12 => "HEVC",
            _ => "an unknown video codec",
        };
        return Ok(Video::Unsupported(name.into()));
    }
    let head = body.get(1..5).ok_or(Malformed("video"))?;
    // 24-bit signed composition time offset, big-endian.
    let raw = (u32::from(head[1]) << 16) | (u32::from(head[2]) << 8) | u32::from(head[3]);
    let composition_ms = ((raw << 8) as i32) >> 8;
    let data = body.slice(5..);
    match head[0] {
        0 => Ok(Video::AvcConfig(data)),
        1 => Ok(Video::AvcFrame { keyframe: frame_type == 1, composition_ms, data }),
        2 => Ok(Video::AvcEnd),
        _ => Err(Malformed("video")),
    }
}

pub fn audio(body: &Bytes) -> Result<Audio, Malformed> {
    let first = *body.first().ok_or(Malformed("audio"))?;
    let format = first >> 4;
    if format != 10 {
        let name = match format {
            0..=1 | 3 => "PCM or ADPCM",
            2 | 14 => "MP3",
            4..=6 => "Nellymoser",
            7 | 8 => "G.711",
            11 => "Speex",
            _ => "an unknown audio codec",
        };
        return Ok(Audio::Unsupported(name.into()));
    }
    let kind = *body.get(1).ok_or(Malformed("audio"))?;
    let data = body.slice(2..);
    match kind {
        0 => Ok(Audio::AacConfig(data)),
        1 => Ok(Audio::AacFrame(data)),
        _ => Err(Malformed("audio")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_and_aac_are_read() {
        let config = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x28]);
        assert_eq!(video(&config), Ok(Video::AvcConfig(Bytes::from_static(&[1, 0x64, 0, 0x28]))));
        let key = Bytes::from_static(&[0x17, 1, 0, 0, 40, 0, 0, 0, 1, 0x65]);
        assert_eq!(
            video(&key),
            Ok(Video::AvcFrame { keyframe: true, composition_ms: 40, data: Bytes::from_static(&[0, 0, 0, 1, 0x65]) })
        );
        let inter = Bytes::from_static(&[0x27, 1, 0xff, 0xff, 0xf6, 9]);
        assert!(matches!(video(&inter), Ok(Video::AvcFrame { keyframe: false, composition_ms: -10, .. })));
        assert_eq!(
            audio(&Bytes::from_static(&[0xaf, 0, 0x12, 0x10])),
            Ok(Audio::AacConfig(Bytes::from_static(&[0x12, 0x10])))
        );
        assert_eq!(audio(&Bytes::from_static(&[0xaf, 1, 7])), Ok(Audio::AacFrame(Bytes::from_static(&[7]))));
    }

    #[test]
    fn other_codecs_are_named_and_garbage_is_malformed() {
        assert_eq!(video(&Bytes::from_static(&[0x12, 0])), Ok(Video::Unsupported("Sorenson H.263".into())));
        assert_eq!(video(&Bytes::from_static(&[0x1c, 0, 0, 0, 0])), Ok(Video::Unsupported("HEVC".into())));
        assert_eq!(video(&Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1'])), Ok(Video::Unsupported("hvc1".into())));
        assert_eq!(audio(&Bytes::from_static(&[0x2f, 0])), Ok(Audio::Unsupported("MP3".into())));
        assert_eq!(video(&Bytes::new()), Err(Malformed("video")));
        assert_eq!(video(&Bytes::from_static(&[0x17, 0])), Err(Malformed("video")));
        assert_eq!(video(&Bytes::from_static(&[0x17, 9, 0, 0, 0])), Err(Malformed("video")));
        assert_eq!(audio(&Bytes::from_static(&[0xaf])), Err(Malformed("audio")));
    }
}

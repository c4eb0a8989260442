//! The `abs-capture-time` RTP header extension: the sender's wall-clock capture instant as a 64-bit
//! NTP timestamp. confab forwards it untouched on audio and camera frames (sfu and hybrid audio,
//! sfu video), so a receiver on the same machine measures end-to-end latency as now − capture.
//! webrtc-rs 0.21 has no typed extension for it: this one is written through
//! `HeaderExtension::Custom` and read back from the raw bytes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rtc::rtp::extension::HeaderExtension;
use rtc::shared::error::{Error, Result};
use rtc::shared::marshal::{Marshal, MarshalSize};

pub const ABS_CAPTURE_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The short form of the extension: the capture timestamp alone (no clock offset).
#[derive(Debug, Clone, Copy)]
pub struct AbsCaptureTime(pub SystemTime);

impl MarshalSize for AbsCaptureTime {
    fn marshal_size(&self) -> usize {
        8
    }
}

impl Marshal for AbsCaptureTime {
    fn marshal_to(&self, buf: &mut [u8]) -> Result<usize> {
        let out = buf.get_mut(..8).ok_or(Error::ErrBufferTooSmall)?;
        out.copy_from_slice(&to_ntp(self.0).to_be_bytes());
        Ok(8)
    }
}

/// The extension for a frame captured at `at`, ready for a sample writer.
pub fn extension(at: SystemTime) -> HeaderExtension {
    HeaderExtension::Custom { uri: ABS_CAPTURE_TIME_URI.into(), extension: Box::new(AbsCaptureTime(at)) }
}

/// UQ32.32 seconds since 1900.
pub fn to_ntp(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The capture instant an extension's payload names (8 or 16 bytes: the clock offset is ignored);
/// `None` for anything shorter or before 1970.
pub fn parse(payload: &[u8]) -> Option<SystemTime> {
    let ntp = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let secs = (ntp >> 32).checked_sub(NTP_UNIX_OFFSET)?;
    let nanos = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
    Some(UNIX_EPOCH + Duration::new(secs, nanos as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_a_nanosecond() {
        let at = UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789);
        let mut buf = [0u8; 8];
        assert_eq!(AbsCaptureTime(at).marshal_to(&mut buf).ok(), Some(8));
        let back = parse(&buf).unwrap();
        let diff = back.duration_since(at).unwrap_or_else(|e| e.duration());
        assert!(diff <= Duration::from_nanos(1), "{diff:?}");
        assert!(parse(&buf[..7]).is_none());
        assert!(parse(&[0; 8]).is_none(), "before 1970");
        assert!(AbsCaptureTime(at).marshal_to(&mut [0u8; 4]).is_err());
    }
}

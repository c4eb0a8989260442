//! Opus to AAC for live streaming: a WebRTC publisher (WHIP) sends Opus, which HLS players do not
//! take in fMP4 everywhere (Safari and many TVs want AAC), so it is re-encoded once per stream.
//!
//! ```text
//! appsrc (Opus) → opusdec → audioconvert → audioresample → 48 kHz stereo → avenc_aac → appsink (raw AAC)
//! ```
//!
//! Timestamps go through: each AAC frame carries the time of the Opus audio it encodes.

use crate::McuError;
use crate::elements::{gst_err, make, require};
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Elements the transcoder builds.
pub const AAC_ELEMENTS: &[&str] =
    &["appsrc", "opusdec", "audioconvert", "audioresample", "capsfilter", "avenc_aac", "appsink"];

/// The `AudioSpecificConfig` the transcoder's output has (AAC-LC, 48 kHz, stereo, and libav's
/// explicit "no SBR" extension): known before the encoder's first frame, so a packager can write
/// its init segment with audio at once.
pub const ASC: [u8; 5] = [0x11, 0x90, 0x56, 0xe5, 0x00];

/// What the transcoder produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AacOutput {
    /// The `AudioSpecificConfig`, before the first frame (equal to [`ASC`]).
    Config(Bytes),
    /// One raw AAC frame (1,024 samples) and its time in ms.
    Frame { pts_ms: u64, data: Bytes },
}

/// A running transcoder; packets go in with [`OpusToAac::push`]. Dropping it stops it.
pub struct OpusToAac {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
}

impl OpusToAac {
    pub fn start(bitrate: u32, sink: impl Fn(AacOutput) + Send + Sync + 'static) -> Result<OpusToAac, McuError> {
        gst::init().map_err(|e| McuError::Gst(format!("gst::init: {e}")))?;
        for e in AAC_ELEMENTS {
            require(e)?;
        }
        let pipeline = gst::Pipeline::with_name("aac");
        let caps = gst::Caps::builder("audio/x-opus")
            .field("rate", 48_000i32)
            .field("channels", 2i32)
            .field("channel-mapping-family", 0i32)
            .build();
        let src = gst_app::AppSrc::builder()
            .name("in")
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(true)
            .max_bytes(1024 * 1024)
            .block(false)
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        let dec = make("opusdec", "dec")?;
        // A lost packet is concealed rather than heard as a click.
        dec.set_property("plc", true);
        if dec.find_property("max-errors").is_some() {
            dec.set_property("max-errors", -1i32);
        }
        let convert = make("audioconvert", "convert")?;
        let resample = make("audioresample", "resample")?;
        let raw = make("capsfilter", "raw")?;
        raw.set_property(
            "caps",
            gst::Caps::builder("audio/x-raw").field("rate", 48_000i32).field("channels", 2i32).build(),
        );
        let enc = make("avenc_aac", "enc")?;
        enc.set_property("bitrate", i32::try_from(bitrate).unwrap_or(128_000));
        let appsink = gst_app::AppSink::builder()
            .name("out")
            .caps(&gst::Caps::builder("audio/mpeg").field("mpegversion", 4i32).field("stream-format", "raw").build())
            .sync(false)
            .build();
        let mut sent_config = false;
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |appsink| {
                    let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    if !sent_config {
                        let asc = sample
                            .caps()
                            .and_then(|c| c.structure(0))
                            .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
                            .and_then(|b| b.map_readable().ok().map(|m| Bytes::copy_from_slice(&m)));
                        let Some(asc) = asc else { return Ok(gst::FlowSuccess::Ok) };
                        sink(AacOutput::Config(asc));
                        sent_config = true;
                    }
                    let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                    let pts_ms = buffer.pts().map_or(0, |t| t.mseconds());
                    let data =
                        Bytes::from_owner(buffer.into_mapped_buffer_readable().map_err(|_| gst::FlowError::Error)?);
                    sink(AacOutput::Frame { pts_ms, data });
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let chain = [src.upcast_ref(), &dec, &convert, &resample, &raw, &enc, appsink.upcast_ref()];
        pipeline.add_many(chain).map_err(gst_err)?;
        gst::Element::link_many(chain).map_err(gst_err)?;
        pipeline.set_state(gst::State::Playing).map_err(gst_err)?;
        Ok(OpusToAac { pipeline, src })
    }

    /// One Opus packet at `pts_ms`.
    pub fn push(&self, pts_ms: u64, opus: &[u8]) {
        let mut buffer = gst::Buffer::from_slice(opus.to_vec());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
            b.set_duration(gst::ClockTime::from_mseconds(20));
        }
        let _ = self.src.push_buffer(buffer);
    }

    /// Flushes what is queued, then stops (bounded wait).
    pub fn finish(self) {
        crate::elements::drain(&self.src, &self.pipeline, 2);
    }
}

impl Drop for OpusToAac {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn opus_packets_become_timed_aac_frames() {
        // One second of a 440 Hz tone, Opus-encoded in 20 ms packets.
        let mut enc = opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Audio).unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let t = {
            let out = out.clone();
            OpusToAac::start(128_000, move |o| out.lock().unwrap().push(o)).unwrap()
        };
        for i in 0..50u64 {
            let pcm: Vec<i16> = (0..960 * 2)
                .map(|n| {
                    let s = (i * 960 + n as u64 / 2) as f64 / 48_000.0;
                    ((s * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
                })
                .collect();
            let packet = enc.encode_vec(&pcm, 4000).unwrap();
            t.push(5_000 + i * 20, &packet);
        }
        t.finish();
        let out = out.lock().unwrap();
        let AacOutput::Config(asc) = &out[0] else { panic!("config first: {:?}", out.first()) };
        assert_eq!(asc[..], ASC, "AAC-LC (2), 48 kHz (index 3), stereo, as announced");
        let frames: Vec<u64> = out
            .iter()
            .filter_map(|o| if let AacOutput::Frame { pts_ms, .. } = o { Some(*pts_ms) } else { None })
            .collect();
        // 1 s at 1,024 samples per frame: ~46 frames, starting near the first packet's time.
        assert!((44..=48).contains(&frames.len()), "{} frames", frames.len());
        assert!(frames[0] >= 4_900 && frames[0] <= 5_030, "first at {}", frames[0]);
        assert!(frames.windows(2).all(|w| w[1] > w[0]), "increasing times");
    }
}

//! AAC to Opus for live streaming: a stream published over RTMP carries AAC, which WebRTC viewers
//! (WHEP) cannot play, so it is re-encoded once per stream into 20 ms Opus packets.
//!
//! ```text
//! appsrc (raw AAC + its AudioSpecificConfig) → avdec_aac → audioconvert → audioresample → 48 kHz stereo → opusenc → appsink
//! ```
//!
//! Timestamps go through: each Opus packet carries the time of the AAC audio it encodes.

use crate::McuError;
use crate::elements::{gst_err, make, require};
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Elements the transcoder builds.
pub const OPUS_ELEMENTS: &[&str] =
    &["appsrc", "avdec_aac", "audioconvert", "audioresample", "capsfilter", "opusenc", "appsink"];

/// One Opus packet (20 ms, 48 kHz stereo) and its time in ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusPacket {
    pub pts_ms: u64,
    pub data: Bytes,
}

/// A running transcoder; AAC frames go in with [`AacToOpus::push`]. Dropping it stops it.
pub struct AacToOpus {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
}

impl AacToOpus {
    /// Starts a transcoder for AAC described by `asc` (its `AudioSpecificConfig`).
    pub fn start(
        asc: &[u8],
        bitrate: u32,
        sink: impl Fn(OpusPacket) + Send + Sync + 'static,
    ) -> Result<AacToOpus, McuError> {
        gst::init().map_err(|e| McuError::Gst(format!("gst::init: {e}")))?;
        for e in OPUS_ELEMENTS {
            require(e)?;
        }
        let pipeline = gst::Pipeline::with_name("opus");
        let caps = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .field("codec_data", gst::Buffer::from_slice(asc.to_vec()))
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
        let dec = make("avdec_aac", "dec")?;
        // A corrupt frame costs that frame, never the stream's audio.
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
        let enc = make("opusenc", "enc")?;
        enc.set_property("bitrate", i32::try_from(bitrate).unwrap_or(96_000).clamp(4_000, 650_000));
        enc.set_property_from_str("frame-size", "20");
        let appsink = gst_app::AppSink::builder().name("out").sync(false).build();
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |appsink| {
                    let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                    // opusenc's header buffers (OpusHead, OpusTags) carry no time: not packets.
                    if buffer.flags().contains(gst::BufferFlags::HEADER) {
                        return Ok(gst::FlowSuccess::Ok);
                    }
                    let pts_ms = buffer.pts().map_or(0, |t| t.mseconds());
                    let data =
                        Bytes::from_owner(buffer.into_mapped_buffer_readable().map_err(|_| gst::FlowError::Error)?);
                    sink(OpusPacket { pts_ms, data });
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let chain = [src.upcast_ref(), &dec, &convert, &resample, &raw, &enc, appsink.upcast_ref()];
        pipeline.add_many(chain).map_err(gst_err)?;
        gst::Element::link_many(chain).map_err(gst_err)?;
        pipeline.set_state(gst::State::Playing).map_err(gst_err)?;
        Ok(AacToOpus { pipeline, src })
    }

    /// One raw AAC frame at `pts_ms`; the buffer shares `aac`, no copy.
    pub fn push(&self, pts_ms: u64, aac: Bytes) {
        let mut buffer = gst::Buffer::from_slice(aac);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        }
        let _ = self.src.push_buffer(buffer);
    }

    /// Flushes what is queued, then stops (bounded wait).
    pub fn finish(self) {
        crate::elements::drain(&self.src, &self.pipeline, 2);
    }
}

impl Drop for AacToOpus {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aac::{AacOutput, OpusToAac};
    use std::sync::{Arc, Mutex};

    /// The power of `freq` in `pcm` (mono, 48 kHz) relative to the signal's (Goertzel).
    fn tone_share(pcm: &[f32], freq: f64) -> f64 {
        let w = std::f64::consts::TAU * freq / 48_000.0;
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in pcm {
            let s = f64::from(x) + 2.0 * w.cos() * s1 - s2;
            (s2, s1) = (s1, s);
        }
        let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        let energy: f64 = pcm.iter().map(|x| f64::from(*x).powi(2)).sum();
        power / (energy * pcm.len() as f64 / 2.0).max(1e-9)
    }

    #[test]
    fn aac_frames_become_timed_opus_packets_of_the_same_sound() {
        // A second of 440 Hz, Opus → AAC (the other transcoder) → Opus again.
        let mut enc = opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Audio).unwrap();
        let aac = Arc::new(Mutex::new(Vec::new()));
        let to_aac = {
            let aac = aac.clone();
            OpusToAac::start(128_000, move |o| aac.lock().unwrap().push(o)).unwrap()
        };
        for i in 0..50u64 {
            let pcm: Vec<i16> = (0..960 * 2)
                .map(|n| {
                    let s = (i * 960 + n as u64 / 2) as f64 / 48_000.0;
                    ((s * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
                })
                .collect();
            to_aac.push(7_000 + i * 20, &enc.encode_vec(&pcm, 4000).unwrap());
        }
        to_aac.finish();
        let aac = aac.lock().unwrap().clone();
        let AacOutput::Config(asc) = &aac[0] else { panic!("config first") };
        let out = Arc::new(Mutex::new(Vec::new()));
        let to_opus = {
            let out = out.clone();
            AacToOpus::start(asc, 96_000, move |p| out.lock().unwrap().push(p)).unwrap()
        };
        for o in &aac[1..] {
            if let AacOutput::Frame { pts_ms, data } = o {
                to_opus.push(*pts_ms, data.clone());
            }
        }
        to_opus.finish();
        let out = out.lock().unwrap();
        // ~1 s in 20 ms packets, starting near the first frame's time, in order.
        assert!((45..=53).contains(&out.len()), "{} packets", out.len());
        assert!(out[0].pts_ms >= 6_900 && out[0].pts_ms <= 7_100, "first at {}", out[0].pts_ms);
        assert!(out.windows(2).all(|w| w[1].pts_ms > w[0].pts_ms), "increasing times");
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
        let mut pcm = Vec::new();
        for p in out.iter() {
            let mut frame = vec![0f32; 960];
            let n = dec.decode_float(&p.data, &mut frame, false).unwrap();
            pcm.extend_from_slice(&frame[..n]);
        }
        // The middle of it (codec delays at both ends) is the tone.
        let mid = &pcm[pcm.len() / 4..pcm.len() * 3 / 4];
        assert!(tone_share(mid, 440.0) > 0.5, "440 Hz share {}", tone_share(mid, 440.0));
        assert!(tone_share(mid, 1000.0) < 0.05);
    }
}

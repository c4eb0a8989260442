//! The live transcode ladder: one published H.264 stream decoded once and re-encoded into each
//! rendition of the ladder, for LL-HLS.
//!
//! ```text
//! appsrc (H.264, avc) → h264parse → avdec_h264 → videoconvert → tee ┬→ queue → videoscale → caps WxH → x264enc → appsink
//!                                                                  └→ …one branch per rendition
//! ```
//!
//! Keyframes align across renditions: every encoder sees the same frames (queues do not drop),
//! has no B-frames and no scene-cut keyframes, and keys every `gop_frames` frames, so each
//! rendition's keyframes fall on the same timestamps and a player can switch at any segment.
//! Timestamps go through untouched (buffer PTS/DTS in, the same out).

use crate::McuError;
use crate::elements::{gst_err, make, require};
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::Arc;

/// Elements the ladder builds.
pub const LADDER_ELEMENTS: &[&str] = &[
    "appsrc",
    "h264parse",
    "avdec_h264",
    "vp8dec",
    "videoconvert",
    "tee",
    "queue",
    "videoscale",
    "capsfilter",
    "x264enc",
    "appsink",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
}

/// What the ladder decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LadderInput {
    /// H.264 in AVCC frames, with its `AVCDecoderConfigurationRecord` (RTMP).
    Avc(Bytes),
    /// H.264 in Annex B frames (start codes), its SPS and PPS in-band (WebRTC).
    AnnexB,
    /// VP8 frames (WebRTC).
    Vp8,
}

#[derive(Debug, Clone)]
pub struct LadderConfig {
    pub renditions: Vec<Rendition>,
    /// Frames between keyframes (the segment length × the frame rate).
    pub gop_frames: u32,
    /// x264's speed preset (`ultrafast` … `medium`).
    pub preset: String,
}

/// What the ladder produces, per rendition (its index in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LadderOutput {
    /// The rendition's `AVCDecoderConfigurationRecord`, before its first frame.
    Config { rendition: usize, record: Bytes },
    /// One encoded frame, AVCC (length-prefixed NAL units), at the input's timestamps (ms).
    Frame { rendition: usize, pts_ms: u64, dts_ms: u64, keyframe: bool, data: Bytes },
}

/// A running ladder; frames go in with [`Ladder::push`]. Dropping it stops the pipeline.
pub struct Ladder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    /// The first frame's pts (ms), once pushed: encoders shift their output clocks (x264 by 1000
    /// hours, to keep DTS positive), so each branch maps its first output back to it.
    first_pts: Arc<std::sync::OnceLock<u64>>,
}

impl Ladder {
    /// Starts a ladder decoding `input`.
    pub fn start(
        input: &LadderInput,
        cfg: &LadderConfig,
        sink: impl Fn(LadderOutput) + Send + Sync + 'static,
    ) -> Result<Ladder, McuError> {
        gst::init().map_err(|e| McuError::Gst(format!("gst::init: {e}")))?;
        for e in LADDER_ELEMENTS {
            require(e)?;
        }
        let sink = Arc::new(sink);
        let first_pts = Arc::new(std::sync::OnceLock::new());
        let pipeline = gst::Pipeline::with_name("ladder");
        let caps = match input {
            LadderInput::Avc(record) => gst::Caps::builder("video/x-h264")
                .field("stream-format", "avc")
                .field("alignment", "au")
                .field("codec_data", gst::Buffer::from_slice(record.clone()))
                .build(),
            LadderInput::AnnexB => gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
            LadderInput::Vp8 => gst::Caps::builder("video/x-vp8").build(),
        };
        let src = gst_app::AppSrc::builder()
            .name("in")
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(true)
            .max_bytes(32 * 1024 * 1024)
            .block(false)
            // Encoders that cannot keep up lose old input (until the next keyframe) rather than
            // let the queue grow without bound.
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        let mut head = vec![src.clone().upcast::<gst::Element>()];
        if *input == LadderInput::Vp8 {
            head.push(make("vp8dec", "dec")?);
        } else {
            head.push(make("h264parse", "parse")?);
            head.push(make("avdec_h264", "dec")?);
        }
        // A corrupt frame costs that frame (until the next keyframe), never the ladder.
        if let Some(dec) = head.last().filter(|d| d.find_property("max-errors").is_some()) {
            dec.set_property("max-errors", -1i32);
        }
        head.push(make("videoconvert", "convert")?);
        let tee = make("tee", "tee")?;
        head.push(tee.clone());
        pipeline.add_many(&head).map_err(gst_err)?;
        gst::Element::link_many(&head).map_err(gst_err)?;
        for (i, r) in cfg.renditions.iter().enumerate() {
            branch(&pipeline, &tee, i, r, cfg, sink.clone(), first_pts.clone())?;
        }
        pipeline.set_state(gst::State::Playing).map_err(gst_err)?;
        Ok(Ladder { pipeline, src, first_pts })
    }

    /// One source frame: AVCC, timestamps in ms. The buffer shares `data`, no copy.
    pub fn push(&self, pts_ms: u64, dts_ms: u64, keyframe: bool, data: Bytes) {
        let _ = self.first_pts.set(pts_ms);
        let mut buffer = gst::Buffer::from_slice(data);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
            b.set_dts(gst::ClockTime::from_mseconds(dts_ms));
            if !keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        let _ = self.src.push_buffer(buffer);
    }

    /// Flushes what is queued through the encoders, then stops (bounded wait).
    pub fn finish(self) {
        crate::elements::drain(&self.src, &self.pipeline, 3);
    }
}

impl Drop for Ladder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// queue → videoscale → caps → x264enc → caps (avc, au) → appsink, for rendition `i`.
fn branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    i: usize,
    r: &Rendition,
    cfg: &LadderConfig,
    sink: Arc<dyn Fn(LadderOutput) + Send + Sync>,
    first_pts: Arc<std::sync::OnceLock<u64>>,
) -> Result<(), McuError> {
    let queue = make("queue", &format!("q{i}"))?;
    // Never dropping: the encoders must see the same frames for their keyframes to align.
    queue.set_property("max-size-time", 2 * gst::ClockTime::SECOND);
    queue.set_property("max-size-buffers", 0u32);
    queue.set_property("max-size-bytes", 0u32);
    let scale = make("videoscale", &format!("scale{i}"))?;
    let size = make("capsfilter", &format!("size{i}"))?;
    size.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("width", r.width as i32)
            .field("height", r.height as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    );
    let enc = make("x264enc", &format!("enc{i}"))?;
    enc.set_property("bitrate", r.bitrate_kbps);
    enc.set_property("key-int-max", cfg.gop_frames.max(1));
    enc.set_property("bframes", 0u32);
    enc.set_property_from_str("tune", "zerolatency");
    enc.set_property_from_str("speed-preset", &cfg.preset);
    // No scene-cut keyframes: they would fall on different frames in different renditions.
    enc.set_property("option-string", "scenecut=0:open-gop=0");
    let out = make("capsfilter", &format!("out{i}"))?;
    out.set_property(
        "caps",
        // Main profile: what browsers offer for WebRTC (High is not in Chromium's list), so the
        // top rendition can go to WHEP viewers as it is; all HLS players take it.
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field("profile", "main")
            .build(),
    );
    let appsink = gst_app::AppSink::builder().name(format!("sink{i}")).sync(false).build();
    let mut sent_config = false;
    let mut shift: Option<i128> = None;
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |appsink| {
                let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                if !sent_config {
                    let record = sample
                        .caps()
                        .and_then(|c| c.structure(0))
                        .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
                        .and_then(|b| b.map_readable().ok().map(|m| Bytes::copy_from_slice(&m)));
                    if let Some(record) = record {
                        sink(LadderOutput::Config { rendition: i, record });
                        sent_config = true;
                    }
                }
                let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                let ms = |t: Option<gst::ClockTime>| i128::from(t.map_or(0, |t| t.mseconds()));
                let (pts, dts) = (ms(buffer.pts()), ms(buffer.dts().or(buffer.pts())));
                // The first output is the first input (nothing is dropped or reordered).
                let shift = *shift.get_or_insert_with(|| pts - i128::from(first_pts.get().copied().unwrap_or(0)));
                let back = |t: i128| u64::try_from(t - shift).unwrap_or(0);
                let (pts_ms, dts_ms) = (back(pts), back(dts));
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let data = Bytes::from_owner(buffer.into_mapped_buffer_readable().map_err(|_| gst::FlowError::Error)?);
                sink(LadderOutput::Frame { rendition: i, pts_ms, dts_ms, keyframe, data });
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.add_many([&queue, &scale, &size, &enc, &out, appsink.upcast_ref()]).map_err(gst_err)?;
    gst::Element::link_many([&queue, &scale, &size, &enc, &out, appsink.upcast_ref()]).map_err(gst_err)?;
    tee.link(&queue).map_err(gst_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// x264 through GStreamer itself makes the source: 320x240, 30 fps, a keyframe every 30.
    fn source() -> (Bytes, Vec<(u64, bool, Bytes)>) {
        encoded("x264enc tune=zerolatency key-int-max=30 bframes=0 ! video/x-h264,stream-format=avc,alignment=au")
    }

    /// 90 frames of 320x240 at 30 fps through `encoder`: its codec data and frames.
    fn encoded(encoder: &str) -> (Bytes, Vec<(u64, bool, Bytes)>) {
        gst::init().unwrap();
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! {encoder} ! \
             appsink name=s sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let s = p.by_name("s").unwrap().downcast::<gst_app::AppSink>().unwrap();
        p.set_state(gst::State::Playing).unwrap();
        let (mut record, mut frames) = (Bytes::new(), Vec::new());
        while let Ok(sample) = s.pull_sample() {
            if record.is_empty()
                && let Ok(cd) = sample.caps().unwrap().structure(0).unwrap().get::<gst::Buffer>("codec_data")
            {
                record = Bytes::copy_from_slice(&cd.map_readable().unwrap());
            }
            let b = sample.buffer().unwrap();
            let key = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
            frames.push((b.pts().unwrap().mseconds(), key, Bytes::copy_from_slice(&b.map_readable().unwrap())));
        }
        p.set_state(gst::State::Null).unwrap();
        (record, frames)
    }

    #[test]
    fn every_rendition_keys_on_the_same_frames() {
        let (record, frames) = source();
        assert_eq!(frames.len(), 90);
        let cfg = LadderConfig {
            renditions: vec![
                Rendition { name: "240p".into(), width: 320, height: 240, bitrate_kbps: 400 },
                Rendition { name: "120p".into(), width: 160, height: 120, bitrate_kbps: 150 },
            ],
            gop_frames: 30,
            preset: "ultrafast".into(),
        };
        let out = Arc::new(Mutex::new(Vec::new()));
        let ladder = {
            let out = out.clone();
            Ladder::start(&LadderInput::Avc(record), &cfg, move |o| out.lock().unwrap().push(o)).unwrap()
        };
        for (ts, key, data) in &frames {
            ladder.push(*ts, *ts, *key, data.clone());
        }
        ladder.finish();
        let out = out.lock().unwrap();
        for r in 0..2 {
            let configs = out.iter().filter(|o| matches!(o, LadderOutput::Config { rendition, .. } if *rendition == r));
            assert_eq!(configs.count(), 1, "one config per rendition");
            let keys: Vec<u64> = out
                .iter()
                .filter_map(|o| match o {
                    LadderOutput::Frame { rendition, pts_ms, keyframe: true, .. } if *rendition == r => Some(*pts_ms),
                    _ => None,
                })
                .collect();
            let n =
                out.iter().filter(|o| matches!(o, LadderOutput::Frame { rendition, .. } if *rendition == r)).count();
            assert_eq!(n, 90, "every frame, rendition {r}");
            let t0 = frames[0].0;
            assert_eq!(
                keys,
                vec![t0, t0 + 1000, t0 + 2000],
                "keyframes every 30 frames, at the input's times, rendition {r}"
            );
        }
    }

    #[test]
    fn a_vp8_source_gets_a_rendition_at_its_own_size() {
        let (_, frames) = encoded("vp8enc deadline=1 keyframe-max-dist=1000");
        let cfg = LadderConfig {
            renditions: vec![
                Rendition { name: "source".into(), width: 320, height: 240, bitrate_kbps: 400 },
                Rendition { name: "120p".into(), width: 160, height: 120, bitrate_kbps: 150 },
            ],
            gop_frames: 30,
            preset: "ultrafast".into(),
        };
        let out = Arc::new(Mutex::new(Vec::new()));
        let ladder = {
            let out = out.clone();
            Ladder::start(&LadderInput::Vp8, &cfg, move |o| out.lock().unwrap().push(o)).unwrap()
        };
        for (ts, key, data) in &frames {
            ladder.push(*ts, *ts, *key, data.clone());
        }
        ladder.finish();
        let out = out.lock().unwrap();
        let t0 = frames[0].0;
        for r in 0..2 {
            let keys: Vec<u64> = out
                .iter()
                .filter_map(|o| match o {
                    LadderOutput::Frame { rendition, pts_ms, keyframe: true, .. } if *rendition == r => Some(*pts_ms),
                    _ => None,
                })
                .collect();
            // The source keys once; the ladder every 30 frames, the same in both renditions.
            assert_eq!(keys, vec![t0, t0 + 1000, t0 + 2000], "rendition {r}");
        }
    }
}

//! The fixed part of a room's pipeline (the bus thread is in `bus`):
//!
//! ```text
//! source bins ─┐
//! border appsrc ┴▶ compositor → capsfilter (I420 WxH@fps) → queue (leaky) → vp8enc → appsink
//! ```
//!
//! The compositor is `force-live`: it produces frames on the clock even with no source at all,
//! so peers get a (black) picture from the start. Every input already has the output's format
//! and colorimetry, so the compositor outputs I420 itself and no videoconvert is needed. The
//! leaky queue lets compositing and encoding run on two threads and drops raw frames, not
//! encoded ones, when the encoder falls behind.

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::elements::{gst_err, make, require};
use crate::layout::Rect;
use crate::placeholder::I420;
use crate::source::{Z_BORDER, push_still, raw_caps, still_source};
use crate::{CompositorConfig, CompositorEvent, EncodedFrame, McuError, Sink};

pub(crate) struct Parts {
    pub pipeline: gst::Pipeline,
    pub compositor: gst::Element,
    pub encoder: gst::Element,
    pub border: gst_app::AppSrc,
    pub border_pad: gst::Pad,
}

/// Builds the pipeline (not yet playing); every element is checked first, so a missing plugin
/// is a [`McuError::MissingElement`] before anything starts.
pub(crate) fn build(cfg: &CompositorConfig, sink: Sink) -> Result<Parts, McuError> {
    let pipeline = gst::Pipeline::with_name("mcu-video");
    require("compositor")?;
    let compositor = gst::ElementFactory::make("compositor")
        .name("compositor")
        .property_from_str("background", "black")
        .property("force-live", true) // construct-only
        .build()
        .map_err(gst_err)?;
    let out_caps = make("capsfilter", "out-caps")?;
    let caps = raw_caps(cfg.width, cfg.height);
    let caps = {
        let mut caps = caps;
        caps.make_mut().set("framerate", gst::Fraction::new(cfg.fps as i32, 1));
        caps
    };
    out_caps.set_property("caps", &caps);
    let queue = make("queue", "enc-queue")?;
    queue.set_property("max-size-buffers", 2u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 0u64);
    queue.set_property_from_str("leaky", "downstream");
    let encoder = make(&cfg.encoder, "encoder")?;
    configure_encoder(&encoder, cfg);
    // async=false: no preroll, so state changes are synchronous. An asynchronous PAUSED→PLAYING
    // would finish on a GStreamer pool thread that walks the children and could restart a
    // source bin we had just stopped and removed (a use-after-free in its appsrc's task).
    let appsink = gst_app::AppSink::builder().name("out").sync(false).async_(false).build();
    let frame_time = Duration::from_secs(1) / cfg.fps;
    let mut last_pts: Option<Duration> = None;
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |appsink| {
                let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let duration = Duration::from_nanos(buffer.duration().map_or(0, |t| t.nseconds()));
                // The compositor restarts its timeline when it first negotiates, so its second
                // frame repeats the first's pts; peers need distinct RTP timestamps per frame.
                let mut pts = Duration::from_nanos(buffer.pts().map_or(0, |t| t.nseconds()));
                if let Some(last) = last_pts.filter(|&last| pts <= last) {
                    pts = last + frame_time;
                }
                last_pts = Some(pts);
                // Zero-copy: the Bytes owns the mapped GStreamer buffer.
                let data = Bytes::from_owner(buffer.into_mapped_buffer_readable().map_err(|_| gst::FlowError::Error)?);
                sink(CompositorEvent::Frame(EncodedFrame { data, keyframe, pts, duration }));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );

    let border = still_source("border");
    pipeline
        .add_many([&compositor, &out_caps, &queue, &encoder, appsink.upcast_ref(), border.upcast_ref()])
        .map_err(gst_err)?;
    gst::Element::link_many([&compositor, &out_caps, &queue, &encoder, appsink.upcast_ref()])
        .map_err(|e| McuError::Gst(format!("linking the output chain: {e}")))?;

    // The border pad always exists (transparent when nobody is dominant): it also gives the
    // compositor caps to negotiate with before any source joins.
    let border_pad =
        compositor.request_pad_simple("sink_%u").ok_or_else(|| McuError::Gst("no compositor pad".into()))?;
    border_pad.set_property("zorder", Z_BORDER);
    border_pad.set_property("alpha", 0.0f64);
    crate::source::set_geometry(&border_pad, Rect { x: 0, y: 0, width: 16, height: 16 });
    border
        .static_pad("src")
        .ok_or_else(|| McuError::Gst("no border pad".into()))?
        .link(&border_pad)
        .map_err(gst_err)?;
    push_still(&border, I420::solid(16, 16, cfg.border_rgb));
    Ok(Parts { pipeline, compositor, encoder, border, border_pad })
}

/// Real-time VP8 settings (libwebrtc's choices where they apply). Properties are set only if
/// the configured encoder has them, so another element can stand in for `vp8enc`.
fn configure_encoder(enc: &gst::Element, cfg: &CompositorConfig) {
    // libvpx's threads sync rows by spinning on `pause`: on a busy box a waiting thread burns its
    // core (a quarter of the server's CPU in a 3x3 room, measured). One thread encodes 720p at
    // this speed setting well inside a frame interval; only bigger outputs get more.
    let threads = if cfg.width * cfg.height > 1280 * 720 {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4)) as i32
    } else {
        1
    };
    let key_dist = (cfg.keyframe_max_interval.as_secs_f64() * cfg.fps as f64).round().max(1.0) as i32;
    let props: [(&str, &str); 12] = [
        ("deadline", "1"),
        ("cpu-used", "16"),
        ("end-usage", "cbr"),
        ("target-bitrate", &(cfg.bitrate_kbps as i64 * 1000).to_string()),
        ("keyframe-max-dist", &key_dist.to_string()),
        ("lag-in-frames", "0"),
        ("threads", &threads.to_string()),
        ("error-resilient", "default"),
        // libwebrtc stops at 56 and drops frames to hold the rate; one composite serves the
        // whole room, so it keeps its frame rate and gives quality instead. At 56, nine busy
        // tiles overshot an 800 kbit/s target by ~35% (measured); at 63 it holds it, at 30 fps.
        ("max-quantizer", "63"),
        ("buffer-size", "1000"),
        ("buffer-initial-size", "500"),
        ("buffer-optimal-size", "600"),
    ];
    for (name, value) in props {
        // Parsed against the element's own property spec: a stand-in encoder whose property of
        // the same name has another type is left at its default instead of panicking.
        let parsed = enc.find_property(name).map(|pspec| glib::Value::deserialize_with_pspec(value, &pspec));
        match parsed {
            Some(Ok(v)) => enc.set_property_from_value(name, &v),
            Some(Err(_)) => tracing::warn!(encoder = cfg.encoder, "cannot set {name}={value}"),
            None => {}
        }
    }
}

//! One shown source's branch of the pipeline, a bin named `src-<id>-<generation>`:
//!
//! ```text
//! appsrc (video/x-vp8, live, do-timestamp) → vp8dec → videoscale → videoconvert → capsfilter ─▶ compositor pad (zorder 3)
//! appsrc (one raw I420 placeholder frame, re-pushed when the tile moves)           ─▶ compositor pad (zorder 2)
//! appsrc (the name band, a still frame at the tile's bottom-left corner)            ─▶ compositor pad (zorder 4)
//! ```
//!
//! Decoding and scaling to the tile size happen in the branch's own streaming thread, so they run
//! in parallel across sources, and the compositor only blends same-format, same-size frames.
//! The placeholder is always drawn under the video; the video pad is transparent (alpha 0) until
//! a decoded frame arrives after the camera (re)started, and again when the camera is turned off.
//! The compositor keeps showing a pad's last buffer until a newer one comes, so one placeholder
//! frame lasts until the tile moves.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::elements::{gst_err, make};
use crate::keyframe::SourceGate;
use crate::layout::Rect;
use crate::placeholder::I420;
use crate::{McuError, SourceId};

/// Compressed frames waiting in a source's appsrc before new ones are dropped (~1 s at 30 fps):
/// a decoder that falls that far behind is better restarted at a keyframe than waited for.
pub(crate) const MAX_QUEUED_FRAMES: u64 = 30;

/// Z-order: the dominant border under the tiles, the placeholder under the video.
pub(crate) const Z_BORDER: u32 = 1;
/// The decoder's name in its bin, which bus messages are matched on.
pub(crate) const DECODER_NAME: &str = "dec";
const Z_PLACEHOLDER: u32 = 2;
const Z_VIDEO: u32 = 3;
const Z_NAME: u32 = 4;
/// The name band's distance from the tile's edges, and its opacity over the video.
const NAME_MARGIN: u32 = 6;
const NAME_ALPHA: f64 = 0.8;

/// The name band of a tile and where it goes.
fn name_band(rect: Rect, label: &str) -> (I420, Rect) {
    let img = I420::name_band(label, rect.width.saturating_sub(2 * NAME_MARGIN), rect.height);
    let at = Rect {
        x: rect.x + NAME_MARGIN,
        y: (rect.y + rect.height).saturating_sub(img.height + NAME_MARGIN),
        width: img.width,
        height: img.height,
    };
    (img, at)
}

/// State shared with streaming threads (pad probes), which must never take the compositor's
/// state lock: branch removal holds it while waiting for those threads to stop.
pub(crate) struct Shared {
    pub camera_on: AtomicBool,
    /// The video pad is opaque (a frame was decoded since the camera last started).
    pub showing: AtomicBool,
    pub gate: Mutex<SourceGate>,
}

impl Shared {
    pub fn new(keyframe_min_interval: Duration) -> Arc<Shared> {
        Arc::new(Shared {
            camera_on: AtomicBool::new(true),
            showing: AtomicBool::new(false),
            gate: Mutex::new(SourceGate::new(keyframe_min_interval)),
        })
    }
}

pub(crate) struct Branch {
    pub bin: gst::Bin,
    pub vp8: gst_app::AppSrc,
    placeholder: gst_app::AppSrc,
    name: gst_app::AppSrc,
    capsfilter: gst::Element,
    video_pad: gst::Pad,
    placeholder_pad: gst::Pad,
    name_pad: gst::Pad,
    rect: Rect,
}

/// Caps of every raw frame that meets the compositor: one format and colorimetry everywhere,
/// so the compositor blends without converting.
pub(crate) fn raw_caps(width: u32, height: u32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", width as i32)
        .field("height", height as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .field("colorimetry", "bt601")
        .field("chroma-site", "mpeg2")
        .build()
}

/// A live appsrc for still frames: the compositor repeats its last buffer, so one push is enough.
pub(crate) fn still_source(name: &str) -> gst_app::AppSrc {
    gst_app::AppSrc::builder().name(name).is_live(true).format(gst::Format::Time).do_timestamp(true).build()
}

/// Pushes one still frame (with its caps, which may differ from the last one).
pub(crate) fn push_still(src: &gst_app::AppSrc, img: I420) {
    let caps = raw_caps(img.width, img.height);
    let sample = gst::Sample::builder().buffer(&gst::Buffer::from_mut_slice(img.data)).caps(&caps).build();
    // Fails only while the pipeline is shutting down.
    let _ = src.push_sample(&sample);
}

/// Requests a compositor pad and sets its geometry.
fn request_pad(compositor: &gst::Element, zorder: u32, alpha: f64, rect: Rect) -> Result<gst::Pad, McuError> {
    let pad = compositor.request_pad_simple("sink_%u").ok_or_else(|| McuError::Gst("no compositor pad".into()))?;
    pad.set_property("zorder", zorder);
    pad.set_property("alpha", alpha);
    set_geometry(&pad, rect);
    Ok(pad)
}

pub(crate) fn set_geometry(pad: &gst::Pad, r: Rect) {
    pad.set_property("xpos", r.x as i32);
    pad.set_property("ypos", r.y as i32);
    pad.set_property("width", r.width as i32);
    pad.set_property("height", r.height as i32);
}

impl Branch {
    /// Builds the branch, adds it to the running pipeline and starts it.
    pub fn new(
        pipeline: &gst::Pipeline,
        compositor: &gst::Element,
        (id, generation, label): (SourceId, u64, &str),
        rect: Rect,
        shared: Arc<Shared>,
    ) -> Result<Branch, McuError> {
        let bin = gst::Bin::with_name(&format!("src-{id}-{generation}"));
        let vp8 = gst_app::AppSrc::builder()
            .name("vp8")
            .caps(&gst::Caps::builder("video/x-vp8").build())
            .is_live(true)
            .format(gst::Format::Time)
            .do_timestamp(true)
            .build();
        let dec = make("vp8dec", DECODER_NAME)?;
        // Corrupt input becomes a warning we act on (see `crate::bus`), never a flow error
        // that would stop this branch.
        dec.set_property("max-errors", -1i32);
        dec.set_property("threads", 1u32);
        let scale = make("videoscale", "scale")?;
        let convert = make("videoconvert", "convert")?;
        let capsfilter = make("capsfilter", "size")?;
        capsfilter.set_property("caps", raw_caps(rect.width, rect.height));
        let placeholder = still_source("placeholder");
        let name = still_source("name");
        let elements =
            [vp8.upcast_ref(), &dec, &scale, &convert, &capsfilter, placeholder.upcast_ref(), name.upcast_ref()];
        bin.add_many(elements).map_err(gst_err)?;
        gst::Element::link_many([vp8.upcast_ref(), &dec, &scale, &convert, &capsfilter]).map_err(gst_err)?;

        let ghost = |target: &gst::Element, name: &str| -> Result<gst::Pad, McuError> {
            let pad = target.static_pad("src").ok_or_else(|| McuError::Gst("no src pad".into()))?;
            let ghost = gst::GhostPad::builder_with_target(&pad).map_err(gst_err)?.name(name).build();
            bin.add_pad(&ghost).map_err(gst_err)?;
            Ok(ghost.upcast())
        };
        let video_out = ghost(&capsfilter, "video")?;
        let placeholder_out = ghost(placeholder.upcast_ref(), "placeholder")?;
        let name_out = ghost(name.upcast_ref(), "name")?;

        let video_pad = request_pad(compositor, Z_VIDEO, 0.0, rect)?;
        let placeholder_pad = request_pad(compositor, Z_PLACEHOLDER, 1.0, rect).inspect_err(|_| {
            compositor.release_request_pad(&video_pad);
        })?;
        let name_pad = request_pad(compositor, Z_NAME, NAME_ALPHA, name_band(rect, label).1).inspect_err(|_| {
            compositor.release_request_pad(&video_pad);
            compositor.release_request_pad(&placeholder_pad);
        })?;
        let branch = Branch { bin, vp8, placeholder, name, capsfilter, video_pad, placeholder_pad, name_pad, rect };
        // From here on a failure must undo everything: `remove` copes with a half-built branch.
        match branch.start(pipeline, (video_out, placeholder_out, name_out), shared, (id, label)) {
            Ok(()) => Ok(branch),
            Err(e) => {
                branch.remove(pipeline, compositor);
                Err(e)
            }
        }
    }

    fn start(
        &self,
        pipeline: &gst::Pipeline,
        (video_out, placeholder_out, name_out): (gst::Pad, gst::Pad, gst::Pad),
        shared: Arc<Shared>,
        (id, label): (SourceId, &str),
    ) -> Result<(), McuError> {
        pipeline.add(&self.bin).map_err(gst_err)?;
        video_out.link(&self.video_pad).map_err(|e| McuError::Gst(format!("link video: {e:?}")))?;
        placeholder_out.link(&self.placeholder_pad).map_err(|e| McuError::Gst(format!("link placeholder: {e:?}")))?;
        name_out.link(&self.name_pad).map_err(|e| McuError::Gst(format!("link name: {e:?}")))?;
        // First decoded frame since the camera (re)started: show the video over the placeholder.
        self.video_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
            if shared.camera_on.load(Ordering::Acquire) && !shared.showing.swap(true, Ordering::AcqRel) {
                pad.set_property("alpha", 1.0f64);
            }
            gst::PadProbeReturn::Ok
        });
        self.bin.sync_state_with_parent().map_err(gst_err)?;
        let (w, h) = (self.rect.width, self.rect.height);
        push_still(&self.placeholder, I420::placeholder(w, h, id, label));
        push_still(&self.name, name_band(self.rect, label).0);
        Ok(())
    }

    /// Moves the tile: new pad geometry, scaled size and placeholder picture.
    pub fn place(&mut self, rect: Rect, id: SourceId, label: &str) {
        if rect == self.rect {
            return;
        }
        self.rect = rect;
        set_geometry(&self.video_pad, rect);
        set_geometry(&self.placeholder_pad, rect);
        // The decoder branch renegotiates on its next frame; until then the compositor scales.
        self.capsfilter.set_property("caps", raw_caps(rect.width, rect.height));
        push_still(&self.placeholder, I420::placeholder(rect.width, rect.height, id, label));
        let (band, at) = name_band(rect, label);
        set_geometry(&self.name_pad, at);
        push_still(&self.name, band);
    }

    /// Hides the video (camera off); the probe shows it again on the next decoded frame.
    pub fn hide_video(&self) {
        self.video_pad.set_property("alpha", 0.0f64);
    }

    /// Stops the branch and returns its pads: the bin goes to NULL first (its streaming thread
    /// stops; pushes into the compositor end within one output frame, as the compositor is
    /// live), then the pads are released and the bin removed. Nothing is pushed into a
    /// released pad, so no not-linked error is raised.
    pub fn remove(self, pipeline: &gst::Pipeline, compositor: &gst::Element) {
        let _ = self.bin.set_state(gst::State::Null);
        for pad in [&self.video_pad, &self.placeholder_pad, &self.name_pad] {
            compositor.release_request_pad(pad);
        }
        if self.bin.parent().is_some() {
            let _ = pipeline.remove(&self.bin);
        }
    }
}

/// The source a bus message came from: its bin's `(id, generation)`, parsed from the name.
pub(crate) fn origin(msg: &gst::Message) -> Option<(SourceId, u64)> {
    let mut obj = msg.src()?.clone();
    loop {
        if let Some(rest) = obj.name().strip_prefix("src-") {
            let (id, generation) = rest.split_once('-')?;
            return Some((id.parse().ok()?, generation.parse().ok()?));
        }
        obj = obj.parent()?;
    }
}

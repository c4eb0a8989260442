//! Which GStreamer elements the MCU needs, which Debian package provides each, and element
//! construction that turns "no such element" into an actionable [`McuError::MissingElement`].

use gstreamer as gst;

use crate::McuError;

/// Elements the video compositor builds with the default configuration (the encoder is
/// configurable: see [`crate::CompositorConfig::encoder`]).
pub const COMPOSITOR_ELEMENTS: &[&str] =
    &["appsrc", "appsink", "vp8dec", "vp8enc", "videoconvert", "videoscale", "capsfilter", "queue", "compositor"];

/// The Debian (bookworm) package that ships an element; `"unknown"` for one confab never uses.
pub fn debian_package(element: &str) -> &'static str {
    match element {
        // Core elements live in the library package itself.
        "capsfilter" | "queue" | "tee" | "identity" | "fakesink" => "libgstreamer1.0-0",
        "appsrc" | "appsink" | "videoconvert" | "videoscale" | "videorate" | "videotestsrc" | "compositor"
        | "audiomixer" | "audioconvert" | "audioresample" | "opusenc" | "opusdec" | "vorbisenc" => {
            "gstreamer1.0-plugins-base"
        }
        "textoverlay" | "clockoverlay" | "timeoverlay" => "gstreamer1.0-x",
        "vp8enc" | "vp8dec" | "vp9enc" | "vp9dec" | "rtpvp8pay" | "rtpvp8depay" | "rtpopuspay" | "rtpopusdepay"
        | "videobox" | "flvdemux" => "gstreamer1.0-plugins-good",
        "hlssink2" | "mpegtsmux" | "webrtcbin" | "rtmp2src" | "rtmp2sink" | "openh264enc" | "openh264dec" => {
            "gstreamer1.0-plugins-bad"
        }
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "vaapivp8enc" | "vaapih264enc" => "gstreamer1.0-vaapi",
        "avdec_h264" | "avenc_aac" => "gstreamer1.0-libav",
        _ => "unknown",
    }
}

/// Initialises GStreamer (idempotent) and checks that every named element can be created.
/// `confab serve` calls it at start-up so a missing plugin is reported before a room needs it.
pub fn check_elements<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), McuError> {
    gst::init().map_err(|e| McuError::Gst(format!("gst::init: {e}")))?;
    for name in names {
        if gst::ElementFactory::find(name).is_none() {
            return Err(missing(name));
        }
    }
    Ok(())
}

fn missing(element: &str) -> McuError {
    McuError::MissingElement { element: element.to_owned(), package: debian_package(element) }
}

/// Fails with [`McuError::MissingElement`] if `factory` is not installed.
pub(crate) fn require(factory: &str) -> Result<(), McuError> {
    gst::ElementFactory::find(factory).map(drop).ok_or_else(|| missing(factory))
}

/// Creates a named element, mapping absence to [`McuError::MissingElement`].
pub(crate) fn make(factory: &str, name: &str) -> Result<gst::Element, McuError> {
    require(factory)?;
    gst::ElementFactory::make(factory).name(name).build().map_err(|e| McuError::Gst(format!("{factory}: {e}")))
}

/// A GStreamer failure as an [`McuError`].
pub(crate) fn gst_err(e: impl std::fmt::Display) -> McuError {
    McuError::Gst(e.to_string())
}

/// Ends an appsrc-fed pipeline's input and waits (at most `secs`) for what is queued to flow out.
pub(crate) fn drain(src: &gstreamer_app::AppSrc, pipeline: &gst::Pipeline, secs: u64) {
    let _ = src.end_of_stream();
    if let Some(bus) = gst::prelude::ElementExt::bus(pipeline) {
        let types = [gst::MessageType::Eos, gst::MessageType::Error];
        let _ = bus.timed_pop_filtered(gst::ClockTime::from_seconds(secs), &types);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_needed_element_names_a_package() {
        for e in COMPOSITOR_ELEMENTS {
            assert_ne!(debian_package(e), "unknown", "{e}");
        }
        assert_eq!(debian_package("vp8enc"), "gstreamer1.0-plugins-good");
        assert_eq!(debian_package("compositor"), "gstreamer1.0-plugins-base");
    }
}

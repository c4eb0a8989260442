//! Construction errors: missing elements name the Debian package to install; bad configs are
//! refused. One test: it edits this process's GStreamer registry.

mod common;

use gstreamer as gst;
use mcu::{COMPOSITOR_ELEMENTS, Compositor, CompositorConfig, McuError, check_elements};

fn new(cfg: CompositorConfig) -> Result<Compositor, McuError> {
    Compositor::new(cfg, |_| {})
}

#[test]
fn missing_elements_name_their_debian_package_and_bad_configs_are_refused() {
    let cfg = CompositorConfig { encoder: "nonexistent-enc".into(), ..common::test_config() };
    match new(cfg) {
        Err(McuError::MissingElement { element, package }) => {
            assert_eq!(element, "nonexistent-enc");
            assert_eq!(package, "unknown", "an element confab does not know has no known package");
        }
        other => panic!("expected MissingElement, got {:?}", other.map(|_| ())),
    }
    check_elements(COMPOSITOR_ELEMENTS.iter().copied()).expect("this machine has every element");

    for cfg in [
        CompositorConfig { width: 641, ..CompositorConfig::default() },
        CompositorConfig { fps: 0, ..CompositorConfig::default() },
        CompositorConfig { max_tiles: 0, ..CompositorConfig::default() },
    ] {
        assert!(matches!(new(cfg), Err(McuError::InvalidConfig(_))));
    }

    // Hide vp8enc from this process, as if gstreamer1.0-plugins-good were not installed.
    let registry = gst::Registry::get();
    registry.remove_feature(&registry.lookup_feature("vp8enc").expect("vp8enc is installed"));
    let err = check_elements(["compositor", "vp8enc"]).expect_err("vp8enc is gone");
    assert!(
        matches!(&err, McuError::MissingElement { element, package: "gstreamer1.0-plugins-good" } if element == "vp8enc"),
        "{err:?}"
    );
    let err = new(CompositorConfig::default()).err().expect("no encoder, no compositor");
    assert_eq!(err.to_string(), "GStreamer element `vp8enc` is missing (Debian package: gstreamer1.0-plugins-good)");
}

//! Keyframes both ways: a late consumer gets one on request, and a source that starts without
//! one is asked for one and shown only from it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mcu::placeholder::colour;

#[test]
fn a_late_consumer_gets_a_keyframe_within_a_second_and_a_correct_picture() {
    let room = Room::with_decoder(test_config(), false);
    room.c.add_source(1, "Red");
    let _feeder = Feeder::start(&room.c, 1, vp8_frames(RED, 15), 15);
    std::thread::sleep(Duration::from_millis(1500));
    {
        let seen = room.seen.lock().unwrap();
        assert!(seen.frames > 10, "the composite flows before anyone decodes it");
        assert_eq!(seen.keyframes.len(), 1, "only the first frame is a keyframe until one is asked for");
    }

    // A peer joins: it can decode nothing until the next keyframe.
    room.join();
    let asked = Instant::now();
    room.c.request_keyframe();
    let deadline = asked + Duration::from_secs(3);
    let started = loop {
        if let Some(t) = room.seen.lock().unwrap().started_at {
            break t;
        }
        assert!(Instant::now() < deadline, "no keyframe after request_keyframe");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(started - asked < Duration::from_secs(1), "keyframe after {:?}", started - asked);
    let (x, y) = room.c.layout()[0].rect.centre();
    room.wait_for(Duration::from_secs(5), |p| p.near(x, y, RED, 60))
        .unwrap_or_else(|p| panic!("the late joiner decodes {:?}", p.map(|p| p.at(x, y))));

    // Rate limit: two requests 100 ms apart give two keyframes, the second deferred to the end
    // of keyframe_min_interval (500 ms) rather than dropped.
    std::thread::sleep(Duration::from_millis(600));
    let t0 = Instant::now();
    room.c.request_keyframe();
    std::thread::sleep(Duration::from_millis(100));
    room.c.request_keyframe();
    std::thread::sleep(Duration::from_millis(1500));
    let keys: Vec<Instant> = room.seen.lock().unwrap().keyframes.iter().copied().filter(|&k| k >= t0).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[1] - keys[0] >= Duration::from_millis(350), "spacing {:?}", keys[1] - keys[0]);
}

#[test]
fn a_source_starting_without_a_keyframe_is_asked_for_one_and_shown_from_it() {
    let room = Room::new(test_config());
    let id = 6; // placeholder colour far from red
    room.c.add_source(id, "Late Publisher");
    // Start 5 frames into the stream: 10 deltas before the next keyframe (15 frames per cycle).
    let frames = vp8_frames(RED, 15);
    let rotated: Vec<_> = frames[5..].iter().chain(&frames[..5]).cloned().collect();
    let _feeder = Feeder::start(&room.c, id, rotated, 15);
    let rect = room.c.layout()[0].rect;
    let ((x, y), (px, py)) = (rect.centre(), (rect.x + 20, rect.y + 20));
    // Deltas are dropped: the placeholder shows, not a half-decoded picture.
    room.wait_for(Duration::from_secs(5), |p| p.near(px, py, colour(id), 50))
        .unwrap_or_else(|_| panic!("no placeholder while waiting for the keyframe"));
    room.wait_for(Duration::from_secs(5), |p| p.near(x, y, RED, 60))
        .unwrap_or_else(|_| panic!("not shown from the keyframe on"));
    assert!(room.seen.lock().unwrap().keyframe_needed.contains(&id), "the publisher was asked for a keyframe");
}

//! Faults: garbage from one publisher, a failing source branch, a failing pipeline. None may
//! panic; only the last ends the room's video.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mcu::Tile;

const WAIT: Duration = Duration::from_secs(10);

fn centre(tiles: &[Tile], id: u64) -> (u32, u32) {
    tiles.iter().find(|t| t.source == id).expect("tile").rect.centre()
}

/// Deterministic noise.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn garbage_from_one_source_leaves_the_others_and_recovers_at_its_next_keyframe() {
    let room = Room::new(test_config());
    for id in 1..=3 {
        room.c.add_source(id, "x");
    }
    let _feeders =
        [Feeder::start(&room.c, 1, vp8_frames(RED, 15), 15), Feeder::start(&room.c, 2, vp8_frames(GREEN, 15), 15)];
    let tiles = room.c.layout();
    let ((rx, ry), (gx, gy), (bx, by)) = (centre(&tiles, 1), centre(&tiles, 2), centre(&tiles, 3));
    let others_fine = |p: &Picture| p.near(rx, ry, RED, 60) && p.near(gx, gy, GREEN, 60);
    room.wait_for(WAIT, others_fine).unwrap_or_else(|_| panic!("no picture"));

    // Source 3: noise flagged as keyframes and deltas, real frames with their payload corrupted
    // (headers intact, so they reach the decoder), and a keyframe announcing 16383x16383.
    let blue = vp8_frames(BLUE, 15);
    let mut oversized = blue[0].0.clone();
    oversized[6..10].copy_from_slice(&[0xff, 0x3f, 0xff, 0x3f]);
    for i in 0..60u64 {
        room.c.push_vp8(3, &noise(i, 500 + 37 * i as usize), i % 2 == 0);
        let (frame, key) = &blue[i as usize % blue.len()];
        let mut corrupt = frame.clone();
        let len = corrupt.len();
        corrupt[len / 3..].iter_mut().enumerate().for_each(|(j, b)| *b ^= (j as u8).wrapping_mul(31) | 1);
        room.c.push_vp8(3, &corrupt, *key);
        room.c.push_vp8(3, &oversized, true);
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    room.wait_for(WAIT, others_fine).unwrap_or_else(|_| panic!("the other tiles broke"));
    {
        let seen = room.seen.lock().unwrap();
        assert!(seen.failed.is_empty(), "one bad publisher must not end the room: {:?}", seen.failed);
        assert!(seen.keyframe_needed.contains(&3), "source 3 is asked for a keyframe");
    }

    // The publisher recovers: valid frames show from its next keyframe.
    let _blue = Feeder::start(&room.c, 3, blue, 15);
    room.wait_for(WAIT, |p| others_fine(p) && p.near(bx, by, BLUE, 60))
        .unwrap_or_else(|p| panic!("source 3 did not recover: {:?}", p.map(|p| p.at(bx, by))));
}

#[test]
fn a_failing_source_branch_is_rebuilt_and_the_room_goes_on() {
    let room = Room::new(test_config());
    room.c.add_source(1, "x");
    room.c.add_source(2, "y");
    let _feeders =
        [Feeder::start(&room.c, 1, vp8_frames(RED, 15), 15), Feeder::start(&room.c, 2, vp8_frames(BLUE, 15), 15)];
    let tiles = room.c.layout();
    let ((rx, ry), (bx, by)) = (centre(&tiles, 1), centre(&tiles, 2));
    let both = |p: &Picture| p.near(rx, ry, RED, 60) && p.near(bx, by, BLUE, 60);
    room.wait_for(WAIT, both).unwrap_or_else(|_| panic!("no picture"));
    let asked = |room: &Room| room.seen.lock().unwrap().keyframe_needed.iter().filter(|&&id| id == 2).count();
    let before = asked(&room);

    room.c.simulate_source_error(2);
    let deadline = Instant::now() + WAIT;
    while asked(&room) == before {
        assert!(Instant::now() < deadline, "no keyframe request after the branch failed");
        std::thread::sleep(Duration::from_millis(20));
    }
    room.wait_for(WAIT, both).unwrap_or_else(|_| panic!("source 2 did not come back"));
    assert!(room.seen.lock().unwrap().failed.is_empty());
    assert_eq!(room.c.layout(), tiles);
}

#[test]
fn a_pipeline_error_fails_the_room_once_without_panicking() {
    let room = Room::new(test_config());
    room.c.add_source(1, "x");
    let _feeder = Feeder::start(&room.c, 1, vp8_frames(RED, 15), 15);
    room.wait_for(WAIT, |_| true).unwrap_or_else(|_| panic!("no picture"));

    room.c.simulate_pipeline_error();
    let deadline = Instant::now() + WAIT;
    while room.seen.lock().unwrap().failed.is_empty() {
        assert!(Instant::now() < deadline, "no Failed event");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Stopped: frames end, and every call is a harmless no-op.
    std::thread::sleep(Duration::from_millis(200));
    let frames = room.seen.lock().unwrap().frames;
    room.c.add_source(2, "y");
    room.c.push_vp8(1, &[1, 2, 3], false);
    room.c.set_camera(1, false);
    room.c.set_dominant(Some(1));
    room.c.request_keyframe();
    room.c.remove_source(1);
    std::thread::sleep(Duration::from_millis(300));
    let seen = room.seen.lock().unwrap();
    assert_eq!(seen.frames, frames, "no frames after the failure");
    assert_eq!(seen.failed.len(), 1, "{:?}", seen.failed);
    assert!(seen.failed[0].contains("simulated pipeline failure"), "{:?}", seen.failed);
}

#[test]
fn rooms_started_and_torn_down_at_once_do_not_crash() {
    // Regression: an asynchronous state change finishing on a pool thread once restarted a
    // source bin that had just been removed (a crash in its appsrc's task).
    for _ in 0..20 {
        let c = mcu::Compositor::new(test_config(), |_| {}).expect("compositor");
        for id in 0..5 {
            c.add_source(id, "x");
        }
        std::thread::sleep(Duration::from_millis(20));
        c.remove_source(2);
        c.set_dominant(Some(3));
        drop(c);
    }
}

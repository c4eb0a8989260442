//! The composite's content: the output is decoded like a peer would and sampled at the tiles
//! `layout()` reports.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use mcu::placeholder::colour;
use mcu::{CompositorConfig, Rect, Tile, layout};

const WAIT: Duration = Duration::from_secs(10);

fn colours_at(p: &Picture, tiles: &[Tile]) -> Vec<[u8; 3]> {
    tiles.iter().map(|t| p.at(t.rect.centre().0, t.rect.centre().1)).collect()
}

fn tile(tiles: &[Tile], id: u64) -> Rect {
    tiles.iter().find(|t| t.source == id).expect("tile").rect
}

/// No pixel on a 16 px grid looks like `rgb`.
fn absent(p: &Picture, rgb: [u8; 3]) -> bool {
    (0..p.height as u32).step_by(16).all(|y| (0..p.width as u32).step_by(16).all(|x| !p.near(x, y, rgb, 60)))
}

/// A point inside the tile but away from the centred initials.
fn off_centre(r: Rect) -> (u32, u32) {
    (r.x + r.width / 8, r.y + r.height / 8)
}

fn feed(room: &Room, sources: &[(u64, [u8; 3])]) -> HashMap<u64, Feeder> {
    sources.iter().map(|&(id, rgb)| (id, Feeder::start(&room.c, id, vp8_frames(rgb, 15), 15))).collect()
}

#[test]
fn three_sources_appear_in_their_tiles() {
    let room = Room::new(test_config());
    for (id, label) in [(1, "Red"), (2, "Green"), (3, "Blue")] {
        room.c.add_source(id, label);
    }
    let _feeders = feed(&room, &[(1, RED), (2, GREEN), (3, BLUE)]);
    let tiles = room.c.layout();
    assert_eq!(tiles, layout::grid(&[1, 2, 3], 640, 360, 9), "the layout module decides");
    let expect = [RED, GREEN, BLUE];
    let pic = room
        .wait_for(WAIT, |p| {
            tiles.iter().zip(expect).all(|(t, rgb)| p.near(t.rect.centre().0, t.rect.centre().1, rgb, 60))
        })
        .unwrap_or_else(|p| panic!("colours at the tile centres: {:?}", p.map(|p| colours_at(&p, &tiles))));
    pic.dump("three_sources");
    assert_eq!((pic.width, pic.height), (640, 360));
    assert!(room.seen.lock().unwrap().failed.is_empty());
}

#[test]
fn removing_a_source_reflows_the_grid_and_its_colour_goes() {
    let room = Room::new(test_config());
    for id in 1..=3 {
        room.c.add_source(id, "x");
    }
    let mut feeders = feed(&room, &[(1, RED), (2, GREEN), (3, BLUE)]);
    let tiles = room.c.layout();
    room.wait_for(WAIT, |p| p.near(tile(&tiles, 2).centre().0, tile(&tiles, 2).centre().1, GREEN, 60))
        .unwrap_or_else(|_| panic!("green never showed"));

    room.c.remove_source(2);
    feeders.remove(&2);
    let tiles = room.c.layout();
    assert_eq!(tiles.iter().map(|t| t.source).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(tiles, layout::grid(&[1, 3], 640, 360, 9));
    assert_eq!(tiles[0].rect.y, tiles[1].rect.y, "2 tiles: side by side");
    let (red, blue) = (tile(&tiles, 1).centre(), tile(&tiles, 3).centre());
    let ok = |p: &Picture| p.near(red.0, red.1, RED, 60) && p.near(blue.0, blue.1, BLUE, 60) && absent(p, GREEN);
    room.wait_for(WAIT, ok).unwrap_or_else(|p| panic!("after removal: {:?}", p.map(|p| colours_at(&p, &tiles))));

    // Churn: sources coming and going while others stream leaves the room as it was, with no
    // element or compositor pad left behind.
    let census = room.c.census();
    for id in 10..20 {
        room.c.add_source(id, "churn");
        if id % 3 == 0 {
            room.c.set_dominant(Some(id));
        }
    }
    assert_eq!(room.c.layout().len(), 9, "capped at max_tiles");
    for id in 10..20 {
        room.c.remove_source(id);
    }
    assert_eq!(room.c.layout(), tiles);
    assert_eq!(room.c.census(), census);
    room.wait_for(WAIT, ok).unwrap_or_else(|p| panic!("after churn: {:?}", p.map(|p| colours_at(&p, &tiles))));
    assert!(room.seen.lock().unwrap().failed.is_empty());
}

#[test]
fn placeholders_until_frames_arrive_and_when_the_camera_is_off() {
    let room = Room::new(test_config());
    // Ids chosen so the placeholder colours are far from the camera's red.
    let (camera, silent) = (6, 2);
    assert!(!near(colour(camera), RED, 80) && !near(colour(silent), RED, 80));
    room.c.add_source(camera, "Red Camera");
    room.c.add_source(silent, "Ada Lovelace");
    let _feeder = Feeder::start(&room.c, camera, vp8_frames(RED, 15), 15);
    let tiles = room.c.layout();
    let (cam, sil) = (tile(&tiles, camera), tile(&tiles, silent));
    let initials_drawn = |p: &Picture| {
        // Somewhere in the middle band of the silent tile there is white (the initials).
        let y = sil.centre().1;
        (sil.x + sil.width / 4..sil.x + 3 * sil.width / 4).any(|x| p.near(x, y, [255, 255, 255], 60))
    };
    let pic = room
        .wait_for(WAIT, |p| {
            let (sx, sy) = off_centre(sil);
            p.near(cam.centre().0, cam.centre().1, RED, 60) && p.near(sx, sy, colour(silent), 50) && initials_drawn(p)
        })
        .unwrap_or_else(|_| panic!("placeholder of the silent source not shown"));
    pic.dump("placeholder");

    room.c.set_camera(camera, false);
    let (cx, cy) = off_centre(cam);
    room.wait_for(WAIT, |p| p.near(cx, cy, colour(camera), 50))
        .unwrap_or_else(|_| panic!("camera off: no placeholder"));

    room.c.set_camera(camera, true);
    room.wait_for(WAIT, |p| p.near(cam.centre().0, cam.centre().1, RED, 60))
        .unwrap_or_else(|_| panic!("camera on again: no video"));
}

#[test]
fn an_empty_room_streams_black() {
    let room = Room::new(test_config());
    let pic = room.wait_for(WAIT, |p| p.near(320, 180, [0, 0, 0], 20)).unwrap_or_else(|_| panic!("no black picture"));
    assert_eq!((pic.width, pic.height), (640, 360));
    assert!(room.c.layout().is_empty());
}

#[test]
fn the_dominant_speaker_gets_a_border() {
    // 720p: the border is 6 px, enough to survive VP8 and chroma subsampling.
    let cfg = CompositorConfig { width: 1280, height: 720, ..test_config() };
    let border = cfg.border_rgb;
    let room = Room::new(cfg);
    room.c.add_source(1, "One");
    room.c.add_source(2, "Two");
    let _feeders = feed(&room, &[(1, RED), (2, BLUE)]);
    let tiles = room.c.layout();
    let b = layout::border_width(720);
    // The middle of the border strip on each side of a tile.
    let strip = |r: Rect| {
        let (cx, cy) = r.centre();
        let h = b / 2;
        [(cx, r.y - h), (cx, r.y + r.height + h - 1), (r.x - h, cy), (r.x + r.width + h - 1, cy)]
    };
    let framed = |p: &Picture, r: Rect| strip(r).iter().all(|&(x, y)| near(p.pixel(x, y), border, 70));
    let bare = |p: &Picture, r: Rect| strip(r).iter().all(|&(x, y)| near(p.pixel(x, y), [0, 0, 0], 40));
    let (one, two) = (tile(&tiles, 1), tile(&tiles, 2));
    room.wait_for(WAIT, |p| p.near(one.centre().0, one.centre().1, RED, 60) && bare(p, one) && bare(p, two))
        .unwrap_or_else(|_| panic!("no picture without borders"));

    room.c.set_dominant(Some(1));
    let pic = room
        .wait_for(WAIT, |p| framed(p, one) && bare(p, two) && p.near(one.centre().0, one.centre().1, RED, 60))
        .unwrap_or_else(|p| panic!("no border around 1: {:?}", p.map(|p| strip(one).map(|(x, y)| p.pixel(x, y)))));
    pic.dump("dominant");

    room.c.set_dominant(Some(2));
    room.wait_for(WAIT, |p| framed(p, two) && bare(p, one)).unwrap_or_else(|_| panic!("the border did not move"));
    room.c.set_dominant(None);
    room.wait_for(WAIT, |p| bare(p, one) && bare(p, two)).unwrap_or_else(|_| panic!("the border stayed"));
}

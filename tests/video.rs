//! Video and the room modes end to end: the real `confab` binary with its GStreamer MCU, and
//! webrtc-rs participants (the testbed) that publish solid-colour VP8 cameras and Opus tones,
//! decode what they receive with libvpx and judge it by colour and by Goertzel filters.
//!
//! The composite is 640x360@15 here (the default 1280x720@30 costs more CPU than tests sharing
//! two cores can spare); tiles are where `mcu::layout` puts them, in join order.

mod common;

use std::time::{Duration, Instant};

use common::{Server, guild, stats, voice_channel};
use mcu::layout::{Tile, grid};
use serde_json::json;
use signaling::protocol::{RoomMode, ServerMsg};
use testbed::picture::{I420, colour_close};
use testbed::video_send::CameraOptions;
use testbed::{VoiceClient, VoiceOptions};

const T: Duration = Duration::from_secs(15);
const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const YELLOW: [u8; 3] = [255, 255, 0];
/// Per channel, after VP8 twice and scaling.
const TOLERANCE: u8 = 48;
const TONES: [f32; 3] = [500.0, 800.0, 1250.0];
const SIZE: (u32, u32) = (640, 360);

fn small_composite() -> Vec<(&'static str, &'static str)> {
    vec![("CONFAB_VIDEO_WIDTH", "640"), ("CONFAB_VIDEO_HEIGHT", "360"), ("CONFAB_VIDEO_FPS", "15")]
}

fn server(dir: &tempfile::TempDir, extra: &[(&'static str, &'static str)]) -> Server {
    let mut env = small_composite();
    env.extend_from_slice(extra);
    Server::start(&format!("sqlite:{}", dir.path().join("v.db").display()), &env)
}

fn camera(rgb: [u8; 3], tone: f32) -> VoiceOptions {
    VoiceOptions { camera: Some(CameraOptions::colour(rgb)), ..VoiceOptions::tone(tone) }
}

/// The tiles of `n` cameras in join order.
fn tiles(n: usize) -> Vec<Tile> {
    let ids: Vec<u64> = (0..n as u64).collect();
    grid(&ids, SIZE.0, SIZE.1, 9)
}

/// The composite of a grid of `n` tiles shows `colours[i]` in its i-th tile (`n` ≥ the colours:
/// the last tiles may be placeholders).
fn shows(p: &I420, n: usize, colours: &[[u8; 3]]) -> bool {
    (p.width, p.height) == SIZE
        && tiles(n).iter().zip(colours).all(|(t, &want)| {
            let (x, y) = t.rect.centre();
            p.mean_rgb(x - 8, y - 8, 16, 16).is_some_and(|c| colour_close(c, want, TOLERANCE))
        })
}

/// Waits for `c`'s composite (a grid of `n` tiles) to show `colours` tile by tile.
async fn wait_composite(c: &VoiceClient, n: usize, colours: &[[u8; 3]]) {
    if let Err(e) = c.wait_picture(None, |p| shows(p, n, colours), T).await {
        panic!("{} never saw {colours:?} in {n} tiles: {e:#}", c.session().user_id);
    }
}

/// The luma under tile `t`'s name band (its bottom-left corner, where `mcu::source` puts it).
fn name_band(p: &I420, t: &Tile) -> Vec<u8> {
    let r = t.rect;
    let (w, h) = (20u32.min(r.width), 10u32);
    let (x0, y0) = (r.x + 7, r.y + r.height - 7 - h);
    (y0..y0 + h).flat_map(|y| (x0..x0 + w).map(move |x| p.y[(y * p.width + x) as usize])).collect()
}

/// Every tile carries a name band (dark, with light letters) and no two read the same.
fn named(p: &I420, n: usize) -> bool {
    let bands: Vec<Vec<u8>> = tiles(n).iter().map(|t| name_band(p, t)).collect();
    let lettered = bands.iter().all(|b| b.iter().any(|v| *v < 70) && b.iter().any(|v| *v > 160));
    let distinct = bands.iter().enumerate().all(|(i, a)| {
        bands[i + 1..].iter().all(|b| a.iter().zip(b).map(|(x, y)| x.abs_diff(*y) as u32).sum::<u32>() > 400)
    });
    (p.width, p.height) == SIZE && lettered && distinct
}

fn others(me: f32) -> Vec<f32> {
    TONES.iter().copied().filter(|t| *t != me).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_composite_tiles_each_camera_reflows_and_keys_late_joiners() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir, &[]);
    let (tokens, _, room, _) = guild(&server.base, 4).await;
    let mut clients = Vec::new();
    for (i, rgb) in [RED, GREEN, BLUE].into_iter().enumerate() {
        clients.push(VoiceClient::join(&server.base, &tokens[i], &room, camera(rgb, TONES[i])).await.unwrap());
    }
    assert_eq!(clients[0].session().mode, RoomMode::Hybrid);
    assert_eq!(clients[0].session().video_slots, 1, "one video slot: the composite");
    for c in &clients {
        wait_composite(c, 3, &[RED, GREEN, BLUE]).await;
    }
    // Each tile carries its participant's name, drawn by the compositor.
    clients[0].wait_picture(None, |p| named(p, 3), T).await.expect("a name band on every tile, each different");
    // Audio is still the SFU's: each hears the two others, never itself.
    for (i, c) in clients.iter().enumerate() {
        c.wait_heard(&TONES, &others(TONES[i]), T).await.unwrap();
    }
    let s = stats(&server.base).await;
    assert_eq!(s["rooms"][0]["mode"], "hybrid", "{s}");
    assert_eq!(s["rooms"][0]["video"], true, "{s}");

    // Green leaves: the grid re-flows to two tiles.
    let green = clients.remove(1);
    green.leave().await.unwrap();
    for c in &clients {
        wait_composite(c, 2, &[RED, BLUE]).await;
    }

    // A late joiner decodes a picture within a second of connecting: the server forces a keyframe
    // for it rather than leaving it to the encoder's periodic one (every 10 s).
    let late = VoiceClient::join(&server.base, &tokens[3], &room, camera(YELLOW, 1700.0)).await.unwrap();
    let connected = Instant::now();
    let (mid, _) = late.wait_picture(None, |_| true, T).await.unwrap();
    let first = late.video_tracks().into_iter().find(|t| t.mid.as_deref() == Some(&mid)).unwrap();
    let waited = first.first_frame_at.unwrap().saturating_duration_since(connected);
    assert!(waited < Duration::from_secs(1), "first decoded composite {waited:?} after connecting: {first:?}");
    assert_eq!(first.plis_sent, 0, "the first keyframe came unasked: {first:?}");
    wait_composite(&late, 3, &[RED, BLUE, YELLOW]).await;

    // Camera off: the tile shows the placeholder (its colour, not yellow, not black) instead.
    late.camera(false).await.unwrap();
    let corner = tiles(3)[2].rect;
    let placeholder = |p: &I420| {
        let c = p.mean_rgb(corner.x + 4, corner.y + 4, 8, 8).unwrap_or([0; 3]);
        shows(p, 3, &[RED, BLUE]) && !colour_close(c, YELLOW, TOLERANCE) && c.iter().any(|v| *v > 40)
    };
    clients[0].wait_picture(None, placeholder, T).await.unwrap();
    for c in clients.iter().chain([&late]) {
        c.close().await.unwrap();
    }
}

/// Polls `/voice/stats` until the room's compositor is running (or not).
async fn wait_compositor(base: &str, running: bool) {
    let deadline = Instant::now() + T;
    loop {
        let s = stats(base).await;
        if s["rooms"][0]["video"] == running {
            return;
        }
        assert!(Instant::now() < deadline, "compositor never {}: {s}", if running { "started" } else { "stopped" });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A composite runs only while a camera is on (an audio-only call pays no encoder), and one that
/// comes back restarts it so that receivers decode it again; the call's audio never stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_composite_runs_only_while_a_camera_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir, &[]);
    let (tokens, _, room, _) = guild(&server.base, 2).await;
    let a = VoiceClient::join(&server.base, &tokens[0], &room, camera(RED, TONES[0])).await.unwrap();
    let b = VoiceClient::join(&server.base, &tokens[1], &room, camera(BLUE, TONES[1])).await.unwrap();
    wait_composite(&b, 2, &[RED, BLUE]).await;

    a.camera(false).await.unwrap();
    b.camera(false).await.unwrap();
    wait_compositor(&server.base, false).await;
    a.wait_heard(&TONES, &[TONES[1]], T).await.unwrap();

    // A's camera again: red in its tile, and B's a placeholder (a picture never seen before the stop).
    a.camera(true).await.unwrap();
    wait_compositor(&server.base, true).await;
    let second = tiles(2)[1].rect;
    let restarted = |p: &I420| {
        let c = p.mean_rgb(second.x + 4, second.y + 4, 8, 8).unwrap_or([0; 3]);
        shows(p, 2, &[RED]) && !colour_close(c, BLUE, TOLERANCE) && c.iter().any(|v| *v > 40)
    };
    b.wait_picture(None, restarted, T).await.unwrap();
    b.wait_heard(&TONES, &[TONES[0]], T).await.unwrap();
    for c in [a, b] {
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcu_rooms_mix_audio_minus_self_and_composite_video() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir, &[]);
    let (tokens, _, _, guild) = guild(&server.base, 3).await;
    let room = voice_channel(&server.base, &tokens[0], &guild, "mcu").await;
    let mut clients = Vec::new();
    for (i, rgb) in [RED, GREEN].into_iter().enumerate() {
        clients.push(VoiceClient::join(&server.base, &tokens[i], &room, camera(rgb, TONES[i])).await.unwrap());
    }
    // The third has no camera: a placeholder tile.
    clients.push(VoiceClient::join(&server.base, &tokens[2], &room, VoiceOptions::tone(TONES[2])).await.unwrap());
    let s = clients[0].session();
    assert_eq!((s.mode, s.audio_slots, s.video_slots), (RoomMode::Mcu, 1, 1));
    // One audio track carries everyone else, never oneself.
    for (i, c) in clients.iter().enumerate() {
        c.wait_heard(&TONES, &others(TONES[i]), T).await.unwrap();
        let tracks = c.track_stats();
        assert_eq!(tracks.iter().filter(|t| t.packets > 0).count(), 1, "one mixed track: {tracks:?}");
    }
    wait_composite(&clients[2], 3, &[RED, GREEN]).await;
    let (_, p) = clients[0].wait_picture(None, |p| shows(p, 3, &[RED, GREEN]), T).await.unwrap();
    let placeholder = tiles(3)[2].rect;
    let (x, y) = (placeholder.x + 4, placeholder.y + 4);
    assert!(p.mean_rgb(x, y, 8, 8).unwrap().iter().any(|v| *v > 40), "the camera-less tile has its colour");
    let s = stats(&server.base).await;
    assert_eq!(s["rooms"][0]["mode"], "mcu", "{s}");
    assert!(s["rooms"][0]["mix_ticks"].as_u64() > Some(50), "{s}");
    for c in clients {
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_rooms_send_each_camera_as_its_own_track_and_the_mode_follows_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir, &[]);
    let (tokens, ids, room, _) = guild(&server.base, 3).await;
    // The owner switches the (empty) channel to sfu.
    let res = reqwest::Client::new()
        .patch(format!("{}/api/channels/{room}", server.base))
        .bearer_auth(&tokens[0])
        .json(&json!({"voice_mode": "sfu"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let colours = [RED, GREEN, BLUE];
    let mut clients = Vec::new();
    for (i, rgb) in colours.into_iter().enumerate() {
        clients.push(VoiceClient::join(&server.base, &tokens[i], &room, camera(rgb, TONES[i])).await.unwrap());
    }
    assert_eq!(clients[0].session().mode, RoomMode::Sfu);
    assert_eq!(clients[0].session().video_slots, 16);
    for (i, c) in clients.iter().enumerate() {
        for (j, &rgb) in colours.iter().enumerate() {
            if i == j {
                continue;
            }
            let deadline = Instant::now() + T;
            let mid = loop {
                if let Some(mid) = c.video_mid_of(&ids[j]) {
                    break mid;
                }
                assert!(Instant::now() < deadline, "{i} was never given {j}'s camera: {:?}", c.slots());
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            c.wait_colour(Some(&mid), rgb, TOLERANCE, T).await.unwrap();
        }
        assert!(c.video_mid_of(&ids[i]).is_none(), "never one's own camera");
        c.wait_heard(&TONES, &others(TONES[i]), T).await.unwrap();
    }
    let s = stats(&server.base).await;
    assert_eq!((s["rooms"][0]["mode"].as_str(), s["rooms"][0]["video"].as_bool()), (Some("sfu"), Some(false)));
    // Camera off: the others' slot for it is freed.
    clients[0].camera(false).await.unwrap();
    let freed = |m: &ServerMsg| matches!(m, ServerMsg::Slots { .. });
    let deadline = Instant::now() + T;
    while clients[1].video_mid_of(&ids[0]).is_some() {
        let _ = clients[1].wait_for(freed, Duration::from_millis(200)).await;
        assert!(Instant::now() < deadline, "the slot was not freed: {:?}", clients[1].slots());
    }
    for c in clients {
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_override_beats_the_channel_mode() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir, &[("CONFAB_VOICE_MODE", "mcu")]);
    let (tokens, _, room, _) = guild(&server.base, 1).await;
    let opts = VoiceOptions { video_slots: Some(0), ..VoiceOptions::tone(TONES[0]) };
    let c = VoiceClient::join(&server.base, &tokens[0], &room, opts).await.unwrap();
    assert_eq!(c.session().mode, RoomMode::Mcu, "a hybrid channel runs as mcu");
    assert_eq!(c.session().audio_slots, 1);
    c.close().await.unwrap();
}

/// A pipeline failure ends that room's video, with `video_ended` to its participants; the call
/// goes on. The fault is a real GStreamer error posted on the room's pipeline bus (the server runs
/// in-process here, so the test can reach the room's compositor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pipeline_ends_the_video_not_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = confab::config::Config {
        listen: "127.0.0.1:0".into(),
        database_url: format!("sqlite:{}", dir.path().join("v.db").display()),
        ..Default::default()
    };
    cfg.media.bind = "127.0.0.1:0".into();
    (cfg.video.width, cfg.video.height, cfg.video.fps) = (SIZE.0, SIZE.1, 15);
    cfg.voice.stats_token = Some(common::STATS_TOKEN.into());
    cfg.live.rtmp_bind = "127.0.0.1:0".into();
    let running = confab::server::Running::start(&cfg).await.unwrap();
    let base = format!("http://{}", running.http);
    let (tokens, _, room, _) = guild(&base, 2).await;
    let a = VoiceClient::join(&base, &tokens[0], &room, camera(RED, TONES[0])).await.unwrap();
    let b = VoiceClient::join(&base, &tokens[1], &room, camera(GREEN, TONES[1])).await.unwrap();
    wait_composite(&b, 2, &[RED, GREEN]).await;

    let room_id: i64 = room.parse().unwrap();
    assert!(running.mixers.simulate_pipeline_error(room_id as u64), "the room has a compositor");
    for c in [&a, &b] {
        c.wait_for(|m| matches!(m, ServerMsg::VideoEnded { .. }), T).await.unwrap();
        assert!(c.video_ended().is_some());
    }
    // The call goes on: both still hear each other, and the server serves.
    a.clear_heard();
    a.wait_heard(&TONES, &[TONES[1]], T).await.unwrap();
    b.wait_heard(&TONES, &[TONES[0]], T).await.unwrap();
    let s = stats(&base).await;
    assert_eq!(s["rooms"][0]["video"], false, "{s}");
    a.close().await.unwrap();
    b.close().await.unwrap();
    running.stop().await.unwrap();
}

/// A screen share from a webrtc-rs client, in a composited (mcu) room and an sfu one: the others
/// receive it on a share slot at its own resolution, apart from the composite or the cameras;
/// stopping it frees the slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_share_reaches_the_others_at_its_own_resolution_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir, &[]);
    let (tokens, ids, _, guild) = guild(&server.base, 2).await;
    const SLIDE: [u8; 3] = [240, 240, 240];
    for mode in ["mcu", "sfu"] {
        let room = voice_channel(&server.base, &tokens[0], &guild, mode).await;
        let share =
            CameraOptions { width: 1280, height: 720, fps: 5, bitrate_kbps: 800, ..CameraOptions::colour(SLIDE) };
        let sharer = VoiceOptions { share: Some(share), ..camera(RED, TONES[0]) };
        let a = VoiceClient::join(&server.base, &tokens[0], &room, sharer).await.unwrap();
        let b = VoiceClient::join(&server.base, &tokens[1], &room, camera(BLUE, TONES[1])).await.unwrap();
        assert_eq!(b.session().share_slots, 2, "{mode}");
        let deadline = Instant::now() + T;
        let mid = loop {
            if let Some(mid) = b.share_mid_of(&ids[0]) {
                break mid;
            }
            assert!(Instant::now() < deadline, "{mode}: never given the share: {:?}", b.slots());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (_, p) = b
            .wait_picture(
                Some(&mid),
                |p| {
                    (p.width, p.height) == (1280, 720)
                        && p.centre_rgb().is_some_and(|c| colour_close(c, SLIDE, TOLERANCE))
                },
                T,
            )
            .await
            .unwrap_or_else(|e| panic!("{mode}: the share at 1280x720: {e:#}"));
        assert_eq!((p.width, p.height), (1280, 720));
        // A receiver that lost the picture asks for a keyframe: the server relays it to the sharer
        // (its own keyframes come every 30 s here), and a keyframe follows on the share slot.
        let keyframes = |c: &VoiceClient| {
            c.video_tracks().iter().find(|t| t.mid.as_deref() == Some(mid.as_str())).map_or(0, |t| t.keyframes)
        };
        let k0 = keyframes(&b);
        tokio::time::sleep(Duration::from_millis(400)).await; // past the per-source PLI interval
        b.request_keyframe(&mid).await.unwrap();
        let deadline = Instant::now() + T;
        while keyframes(&b) <= k0 {
            assert!(Instant::now() < deadline, "{mode}: no keyframe after a PLI on the share slot");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The cameras go on as the mode has them: the composite (mcu) or a's own track (sfu).
        match mode {
            "mcu" => wait_composite(&b, 2, &[RED, BLUE]).await,
            _ => {
                let deadline = Instant::now() + T;
                let cam = loop {
                    if let Some(m) = b.video_mid_of(&ids[0]) {
                        break m;
                    }
                    assert!(Instant::now() < deadline, "sfu: no camera slot: {:?}", b.slots());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                assert_ne!(cam, mid);
                b.wait_colour(Some(&cam), RED, TOLERANCE, T).await.unwrap();
            }
        }
        a.send(signaling::protocol::ClientMsg::Share { on: false }).await.unwrap();
        let deadline = Instant::now() + T;
        while b.share_mid_of(&ids[0]).is_some() {
            assert!(Instant::now() < deadline, "{mode}: the share slot was never freed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        a.close().await.unwrap();
        b.close().await.unwrap();
    }
}

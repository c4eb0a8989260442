//! Two webrtc-rs peers in one process, no confab: A offers what the voice gateway expects (sendonly
//! mic + recvonly slots, and for video a sendonly camera + recvonly video slots), B answers with
//! sendonly tracks of its own. Each must decode the other's tone, or colour, through the testbed's
//! real send and receive path, with the audio-level extension intact and keyframe requests honoured.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use testbed::audio_send::{SendControl, spawn_sender};
use testbed::media::{Listener, spawn_av_listeners, spawn_listeners};
use testbed::peer::{AUDIO_LEVEL_URI, Peer, extmap_id};
use testbed::picture::colour_close;
use testbed::video_recv::VideoListener;
use testbed::video_send::{CameraControl, CameraOptions, spawn_camera};

const CANDIDATES: [f32; 3] = [440.0, 660.0, 880.0];
const WINDOW: Duration = Duration::from_millis(500);

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_hear_each_others_tone() {
    let (a, b) = (Peer::new().await.unwrap(), Peer::new().await.unwrap());
    let a_mic = a.add_mic().await.unwrap();
    a.add_recv_slots(2).await.unwrap();
    let offer = a.create_offer().await.unwrap();
    // B's sendonly transceiver exists before the offer arrives, so it pairs with A's first recvonly slot.
    let b_mic = b.add_mic().await.unwrap();
    let answer = b.answer(&offer).await.unwrap();
    a.accept_answer(&answer).await.unwrap();
    println!("---- offer (A) ----\n{offer}\n---- answer (B) ----\n{answer}");
    assert!(extmap_id(&offer, AUDIO_LEVEL_URI).is_some(), "the offer must carry the audio-level extension");
    assert_eq!(extmap_id(&offer, AUDIO_LEVEL_URI), extmap_id(&answer, AUDIO_LEVEL_URI));

    let timeout = Duration::from_secs(10);
    a.wait_connected(timeout).await.unwrap();
    b.wait_connected(timeout).await.unwrap();

    let (a_heard, b_heard) = (Arc::new(Listener::default()), Arc::new(Listener::default()));
    let _a_rx = spawn_listeners(a.pc.clone(), a.take_tracks().unwrap(), a_heard.clone());
    let _b_rx = spawn_listeners(b.pc.clone(), b.take_tracks().unwrap(), b_heard.clone());
    let (a_ctl, b_ctl) = (Arc::new(SendControl::new(Some(440.0), None)), Arc::new(SendControl::new(Some(880.0), None)));
    let _a_tx = spawn_sender(a_mic, -20.0, false, a_ctl.clone());
    let _b_tx = spawn_sender(b_mic, -20.0, false, b_ctl.clone());

    wait_until("A hears 880 Hz", timeout, || a_heard.heard_within(&CANDIDATES, WINDOW) == [880.0]).await;
    wait_until("B hears 440 Hz", timeout, || b_heard.heard_within(&CANDIDATES, WINDOW) == [440.0]).await;

    // A's one remote track arrived on the slot B answered, carrying B's level: -20 dBFS sine = 23 dBov.
    let tracks = a_heard.track_stats();
    println!("A's tracks: {tracks:#?}\nB's tracks: {:#?}", b_heard.track_stats());
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].mid.as_deref(), Some("1"));
    assert_eq!((tracks[0].last_level, tracks[0].last_voice), (Some(23), Some(true)));
    assert_eq!(tracks[0].decode_errors, 0);

    // Silence: level 127 with the V bit clear, and the tone fades out of the window.
    b_ctl.silent.store(true, Ordering::Relaxed);
    wait_until("B's level reads silence", timeout, || {
        a_heard.track_stats()[0].last_level == Some(127) && a_heard.track_stats()[0].last_voice == Some(false)
    })
    .await;
    wait_until("A hears nothing", timeout, || a_heard.heard_within(&CANDIDATES, WINDOW).is_empty()).await;

    // Muted: nothing is sent at all, so B's packet count stops.
    a_ctl.muted.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = b_heard.received_packets();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b_heard.received_packets(), before, "a muted sender sends nothing");
    assert!(a_ctl.frames_sent.load(Ordering::Relaxed) > 0);
    assert_eq!(a_ctl.send_errors.load(Ordering::Relaxed), 0);

    let report = a.pc.get_stats(Instant::now(), webrtc::peer_connection::StatsSelector::None).await;
    let inbound: u64 = report.inbound_rtp_streams().map(|s| s.received_rtp_stream_stats.packets_received).sum();
    assert!(inbound > 0, "webrtc-rs' own stats count the inbound packets");

    a.pc.close().await.unwrap();
    b.pc.close().await.unwrap();
}

const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const GREEN: [u8; 3] = [0, 200, 0];

fn shows(video: &VideoListener, mid: &str, rgb: [u8; 3]) -> bool {
    video.latest_picture(mid).and_then(|p| p.centre_rgb()).is_some_and(|c| colour_close(c, rgb, 12))
}

/// The client layout with video: A offers mic, one audio slot, a red camera, one video slot; B, an
/// ICE-lite answerer like the SFU, sends a blue camera into A's video slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_cross_and_keyframe_requests_are_honoured() {
    cameras_cross(false).await
}

/// The same with cameras replaying pre-encoded loops, as load clients do: a keyframe request
/// restarts the loop at its keyframe, a colour change switches loops (at a keyframe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_cameras_cross_and_keyframe_requests_are_honoured() {
    cameras_cross(true).await
}

async fn cameras_cross(replay: bool) {
    let (a, b) = (Peer::new().await.unwrap(), Peer::build(true).await.unwrap());
    let _a_mic = a.add_mic().await.unwrap();
    a.add_recv_slots(1).await.unwrap();
    let a_cam = a.add_camera().await.unwrap();
    a.add_video_recv_slots(1).await.unwrap();
    let offer = a.create_offer().await.unwrap();
    let b_cam = b.add_camera().await.unwrap();
    let answer = b.answer(&offer).await.unwrap();
    a.accept_answer(&answer).await.unwrap();
    println!("---- offer (A) ----\n{offer}\n---- answer (B) ----\n{answer}");
    let kinds: Vec<&str> = offer.lines().filter_map(|l| l.strip_prefix("m=")?.split(' ').next()).collect();
    assert_eq!(kinds, ["audio", "audio", "video", "video"], "the protocol's m-line order");
    assert!(offer.contains("a=rtcp-fb:96 nack pli") && offer.contains("a=rtcp-fb:96 ccm fir"), "{offer}");

    let timeout = Duration::from_secs(10);
    a.wait_connected(timeout).await.unwrap();
    b.wait_connected(timeout).await.unwrap();
    let (a_video, b_video) = (Arc::new(VideoListener::default()), Arc::new(VideoListener::default()));
    let quiet = || Arc::new(Listener::default());
    let _a_rx = spawn_av_listeners(a.pc.clone(), a.take_tracks().unwrap(), quiet(), Some(a_video.clone()));
    let _b_rx = spawn_av_listeners(b.pc.clone(), b.take_tracks().unwrap(), quiet(), Some(b_video.clone()));
    // No periodic keyframes within the test: every keyframe after the first is one we asked for
    // (or, replaying, a colour change).
    let interval = Duration::from_secs(if replay { 60 } else { 600 });
    let opts = |colour| CameraOptions { keyframe_interval: interval, replay, ..CameraOptions::colour(colour) };
    let switch_keyframes = u64::from(replay);
    let (a_ctl, b_ctl) = (Arc::new(CameraControl::new(RED)), Arc::new(CameraControl::new(BLUE)));
    let _a_tx = spawn_camera(a_cam, opts(RED), a_ctl.clone());
    let _b_tx = spawn_camera(b_cam, opts(BLUE), b_ctl.clone());

    wait_until("B sees A's red camera on mid 2", timeout, || shows(&b_video, "2", RED)).await;
    wait_until("A sees B's blue camera on mid 3", timeout, || shows(&a_video, "3", BLUE)).await;
    let stats = b_video.track_stats();
    println!("B's video: {stats:#?}\nA's video: {:#?}", a_video.track_stats());
    assert_eq!(stats.len(), 1);
    let s = &stats[0];
    assert_eq!(
        (s.mid.as_deref(), s.size, s.keyframes, s.decode_errors, s.plis_sent),
        (Some("2"), Some((320, 180)), 1, 0, 0)
    );
    assert!(s.first_frame_at.is_some() && s.decoded >= 1);

    // A keyframe request from B reaches A's camera through webrtc-rs' RTCP path and is answered.
    b_video.request_keyframe("2").await.unwrap();
    wait_until("A's camera gets the PLI", timeout, || a_ctl.keyframe_requests.load(Ordering::Relaxed) == 1).await;
    wait_until("B receives a second keyframe", timeout, || b_video.track_stats()[0].keyframes == 2).await;
    assert_eq!(a_ctl.keyframes_sent.load(Ordering::Relaxed), 2);
    assert_eq!(b_video.track_stats()[0].plis_sent, 1);
    assert_eq!(b_ctl.keyframe_requests.load(Ordering::Relaxed), 0, "the PLI named A's camera only");

    // The colour changes at run time; the frame rate is what the camera was asked for.
    a_ctl.set_colour(GREEN);
    wait_until("B sees green", timeout, || shows(&b_video, "2", GREEN)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let s = &b_video.track_stats()[0];
    let elapsed = s.first_frame_at.unwrap().elapsed();
    println!("fps {} decoded {} in {elapsed:?} sent {}", s.fps, s.decoded, a_ctl.frames_sent.load(Ordering::Relaxed));
    assert!((10.0..=20.0).contains(&s.fps), "fps {}", s.fps);

    // Camera off: nothing is sent; on again: it resumes with a keyframe.
    a_ctl.set_on(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = b_video.track_stats()[0].packets;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b_video.track_stats()[0].packets, frozen, "a camera that is off sends nothing");
    a_ctl.set_on(true);
    wait_until("a keyframe on resume", timeout, || b_video.track_stats()[0].keyframes == 3 + switch_keyframes).await;
    let s = &b_video.track_stats()[0];
    assert_eq!((s.decode_errors, s.skipped, s.lost), (0, 0, 0), "{s:?}");
    assert_eq!(a_ctl.send_errors.load(Ordering::Relaxed), 0);

    a.pc.close().await.unwrap();
    b.pc.close().await.unwrap();
}

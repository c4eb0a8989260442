//! WHIP ingest end to end: a webrtc-rs publisher (the testbed's, VP8 + Opus) posts its offer with
//! the stream key, the media engine takes it as a receive-only peer, and the ladder serves it as
//! LL-HLS: the source's own size (re-encoded to H.264) and a smaller rendition, keyframes aligned,
//! AAC carrying the publisher's tone. Bad requests get their statuses; one publisher per key
//! across RTMP and WHIP; DELETE ends the stream and the key publishes again at once.

mod common;

use common::{guild, live_channel, live_server};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};
use testbed::video_send::CameraOptions;
use testbed::whip::{WhepViewer, WhipPublisher, post_offer};

const T: Duration = Duration::from_secs(20);

async fn post(base: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(format!("{base}{path}")).bearer_auth(token).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn stream_state(base: &str, token: &str, channel: &str) -> Value {
    let r = reqwest::Client::new().get(format!("{base}/api/channels/{channel}/stream")).bearer_auth(token);
    r.send().await.unwrap().json().await.unwrap()
}

async fn wait_state(base: &str, token: &str, channel: &str, state: &str) {
    let deadline = Instant::now() + T;
    while stream_state(base, token, channel).await["state"] != state {
        assert!(Instant::now() < deadline, "stream {state} in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ffprobe(args: &[&str], url: &str) -> String {
    let out = Command::new("ffprobe").args(["-v", "error"]).args(args).args(["-of", "csv=p=0", url]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The keyframe times (ms) of a playlist's video.
fn keyframes(url: &str) -> Vec<i64> {
    ffprobe(&["-select_streams", "v", "-show_entries", "packet=pts_time,flags"], url)
        .lines()
        .filter_map(|l| {
            let (t, flags) = l.split_once(',')?;
            let t = t.parse::<f64>().ok()?;
            flags.starts_with('K').then(|| (t * 1000.0).round() as i64)
        })
        .collect()
}

/// The playlist's audio decoded to 48 kHz mono.
fn audio(url: &str) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", url, "-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
        .output()
        .unwrap();
    out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

fn camera() -> CameraOptions {
    CameraOptions {
        width: 320,
        height: 240,
        fps: 30,
        bitrate_kbps: 500,
        noise: 0.3,
        ..CameraOptions::colour([40, 90, 200])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_in_ll_hls_out() {
    let (running, base, _dir) = live_server(|live| {
        live.renditions = vec![confab::config::RenditionConfig { name: "180p".into(), height: 180, bitrate_kbps: 300 }];
    })
    .await;
    let (tokens, _, _, guild_id) = guild(&base, 1).await;
    let channel = live_channel(&base, &tokens[0], &guild_id, "stage").await;
    let other = live_channel(&base, &tokens[0], &guild_id, "two").await;
    let (_, key) = post(&base, &tokens[0], &format!("/api/channels/{channel}/stream-key"), json!({})).await;
    let rtmp_url = key["rtmp_url"].as_str().unwrap().to_string();
    let key = key["stream_key"].as_str().unwrap().to_string();

    // Bad requests, each with its status and a JSON body.
    let offer = {
        let p = testbed::peer::Peer::new().await.unwrap();
        p.add_mic().await.unwrap();
        p.add_camera().await.unwrap();
        p.create_offer().await.unwrap()
    };
    for (who, k, status) in
        [("no key", None, 401), ("a wrong key", Some("live_nope"), 401), ("a key of another channel", Some(&*key), 401)]
    {
        let target = if who == "a key of another channel" { &other } else { &channel };
        let r = post_offer(&base, target, k, &offer).await.unwrap();
        assert_eq!(r.status, status, "{who}: {}", r.body);
        assert!(serde_json::from_str::<Value>(&r.body).unwrap()["code"].is_u64(), "{who}: {}", r.body);
    }
    let r = post_offer(&base, &channel, Some(&key), "v=0 garbage").await.unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    let audio_only = {
        let p = testbed::peer::Peer::new().await.unwrap();
        p.add_mic().await.unwrap();
        p.create_offer().await.unwrap()
    };
    let r = post_offer(&base, &channel, Some(&key), &audio_only).await.unwrap();
    assert_eq!(r.status, 400, "no video: {}", r.body);
    let r = reqwest::Client::new()
        .post(format!("{base}/whip/{channel}"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let patch = reqwest::Client::new().patch(format!("{base}/whip/{channel}/x")).send().await.unwrap();
    assert_eq!(patch.status(), 405);
    let huge = post_offer(&base, &channel, Some(&key), &"a=x\r\n".repeat(20_000)).await.unwrap();
    assert_eq!(huge.status, 413, "{}", huge.body);
    let gone = reqwest::Client::new().delete(format!("{base}/whip/{channel}/nope")).send().await.unwrap();
    assert_eq!(gone.status(), 404);

    // Publish: live once the source has a part; a second publisher on the key is refused.
    let started = Instant::now();
    let publisher = WhipPublisher::publish(&base, &channel, &key, camera(), Some(440.0)).await.unwrap();
    wait_state(&base, &tokens[0], &channel, "live").await;
    let first_playable = started.elapsed();
    let second = post_offer(&base, &channel, Some(&key), &offer).await.unwrap();
    assert_eq!(second.status, 409, "{}", second.body);
    // Nor can RTMP take the key meanwhile: one publisher per stream, whatever the protocol.
    let rtmp = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30"])
        .args(["-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-f", "flv", rtmp_url.as_str()])
        .output()
        .unwrap();
    assert!(!rtmp.status.success(), "RTMP refused while WHIP publishes");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(publisher.stop().await.unwrap(), 200);
    wait_state(&base, &tokens[0], &channel, "ended").await;

    // The playlists end once the ladder flushed; both renditions decode, keyed together.
    let a = stream_state(&base, &tokens[0], &channel).await["watch_token"].as_str().unwrap().to_string();
    let media = |r: &str| format!("{base}/live/{channel}/{r}/index.m3u8?a={a}");
    let deadline = Instant::now() + T;
    while !reqwest::get(media("180p")).await.unwrap().text().await.unwrap().ends_with("#EXT-X-ENDLIST\n") {
        assert!(Instant::now() < deadline, "the 180p playlist ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let master = reqwest::get(format!("{base}/live/{channel}/index.m3u8?a={a}")).await.unwrap().text().await.unwrap();
    let sizes: Vec<&str> = master.lines().filter_map(|l| l.split("RESOLUTION=").nth(1)?.split(',').next()).collect();
    assert_eq!(sizes, ["320x240", "240x180"], "{master}");
    for (r, size) in [("source", "320,240"), ("180p", "240,180")] {
        let s = ffprobe(&["-show_entries", "stream=codec_name,codec_type,width,height"], &media(r));
        assert!(s.lines().any(|l| l.starts_with("h264,video") && l.ends_with(size)), "{r}: {s}");
        assert!(s.lines().any(|l| l.starts_with("aac,audio")), "{r} carries the audio: {s}");
    }
    let (a, b) = (keyframes(&media("source")), keyframes(&media("180p")));
    assert!(a.len() >= 2, "a keyframe every 2 s: {a:?}");
    assert_eq!(a, b, "keyframes aligned across renditions");
    let pcm = audio(&media("source"));
    assert!(pcm.len() > 48_000 * 3, "seconds of audio: {} samples", pcm.len());
    let tone = testbed::tone::tone_fraction(&pcm[48_000..], 440.0, 48_000.0).unwrap_or(0.0);
    assert!(tone > 0.5, "the publisher's 440 Hz tone is the audio: {tone}");

    // The session is gone; the key publishes again at once.
    let again = WhipPublisher::publish(&base, &channel, &key, camera(), None).await.unwrap();
    wait_state(&base, &tokens[0], &channel, "live").await;
    again.drop_connection().await;
    wait_state(&base, &tokens[0], &channel, "ended").await;
    println!("whip: first playable after {first_playable:?}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_over_the_bitrate_limit_is_cut() {
    let (running, base, _dir) = live_server(|live| {
        live.rtmp_bind = String::new();
        live.renditions = Vec::new();
        // The camera sends ~500 kbit/s of noise; the limit is a fifth of that.
        live.max_ingest_kbps = 100;
    })
    .await;
    let (tokens, _, _, guild_id) = guild(&base, 1).await;
    let channel = live_channel(&base, &tokens[0], &guild_id, "stage").await;
    let (_, key) = post(&base, &tokens[0], &format!("/api/channels/{channel}/stream-key"), json!({})).await;
    let key = key["stream_key"].as_str().unwrap().to_string();
    let publisher = WhipPublisher::publish(&base, &channel, &key, camera(), Some(440.0)).await.unwrap();
    wait_state(&base, &tokens[0], &channel, "live").await;
    wait_state(&base, &tokens[0], &channel, "ended").await;
    // Its session is gone: DELETE finds nothing, and the key may publish again.
    assert_eq!(publisher.stop().await.unwrap(), 404);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_viewers_get_the_publishers_own_frames() {
    let (running, base, _dir) = live_server(|live| {
        live.renditions = Vec::new();
    })
    .await;
    let (tokens, _, _, guild_id) = guild(&base, 1).await;
    let channel = live_channel(&base, &tokens[0], &guild_id, "stage").await;
    let (_, key) = post(&base, &tokens[0], &format!("/api/channels/{channel}/stream-key"), json!({})).await;
    let key = key["stream_key"].as_str().unwrap().to_string();
    let a = stream_state(&base, &tokens[0], &channel).await["watch_token"].as_str().unwrap().to_string();

    // Nothing published over WebRTC: 409; no token: 401.
    let refused = WhepViewer::watch(&base, &channel, Some(&a)).await.unwrap().err().expect("refused");
    assert_eq!(refused.status, 409, "{}", refused.body);
    let publisher = WhipPublisher::publish(&base, &channel, &key, camera(), Some(440.0)).await.unwrap();
    let refused = WhepViewer::watch(&base, &channel, None).await.unwrap().err().expect("refused");
    assert_eq!(refused.status, 401, "{}", refused.body);

    let viewer = match WhepViewer::watch(&base, &channel, Some(&a)).await.unwrap() {
        Ok(v) => v,
        Err(r) => panic!("WHEP refused: {} {}", r.status, r.body),
    };
    let deadline = Instant::now() + T;
    let video = loop {
        let v = viewer.video.track_stats();
        if v.iter().any(|t| t.decoded >= 30) && !viewer.audio.heard_within(&[440.0], Duration::from_secs(1)).is_empty()
        {
            break v;
        }
        assert!(Instant::now() < deadline, "decoded video and the tone: {v:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let v = video.iter().find(|t| t.decoded >= 30).unwrap();
    assert_eq!(v.size, Some((320, 240)), "the publisher's own picture");
    println!("whep: capture-to-decode latency p50 {:?} p95 {:?}", v.latency.quantile(0.5), v.latency.quantile(0.95));
    assert!(v.latency.count() > 0, "frames carry the publisher's capture time");

    // The publisher goes: its viewer's session goes with it.
    assert_eq!(publisher.stop().await.unwrap(), 200);
    let deadline = Instant::now() + T;
    while format!("{:?}", viewer.peer.connection_state()) == "Connected" {
        assert!(Instant::now() < deadline, "the server closed the viewer with its source");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(viewer.stop().await.unwrap(), 404, "the session is gone");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_viewers_of_an_rtmp_stream_get_its_top_rendition_and_opus() {
    let (running, base, dir) = live_server(|live| {
        live.renditions = vec![
            confab::config::RenditionConfig { name: "180p".into(), height: 180, bitrate_kbps: 300 },
            confab::config::RenditionConfig { name: "120p".into(), height: 120, bitrate_kbps: 150 },
        ];
    })
    .await;
    let (tokens, _, _, guild_id) = guild(&base, 1).await;
    let channel = live_channel(&base, &tokens[0], &guild_id, "stage").await;
    let (_, key) = post(&base, &tokens[0], &format!("/api/channels/{channel}/stream-key"), json!({})).await;
    let key = key["stream_key"].as_str().unwrap().to_string();
    let a = stream_state(&base, &tokens[0], &channel).await["watch_token"].as_str().unwrap().to_string();
    // x264's defaults, B-frames included (as OBS sends): WebRTC gets the ladder's output instead.
    let url = format!("rtmp://{}/live/{key}", running.rtmp.unwrap());
    let mut rtmp = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "60"])
        .args(["-c:a", "aac", "-f", "flv", &url])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("ffmpeg");
    wait_state(&base, &tokens[0], &channel, "live").await;

    // A viewer that only takes VP8 cannot watch H.264.
    let vp8_only = testbed::peer::Peer::new().await.unwrap();
    vp8_only.add_recv_slots(1).await.unwrap();
    vp8_only.add_video_recv_slots(1).await.unwrap();
    let offer = vp8_only.create_offer().await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("{base}/whep/{channel}"))
        .bearer_auth(&a)
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("H.264"), "{body}");

    let viewer = match WhepViewer::watch(&base, &channel, Some(&a)).await.unwrap() {
        Ok(v) => v,
        Err(r) => panic!("WHEP refused: {} {}", r.status, r.body),
    };
    let deadline = Instant::now() + T;
    loop {
        let v = viewer.video.track_stats();
        let frames = v.iter().map(|t| t.frames).sum::<u64>();
        if frames >= 90 && !viewer.audio.heard_within(&[440.0], Duration::from_secs(1)).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "H.264 frames and the tone: {v:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What arrived is the 180p rendition, whole: ffmpeg decodes every frame of it.
    let h264 = dir.path().join("whep.h264");
    std::fs::write(&h264, viewer.video.h264_stream()).unwrap();
    let path = h264.to_str().unwrap();
    let size = ffprobe(&["-select_streams", "v", "-show_entries", "stream=width,height"], path);
    let profile = ffprobe(&["-select_streams", "v", "-show_entries", "stream=profile"], path);
    assert_eq!(size.trim(), "240,180", "the top rendition");
    let decoded = Command::new("ffmpeg").args(["-v", "error", "-i", path, "-f", "null", "-"]).output().unwrap();
    assert!(decoded.status.success() && decoded.stderr.is_empty(), "{}", String::from_utf8_lossy(&decoded.stderr));
    let frames = ffprobe(&["-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames"], path);
    assert!(frames.trim().parse::<u64>().unwrap() >= 90, "{frames}");
    println!("whep of rtmp: {} frames of {} ({}) decoded by ffmpeg", frames.trim(), size.trim(), profile.trim());

    // The stream ends: so does its viewer's session, and WHEP refuses again.
    let _ = rtmp.kill();
    let _ = rtmp.wait();
    let deadline = Instant::now() + T;
    while format!("{:?}", viewer.peer.connection_state()) == "Connected" {
        assert!(Instant::now() < deadline, "the server closed the viewer with its stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = WhepViewer::watch(&base, &channel, Some(&a)).await.unwrap().err().expect("refused");
    assert_eq!(refused.status, 409, "{}", refused.body);
    running.stop().await.unwrap();
}

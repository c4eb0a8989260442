//! Live streaming end to end, with the real binary and real ffmpeg: a live channel and its stream
//! key, an RTMP publish, STREAM_UPDATE on the gateway, LL-HLS over HTTP (blocking reload, caching,
//! 400 far ahead), ffprobe decoding the stream from the server's URLs, the end (EXT-X-ENDLIST), an
//! immediate republish, and a rotated key refused.

mod common;

use common::{Server, guild, live_channel, live_server, publish};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(20);

async fn post(base: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(format!("{base}{path}")).bearer_auth(token).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(base: &str, token: &str, path: &str) -> Value {
    let r = reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap();
    r.json().await.unwrap()
}

async fn exit_ok(mut child: std::process::Child) -> bool {
    tokio::task::spawn_blocking(move || child.wait().map(|s| s.success()).unwrap_or(false)).await.unwrap()
}

/// The next STREAM_UPDATE with `state`.
type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn stream_update(gw: &mut Ws, state: &str) -> Value {
    loop {
        let m = tokio::time::timeout(T, gw.next()).await.expect("a dispatch in time").unwrap().unwrap();
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        if v["t"] == "STREAM_UPDATE" && v["d"]["state"] == state {
            return v["d"].clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_in_ll_hls_out() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("rec");
    let record_dir = recordings.display().to_string();
    let server = Server::start(
        &format!("sqlite:{}", dir.path().join("l.db").display()),
        &[("CONFAB_LIVE_RECORD_DIR", &record_dir)],
    );
    let base = server.base.clone();
    let (tokens, _, _, guild_id) = guild(&base, 2).await;
    let (st, ch) =
        post(&base, &tokens[0], &format!("/api/guilds/{guild_id}/channels"), json!({"name": "stage", "kind": "live"}))
            .await;
    assert_eq!(st, 201, "{ch}");
    let channel = ch["id"].as_str().unwrap().to_string();
    // Only the owner gets a key; only a live channel has one.
    let (st, _) = post(&base, &tokens[1], &format!("/api/channels/{channel}/stream-key"), json!({})).await;
    assert_eq!(st, 403);
    let chans = get(&base, &tokens[0], &format!("/api/guilds/{guild_id}/channels")).await;
    let text =
        chans.as_array().unwrap().iter().find(|c| c["kind"] == "text").unwrap()["id"].as_str().unwrap().to_string();
    let (st, _) = post(&base, &tokens[0], &format!("/api/channels/{text}/stream-key"), json!({})).await;
    assert_eq!(st, 400);
    let (st, key) = post(&base, &tokens[0], &format!("/api/channels/{channel}/stream-key"), json!({})).await;
    assert_eq!(st, 200, "{key}");
    let rtmp_url = key["rtmp_url"].as_str().expect("rtmp_url").to_string();
    assert!(rtmp_url.starts_with("rtmp://127.0.0.1:") && rtmp_url.contains("/live/live_"), "{rtmp_url}");

    // A member watches the guild's dispatches.
    let (mut gw, _) =
        tokio_tungstenite::connect_async(format!("{}/gateway", base.replace("http", "ws"))).await.unwrap();
    gw.next().await.unwrap().unwrap();
    gw.send(Message::Text(json!({"op": 2, "d": {"token": tokens[1]}}).to_string().into())).await.unwrap();

    let started = Instant::now();
    let publisher = publish(&rtmp_url, 6);
    let live = stream_update(&mut gw, "live").await;
    let first_playable = started.elapsed();
    assert_eq!(live["playlist"], format!("/live/{channel}/index.m3u8"), "{live}");
    assert!(first_playable < Duration::from_secs(5), "playable after {first_playable:?}");
    let state = get(&base, &tokens[1], &format!("/api/channels/{channel}/stream")).await;
    assert_eq!(state["state"], "live", "{state}");
    let a = state["watch_token"].as_str().expect("a watch token").to_string();

    // Members only: without the token (or with another channel's), 403; with it, the playlists.
    let http = reqwest::Client::new();
    for bad in ["", "?a=1.x", "?a=99999999999.AAAAAAAAAAAAAAAAAAAAAA"] {
        let r = http.get(format!("{base}/live/{channel}/index.m3u8{bad}")).send().await.unwrap();
        assert_eq!(r.status(), 403, "{bad:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], 50001);
    }
    let r = http.get(format!("{base}/live/{channel}/source/init.mp4")).send().await.unwrap();
    assert_eq!(r.status(), 403, "every file needs it");
    let anon = reqwest::get(format!("{base}/api/channels/{channel}/stream")).await.unwrap();
    assert_eq!(anon.status(), 401, "not public: no token for the anonymous");

    // The master playlist and the media playlist, with their caching.
    let master = http.get(format!("{base}/live/{channel}/index.m3u8?a={a}")).send().await.unwrap();
    assert_eq!(master.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(master.headers()["access-control-allow-origin"], "*");
    let master = master.text().await.unwrap();
    assert!(master.contains("RESOLUTION=320x240") && master.contains("CODECS=\"avc1."), "{master}");
    assert!(master.contains(&format!("source/index.m3u8?a={a}")), "the token travels: {master}");
    let media_url = format!("{base}/live/{channel}/source/index.m3u8?a={a}");
    let media = http.get(&media_url).send().await.unwrap().text().await.unwrap();
    assert!(media.contains("#EXT-X-PART:") && media.contains("CAN-BLOCK-RELOAD=YES"), "{media}");
    let hint = media.lines().find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part")).unwrap();
    let (msn, part) = hint.split(".m4s").next().unwrap().split_once('.').unwrap();
    // A blocking reload for the hinted part returns once it exists, and lists it.
    let t0 = Instant::now();
    let blocked = http.get(format!("{media_url}&_HLS_msn={msn}&_HLS_part={part}")).send().await.unwrap();
    assert_eq!(blocked.status(), 200);
    assert!(blocked.headers()["cache-control"].to_str().unwrap().contains("max-age=30"));
    let blocked = blocked.text().await.unwrap();
    assert!(blocked.contains(&format!("URI=\"part{msn}.{part}.m4s?a={a}&s=")), "{blocked}");
    assert!(t0.elapsed() < Duration::from_secs(3), "answered when the part was cut: {:?}", t0.elapsed());
    // Far ahead: 400 with a JSON body.
    let far = http.get(format!("{media_url}&_HLS_msn={}", msn.parse::<u64>().unwrap() + 10)).send().await.unwrap();
    assert_eq!(far.status(), 400);
    assert_eq!(far.json::<Value>().await.unwrap()["code"], 40000);
    // Parts and the init segment: immutable.
    let init = http.get(format!("{base}/live/{channel}/source/init.mp4?a={a}")).send().await.unwrap();
    assert!(init.headers()["cache-control"].to_str().unwrap().contains("immutable"));

    // The publisher stops: EXT-X-ENDLIST and STREAM_UPDATE ended; ffprobe decodes all of it.
    assert!(exit_ok(publisher).await);
    let ended = stream_update(&mut gw, "ended").await;
    assert!(ended["ended_at"].is_i64(), "{ended}");
    let media = http.get(&media_url).send().await.unwrap().text().await.unwrap();
    assert!(media.ends_with("#EXT-X-ENDLIST\n"), "{media}");
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=nb_read_frames,width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(format!("{base}/live/{channel}/index.m3u8?a={a}"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&probe.stdout).to_string();
    let first = out.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string();
    let fields: Vec<u32> = first.split(',').filter_map(|f| f.trim().parse().ok()).collect();
    assert_eq!(fields.get(..2), Some(&[320, 240][..]), "{out}");
    assert!(fields.get(2).is_some_and(|n| (170..=181).contains(n)), "6 s at 30 fps decoded from the server: {out}");

    // The recording: the whole first stream, a VOD playlist over its segments.
    let started =
        std::fs::read_dir(recordings.join(&channel)).unwrap().filter_map(Result::ok).map(|e| e.path()).min().unwrap();
    let recorded = started.join("source").join("index.m3u8");
    let text = std::fs::read_to_string(&recorded).unwrap();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD") && text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(&recorded)
        .output()
        .unwrap();
    let counts = String::from_utf8_lossy(&probe.stdout).to_string();
    let frames: u32 = counts.lines().find_map(|l| l.trim().parse().ok()).unwrap_or(0);
    assert!((170..=181).contains(&frames), "the recording holds the whole stream: {frames} frames");

    // The key publishes again at once; a rotated key is refused.
    let again = publish(&rtmp_url, 2);
    stream_update(&mut gw, "live").await;
    assert!(exit_ok(again).await);
    stream_update(&mut gw, "ended").await;
    let (_, fresh) = post(&base, &tokens[0], &format!("/api/channels/{channel}/stream-key"), json!({})).await;
    assert_ne!(fresh["stream_key"], key["stream_key"]);
    assert!(!exit_ok(publish(&rtmp_url, 2)).await, "the old key is refused");
    assert!(exit_ok(publish(fresh["rtmp_url"].as_str().unwrap(), 1)).await, "the new one publishes");
}

/// `(pts, keyframe)` of every video packet of a playlist, by ffprobe.
fn packets(url: &str) -> Vec<(f64, bool)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (t, flags) = l.split_once(',')?;
            Some((t.parse().ok()?, flags.starts_with('K')))
        })
        .collect()
}

/// `codec_type,width,height` or `codec_type` per stream of a playlist.
fn streams(url: &str) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height", "-of", "csv=p=0"])
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

/// A 15 s 1080p30 `testsrc2` with a 440 Hz `sine`, x264 with a keyframe every 2 s, encoded ahead
/// of time so publishing it (`-c copy`) costs ffmpeg nothing while the server transcodes.
fn hd_source(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("hd.flv");
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "15"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-bf", "0", "-c:a", "aac", "-ac", "2"])
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ffmpeg made the source");
    path
}

/// The `EXTINF` durations of a media playlist.
fn durations(playlist: &str) -> Vec<f64> {
    playlist.lines().filter_map(|l| l.strip_prefix("#EXTINF:")?.trim_end_matches(',').parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1080p_publish_gets_the_default_ladder_keyed_together() {
    let dir = tempfile::tempdir().unwrap();
    let source = hd_source(dir.path());
    let mut cfg = confab::config::Config {
        listen: "127.0.0.1:0".into(),
        database_url: format!("sqlite:{}", dir.path().join("l.db").display()),
        ..Default::default()
    };
    cfg.media.bind = "127.0.0.1:0".into();
    cfg.live.rtmp_bind = "127.0.0.1:0".into();
    // The default ladder (720p, 480p, 360p) at the fastest preset: the test box has two cores.
    cfg.live.x264_preset = "ultrafast".into();
    let running = confab::server::Running::start(&cfg).await.unwrap();
    let base = format!("http://{}", running.http);
    let (tokens, _, _, guild_id) = guild(&base, 1).await;
    let channel = live_channel(&base, &tokens[0], &guild_id, "stage").await;
    let (_, key) = post(&base, &tokens[0], &format!("/api/channels/{channel}/stream-key"), json!({})).await;
    let published = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(&source)
        .args(["-c", "copy", "-f", "flv", key["rtmp_url"].as_str().unwrap()])
        .status()
        .unwrap();
    assert!(published.success());
    let a = get(&base, &tokens[0], &format!("/api/channels/{channel}/stream")).await["watch_token"].clone();
    let a = a.as_str().unwrap().to_string();
    // The ladder flushes, then the playlists end.
    let media = |r: &str| format!("{base}/live/{channel}/{r}/index.m3u8?a={a}");
    let deadline = Instant::now() + T;
    while !reqwest::get(media("360p")).await.unwrap().text().await.unwrap().ends_with("#EXT-X-ENDLIST\n") {
        assert!(Instant::now() < deadline, "the 360p playlist ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let master = reqwest::get(format!("{base}/live/{channel}/index.m3u8?a={a}")).await.unwrap().text().await.unwrap();
    let sizes: Vec<&str> = master.lines().filter_map(|l| l.split("RESOLUTION=").nth(1)?.split(',').next()).collect();
    assert_eq!(sizes, ["1920x1080", "1280x720", "854x480", "640x360"], "source first, then the ladder: {master}");
    assert!(master.matches("CODECS=\"avc1.").count() == 4 && master.contains("mp4a.40.2"), "{master}");
    let mut keys = Vec::new();
    for (r, size) in [("source", "1920,1080"), ("720p", "1280,720"), ("480p", "854,480"), ("360p", "640,360")] {
        let playlist = reqwest::get(media(r)).await.unwrap().text().await.unwrap();
        assert!(playlist.contains("#EXT-X-MAP:URI=\"init.mp4?a=") && playlist.contains("#EXT-X-PART:"), "{r}");
        // Segments of the 2 s GOP (the last one whatever was left), 15 s in all.
        let d = durations(&playlist);
        let (last, whole) = d.split_last().unwrap();
        assert!(whole.iter().all(|s| (s - 2.0).abs() < 0.05), "{r}: {d:?}");
        let total: f64 = whole.iter().sum::<f64>() + last;
        assert!((total - 15.0).abs() < 0.2, "{r}: {total} s in {d:?}");
        let s = streams(&media(r));
        assert!(s.iter().any(|l| l.starts_with("h264,video") && l.ends_with(size)), "{r}: {s:?}");
        assert!(s.iter().any(|l| l.starts_with("aac,audio")), "{r} carries the audio: {s:?}");
        let p = packets(&media(r));
        assert!(p.len() >= 440, "{r}: every frame of 15 s at 30 fps, {}", p.len());
        keys.push(p.iter().filter(|(_, k)| *k).map(|(t, _)| (t * 1000.0).round() as i64).collect::<Vec<_>>());
    }
    assert!(keys[0].len() >= 7, "a keyframe every 2 s: {:?}", keys[0]);
    assert!(keys.iter().all(|k| *k == keys[0]), "keyframes aligned across renditions: {keys:?}");
    // The tone, decoded from the smallest rendition.
    let pcm = Command::new("ffmpeg")
        .args(["-v", "error", "-i", &media("360p"), "-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
        .output()
        .unwrap()
        .stdout;
    let pcm: Vec<i16> = pcm.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    assert!(pcm.len() > 48_000 * 14, "15 s of audio: {} samples", pcm.len());
    let tone = testbed::tone::tone_fraction(&pcm[48_000..], 440.0, 48_000.0).unwrap_or(0.0);
    assert!(tone > 0.5, "the 440 Hz tone: {tone}");
    running.stop().await.unwrap();
}

async fn patch(base: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().patch(format!("{base}{path}")).bearer_auth(token).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls the stream state (as `token`, or anonymously) until `f` holds.
async fn until(base: &str, token: Option<&str>, channel: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let mut r = reqwest::Client::new().get(format!("{base}/api/channels/{channel}/stream"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let v: Value = r.send().await.unwrap().json().await.unwrap_or(Value::Null);
        if f(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_are_counted_and_a_public_stream_is_open_to_all() {
    let (running, base, _dir) = live_server(|live| {
        live.renditions = Vec::new();
    })
    .await;
    let (tokens, _, _, guild_id) = guild(&base, 2).await;
    let channel = live_channel(&base, &tokens[0], &guild_id, "stage").await;
    let path = format!("/api/channels/{channel}/stream");
    // Settings: the owner's; a title of at most 140 characters.
    assert_eq!(patch(&base, &tokens[1], &path, json!({"public": true})).await.0, 403);
    assert_eq!(patch(&base, &tokens[0], &path, json!({"title": "x".repeat(141)})).await.0, 400);
    assert_eq!(patch(&base, &tokens[0], &path, json!({"colour": 1})).await.0, 400);
    let (st, state) = patch(&base, &tokens[0], &path, json!({"title": "Launch day"})).await;
    assert_eq!((st, state["title"].as_str(), state["public"].as_bool()), (200, Some("Launch day"), Some(false)));

    let (_, key) = post(&base, &tokens[0], &format!("/api/channels/{channel}/stream-key"), json!({})).await;
    let publisher = publish(key["rtmp_url"].as_str().unwrap(), 12);
    let state = until(&base, Some(&tokens[1]), &channel, "live", |v| v["state"] == "live").await;
    assert_eq!(state["title"], "Launch day", "{state}");
    let a = state["watch_token"].as_str().unwrap().to_string();
    assert_eq!(reqwest::get(format!("{base}{path}")).await.unwrap().status(), 401, "members only");

    // Two players join and beat; the count is 2, then 1 once one leaves.
    let http = reqwest::Client::new();
    let join = || async {
        let r = http.post(format!("{base}/live/{channel}/viewers?a={a}")).send().await.unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["viewer"].as_str().unwrap().to_string()
    };
    let denied = http.post(format!("{base}/live/{channel}/viewers")).send().await.unwrap();
    assert_eq!(denied.status(), 403, "joining needs the token too");
    let (one, two) = (join().await, join().await);
    until(&base, Some(&tokens[1]), &channel, "two viewers", |v| v["viewer_count"] == 2).await;
    let beat = http.post(format!("{base}/live/{channel}/viewers/{one}")).send().await.unwrap();
    assert_eq!(beat.status(), 204);
    let leave = http.delete(format!("{base}/live/{channel}/viewers/{two}")).send().await.unwrap();
    assert_eq!(leave.status(), 204);
    until(&base, Some(&tokens[1]), &channel, "one viewer", |v| v["viewer_count"] == 1).await;
    let stale = http.post(format!("{base}/live/{channel}/viewers/{two}")).send().await.unwrap();
    assert_eq!(stale.status(), 404, "a viewer that left must join again");

    // Reporting the stream itself: to the owner's queue, dismissable, with nothing to delete.
    let (st, report) =
        post(&base, &tokens[1], &format!("/api/channels/{channel}/stream/reports"), json!({"reason": "spam"})).await;
    assert_eq!(st, 201, "{report}");
    assert_eq!((report["subject"].as_str(), report["message_content"].as_str()), (Some("stream"), Some("Launch day")));
    let queue = get(&base, &tokens[0], &format!("/api/guilds/{guild_id}/reports")).await;
    assert!(queue.as_array().unwrap().iter().any(|r| r["id"] == report["id"] && r["subject"] == "stream"), "{queue}");
    let resolve = format!("/api/reports/{}/resolve", report["id"].as_str().unwrap());
    assert_eq!(post(&base, &tokens[0], &resolve, json!({"action": "delete"})).await.0, 400);
    assert_eq!(post(&base, &tokens[0], &resolve, json!({"action": "dismiss"})).await.0, 200);

    // Public: anyone reads the state and the playlists, without a token.
    assert_eq!(patch(&base, &tokens[0], &path, json!({"public": true})).await.0, 200);
    let anon = until(&base, None, &channel, "public", |v| v["public"] == true).await;
    assert_eq!(anon["state"], "live");
    let master = reqwest::get(format!("{base}/live/{channel}/index.m3u8")).await.unwrap();
    assert_eq!(master.status(), 200);
    assert!(exit_ok(publisher).await);
    until(&base, None, &channel, "ended", |v| v["state"] == "ended" && v["viewer_count"] == 0).await;
    running.stop().await.unwrap();
}

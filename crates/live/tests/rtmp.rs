//! RTMP ingest against real ffmpeg publishers (Debian's `ffmpeg`): H.264 + AAC accepted, keys
//! checked, one publisher per stream, drops ending the stream at once, and bad input refused
//! while another stream keeps publishing.

use live::flv::{Audio, Video};
use live::{EndReason, IngestEvent, ServerConfig, StreamKeys};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Keys;

impl StreamKeys for Keys {
    fn authorize<'a>(&'a self, key: &'a str) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
        Box::pin(async move {
            match key {
                "key-one" => Some("one".to_string()),
                "key-two" => Some("two".to_string()),
                _ => None,
            }
        })
    }
}

async fn server() -> (SocketAddr, mpsc::Receiver<IngestEvent>, CancellationToken) {
    server_with(ServerConfig::default(), 16).await
}

async fn server_with(
    cfg: ServerConfig,
    max_streams: usize,
) -> (SocketAddr, mpsc::Receiver<IngestEvent>, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(10_000);
    let stop = CancellationToken::new();
    let publishers = Arc::new(live::Publishers::new(max_streams));
    tokio::spawn(live::serve(listener, cfg, Arc::new(Keys), publishers, tx, stop.clone()));
    (addr, rx, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_at_once_are_limited() {
    let (addr, mut rx, stop) = server_with(ServerConfig::default(), 1).await;
    let mut first = ffmpeg(addr, "key-one", 10, "libx264", "aac");
    assert!(matches!(next(&mut rx).await, IngestEvent::Started { stream, .. } if stream == "one"));
    assert!(!wait_exit(ffmpeg(addr, "key-two", 2, "libx264", "aac")).await, "a second stream is refused");
    first.kill().unwrap();
    let _ = first.wait();
    let (_, end) = until_end(&mut rx, "one").await;
    assert_eq!(end, EndReason::Closed);
    let two = ffmpeg(addr, "key-two", 1, "libx264", "aac");
    assert!(matches!(next(&mut rx).await, IngestEvent::Started { stream, .. } if stream == "two"), "room again");
    assert!(wait_exit(two).await);
    stop.cancel();
}

/// ffmpeg publishing `seconds` of a test picture and tone with `video` / `audio` codecs.
fn ffmpeg(addr: SocketAddr, key: &str, seconds: u32, video: &str, audio: &str) -> Child {
    let url = format!("rtmp://{addr}/live/{key}");
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-c:v", video])
        .args(if video == "libx264" { &["-preset", "ultrafast", "-tune", "zerolatency", "-g", "30"][..] } else { &[] })
        .args(["-c:a", audio, "-f", "flv", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg (apt-get install ffmpeg)")
}

async fn next(rx: &mut mpsc::Receiver<IngestEvent>) -> IngestEvent {
    tokio::time::timeout(Duration::from_secs(15), rx.recv()).await.expect("an event in time").expect("open")
}

/// Events until `stream` ends; returns (video configs, keyframes, frames, aac configs, aac frames, end).
async fn until_end(rx: &mut mpsc::Receiver<IngestEvent>, stream: &str) -> ([usize; 5], EndReason) {
    let mut n = [0; 5];
    loop {
        match next(rx).await {
            IngestEvent::Video { stream: s, video, .. } if s == stream => match video {
                Video::AvcConfig(_) => n[0] += 1,
                Video::AvcFrame { keyframe, .. } => {
                    n[1] += usize::from(keyframe);
                    n[2] += 1;
                }
                _ => {}
            },
            IngestEvent::Audio { stream: s, audio, .. } if s == stream => match audio {
                Audio::AacConfig(_) => n[3] += 1,
                Audio::AacFrame(_) => n[4] += 1,
                Audio::Unsupported(_) => {}
            },
            IngestEvent::Ended { stream: s, reason } if s == stream => return (n, reason),
            _ => {}
        }
    }
}

async fn wait_exit(mut child: Child) -> bool {
    tokio::task::spawn_blocking(move || child.wait().map(|s| s.success()).unwrap_or(false)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_h264_and_aac() {
    let (addr, mut rx, stop) = server().await;
    let pub1 = ffmpeg(addr, "key-one", 3, "libx264", "aac");
    assert!(matches!(next(&mut rx).await, IngestEvent::Started { stream, .. } if stream == "one"));
    let (n, end) = until_end(&mut rx, "one").await;
    assert!(wait_exit(pub1).await, "ffmpeg published without error");
    assert!(n[0] >= 1 && n[3] >= 1, "sequence headers first: {n:?}");
    assert!(n[1] >= 2 && n[2] >= 60, "~90 frames, a keyframe a second: {n:?}");
    assert!(n[4] >= 100, "~140 AAC frames in 3 s: {n:?}");
    assert!(matches!(end, EndReason::Finished | EndReason::Closed), "{end:?}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_one_publisher_drops_and_bad_input() {
    let (addr, mut rx, stop) = server().await;
    // A long publish on stream one runs through everything below.
    let mut long = ffmpeg(addr, "key-one", 30, "libx264", "aac");
    assert!(matches!(next(&mut rx).await, IngestEvent::Started { stream, .. } if stream == "one"));

    // A wrong key: refused, ffmpeg fails.
    assert!(!wait_exit(ffmpeg(addr, "not-a-key", 2, "libx264", "aac")).await);
    // A second publisher on a live stream: refused.
    assert!(!wait_exit(ffmpeg(addr, "key-one", 2, "libx264", "aac")).await);
    // Another codec: named in the reason, the stream ends.
    let flv1 = ffmpeg(addr, "key-two", 2, "flv1", "aac");
    loop {
        match next(&mut rx).await {
            IngestEvent::Ended { stream, reason } if stream == "two" => {
                assert_eq!(reason, EndReason::UnsupportedCodec("Sorenson H.263".into()));
                break;
            }
            IngestEvent::Ended { stream, reason } => panic!("{stream} ended: {reason}"),
            _ => {}
        }
    }
    let _ = wait_exit(flv1).await;
    // Garbage, and a handshake that never completes: closed within the handshake deadline.
    let mut junk = tokio::net::TcpStream::connect(addr).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), junk.read(&mut buf)).await.expect("closed at once");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(&[3u8; 700]).await.unwrap();
    let t0 = std::time::Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(8), slow.read(&mut buf)).await.expect("closed in time") {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(7), "the handshake deadline (5 s) closed it");

    // Stream one published all along; now its publisher drops hard: the stream ends at once...
    long.kill().unwrap();
    let _ = long.wait();
    let (n, end) = until_end(&mut rx, "one").await;
    assert!(n[2] > 0, "stream one kept publishing meanwhile: {n:?}");
    assert_eq!(end, EndReason::Closed);
    // ...and the key publishes again immediately.
    let again = ffmpeg(addr, "key-one", 2, "libx264", "aac");
    assert!(matches!(next(&mut rx).await, IngestEvent::Started { stream, .. } if stream == "one"));
    let (n, _) = until_end(&mut rx, "one").await;
    assert!(n[2] > 30, "{n:?}");
    assert!(wait_exit(again).await);
    stop.cancel();
}

/// ffprobe's view of a file: `codec_type codec_name width height` per stream, and the duration.
fn ffprobe(path: &std::path::Path) -> (Vec<String>, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height:format=duration"])
        .args(["-of", "compact=p=0:nk=1"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let duration = lines.pop().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    (lines, duration)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_stream_becomes_ll_hls_that_ffprobe_reads() {
    let (addr, mut rx, stop) = server().await;
    let publisher = ffmpeg(addr, "key-one", 5, "libx264", "aac");
    let mut pkg = live::package::Packager::new(2.0, 1.0 / 3.0, 10);
    loop {
        match next(&mut rx).await {
            IngestEvent::Video { ts_ms, video, .. } => pkg.video(ts_ms, video).unwrap(),
            IngestEvent::Audio { ts_ms, audio, .. } => pkg.audio(ts_ms, audio).unwrap(),
            IngestEvent::Ended { .. } => break,
            IngestEvent::Started { .. } | IngestEvent::Frame { .. } => {}
        }
    }
    assert!(wait_exit(publisher).await);
    pkg.end();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("init.mp4"), pkg.init().expect("init segment")).unwrap();
    let text = pkg.playlist().render(false);
    let msns = pkg.playlist().msns();
    assert!(msns.end - msns.start >= 2, "~5 s in 2 s segments: {text}");
    for msn in msns.clone() {
        std::fs::write(dir.path().join(format!("seg{msn}.m4s")), pkg.segment(msn).expect("closed segment")).unwrap();
    }
    std::fs::write(dir.path().join("index.m3u8"), &text).unwrap();
    assert!(text.contains("#EXT-X-PART:") && text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    // Each part alone is a valid fragment too: init + part decodes.
    let mut one = pkg.init().unwrap().to_vec();
    one.extend_from_slice(&pkg.part(msns.start, 1).expect("a part"));
    std::fs::write(dir.path().join("one-part.mp4"), one).unwrap();

    let (streams, duration) = ffprobe(&dir.path().join("index.m3u8"));
    assert!(
        streams.contains(&"h264|video|320|240".to_string()) || streams.contains(&"video|h264|320|240".to_string()),
        "{streams:?}"
    );
    assert!(streams.iter().any(|s| s.contains("aac")), "{streams:?}");
    assert!(duration > 4.0, "the whole stream plays: {duration} s");
    // Every frame decodes, none lost on the way: 5 s at 30 fps.
    let decoded = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(dir.path().join("index.m3u8"))
        .output()
        .expect("ffprobe");
    // (HLS shows the stream once per program as well: the first count is the stream's.)
    let counts = String::from_utf8_lossy(&decoded.stdout).to_string();
    let frames: u32 = counts.lines().find_map(|l| l.trim().parse().ok()).unwrap_or(0);
    assert!(
        (145..=151).contains(&frames),
        "decoded {frames} frames; errors: {}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    assert!(decoded.stderr.is_empty(), "{}", String::from_utf8_lossy(&decoded.stderr));
    let (streams, _) = ffprobe(&dir.path().join("one-part.mp4"));
    assert!(streams.iter().any(|s| s.contains("h264")), "a part with the init segment: {streams:?}");
    let variant = pkg.variant("source/index.m3u8").expect("variant");
    assert_eq!((variant.width, variant.height), (320, 240));
    assert!(variant.codecs.starts_with("avc1.") && variant.codecs.ends_with(",mp4a.40.2"), "{variant:?}");
    stop.cancel();
}

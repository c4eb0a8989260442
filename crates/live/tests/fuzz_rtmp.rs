//! The RTMP ingest state machine under hostile input (proptest; `CONFAB_FUZZ_CASES` cases per
//! property, 256 by default): a real ffmpeg publish (`corpus/publish.bin`, recorded by the ignored
//! `record_publish_corpus`) cut into random chunks, mutated, and replaced by noise. Properties: no
//! panic, nothing after `Close`, output bounded by input, and a clean publish unaffected by how
//! the bytes are chunked.

use live::hub::{HlsConfig, Streams};
use live::session::{Ingest, IngestConfig, Out};
use proptest::prelude::*;
use std::time::{Duration, Instant};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/publish.bin");
/// The size of each read the recording made: a client waits for the server's answer between its
/// flights (C0C1 | C2 connect | createStream … | publish …), so a read never spans two flights.
const READS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/publish.reads");

fn cases() -> u32 {
    std::env::var("CONFAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn corpus() -> Vec<u8> {
    std::fs::read(CORPUS).expect("tests/corpus/publish.bin (record it with --ignored record_publish_corpus)")
}

/// Where the recorded reads end.
fn flights() -> Vec<usize> {
    let text = std::fs::read_to_string(READS).expect("tests/corpus/publish.reads");
    let mut end = 0;
    text.lines()
        .map(|l| l.trim().parse::<usize>().expect("a read size"))
        .map(|n| {
            end += n;
            end
        })
        .collect()
}

/// What a publish yields: (video frames, audio frames, publish requests, closed).
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    video: usize,
    audio: usize,
    publish: usize,
    sent: usize,
    closed: bool,
}

/// C0 and C1: a client sends C2 only once it has S1 (C2 echoes it).
const C0C1: usize = 1537;

fn feed(bytes: &[u8], chunks: &[usize], stops: &[usize]) -> Seen {
    feed_into(bytes, chunks, stops, None)
}

/// Feeds `bytes` in `chunks` (sizes, cycled; none spanning one of `stops`), accepting every
/// publish request, checking that nothing comes out once the machine closed; the frames go on to
/// `streams` (stream `s`) when given, as the server packages them for LL-HLS.
fn feed_into(bytes: &[u8], chunks: &[usize], stops: &[usize], streams: Option<&Streams>) -> Seen {
    let t0 = Instant::now();
    let mut ingest = Ingest::new(IngestConfig { max_kbps: 0, ..IngestConfig::default() }, t0);
    let mut seen = Seen::default();
    let (mut at, mut i) = (0, 0);
    while at < bytes.len() {
        let mut n = chunks[i % chunks.len()].clamp(1, bytes.len() - at);
        if let Some(stop) = stops.iter().find(|&&s| s > at) {
            n = n.min(stop - at);
        }
        i += 1;
        let now = t0 + Duration::from_millis(i as u64);
        let mut out = ingest.handle_input(&bytes[at..at + n], now);
        at += n;
        let mut round = 0;
        while !out.is_empty() {
            round += 1;
            assert!(round < 4, "accepting loops");
            let mut next = Vec::new();
            for o in out {
                assert!(!seen.closed, "output after Close: {o:?}");
                match o {
                    Out::Send(b) => seen.sent += b.len(),
                    Out::Publish { .. } => {
                        seen.publish += 1;
                        next.extend(ingest.accept(now));
                    }
                    Out::Video { ts_ms, video } => {
                        seen.video += 1;
                        if let Some(s) = streams {
                            s.video("s", live::http::SOURCE, ts_ms, video);
                        }
                    }
                    Out::Audio { ts_ms, audio } => {
                        seen.audio += 1;
                        if let Some(s) = streams {
                            s.audio("s", ts_ms, audio);
                        }
                    }
                    Out::Close(_) => seen.closed = true,
                }
            }
            out = next;
        }
    }
    // The handshake answer is 3073 bytes; beyond it, what is sent is acknowledgements and
    // command results, never more than what came in.
    assert!(seen.sent <= 3073 + 4096 + bytes.len(), "sent {} for {} in", seen.sent, bytes.len());
    seen
}

/// A mutation of the corpus: flip, overwrite, insert, delete or truncate.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Overwrite(usize, Vec<u8>),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, v)| Mutation::Overwrite(i, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..512).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match m {
        Mutation::Flip(i, b) => {
            if let Some(x) = bytes.get_mut(i % len) {
                *x ^= b;
            }
        }
        Mutation::Overwrite(i, v) => {
            for (k, b) in v.iter().enumerate() {
                if let Some(x) = bytes.get_mut(i % len + k) {
                    *x = *b;
                }
            }
        }
        Mutation::Insert(i, v) => {
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, v.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let at = i % len;
            let end = (at + n).min(bytes.len());
            bytes.drain(at.min(end)..end);
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
    }
}

#[test]
fn the_recorded_publish_plays() {
    let seen = feed(&corpus(), &[usize::MAX], &flights());
    assert_eq!(seen.publish, 1);
    // ffmpeg's FCUnpublish / deleteStream at the end close it.
    assert!(seen.video >= 10 && seen.audio >= 10 && seen.closed, "{seen:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn chunking_changes_nothing(chunks in prop::collection::vec(1usize..3000, 1..20)) {
        let (bytes, flights) = (corpus(), flights());
        prop_assert_eq!(feed(&bytes, &chunks, &flights), feed(&bytes, &[usize::MAX], &flights));
    }

    #[test]
    fn mutated_publishes_end_cleanly(
        mutations in prop::collection::vec(mutation(), 1..8),
        chunks in prop::collection::vec(1usize..4096, 1..8),
    ) {
        let mut bytes = corpus();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        // On through the packager (FLV tags, AVC and AAC configs, fMP4), as the server does.
        let streams = Streams::new(HlsConfig { segment_secs: 0.5, part_secs: 0.1, window: 4 });
        streams.start("s");
        feed_into(&bytes, &chunks, &[C0C1], Some(&streams));
        streams.end("s");
        let stream = streams.get("s").expect("the stream");
        for r in stream.renditions() {
            let pkg = r.packager();
            let _ = pkg.playlist();
            let _ = pkg.init();
        }
    }

    /// The FLV tag and codec configuration parsers on anything.
    #[test]
    fn flv_and_codec_parsers_refuse_garbage(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let bytes = bytes::Bytes::from(body.clone());
        let _ = live::flv::video(&bytes);
        let _ = live::flv::audio(&bytes);
        let _ = live::codec::avc(&body);
        let _ = live::codec::aac(&body);
        let _ = live::codec::annexb_size(&body);
        prop_assert!(live::codec::nal_units(&body).map(<[u8]>::len).sum::<usize>() <= body.len());
    }

    #[test]
    fn noise_ends_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..8192), chunk in 1usize..2048) {
        let seen = feed(&bytes, &[chunk], &[C0C1]);
        prop_assert_eq!(seen.publish, 0);
    }

    #[test]
    fn a_valid_handshake_then_noise_ends_cleanly(noise in prop::collection::vec(any::<u8>(), 1..8192)) {
        let mut bytes = corpus()[..1537 + 1536].to_vec();
        bytes.extend(noise);
        feed(&bytes, &[1537, 1536, 700], &[]);
    }
}

/// Records what ffmpeg sends when it publishes one second of small H.264 + AAC, answering it with
/// the ingest machine itself; run by hand when the corpus should change:
/// `cargo test -p live --test fuzz_rtmp -- --ignored record_publish_corpus`.
#[tokio::test]
#[ignore]
async fn record_publish_corpus() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("rtmp://{}/live/key", listener.local_addr().unwrap());
    let mut ffmpeg = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=15", "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-b:v", "50k"])
        .args(["-c:a", "aac", "-b:a", "32k", "-f", "flv", &url])
        .spawn()
        .unwrap();
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut ingest = Ingest::new(IngestConfig::default(), Instant::now());
    let (mut recorded, mut reads, mut buf) = (Vec::new(), String::new(), vec![0u8; 65536]);
    loop {
        let n = sock.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        recorded.extend_from_slice(&buf[..n]);
        reads.push_str(&format!("{n}\n"));
        let mut out = ingest.handle_input(&buf[..n], Instant::now());
        while !out.is_empty() {
            let mut next = Vec::new();
            for o in out {
                match o {
                    Out::Send(b) => sock.write_all(&b).await.unwrap(),
                    Out::Publish { .. } => next.extend(ingest.accept(Instant::now())),
                    _ => {}
                }
            }
            out = next;
        }
    }
    assert!(ffmpeg.wait().unwrap().success());
    std::fs::write(CORPUS, &recorded).unwrap();
    std::fs::write(READS, reads).unwrap();
    println!("recorded {} bytes to {CORPUS}", recorded.len());
}

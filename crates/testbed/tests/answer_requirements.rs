//! What webrtc-rs 0.21.1, as the voice client, demands of the server's answer. The answer comes
//! from a webrtc-rs peer and is then edited the way a server might write it differently, so each
//! test pins down one requirement the SFU must meet (or one liberty it may take).

use std::sync::Arc;
use std::time::{Duration, Instant};

use testbed::audio_send::{SendControl, spawn_sender};
use testbed::media::{Listener, spawn_listeners};
use testbed::peer::{Mic, Peer};

const CANDIDATES: [f32; 2] = [440.0, 880.0];
const T: Duration = Duration::from_secs(10);

/// A: the client's offer (1 sendonly + 2 recvonly). B answers with 880 Hz on A's first slot.
async fn negotiate(b_lite: bool, edit: impl Fn(&str) -> String) -> (Peer, Peer, Mic, anyhow::Result<()>) {
    let (a, b) = (Peer::new().await.unwrap(), Peer::build(b_lite).await.unwrap());
    let _a_mic = a.add_mic().await.unwrap();
    a.add_recv_slots(2).await.unwrap();
    let offer = a.create_offer().await.unwrap();
    let b_mic = b.add_mic().await.unwrap();
    let answer = edit(&b.answer(&offer).await.unwrap());
    let applied = a.accept_answer(&answer).await;
    (a, b, b_mic, applied)
}

/// Starts B's tone and waits until A hears it through its receive path.
async fn a_hears_b(a: &Peer, b: &Peer, b_mic: Mic) -> Arc<Listener> {
    a.wait_connected(T).await.unwrap();
    b.wait_connected(T).await.unwrap();
    let heard = Arc::new(Listener::default());
    let _rx = spawn_listeners(a.pc.clone(), a.take_tracks().unwrap(), heard.clone());
    let _tx = spawn_sender(b_mic, -20.0, false, Arc::new(SendControl::new(Some(880.0), None)));
    let deadline = Instant::now() + T;
    while heard.heard_within(&CANDIDATES, Duration::from_millis(500)) != [880.0] {
        assert!(Instant::now() < deadline, "A never heard B: {:?}", heard.track_stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    heard
}

fn without_lines(sdp: &str, drop: impl Fn(&str) -> bool) -> String {
    sdp.split("\r\n").filter(|l| !drop(l)).collect::<Vec<_>>().join("\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_lite_answer_is_accepted() {
    let (a, b, b_mic, applied) = negotiate(true, str::to_owned).await;
    applied.unwrap();
    let answer = b.pc.local_description().await.unwrap().sdp;
    assert!(answer.contains("a=ice-lite"), "{answer}");
    a_hears_b(&a, &b, b_mic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_without_msid_works() {
    let no_msid = |sdp: &str| without_lines(sdp, |l| l.starts_with("a=msid:") || l.contains(" msid:"));
    let (a, b, b_mic, applied) = negotiate(false, no_msid).await;
    applied.unwrap();
    let heard = a_hears_b(&a, &b, b_mic).await;
    let track = &heard.track_stats()[0];
    assert_eq!((track.mid.as_deref(), track.stream_id.as_str()), (Some("1"), ""));
}

/// With several m-lines, a sending m-line with `a=msid` but no `a=ssrc` makes
/// set_remote_description fail: webrtc-rs binds an undeclared SSRC only when there is a single
/// transceiver, or by the mid+rid header extensions (simulcast).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_with_msid_but_no_ssrc_is_refused() {
    let no_ssrc = |sdp: &str| without_lines(sdp, |l| l.starts_with("a=ssrc:"));
    let (_a, _b, _mic, applied) = negotiate(false, no_ssrc).await;
    let err = applied.expect_err("a sending m-line without a=ssrc must be refused");
    assert!(format!("{err:#}").contains("SSRC"), "{err:#}");
}

/// Worse: with neither `a=ssrc` nor `a=msid` the answer is accepted, ICE and DTLS connect, and
/// every RTP packet is then dropped as belonging to no track. Silence, no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_without_ssrc_or_msid_connects_but_delivers_nothing() {
    let bare = |sdp: &str| without_lines(sdp, |l| l.starts_with("a=ssrc:") || l.starts_with("a=msid:"));
    let (a, b, b_mic, applied) = negotiate(false, bare).await;
    applied.unwrap();
    a.wait_connected(T).await.unwrap();
    b.wait_connected(T).await.unwrap();
    let heard = Arc::new(Listener::default());
    let _rx = spawn_listeners(a.pc.clone(), a.take_tracks().unwrap(), heard.clone());
    let sent = Arc::new(SendControl::new(Some(880.0), None));
    let _tx = spawn_sender(b_mic, -20.0, false, sent.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sent.frames_sent.load(std::sync::atomic::Ordering::Relaxed) > 20);
    assert_eq!(heard.received_packets(), 0);
}

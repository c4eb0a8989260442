//! Two webrtc-rs peers in one process, no confab: A offers what the voice gateway expects (sendonly
//! mic + recvonly slots), B answers with a sendonly track of its own. Each must decode the other's
//! tone through the testbed's real send and receive path, with the audio-level extension intact.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use testbed::media::{Listener, SendControl, spawn_listeners, spawn_sender};
use testbed::peer::{AUDIO_LEVEL_URI, Peer, extmap_id};

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
    let (a_ctl, b_ctl) = (Arc::new(SendControl::default()), Arc::new(SendControl::default()));
    let _a_tx = spawn_sender(a_mic, Some((440.0, -20.0)), a_ctl.clone());
    let _b_tx = spawn_sender(b_mic, Some((880.0, -20.0)), b_ctl.clone());

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

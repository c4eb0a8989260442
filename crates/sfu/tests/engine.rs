//! The engine end to end over loopback UDP, with str0m itself as the client (see `support`).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sfu::{GoneReason, PeerId, Sfu, SfuConfig, SfuError, SfuEvent};
use str0m::Rtc;
use str0m::media::{Direction, MediaKind};
use tokio::net::UdpSocket;

use support::{Client, MS, add, connected, eventually, received_during, slots_of, start};

#[tokio::test]
async fn three_clients_hear_each_other_never_themselves() {
    let (sfu, _events) = start(SfuConfig::default()).await;
    let a = Client::join(&sfu, 1, 1, 2, -30).await;
    let b = Client::join(&sfu, 1, 2, 2, -30).await;
    let c = Client::join(&sfu, 1, 3, 2, -30).await;
    connected(&[&a, &b, &c]).await;
    tokio::time::sleep(300 * MS).await;
    for (me, others) in [(&a, [2, 3]), (&b, [1, 3]), (&c, [1, 2])] {
        let got = received_during(me, 600 * MS).await;
        for o in others {
            assert!(got.get(&o).copied().unwrap_or(0) >= 15, "client {} from {o}: {got:?}", me.id);
        }
        assert_eq!(me.from(me.id), 0, "client {} heard itself", me.id);
        // Each receive mid carried one sender, and different mids different senders.
        let by_mid = me.seen.lock().unwrap().by_mid.clone();
        assert_eq!(by_mid.len(), 2);
        assert_ne!(by_mid.values().next(), by_mid.values().nth(1));
        // The senders' capture times are forwarded, so receivers can tell end-to-end latency.
        let seen = me.seen.lock().unwrap();
        assert!(seen.capture_times > 30 && seen.max_capture_age < Duration::from_secs(1), "{:?}", seen.max_capture_age);
    }
    let stats = sfu.stats().await;
    assert_eq!(stats.rooms.len(), 1);
    assert_eq!(stats.rooms[0].peers, 3);
    assert!(stats.peers.iter().all(|p| p.connected && p.counters.frames_in > 0 && p.counters.frames_out > 0));
    let lat = &stats.forward_latency;
    assert!(lat.count > 0 && lat.p50_us <= lat.p99_us && lat.p99_us <= lat.max_us, "{lat:?}");
    assert_eq!(lat.counts.iter().sum::<u64>(), lat.count);
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["rooms"][0]["frames_in"], stats.rooms[0].counters.frames_in);
    // RTT needs our sender report and then the client's receiver report (1 s intervals).
    let deadline = Instant::now() + Duration::from_secs(3);
    while !sfu.stats().await.peers.iter().all(|p| p.rtt_ms.is_some()) {
        assert!(Instant::now() < deadline, "no rtt: {:?}", sfu.stats().await);
        tokio::time::sleep(50 * MS).await;
    }
    sfu.shutdown();
}

/// Opus is not retransmitted: a packet lost on a speaker's uplink must not hold back the ones
/// after it (a reordering window would stall the voice for its whole length at every loss).
#[tokio::test]
async fn a_lost_packet_does_not_hold_back_the_next() {
    let (sfu, _events) = start(SfuConfig::default()).await;
    let a = Client::join(&sfu, 1, 1, 1, -20).await;
    let b = Client::join(&sfu, 1, 2, 1, -20).await;
    connected(&[&a, &b]).await;
    eventually(Duration::from_secs(5), 20 * MS, || b.from(1) >= 10, || format!("no audio from a: {:?}", b.frames()))
        .await;
    a.drop_rtp(1);
    tokio::time::sleep(800 * MS).await;
    let got: std::collections::BTreeSet<u64> =
        b.seen.lock().unwrap().arrivals.keys().filter(|(s, _)| *s == 1).map(|(_, f)| *f).collect();
    let (first, last) = (*got.first().unwrap(), *got.last().unwrap());
    let lost = (first..last).find(|f| !got.contains(f)).expect("one frame lost on the way");
    let next = b.seen.lock().unwrap().arrivals[&(1, lost + 1)];
    // Causal, not timed: the frame after the gap reached b before a had even written 8 more.
    let written = a.seen.lock().unwrap().sent[&(lost + 9)];
    assert!(next < written, "frame {} arrived after a wrote frame {}", lost + 1, lost + 9);
    // Receivers get renumbered packets and see no gap; the server's own receiver reports count it.
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let stats = sfu.stats().await;
        let lost = stats.peers.iter().find(|p| p.peer == 1).map_or(0, |p| p.counters.uplink_lost);
        if lost >= 1 {
            assert!(lost <= 3, "one packet lost, {lost} counted");
            break;
        }
        assert!(Instant::now() < deadline, "uplink loss not counted: {stats:?}");
        tokio::time::sleep(100 * MS).await;
    }
    sfu.shutdown();
}

#[tokio::test]
async fn muted_client_is_not_forwarded() {
    let (sfu, _events) = start(SfuConfig::default()).await;
    let a = Client::join(&sfu, 1, 1, 2, -30).await;
    let b = Client::join(&sfu, 1, 2, 2, -30).await;
    let c = Client::join(&sfu, 1, 3, 2, -30).await;
    connected(&[&a, &b, &c]).await;
    tokio::time::sleep(300 * MS).await;
    assert!(a.from(2) > 0);
    sfu.set_muted(2, true);
    tokio::time::sleep(100 * MS).await;
    let got = received_during(&a, 500 * MS).await;
    assert_eq!(got.get(&2), None, "muted client still heard: {got:?}");
    assert!(got.get(&3).copied().unwrap_or(0) >= 15);
    assert_eq!(received_during(&c, 200 * MS).await.get(&2), None);
    let stats = sfu.stats().await;
    let b_stats = stats.peers.iter().find(|p| p.peer == 2).unwrap();
    assert!(b_stats.muted && b_stats.counters.dropped_muted > 0);
    // Unmuted, it is heard again.
    sfu.set_muted(2, false);
    tokio::time::sleep(100 * MS).await;
    assert!(received_during(&a, 300 * MS).await.get(&2).copied().unwrap_or(0) > 0);
}

#[tokio::test]
async fn removed_peer_leaves_slots_and_stats() {
    let (sfu, mut events) = start(SfuConfig::default()).await;
    let a = Client::join(&sfu, 1, 1, 2, -30).await;
    let b = Client::join(&sfu, 1, 2, 2, -30).await;
    let c = Client::join(&sfu, 1, 3, 2, -30).await;
    connected(&[&a, &b, &c]).await;
    tokio::time::sleep(200 * MS).await;
    assert!(a.from(3) > 0);
    sfu.remove_peer(3);
    for listener in [1, 2] {
        events
            .wait(Duration::from_secs(1), |e| {
                slots_of(e).is_some_and(|(p, s)| p == listener && s.iter().all(|(_, src)| *src != Some(3)))
            })
            .await;
    }
    tokio::time::sleep(100 * MS).await;
    assert_eq!(received_during(&a, 300 * MS).await.get(&3), None);
    let stats = sfu.stats().await;
    assert_eq!(stats.peers.iter().map(|p| p.peer).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(stats.rooms[0].peers, 2);
    assert!(stats.rooms[0].counters.frames_in > stats.peers.iter().map(|p| p.counters.frames_in).sum::<u64>());
    // Removing twice, or an unknown peer, is harmless.
    sfu.remove_peer(3);
    sfu.remove_peer(99);
    assert!(received_during(&b, 200 * MS).await.contains_key(&1));
    drop(c);
}

#[tokio::test]
async fn loud_then_silent_starts_then_stops_speaking() {
    let (sfu, mut events) = start(SfuConfig::default()).await;
    let a = Client::join(&sfu, 7, 1, 1, -10).await;
    let _b = Client::join(&sfu, 7, 2, 1, -127).await;
    connected(&[&a]).await;
    let speaking = |on: bool| move |e: &SfuEvent| *e == SfuEvent::Speaking { room: 7, peer: 1, speaking: on };
    events.wait(Duration::from_secs(2), speaking(true)).await;
    events.wait(Duration::from_secs(1), |e| *e == SfuEvent::DominantSpeaker { room: 7, peer: Some(1) }).await;
    a.level(-127);
    let silent_at = Instant::now();
    events.wait(Duration::from_secs(2), speaking(false)).await;
    // Not before the hangover (500 ms by default).
    assert!(silent_at.elapsed() >= 400 * MS, "stopped after {:?}", silent_at.elapsed());
}

#[tokio::test]
async fn last_n_forwards_only_the_loudest() {
    let (sfu, _events) = start(SfuConfig { last_n: 3, ..SfuConfig::default() }).await;
    let levels = [-10, -20, -30, -40, -60, -80];
    let mut senders = Vec::new();
    for (i, level) in levels.into_iter().enumerate() {
        senders.push(Client::join(&sfu, 1, i as u64 + 1, 1, level).await);
    }
    let listener = Client::join(&sfu, 1, 100, 5, -127).await;
    let mut all: Vec<&Client> = senders.iter().collect();
    all.push(&listener);
    connected(&all).await;
    tokio::time::sleep(1200 * MS).await; // loudness averages settle
    let got = received_during(&listener, 1000 * MS).await;
    let mut heard: Vec<PeerId> = got.keys().copied().collect();
    heard.sort();
    assert_eq!(heard, vec![1, 2, 3], "{got:?}");
    assert!(got.values().all(|n| *n >= 30), "{got:?}");
    // Each forwarded frame carries its sender's level.
    let levels = listener.seen.lock().unwrap().levels.clone();
    assert_eq!((levels[&1], levels[&2], levels[&3]), (-10, -20, -30));
    let stats = sfu.stats().await;
    let l = stats.peers.iter().find(|p| p.peer == 100).unwrap();
    assert_eq!(l.slots, 5);
}

#[tokio::test]
async fn slot_switch_keeps_the_mid_and_a_continuous_timeline() {
    let (sfu, mut events) = start(SfuConfig { last_n: 1, ..SfuConfig::default() }).await;
    let x = Client::join(&sfu, 1, 1, 1, -10).await;
    let y = Client::join(&sfu, 1, 2, 1, -40).await;
    let l = Client::join(&sfu, 1, 3, 1, -127).await;
    connected(&[&x, &y, &l]).await;
    tokio::time::sleep(600 * MS).await; // x is ranked first by now
    assert!(received_during(&l, 300 * MS).await.contains_key(&1));
    events.clear();
    x.level(-127);
    y.level(-10);
    events.wait(Duration::from_secs(2), |e| slots_of(e).is_some_and(|(p, s)| p == 3 && s[0].1 == Some(2))).await;
    tokio::time::sleep(100 * MS).await;
    let got = received_during(&l, 300 * MS).await;
    assert!(got.get(&2).copied().unwrap_or(0) >= 10 && !got.contains_key(&1), "{got:?}");
    let seen = l.seen.lock().unwrap();
    assert_eq!(seen.by_mid.len(), 1, "one receive m-line throughout");
    assert_eq!(seen.time_jumps, 0, "the slot's RTP timeline must stay continuous across the switch");
}

#[tokio::test]
async fn garbage_datagrams_are_dropped_and_counted() {
    let (sfu, _events) = start(SfuConfig::default()).await;
    let a = Client::join(&sfu, 1, 1, 1, -30).await;
    let b = Client::join(&sfu, 1, 2, 1, -30).await;
    connected(&[&a, &b]).await;
    let before = sfu.stats().await.garbage_datagrams;
    let junk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = sfu.local_addr();
    let random: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x40).collect();
    let truncated_stun = [0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4];
    let mut unknown_ufrag = vec![0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xA4, 0x42];
    unknown_ufrag.extend_from_slice(&[9; 12]);
    unknown_ufrag.extend_from_slice(&[0x00, 0x06, 0x00, 0x0b]);
    unknown_ufrag.extend_from_slice(b"nobody:anon\0");
    let rtp_like: Vec<u8> = std::iter::once(0x80).chain(random.iter().copied()).collect();
    for d in [&random[..], &truncated_stun, &unknown_ufrag, &rtp_like, &[]] {
        junk.send_to(d, server).await.unwrap();
    }
    // Junk from a connected client's own address reaches its Rtc, which must shrug it off.
    a.raw(rtp_like.clone());
    a.raw(vec![0x17, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 2, 1, 2]);
    tokio::time::sleep(200 * MS).await;
    let after = sfu.stats().await.garbage_datagrams;
    assert_eq!(after - before, 5);
    assert!(received_during(&a, 400 * MS).await.get(&2).copied().unwrap_or(0) >= 10);
    assert!(received_during(&b, 400 * MS).await.get(&1).copied().unwrap_or(0) >= 10);
}

#[tokio::test]
async fn bad_offers_are_rejected() {
    let (sfu, _events) = start(SfuConfig::default()).await;
    let offer = |rtc: &mut Rtc, dirs: &[Direction]| {
        let mut api = rtc.sdp_api();
        for d in dirs {
            api.add_media(MediaKind::Audio, *d, None, None, None);
        }
        api.apply().unwrap().0.to_sdp_string()
    };
    assert!(matches!(add(&sfu, 1, 1, "not sdp").await, Err(SfuError::BadSdp(_))));
    assert!(matches!(add(&sfu, 1, 1, "v=0\r\nm=audio\r\n").await, Err(SfuError::BadSdp(_))));
    let mut pcmu = Rtc::builder().clear_codecs().enable_pcmu(true, false).build(Instant::now());
    assert_eq!(add(&sfu, 1, 1, &offer(&mut pcmu, &[Direction::SendOnly])).await, Err(SfuError::NoOpus));
    let mut recv_only = Rtc::new(Instant::now());
    let sdp = offer(&mut recv_only, &[Direction::RecvOnly, Direction::RecvOnly]);
    assert_eq!(add(&sfu, 1, 1, &sdp).await, Err(SfuError::NoSendAudio));
    let good = offer(&mut Rtc::new(Instant::now()), &[Direction::SendOnly, Direction::RecvOnly]);
    assert!(add(&sfu, 1, 1, &good).await.is_ok());
    let again = offer(&mut Rtc::new(Instant::now()), &[Direction::SendOnly, Direction::RecvOnly]);
    assert_eq!(add(&sfu, 2, 1, &again).await, Err(SfuError::DuplicatePeer));
    // Half an offer: rejected one way or another, never a panic.
    assert!(matches!(add(&sfu, 1, 2, &good[..good.len() / 2]).await, Err(SfuError::BadSdp(_))));
    let stats = sfu.stats().await;
    assert_eq!(stats.peers.len(), 1);
    sfu.shutdown();
    tokio::time::sleep(50 * MS).await;
    assert_eq!(add(&sfu, 1, 3, &again).await, Err(SfuError::EngineGone));
}

#[tokio::test]
async fn vanished_client_times_out() {
    let cfg = SfuConfig { peer_timeout: Duration::from_secs(1), ..SfuConfig::default() };
    let (sfu, mut events) = start(cfg).await;
    let a = Client::join(&sfu, 1, 1, 1, -127).await;
    let b = Client::join(&sfu, 1, 2, 1, -10).await;
    connected(&[&a, &b]).await;
    events.wait(Duration::from_secs(2), |e| *e == SfuEvent::Speaking { room: 1, peer: 2, speaking: true }).await;
    b.vanish();
    let gone_at = Instant::now();
    // It stops "speaking" after the hangover, then is dropped after the timeout.
    events.wait(Duration::from_secs(1), |e| *e == SfuEvent::Speaking { room: 1, peer: 2, speaking: false }).await;
    let gone = SfuEvent::PeerGone { room: 1, peer: 2, reason: GoneReason::Timeout };
    events.wait(Duration::from_secs(2), |e| *e == gone).await;
    assert!(gone_at.elapsed() >= 900 * MS);
    events.wait(Duration::from_secs(1), |e| slots_of(e).is_some_and(|(p, s)| p == 1 && s[0].1.is_none())).await;
    assert_eq!(sfu.stats().await.peers.len(), 1);
    assert!(a.from(2) > 0);
}

/// A peer whose network never reaches the media port (UDP blocked, no TURN): gone as
/// `Unreachable`, so the gateway can say "media could not connect" instead of a plain drop.
#[tokio::test]
async fn a_peer_that_never_connects_is_gone_unreachable() {
    let cfg = SfuConfig { peer_timeout: Duration::from_millis(800), ..SfuConfig::default() };
    let (sfu, mut events) = start(cfg).await;
    let mut rtc = Rtc::new(Instant::now());
    rtc.add_local_candidate(str0m::Candidate::host("127.0.0.1:9".parse().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, _pending) = api.apply().unwrap();
    add(&sfu, 1, 5, &offer.to_sdp_string()).await.unwrap();
    let gone = SfuEvent::PeerGone { room: 1, peer: 5, reason: GoneReason::Unreachable };
    events.wait(Duration::from_secs(5), |e| *e == gone).await;
    assert!(sfu.stats().await.peers.is_empty());
}

#[tokio::test]
async fn closing_client_is_gone_closed() {
    let (sfu, mut events) = start(SfuConfig::default()).await;
    let a = Client::join(&sfu, 1, 1, 1, -30).await;
    let b = Client::join(&sfu, 1, 2, 1, -30).await;
    connected(&[&a, &b]).await;
    b.close();
    let gone = SfuEvent::PeerGone { room: 1, peer: 2, reason: GoneReason::Closed };
    events.wait(Duration::from_secs(2), |e| *e == gone).await;
    assert_eq!(sfu.stats().await.peers.len(), 1);
}

#[tokio::test]
async fn limits_and_wildcard_bind() {
    let bind = "0.0.0.0:0".parse().unwrap();
    let err = Sfu::start(SfuConfig { bind, ..SfuConfig::default() }, None).await.err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // Bound to every interface, advertising loopback: clients reach it through the advertised address.
    let cfg = SfuConfig { bind, public_ip: Some([127, 0, 0, 1].into()), max_peers: 2, ..SfuConfig::default() };
    let (sfu, _events) = start(cfg).await;
    assert!(sfu.local_addr().ip().is_unspecified());
    assert_eq!(sfu.advertised_addr(), SocketAddr::from(([127, 0, 0, 1], sfu.local_addr().port())));
    let a = Client::join(&sfu, 1, 1, 1, -30).await;
    let b = Client::join(&sfu, 1, 2, 1, -30).await;
    connected(&[&a, &b]).await;
    let mut rtc = Rtc::new(Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let offer = api.apply().unwrap().0.to_sdp_string();
    assert_eq!(add(&sfu, 1, 3, &offer).await, Err(SfuError::Full));
    assert!(received_during(&a, 300 * MS).await.contains_key(&2));
}

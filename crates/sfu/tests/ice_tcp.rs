//! ICE over TCP on the media port: a str0m client with only a TCP candidate (as a client behind a
//! firewall that passes no UDP) connects through the engine's passive TCP candidate, RFC 4571
//! framing on the wire, and hears a UDP client of the same room.

mod support;

use std::time::{Duration, Instant};

use sfu::{PeerOptions, SfuConfig};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::{Client, start};

#[tokio::test]
async fn a_client_without_udp_joins_over_tcp() {
    let (sfu, _events) = start(SfuConfig::default()).await;
    let server = sfu.local_addr();
    let speaker = Client::join(&sfu, 1, 1, 1, -20).await;

    let mut stream = TcpStream::connect(server).await.expect("the media port takes TCP too");
    let local = stream.local_addr().unwrap();
    let mut rtc = Rtc::new(Instant::now());
    let candidate = Candidate::builder().tcp().host(local).tcptype(TcpType::Active).build().unwrap();
    rtc.add_local_candidate(candidate);
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let answer = sfu.add_peer(1, 2, &offer.to_sdp_string(), PeerOptions::default()).await.unwrap();
    assert!(answer.sdp.contains(" tcp ") && answer.sdp.contains("tcptype passive"), "{}", answer.sdp);
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer.sdp).unwrap()).unwrap();

    let (mut connected, mut heard) = (false, 0);
    let (mut inbuf, mut pending_bytes) = (vec![0u8; 4096], Vec::<u8>::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while heard < 10 {
        assert!(Instant::now() < deadline, "connected: {connected}, frames heard: {heard}");
        let timeout = loop {
            match rtc.poll_output().unwrap() {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    assert_eq!(t.proto, Protocol::Tcp);
                    let mut framed = (t.contents.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&t.contents);
                    stream.write_all(&framed).await.unwrap();
                }
                Output::Event(Event::Connected) => connected = true,
                Output::Event(Event::MediaData(d)) => {
                    assert_eq!(u64::from_le_bytes(d.data[..8].try_into().unwrap()), 1, "the speaker's audio");
                    heard += 1;
                }
                Output::Event(_) => {}
            }
        };
        let wait = timeout.saturating_duration_since(Instant::now()).min(Duration::from_millis(20));
        match tokio::time::timeout(wait, stream.read(&mut inbuf)).await {
            Ok(Ok(0)) => panic!("the server closed the TCP connection"),
            Ok(Ok(n)) => {
                pending_bytes.extend_from_slice(&inbuf[..n]);
                while pending_bytes.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([pending_bytes[0], pending_bytes[1]]));
                    if pending_bytes.len() < 2 + len {
                        break;
                    }
                    let frame: Vec<u8> = pending_bytes.drain(..2 + len).skip(2).collect();
                    let recv = Receive::new(Protocol::Tcp, server, local, &frame).unwrap();
                    rtc.handle_input(Input::Receive(Instant::now(), recv)).unwrap();
                }
            }
            Ok(Err(e)) => panic!("reading: {e}"),
            Err(_) => rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
        }
    }
    assert!(connected);
    let stats = sfu.stats().await;
    let tcp_peer = stats.peers.iter().find(|p| p.peer == 2).expect("the TCP peer");
    assert!(tcp_peer.connected && tcp_peer.counters.packets_in > 0 && tcp_peer.counters.frames_out >= 10);
    drop(speaker);
}

#[tokio::test]
async fn ice_tcp_can_be_turned_off() {
    let (sfu, _events) = start(SfuConfig { ice_tcp: false, ..SfuConfig::default() }).await;
    assert!(TcpStream::connect(sfu.local_addr()).await.is_err(), "no listener");
    let mut rtc = Rtc::new(Instant::now());
    rtc.add_local_candidate(Candidate::host("127.0.0.1:9".parse().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, _) = api.apply().unwrap();
    let answer = sfu.add_peer(1, 3, &offer.to_sdp_string(), PeerOptions::default()).await.unwrap();
    assert!(!answer.sdp.contains("tcptype"), "{}", answer.sdp);
}

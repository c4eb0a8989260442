//! `VoiceClient` against a stand-in for confab: a hand-written HTTP reply for the voice grant and a
//! voice gateway speaking `signaling::protocol`, whose media side is a webrtc-rs peer answering
//! with a 660 Hz tone (and, in video rooms, a blue camera into the client's video slot). Exercises
//! the whole join flow, heartbeats, events, mute, camera, slots and close codes without a server.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use signaling::protocol::{ClientMsg, Participant, RoomMode, ServerMsg, Slot, SlotKind, close};
use testbed::audio_send::{SendControl, spawn_sender};
use testbed::media::{Listener, spawn_av_listeners};
use testbed::peer::Peer;
use testbed::picture::colour_close;
use testbed::video_recv::VideoListener;
use testbed::video_send::{CameraControl, CameraOptions, spawn_camera};
use testbed::{VoiceClient, VoiceOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

const CANDIDATES: [f32; 3] = [440.0, 660.0, 880.0];
const T: Duration = Duration::from_secs(10);
const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 200, 0];
const BLUE: [u8; 3] = [0, 0, 255];

/// The room the fake gateway describes in `ready`.
#[derive(Clone, Copy)]
struct Room {
    mode: RoomMode,
    video_slots: usize,
    /// The gateway's peer sends a camera of this colour into the client's first video slot.
    camera: Option<[u8; 3]>,
}

const AUDIO_ONLY: Room = Room { mode: RoomMode::Hybrid, video_slots: 0, camera: None };

/// Serves one `POST /api/channels/42/voice` for bearer `secret`, pointing at `ws_url`.
async fn serve_grant(http: TcpListener, ws_url: String) {
    let (mut conn, _) = http.accept().await.unwrap();
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "request ended early");
        req.extend_from_slice(&buf[..n]);
    }
    let req = String::from_utf8_lossy(&req).to_lowercase();
    assert!(req.starts_with("post /api/channels/42/voice "), "{req}");
    assert!(req.contains("authorization: bearer secret"), "{req}");
    let body =
        serde_json::json!({"token": "vt", "endpoint": ws_url, "room_id": "42", "guild_id": "1", "expires_at": 0});
    let body = body.to_string();
    let reply =
        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    conn.write_all(reply.as_bytes()).await.unwrap();
}

/// What the fake gateway observed, for the test to check.
struct Gateway {
    client_msgs: mpsc::UnboundedReceiver<ClientMsg>,
    heard: Arc<Listener>,
    seen: Arc<VideoListener>,
    push: mpsc::UnboundedSender<ServerMsg>,
}

fn text(msg: &ServerMsg) -> Message {
    Message::text(serde_json::to_string(msg).unwrap())
}

async fn serve_gateway(
    ws: TcpListener,
    seen: mpsc::UnboundedSender<ClientMsg>,
    mut push: mpsc::UnboundedReceiver<ServerMsg>,
    heard: Arc<Listener>,
    seen_video: Arc<VideoListener>,
    room: Room,
) {
    let (tcp, _) = ws.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    ws.send(text(&ServerMsg::Hello { heartbeat_interval: 100 })).await.unwrap();
    let me = Participant {
        user_id: "7".into(),
        username: "u".into(),
        self_mute: false,
        server_mute: false,
        self_deaf: false,
        share: false,
        speaking: false,
        camera: false,
    };
    // The media side lives as long as the socket.
    let mut peers = Vec::new();
    loop {
        tokio::select! {
            Some(msg) = push.recv() => ws.send(text(&msg)).await.unwrap(),
            frame = ws.next() => {
                let Some(Ok(Message::Text(raw))) = frame else { return };
                let Ok(msg) = serde_json::from_str::<ClientMsg>(&raw) else {
                    // As the real gateway must: bad input closes with DECODE_ERROR, never a panic.
                    let frame = CloseFrame { code: close::DECODE_ERROR.into(), reason: "decode".into() };
                    let _ = ws.close(Some(frame)).await;
                    return;
                };
                match &msg {
                    ClientMsg::Identify { token } => {
                        assert_eq!(token, "vt");
                        let ready = ServerMsg::Ready { session_id: "s".into(), user_id: "7".into(), room_id: "42".into(), mode: room.mode, share_slots: 0, share_max_bitrate: 0, audio_slots: 2, video_slots: room.video_slots, participants: vec![me.clone()], ice_servers: Vec::new() };
                        ws.send(text(&ready)).await.unwrap();
                    }
                    ClientMsg::Heartbeat { nonce } => ws.send(text(&ServerMsg::HeartbeatAck { nonce: *nonce })).await.unwrap(),
                    ClientMsg::Offer { sdp } => {
                        let b = Peer::new().await.unwrap();
                        let mic = b.add_mic().await.unwrap();
                        let camera = match room.camera {
                            Some(_) => Some(b.add_camera().await.unwrap()),
                            None => None,
                        };
                        let answer = b.answer(sdp).await.unwrap();
                        ws.send(text(&ServerMsg::Answer { sdp: answer })).await.unwrap();
                        b.wait_connected(T).await.unwrap();
                        spawn_av_listeners(b.pc.clone(), b.take_tracks().unwrap(), heard.clone(), Some(seen_video.clone()));
                        spawn_sender(mic, -20.0, false, Arc::new(SendControl::new(Some(660.0), None)));
                        if let (Some(camera), Some(colour)) = (camera, room.camera) {
                            spawn_camera(camera, CameraOptions::colour(colour), Arc::new(CameraControl::new(colour)));
                        }
                        peers.push(b);
                    }
                    _ => {}
                }
                let _ = seen.send(msg);
            }
        }
    }
}

async fn start(room: Room) -> (String, Gateway) {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_base = format!("http://{}", http.local_addr().unwrap());
    tokio::spawn(serve_grant(http, format!("ws://{}/voice", ws.local_addr().unwrap())));
    let (seen_tx, client_msgs) = mpsc::unbounded_channel();
    let (push, push_rx) = mpsc::unbounded_channel();
    let heard = Arc::new(Listener::default());
    let seen = Arc::new(VideoListener::default());
    tokio::spawn(serve_gateway(ws, seen_tx, push_rx, heard.clone(), seen.clone(), room));
    (http_base, Gateway { client_msgs, heard, seen, push })
}

async fn next_non_heartbeat(rx: &mut mpsc::UnboundedReceiver<ClientMsg>) -> ClientMsg {
    loop {
        match tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap() {
            ClientMsg::Heartbeat { .. } => continue,
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_talk_mute_and_get_closed() {
    let (http_base, mut gw) = start(AUDIO_ONLY).await;
    let client = VoiceClient::join(&http_base, "secret", "42", VoiceOptions::tone(440.0)).await.unwrap();
    assert_eq!(client.session().audio_slots, 2);
    assert_eq!(client.session().participants.len(), 1);
    assert!(matches!(next_non_heartbeat(&mut gw.client_msgs).await, ClientMsg::Identify { .. }));
    let ClientMsg::Offer { sdp } = next_non_heartbeat(&mut gw.client_msgs).await else { panic!("no offer") };
    assert!(!sdp.contains("m=video"), "no camera and no video slots: no video m-line\n{sdp}");

    // Media both ways, judged by content.
    client.wait_heard(&CANDIDATES, &[660.0], T).await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while gw.heard.heard_within(&CANDIDATES, Duration::from_millis(500)) != [440.0] {
        assert!(tokio::time::Instant::now() < deadline, "the gateway's peer never heard 440 Hz");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let slot = &client.track_stats()[0];
    assert_eq!((slot.mid.as_deref(), slot.last_level), (Some("1"), Some(23)));

    // Heartbeats flow (100 ms interval) and their acks are counted, not queued.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(client.events().heartbeat_acks() >= 2, "acks: {}", client.events().heartbeat_acks());

    // Server events arrive in the log; wait_for leaves the others queued.
    gw.push.send(ServerMsg::Speaking { user_id: "9".into(), speaking: true }).unwrap();
    gw.push.send(ServerMsg::DominantSpeaker { user_id: Some("9".into()) }).unwrap();
    let dom = client.wait_for(|m| matches!(m, ServerMsg::DominantSpeaker { .. }), T).await.unwrap();
    assert_eq!(dom, ServerMsg::DominantSpeaker { user_id: Some("9".into()) });
    assert!(matches!(client.next_event(T).await.unwrap(), ServerMsg::Speaking { speaking: true, .. }));

    // Mute tells the server and stops the audio.
    client.mute(true).await.unwrap();
    assert_eq!(next_non_heartbeat(&mut gw.client_msgs).await, ClientMsg::Mute { self_mute: true, self_deaf: false });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let frozen = gw.heard.received_packets();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.heard.received_packets(), frozen);

    // Garbage gets the socket closed with DECODE_ERROR, and the client reports the code.
    client.send_raw_text("{not json").await.unwrap();
    let closed = client.wait_closed(T).await.unwrap();
    assert_eq!(closed.code, Some(close::DECODE_ERROR));
    assert_eq!(client.close_code(), Some(close::DECODE_ERROR));
    client.close().await.unwrap();
}

fn m_lines(sdp: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            out.push(m.split(' ').next().unwrap_or_default().to_owned());
        } else if let Some(dir) = ["sendonly", "recvonly"].iter().find(|d| line == format!("a={d}"))
            && let Some(last) = out.last_mut()
        {
            last.push_str(&format!(" {dir}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_is_seen_and_slots_name_the_user() {
    let room = Room { mode: RoomMode::Sfu, video_slots: 1, camera: Some(BLUE) };
    let (http_base, mut gw) = start(room).await;
    let opts = VoiceOptions { camera: Some(CameraOptions::colour(RED)), ..VoiceOptions::tone(440.0) };
    let client = VoiceClient::join(&http_base, "secret", "42", opts).await.unwrap();
    let s = client.session();
    assert_eq!((s.mode, s.audio_slots, s.video_slots), (RoomMode::Sfu, 2, 1));
    assert!(matches!(next_non_heartbeat(&mut gw.client_msgs).await, ClientMsg::Identify { .. }));
    let ClientMsg::Offer { sdp } = next_non_heartbeat(&mut gw.client_msgs).await else { panic!("no offer") };
    let expected = ["audio sendonly", "audio recvonly", "audio recvonly", "video sendonly", "video recvonly"];
    assert_eq!(m_lines(&sdp), expected, "{sdp}");

    // Each side decodes the other's colour; the slot message names whose camera mid 4 carries.
    gw.push
        .send(ServerMsg::Slots {
            slots: vec![Slot { mid: "4".into(), user_id: Some("9".into()), kind: SlotKind::Video }],
        })
        .unwrap();
    client.wait_colour(Some("4"), BLUE, 12, T).await.unwrap();
    let gw_sees =
        |rgb| gw.seen.latest_picture("3").and_then(|p| p.centre_rgb()).is_some_and(|c| colour_close(c, rgb, 12));
    let deadline = tokio::time::Instant::now() + T;
    while !gw_sees(RED) {
        assert!(tokio::time::Instant::now() < deadline, "the gateway never saw red: {:?}", gw.seen.track_stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tracks = client.video_tracks();
    assert_eq!(tracks.len(), 1);
    assert_eq!((tracks[0].mid.as_deref(), tracks[0].user_id.as_deref()), (Some("4"), Some("9")));
    assert_eq!(client.video_mid_of("9").as_deref(), Some("4"));
    client.wait_heard(&CANDIDATES, &[660.0], T).await.unwrap();

    // A colour change shows up; a wrong expectation fails saying what was seen instead.
    client.set_camera_colour(GREEN);
    while !gw_sees(GREEN) {
        assert!(tokio::time::Instant::now() < deadline, "the gateway never saw green");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = client.wait_colour(Some("4"), GREEN, 12, Duration::from_millis(200)).await.unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("mid Some(\"4\") user Some(\"9\"): Some(I420 320x180 centre Some(["), "{err}");

    // Camera off: the server is told and the frames stop.
    client.camera(false).await.unwrap();
    assert_eq!(next_non_heartbeat(&mut gw.client_msgs).await, ClientMsg::Camera { on: false });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = gw.seen.track_stats()[0].packets;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.seen.track_stats()[0].packets, frozen);
    assert!(client.video_frames_sent() > 0);

    gw.push.send(ServerMsg::VideoEnded { message: "compositor failed".into() }).unwrap();
    client.wait_for(|m| matches!(m, ServerMsg::VideoEnded { .. }), T).await.unwrap();
    assert_eq!(client.video_ended().as_deref(), Some("compositor failed"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn refused_grant_is_an_error() {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", http.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut conn, _) = http.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf).await;
        let body = r#"{"code":50001,"message":"missing access"}"#;
        let reply = format!("HTTP/1.1 403 Forbidden\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        conn.write_all(reply.as_bytes()).await.unwrap();
    });
    let err = VoiceClient::join(&base, "secret", "42", VoiceOptions::default())
        .await
        .err()
        .expect("a 403 must fail the join");
    assert!(format!("{err:#}").contains("403"), "{err:#}");
}

//! Bad input on the gateway and how it closes: each refusal's close code, delivered even while
//! the client's frames are still in flight (RFC 6455's close, not a reset), and the per-connection
//! frame rate limit.

mod common;
mod support;

use chat::config::ChatConfig;
use common::Backend;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use support::{Client, Ended, Gateway, TestServer};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn tok(c: &Client) -> &str {
    c.token.as_deref().expect("token")
}

async fn server_with(cfg: ChatConfig) -> TestServer {
    TestServer::with_config(Backend::Sqlite, cfg).await.expect("sqlite is always available")
}

#[tokio::test]
async fn bad_input_gets_the_matching_close_code() {
    let server = TestServer::start().await;
    let (a, b) = (server.user("alice").await, server.user("bob").await);
    let (g, text, _) = a.guild("g").await;
    a.invite(&g, &b).await;
    let (mut observer, _) = Gateway::identify(&server, tok(&b)).await;

    let identify = json!({ "op": 2, "d": { "token": tok(&a) } }).to_string();
    let text_frame = |s: &str| WsMessage::Text(s.to_owned().into());
    let over_4k = format!(r#"{{"op":1,"d":"{}"}}"#, "x".repeat(5000));
    let cases: Vec<(&str, Vec<WsMessage>, u16)> = vec![
        ("text frame over 4 KiB", vec![text_frame(&over_4k)], 1009),
        ("invalid JSON", vec![text_frame("not json")], 4002),
        ("JSON without op", vec![text_frame(r#"{"d":1}"#)], 4002),
        ("binary frame", vec![WsMessage::Binary(vec![1u8, 2, 3].into())], 4002),
        ("unknown op", vec![text_frame(r#"{"op":42}"#)], 4001),
        ("server-only op 0", vec![text_frame(r#"{"op":0,"d":{},"s":1,"t":"READY"}"#)], 4001),
        ("server-only op 10", vec![text_frame(r#"{"op":10,"d":{"heartbeat_interval":1}}"#)], 4001),
        ("server-only op 11", vec![text_frame(r#"{"op":11}"#)], 4001),
        ("IDENTIFY with the wrong field", vec![text_frame(r#"{"op":2,"d":{"tok":"x"}}"#)], 4002),
        ("IDENTIFY with a non-object d", vec![text_frame(r#"{"op":2,"d":"token"}"#)], 4002),
        ("IDENTIFY without d", vec![text_frame(r#"{"op":2}"#)], 4002),
        ("RESUME missing seq", vec![text_frame(r#"{"op":6,"d":{"token":"t","session_id":"s"}}"#)], 4002),
        ("IDENTIFY with an invalid token", vec![text_frame(r#"{"op":2,"d":{"token":"bogus"}}"#)], 4004),
        ("PRESENCE_UPDATE before IDENTIFY", vec![text_frame(r#"{"op":3,"d":{"status":"idle"}}"#)], 4003),
        ("IDENTIFY twice", vec![text_frame(&identify), text_frame(&identify)], 4005),
        (
            "RESUME after IDENTIFY",
            vec![text_frame(&identify), text_frame(r#"{"op":6,"d":{"token":"t","session_id":"s","seq":1}}"#)],
            4005,
        ),
        ("unknown status", vec![text_frame(&identify), text_frame(r#"{"op":3,"d":{"status":"away"}}"#)], 4002),
        // serde's structs read arrays too: `[1,2]` was taken for a heartbeat, `[2,{token}]` identified.
        ("an array as a frame", vec![text_frame("[1,2]")], 4002),
        ("an array IDENTIFY", vec![text_frame(&format!(r#"[2,{{"token":"{}"}}]"#, tok(&a)))], 4002),
        ("an array as IDENTIFY's d", vec![text_frame(&format!(r#"{{"op":2,"d":["{}"]}}"#, tok(&a)))], 4002),
        ("a text frame that is not UTF-8", vec![raw_text(&[b'{', 0xff, 0xfe, b'}'])], 1007),
        ("4,097 bytes, then 20 more frames", oversized_then(4097, 20), 1009),
    ];
    for (what, frames, code) in cases {
        let (mut gw, _) = Gateway::connect(&server).await;
        for f in frames {
            gw.send_raw(f).await;
        }
        assert_eq!(gw.closed(Duration::from_secs(2)).await, Ended::Closed(Some(code)), "{what}");
    }

    // Beyond the WebSocket library's own cap (16 × max_frame_bytes): closed, one way or another.
    let (mut gw, _) = Gateway::connect(&server).await;
    gw.send_raw(text_frame(&format!(r#"{{"op":1,"d":"{}"}}"#, "x".repeat(100 * 1024)))).await;
    let end = gw.closed(Duration::from_secs(2)).await;
    assert!(matches!(end, Ended::Closed(Some(1009)) | Ended::Dropped), "{end:?}");

    // Nobody else noticed.
    let m = a.say(&text, "still here").await;
    let e = observer.recv_event("MESSAGE_CREATE").await;
    assert_eq!((&e["d"]["id"], &e["d"]["content"]), (&json!(m), &json!("still here")));
    let (st, health) = a.get("/api/health").await;
    assert_eq!((st, &health["status"]), (StatusCode::OK, &json!("ok")));
    assert_eq!(health["gateway_sessions"], 4, "observer + the sessions started by the IDENTIFY cases: {health}");
    server.stop().await;
}

/// A text frame with any payload, even one that is not UTF-8.
fn raw_text(payload: &[u8]) -> WsMessage {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    WsMessage::Frame(Frame::message(payload.to_vec(), OpCode::Data(Data::Text), true))
}

/// A heartbeat padded to `size` bytes, then `more` plain heartbeats.
fn oversized_then(size: usize, more: usize) -> Vec<WsMessage> {
    let pad = size - r#"{"op":1,"d":""}"#.len();
    let mut frames = vec![WsMessage::Text(format!(r#"{{"op":1,"d":"{}"}}"#, "x".repeat(pad)).into())];
    frames.extend((0..more).map(|_| WsMessage::Text(r#"{"op":1}"#.into())));
    frames
}

/// Sends `frames` in one write, without reading, then reads everything until the connection ends:
/// the text frames and how it ended. A server that drops the connection with the client's frames
/// unread makes the kernel send RST, and the client loses the close frame (`Ended::Dropped`).
async fn pipelined(server: &TestServer, frames: Vec<WsMessage>) -> (Vec<Value>, Ended) {
    let (mut gw, _) = Gateway::connect(server).await;
    for f in frames {
        gw.ws.feed(f).await.expect("queue frame");
    }
    gw.ws.flush().await.expect("flush");
    let mut got = Vec::new();
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(5), gw.ws.next()).await.expect("ended in time") {
            Some(Ok(WsMessage::Text(t))) => got.push(serde_json::from_str(t.as_str()).expect("JSON")),
            Some(Ok(WsMessage::Close(f))) => break Ended::Closed(f.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break Ended::Dropped,
        }
    };
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(1), gw.ws.next()).await {}
    (got, end)
}

#[tokio::test]
async fn close_codes_survive_frames_in_flight() {
    let server = TestServer::start().await;
    // 1,000 heartbeats back to back: the burst (120 a minute) is answered, then 4008, not a reset.
    for _ in 0..3 {
        let heartbeats = (0..1000).map(|_| WsMessage::Text(r#"{"op":1,"d":null}"#.into())).collect();
        let (got, end) = pipelined(&server, heartbeats).await;
        assert_eq!(end, Ended::Closed(Some(4008)));
        assert_eq!(got.len(), 120, "every ACK before the close arrives");
        assert!(got.iter().all(|f| f["op"] == 11));
    }
    // An oversized frame followed by more: 1009, every time.
    for _ in 0..5 {
        let (_, end) = pipelined(&server, oversized_then(4097, 20)).await;
        assert_eq!(end, Ended::Closed(Some(1009)));
    }
    // 300 pipelined frames right after HELLO, the last of them junk: the ACKs, then 4002.
    let mut frames: Vec<WsMessage> = (0..100).map(|_| WsMessage::Text(r#"{"op":1}"#.into())).collect();
    frames.push(WsMessage::Text("[1,2]".into()));
    frames.extend((0..199).map(|_| WsMessage::Text(r#"{"op":1}"#.into())));
    let (got, end) = pipelined(&server, frames).await;
    assert_eq!((got.len(), end), (100, Ended::Closed(Some(4002))));
    server.stop().await;
}

#[tokio::test]
async fn too_many_frames_are_rate_limited() {
    let server = server_with(ChatConfig { gateway_frames_per_minute: 10, ..support::test_config() }).await;
    let a = server.user("alice").await;
    let (mut calm, _) = Gateway::identify(&server, tok(&a)).await;

    let (mut gw, _) = Gateway::connect(&server).await;
    for _ in 0..11 {
        gw.send_raw(WsMessage::Text(r#"{"op":1}"#.into())).await;
    }
    let mut acks = 0;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(2), gw.ws.next()).await.expect("closed in time") {
            Some(Ok(WsMessage::Text(t))) => {
                assert_eq!(serde_json::from_str::<Value>(t.as_str()).unwrap()["op"], 11);
                acks += 1;
            }
            Some(Ok(WsMessage::Close(f))) => break f.map(|f| u16::from(f.code)),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((acks, end), (10, Some(4008)), "the burst is answered, the frame beyond it closes");

    // The limit is per connection.
    calm.send(json!({ "op": 1 })).await;
    assert_eq!(calm.recv().await["op"], 11);
    server.stop().await;
}

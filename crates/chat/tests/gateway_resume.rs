//! RESUME over a real WebSocket against a real server, and the slow-consumer cut-off (4010) that
//! leaves a session waiting for one. The rest of the gateway is in `gateway.rs`.

mod common;
mod support;

use chat::config::ChatConfig;
use chat::gateway::hub::Topic;
use chat::id::Id;
use common::Backend;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use support::{Client, Gateway, TestServer};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn tok(c: &Client) -> &str {
    c.token.as_deref().expect("token")
}

async fn server_with(cfg: ChatConfig) -> TestServer {
    TestServer::with_config(Backend::Sqlite, cfg).await.expect("sqlite is always available")
}

fn resume(token: &str, session_id: &str, seq: u64) -> Value {
    json!({ "op": 6, "d": { "token": token, "session_id": session_id, "seq": seq } })
}

fn session_id(ready: &Value) -> String {
    ready["session_id"].as_str().expect("session_id").to_string()
}

/// Asserts the next frame is INVALID_SESSION with `d: false`.
async fn expect_invalid_session(gw: &mut Gateway, what: &str) {
    let f = gw.recv().await;
    assert_eq!((&f["op"], &f["d"], &f["s"]), (&json!(9), &json!(false), &Value::Null), "{what}: {f}");
}

#[tokio::test]
async fn resume_replays_exactly_the_missed_dispatches() {
    let server = TestServer::start().await;
    let (a, b) = (server.user("alice").await, server.user("bob").await);
    let (g, text, _) = a.guild("g").await;
    a.invite(&g, &b).await;
    let (mut gb, ready) = Gateway::identify(&server, tok(&b)).await;
    let sid = session_id(&ready);
    assert_eq!(gb.recv_event("PRESENCE_UPDATE").await["s"], 2);
    a.say(&text, "before").await;
    assert_eq!(gb.recv_event("MESSAGE_CREATE").await["d"]["content"], "before");
    let last = gb.last_seq;
    assert_eq!(last, 3);

    // Gone without a close frame; five dispatches happen meanwhile.
    drop(gb);
    let mut missed = Vec::new();
    for i in 1..=5 {
        missed.push(a.say(&text, &format!("missed {i}")).await);
    }

    // Every dispatch after `last`, numbered on without a gap: the five messages in order (and
    // B's own going offline, which the guild was told meanwhile), then RESUMED.
    let (mut gb, _) = Gateway::connect(&server).await;
    gb.send(resume(tok(&b), &sid, last)).await;
    let (mut messages, mut seq) = (Vec::new(), last);
    let r = loop {
        let e = gb.recv().await;
        seq += 1;
        assert_eq!((&e["op"], &e["s"]), (&json!(0), &json!(seq)), "{e}");
        match e["t"].as_str() {
            Some("MESSAGE_CREATE") => messages.push((e["d"]["id"].clone(), e["d"]["content"].clone())),
            Some("PRESENCE_UPDATE") => assert_eq!(e["d"]["user_id"], b.id.as_str(), "{e}"),
            Some("RESUMED") => break e,
            _ => panic!("unexpected {e}"),
        }
    };
    let want: Vec<_> =
        missed.iter().enumerate().map(|(i, id)| (json!(id), json!(format!("missed {}", i + 1)))).collect();
    assert_eq!(messages, want);
    assert_eq!(r["d"]["session_id"], sid.as_str());

    // Live dispatches continue with the next sequence numbers, with nothing replayed twice (B
    // coming back online may come first).
    let live = a.say(&text, "live").await;
    let e = gb.recv_event("MESSAGE_CREATE").await;
    assert_eq!(&e["d"]["id"], &json!(live));
    assert!(e["s"].as_u64() > r["s"].as_u64());
    gb.send(json!({ "op": 1, "d": gb.last_seq })).await;
    let ack = loop {
        let f = gb.recv().await;
        if f["t"] != "PRESENCE_UPDATE" {
            break f;
        }
    };
    assert_eq!(ack["op"], 11, "nothing else was pending: {ack}");
    let now = gb.last_seq;

    // Resuming the session on yet another connection takes it over: the old one is closed 4011.
    let (mut other, _) = Gateway::connect(&server).await;
    other.send(resume(tok(&b), &sid, now)).await;
    let r = other.recv().await;
    assert_eq!((&r["t"], &r["s"]), (&json!("RESUMED"), &json!(now + 1)), "{r}");
    gb.expect_close(4011).await;
    let m = a.say(&text, "after takeover").await;
    assert_eq!(other.recv_event("MESSAGE_CREATE").await["d"]["id"], m.as_str());
    server.stop().await;
}

#[tokio::test]
async fn resume_refusals() {
    let server = server_with(ChatConfig { replay_buffer: 3, ..support::test_config() }).await;
    let (a, b, c) = (server.user("alice").await, server.user("bob").await, server.user("carol").await);
    let (g, text, _) = a.guild("g").await;
    a.invite(&g, &b).await;
    let (mut gb, ready) = Gateway::identify(&server, tok(&b)).await;
    let old_sid = session_id(&ready);
    gb.recv_event("PRESENCE_UPDATE").await;
    let last = gb.last_seq;
    drop(gb);
    for i in 0..10 {
        a.say(&text, &format!("m{i}")).await;
    }

    // Ten missed, three kept: INVALID_SESSION, and the same connection may then IDENTIFY.
    let (mut gb, _) = Gateway::connect(&server).await;
    gb.send(resume(tok(&b), &old_sid, last)).await;
    expect_invalid_session(&mut gb, "seq too old").await;
    gb.send(json!({ "op": 2, "d": { "token": tok(&b) } })).await;
    let ready = gb.recv_dispatch().await;
    assert_eq!((&ready["t"], &ready["s"]), (&json!("READY"), &json!(1)), "{ready}");
    let sid = session_id(&ready["d"]);
    assert_ne!(sid, old_sid);

    let refused = [
        (tok(&b), "no-such-session", 0, "unknown session"),
        (tok(&b), sid.as_str(), 1000, "seq from the future"),
        (tok(&c), sid.as_str(), 1, "another user's session"),
    ];
    for (token, session, seq, what) in refused {
        let (mut gw, _) = Gateway::connect(&server).await;
        gw.send(resume(token, session, seq)).await;
        expect_invalid_session(&mut gw, what).await;
    }
    let (mut gw, _) = Gateway::connect(&server).await;
    gw.send(resume("not-a-token", &sid, 1)).await;
    gw.expect_close(4004).await;

    // None of that disturbed the real session.
    let m = a.say(&text, "still yours").await;
    let e = gb.recv_event("MESSAGE_CREATE").await;
    assert_eq!(e["d"]["id"], m.as_str());
    server.stop().await;
}

/// A gateway connection whose socket has a small, fixed receive buffer (no autotuning), so the
/// bytes the kernel absorbs for a client that does not read are bounded by the server's send buffer.
async fn connect_small_receive_buffer(server: &TestServer) -> Gateway {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(8 * 1024).expect("SO_RCVBUF");
    let stream = sock.connect(server.addr).await.expect("connect");
    let (ws, _) =
        tokio_tungstenite::client_async(server.gateway_url(), MaybeTlsStream::Plain(stream)).await.expect("upgrade");
    let mut gw = Gateway { ws, last_seq: 0 };
    assert_eq!(gw.recv().await["op"], 10);
    gw
}

/// The most a TCP send buffer autotunes to (`tcp_wmem` max), 4 MiB if unknown.
fn max_send_buffer() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|n| n.parse().ok()))
        .unwrap_or(4 << 20)
}

/// A client that stops reading is cut off with 4010 once its outbound queue overflows, while a
/// reader with the same queue size, fed the same events at the pace it reads them, is not.
///
/// The events are published through the app's broker (the path every route publishes through)
/// rather than over HTTP: filling the kernel's socket buffers (the server's send buffer autotunes
/// up to `tcp_wmem` max, 4 MiB here) with 2000-character messages takes ~500 HTTP requests, too
/// slow for a debug build and dependent on the host. 32 KiB events, three times the send buffer's
/// ceiling in total, overflow it deterministically.
#[tokio::test]
async fn slow_consumer_is_cut_off_with_4010() {
    // The socket queue holds max(outbound_queue, replay_buffer + 16) = 24 dispatches.
    let server = server_with(ChatConfig { outbound_queue: 4, replay_buffer: 8, ..support::test_config() }).await;
    let (a, b) = (server.user("alice").await, server.user("bob").await);
    let (g, text, _) = a.guild("g").await;
    a.invite(&g, &b).await;
    let mut victim = connect_small_receive_buffer(&server).await;
    victim.send(json!({ "op": 2, "d": { "token": tok(&b) } })).await;
    let sid = session_id(&victim.recv_event("READY").await["d"]);
    let (mut reader, _) = Gateway::identify(&server, tok(&a)).await;

    let guild = Topic::Guild(Id(g.parse().expect("guild id")));
    let payload = "x".repeat(32 * 1024);
    const BATCH: usize = 10;
    let batches = (3 * max_send_buffer()).div_ceil(BATCH * payload.len()).max(40);
    for batch in 0..batches {
        for i in 0..BATCH {
            let n = batch * BATCH + i;
            server.app.publish(guild, "MESSAGE_CREATE", &json!({ "n": n, "guild_id": g, "content": payload }));
        }
        for i in 0..BATCH {
            let e = reader.recv_event("MESSAGE_CREATE").await;
            assert_eq!(e["d"]["n"], batch * BATCH + i);
        }
    }
    let published = batches * BATCH;

    // The victim finds what the kernel buffered, in order and without gaps, then the close.
    let (mut got, mut prev) = (0, victim.last_seq);
    let code = loop {
        let msg = tokio::time::timeout(Duration::from_secs(2), victim.ws.next()).await.expect("frame in time");
        match msg {
            Some(Ok(WsMessage::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                let s = v["s"].as_u64().expect("dispatch");
                assert_eq!(s, prev + 1, "gap before {}", v["t"]);
                prev = s;
                got += usize::from(v["t"] == "MESSAGE_CREATE");
            }
            Some(Ok(WsMessage::Close(f))) => break f.map(|f| u16::from(f.code)),
            other => panic!("victim: {other:?} after {got} messages"),
        }
    };
    assert_eq!(code, Some(4010), "after {got} of {published} messages");
    assert!(got < published, "the victim received everything ({got}); nothing was slow");

    // The session waits for a RESUME; it missed more than the replay buffer holds, so it is
    // refused, and a fresh IDENTIFY works.
    let (mut again, _) = Gateway::connect(&server).await;
    again.send(resume(tok(&b), &sid, prev)).await;
    expect_invalid_session(&mut again, "missed more than the replay buffer").await;
    again.send(json!({ "op": 2, "d": { "token": tok(&b) } })).await;
    again.recv_event("READY").await;

    // The reader, with the same queue size, was never cut off; HTTP still works.
    let m = a.say(&text, "still flowing").await;
    assert_eq!(reader.recv_event("MESSAGE_CREATE").await["d"]["id"], m.as_str());
    assert_eq!(again.recv_event("MESSAGE_CREATE").await["d"]["id"], m.as_str());
    let (st, _) = a.get("/api/health").await;
    assert_eq!(st, reqwest::StatusCode::OK);
    server.stop().await;
}

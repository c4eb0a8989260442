//! Voice end to end: the real `confab` binary, and synthetic participants on webrtc-rs (an
//! independent WebRTC stack) that publish Opus tones and detect what they hear with Goertzel
//! filters.

mod common;

use common::{Server, guild, stats};
use serde_json::{Value, json};
use signaling::protocol::{ClientMsg, ServerMsg};
use std::time::Duration;
use testbed::{VoiceClient, VoiceOptions};

const TONES: [f32; 4] = [500.0, 800.0, 1250.0, 1700.0];
const T: Duration = Duration::from_secs(10);

fn others(all: &[f32], me: f32) -> Vec<f32> {
    all.iter().copied().filter(|f| *f != me).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_participants_hear_each_other_mute_leave_and_speak() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&format!("sqlite:{}", dir.path().join("v.db").display()), &[]);
    let (tokens, ids, voice, guild) = guild(&server.base, 3).await;
    let tones = &TONES[..3];
    let mut clients = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        clients.push(VoiceClient::join(&server.base, t, &voice, VoiceOptions::tone(tones[i])).await.unwrap());
    }
    // Each hears exactly the other two tones, never its own.
    for (i, c) in clients.iter().enumerate() {
        c.wait_heard(tones, &others(tones, tones[i]), T).await.unwrap();
    }
    // Speaking: everyone knows everyone speaks, from READY (who spoke before it joined) or events.
    for c in &clients {
        for id in &ids {
            if !c.session().participants.iter().any(|p| p.user_id == *id && p.speaking) {
                c.wait_for(|m| matches!(m, ServerMsg::Speaking { user_id, speaking: true } if user_id == id), T)
                    .await
                    .unwrap();
            }
        }
    }
    // The chat plane shows all three in the voice channel.
    let vs: Value = reqwest::Client::new()
        .get(format!("{}/api/guilds/{guild}/voice-states", server.base))
        .bearer_auth(&tokens[0])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(vs.as_array().unwrap().len(), 3, "{vs}");

    // Muting (while still sending: the server must drop it) stops participant 0 being heard.
    clients[0].mute_keep_sending(true).await.unwrap();
    for c in &clients[1..] {
        c.wait_for(|m| matches!(m, ServerMsg::ParticipantUpdate { participant } if participant.user_id == ids[0] && participant.self_mute), T)
            .await
            .unwrap();
        // A muted participant stops speaking at once, not after a hangover of ignored audio.
        c.wait_for(|m| matches!(m, ServerMsg::Speaking { user_id, speaking: false } if *user_id == ids[0]), T)
            .await
            .unwrap();
    }
    clients[1].wait_heard(tones, &[tones[2]], T).await.unwrap();
    clients[2].wait_heard(tones, &[tones[1]], T).await.unwrap();
    let s = stats(&server.base).await;
    assert!(
        s["peers"].as_array().unwrap().iter().any(|p| p["muted"] == true && p["dropped_muted"].as_u64() > Some(0)),
        "{s}"
    );
    clients[0].mute_keep_sending(false).await.unwrap();
    clients[1].wait_heard(tones, &[tones[0], tones[2]], T).await.unwrap();

    // Going silent: SPEAKING stop.
    clients[2].set_silent(true);
    clients[0]
        .wait_for(|m| matches!(m, ServerMsg::Speaking { user_id, speaking: false } if *user_id == ids[2]), T)
        .await
        .unwrap();
    clients[0].wait_heard(tones, &[tones[1]], T).await.unwrap();

    // Leaving: announced, and the media peer is freed.
    clients[1].leave().await.unwrap();
    for c in [&clients[0], &clients[2]] {
        c.wait_for(|m| matches!(m, ServerMsg::ParticipantLeave { user_id } if *user_id == ids[1]), T).await.unwrap();
    }
    let s = stats(&server.base).await;
    assert_eq!(s["peers"].as_array().unwrap().len(), 2, "{s}");
    clients[2].wait_heard(tones, &[tones[0]], T).await.unwrap();
    for c in clients {
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_rooms_forward_only_the_loudest() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(&format!("sqlite:{}", dir.path().join("v.db").display()), &[("CONFAB_MEDIA_LAST_N", "2")]);
    let (tokens, _, voice, _) = guild(&server.base, 5).await;
    // Four senders, loudest first; the fifth only listens.
    let levels = [-6.0, -14.0, -26.0, -34.0];
    let mut senders = Vec::new();
    for i in 0..4 {
        let opts = VoiceOptions { level_dbfs: levels[i], ..VoiceOptions::tone(TONES[i]) };
        senders.push(VoiceClient::join(&server.base, &tokens[i], &voice, opts).await.unwrap());
    }
    let listener =
        VoiceClient::join(&server.base, &tokens[4], &voice, VoiceOptions { send: false, ..Default::default() })
            .await
            .unwrap();
    listener.wait_heard(&TONES, &TONES[..2], T).await.unwrap();
    // Stays that way: the two quieter senders are never forwarded.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(listener.heard_within(&TONES, Duration::from_millis(600)), TONES[..2].to_vec());
    let slots = listener.wait_for(|m| matches!(m, ServerMsg::Slots { .. }), T).await.unwrap();
    assert!(
        matches!(&slots, ServerMsg::Slots { slots } if slots.iter().filter(|s| s.user_id.is_some()).count() <= 2),
        "{slots:?}"
    );
    for c in senders {
        c.close().await.unwrap();
    }
    listener.close().await.unwrap();
}

/// A raw `/voice` socket, for input no well-behaved client sends.
mod raw {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    pub async fn connect(base: &str) -> Ws {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("{}/voice", base.replace("http", "ws"))).await.unwrap();
        let hello = ws.next().await.unwrap().unwrap();
        assert!(hello.to_text().unwrap().contains("\"hello\""), "{hello:?}");
        ws
    }

    pub async fn send(ws: &mut Ws, m: Message) {
        let _ = ws.send(m).await;
    }

    /// The next frame whose op is `op`, skipping others (room events).
    pub async fn until(ws: &mut Ws, op: &str) -> serde_json::Value {
        loop {
            let m = next(ws).await.unwrap_or_else(|code| panic!("closed with {code:?} while waiting for {op}"));
            if m["op"] == op {
                return m;
            }
        }
    }

    /// The next text frame, or the close code if the server closed.
    pub async fn next(ws: &mut Ws) -> Result<serde_json::Value, Option<u16>> {
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.expect("answer in time") {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str()).unwrap()),
                Some(Ok(Message::Close(f))) => return Err(f.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                _ => return Err(None),
            }
        }
    }
}

async fn voice_token(base: &str, token: &str, channel: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{base}/api/channels/{channel}/voice"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_without_hurting_others() {
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&format!("sqlite:{}", dir.path().join("v.db").display()), &[]);
    let (tokens, ids, voice, guild) = guild(&server.base, 3).await;
    let a = VoiceClient::join(&server.base, &tokens[0], &voice, VoiceOptions::tone(TONES[0])).await.unwrap();
    let b = VoiceClient::join(&server.base, &tokens[1], &voice, VoiceOptions::tone(TONES[1])).await.unwrap();
    a.wait_heard(&TONES, &[TONES[1]], T).await.unwrap();

    let text = |v: Value| Message::Text(v.to_string().into());
    // A wrong or forged token.
    let mut ws = raw::connect(&server.base).await;
    raw::send(&mut ws, text(json!({"op": "identify", "d": {"token": "forged.token"}}))).await;
    assert_eq!(raw::next(&mut ws).await.unwrap_err(), Some(4004));
    // A token of a non-member cannot even be minted.
    let outsider: Value = reqwest::Client::new()
        .post(format!("{}/api/auth/signup", server.base))
        .json(&json!({"username": "outsider", "password": "password-out"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let st = reqwest::Client::new()
        .post(format!("{}/api/channels/{voice}/voice", server.base))
        .bearer_auth(outsider["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 403);
    // Unknown op, binary frame, oversized frame, a request before identify.
    for (m, code) in [
        (text(json!({"op": "dance", "d": {}})), 4001),
        (Message::Binary(vec![1, 2, 3].into()), 4002),
        (Message::Text("x".repeat(100 * 1024).into()), 1009),
        (text(json!({"op": "mute", "d": {"self_mute": true}})), 4003),
        (text(json!(["identify", {"token": "t"}])), 4002),
        (Message::Text(r#"{"op":"heartbeat","d":[1]}"#.into()), 4002),
    ] {
        let mut ws = raw::connect(&server.base).await;
        raw::send(&mut ws, m).await;
        assert_eq!(raw::next(&mut ws).await.unwrap_err(), Some(code));
    }
    // Malformed SDP and an offer without Opus get error frames; the connection stays usable.
    let mut ws = raw::connect(&server.base).await;
    let c = voice_token(&server.base, &tokens[2], &voice).await;
    raw::send(&mut ws, text(json!({"op": "identify", "d": {"token": c}}))).await;
    assert_eq!(raw::next(&mut ws).await.unwrap()["op"], "ready");
    raw::send(&mut ws, text(json!({"op": "offer", "d": {"sdp": "this is not sdp"}}))).await;
    let e = raw::until(&mut ws, "error").await;
    assert_eq!(e["d"]["code"], "bad_sdp", "{e}");
    // A short, stable message: the parser's internals (positions, heap addresses) stay in the log.
    assert_eq!(e["d"]["message"], "the offer is not valid SDP", "{e}");
    let pcmu_only = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
        a=setup:actpass\r\na=rtpmap:0 PCMU/8000\r\n";
    raw::send(&mut ws, text(json!({"op": "offer", "d": {"sdp": pcmu_only}}))).await;
    let e = raw::until(&mut ws, "error").await;
    assert_eq!(e["d"]["code"], "no_opus", "{e}");
    // A PCMU microphone is no Opus either, even with Opus on a receive slot.
    let pcmu_mic = format!(
        "{}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtcp-mux\r\n\
         a=rtpmap:111 opus/48000/2\r\n",
        pcmu_only.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1")
    );
    raw::send(&mut ws, text(json!({"op": "offer", "d": {"sdp": pcmu_mic}}))).await;
    let e = raw::until(&mut ws, "error").await;
    assert_eq!(e["d"]["code"], "no_opus", "{e}");
    raw::send(&mut ws, text(json!({"op": "heartbeat", "d": {"nonce": 9}}))).await;
    let ack = raw::until(&mut ws, "heartbeat_ack").await;
    assert_eq!(ack["d"]["nonce"], 9);
    // A second offer from a negotiated client.
    a.send(ClientMsg::Offer { sdp: "v=0".into() }).await.unwrap();
    a.wait_for(|m| matches!(m, ServerMsg::Error { code: signaling::protocol::ErrorCode::AlreadyNegotiated, .. }), T)
        .await
        .unwrap();
    // Server-mute needs the owner: b (a member) may not; a (the owner) may.
    b.send(ClientMsg::ServerMute { user_id: "1".into(), mute: true }).await.unwrap();
    b.wait_for(|m| matches!(m, ServerMsg::Error { code: signaling::protocol::ErrorCode::Forbidden, .. }), T)
        .await
        .unwrap();

    a.send(ClientMsg::ServerMute { user_id: ids[1].clone(), mute: true }).await.unwrap();
    b.wait_for(|m| matches!(m, ServerMsg::ParticipantUpdate { participant } if participant.server_mute), T)
        .await
        .unwrap();
    a.wait_heard(&TONES, &[], T).await.unwrap();
    a.send(ClientMsg::ServerMute { user_id: ids[1].clone(), mute: false }).await.unwrap();
    a.wait_heard(&TONES, &[TONES[1]], T).await.unwrap();

    // The media engine's stats are the operator's: no token, or a wrong one, reads nothing.
    let url = format!("{}/voice/stats", server.base);
    for req in [reqwest::Client::new().get(&url), reqwest::Client::new().get(&url).bearer_auth(&tokens[0])] {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], 40001, "{body}");
    }

    // Garbage datagrams at the media port are dropped and counted.
    let before = stats(&server.base).await["garbage_datagrams"].as_u64().unwrap();
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20u8 {
        junk.send_to(&[i; 48], &server.udp).unwrap();
    }
    junk.send_to(&[0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42], &server.udp).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = stats(&server.base).await["garbage_datagrams"].as_u64().unwrap();
    assert!(after >= before + 21, "{before} → {after}");

    // None of it hurt the call, and the server still answers.
    a.clear_heard();
    b.clear_heard();
    a.wait_heard(&TONES, &[TONES[1]], T).await.unwrap();
    b.wait_heard(&TONES, &[TONES[0]], T).await.unwrap();
    let health = reqwest::get(format!("{}/api/health", server.base)).await.unwrap();
    assert_eq!(health.status(), 200);
    let _ = guild;
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejoin_replaces_the_old_session_and_logout_ends_voice() {
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&format!("sqlite:{}", dir.path().join("v.db").display()), &[]);
    let (tokens, ids, voice, _) = guild(&server.base, 2).await;
    let a = VoiceClient::join(&server.base, &tokens[0], &voice, VoiceOptions::tone(TONES[0])).await.unwrap();
    let b = VoiceClient::join(&server.base, &tokens[1], &voice, VoiceOptions::tone(TONES[1])).await.unwrap();
    a.wait_heard(&TONES, &[TONES[1]], T).await.unwrap();

    // The same user joins again (a reloaded tab): READY at once, the old session is closed 4011
    // and leaves; the others see one of them, never a ghost.
    let mut ws = raw::connect(&server.base).await;
    let again = voice_token(&server.base, &tokens[0], &voice).await;
    raw::send(&mut ws, Message::Text(json!({"op": "identify", "d": {"token": again}}).to_string().into())).await;
    let ready = raw::until(&mut ws, "ready").await;
    assert_eq!(ready["d"]["participants"].as_array().map(Vec::len), Some(2), "{ready}");
    assert_eq!(a.wait_closed(T).await.unwrap().code, Some(4011));
    b.wait_for(|m| matches!(m, ServerMsg::ParticipantLeave { user_id } if *user_id == ids[0]), T).await.unwrap();

    // A socket that drops before its offer leaves at once: joining again is not refused, and b
    // sees it go.
    drop(ws);
    b.wait_for(|m| matches!(m, ServerMsg::ParticipantLeave { user_id } if *user_id == ids[0]), T).await.unwrap();

    // Logging out ends the voice session minted for that login (4004), and its token is refused.
    let leftover = voice_token(&server.base, &tokens[1], &voice).await;
    let st = reqwest::Client::new()
        .post(format!("{}/api/auth/logout", server.base))
        .bearer_auth(&tokens[1])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 204);
    assert_eq!(b.wait_closed(T).await.unwrap().code, Some(4004));
    let mut ws = raw::connect(&server.base).await;
    raw::send(&mut ws, Message::Text(json!({"op": "identify", "d": {"token": leftover}}).to_string().into())).await;
    assert_eq!(raw::next(&mut ws).await.unwrap_err(), Some(4004));
    // `leave` closes with the documented 4014.
    let c = VoiceClient::join(&server.base, &tokens[0], &voice, VoiceOptions::tone(TONES[0])).await.unwrap();
    c.leave().await.unwrap();
    assert_eq!(c.wait_closed(T).await.unwrap().code, Some(4014));
    assert!(stats(&server.base).await["rooms"].as_array().is_none_or(Vec::is_empty));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_keeps_media_and_chat_sees_voice_states() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&format!("sqlite:{}", dir.path().join("v.db").display()), &[]);
    let (tokens, ids, voice, _) = guild(&server.base, 2).await;

    // The owner watches the chat gateway.
    let (mut gw, _) =
        tokio_tungstenite::connect_async(format!("{}/gateway", server.base.replace("http", "ws"))).await.unwrap();
    gw.next().await.unwrap().unwrap(); // HELLO
    gw.send(Message::Text(json!({"op": 2, "d": {"token": tokens[0]}}).to_string().into())).await.unwrap();
    // Subscribed once READY is here: voice states from then on come as dispatches.
    loop {
        let m = tokio::time::timeout(T, gw.next()).await.unwrap().unwrap().unwrap();
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        if v["t"] == "READY" {
            break;
        }
    }
    let mut voice_updates = Vec::new();
    let a = VoiceClient::join(&server.base, &tokens[0], &voice, VoiceOptions::tone(TONES[0])).await.unwrap();
    let b = VoiceClient::join(&server.base, &tokens[1], &voice, VoiceOptions::tone(TONES[1])).await.unwrap();
    a.wait_heard(&TONES, &[TONES[1]], T).await.unwrap();
    while voice_updates.len() < 2 {
        let m = tokio::time::timeout(T, gw.next()).await.unwrap().unwrap().unwrap();
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        if v["t"] == "VOICE_STATE_UPDATE" {
            assert_eq!(v["d"]["channel_id"], voice.as_str(), "{v}");
            voice_updates.push(v["d"]["user_id"].as_str().unwrap().to_string());
        }
    }
    voice_updates.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(voice_updates, want);

    // B's signaling socket is replaced by a resumed one; its media session is untouched.
    let session = b.session();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}/voice", server.base.replace("http", "ws"))).await.unwrap();
    ws.next().await.unwrap().unwrap(); // hello
    let resume = json!({"op": "resume", "d": {"token": session.token, "session_id": session.session_id}});
    ws.send(Message::Text(resume.to_string().into())).await.unwrap();
    let mut ops = Vec::new();
    while ops.len() < 2 {
        let m = tokio::time::timeout(T, ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(t) = m {
            ops.push(serde_json::from_str::<Value>(t.as_str()).unwrap()["op"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(ops, ["resumed", "ready"]);
    let closed = b.wait_closed(T).await.unwrap();
    assert_eq!(closed.code, Some(signaling::protocol::close::SESSION_NO_LONGER_VALID), "old socket let go");
    a.clear_heard();
    a.wait_heard(&TONES, &[TONES[1]], T).await.unwrap();
    // A resume of an unknown session is refused.
    let (mut ws2, _) =
        tokio_tungstenite::connect_async(format!("{}/voice", server.base.replace("http", "ws"))).await.unwrap();
    ws2.next().await.unwrap().unwrap();
    let bogus = json!({"op": "resume", "d": {"token": session.token, "session_id": "nope"}});
    ws2.send(Message::Text(bogus.to_string().into())).await.unwrap();
    match tokio::time::timeout(T, ws2.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4006),
        other => panic!("expected close 4006, got {other:?}"),
    }
    a.close().await.unwrap();
}

/// Moderation reaches voice at once: a time-out, a kick and a ban each end the member's voice
/// session (4014) and void the voice tokens they already hold; deleting the channel ends the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_ends_voice_sessions() {
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&format!("sqlite:{}", dir.path().join("v.db").display()), &[]);
    let (tokens, ids, voice, guild) = guild(&server.base, 3).await;
    let http = reqwest::Client::new();
    let owner = |method: reqwest::Method, path: String, body: serde_json::Value| {
        http.request(method, format!("{}{path}", server.base)).bearer_auth(&tokens[0]).json(&body).send()
    };
    let a = VoiceClient::join(&server.base, &tokens[0], &voice, VoiceOptions::tone(TONES[0])).await.unwrap();
    let base = server.base.clone();
    let refused = |token: String| {
        let base = base.clone();
        async move {
            let mut ws = raw::connect(&base).await;
            raw::send(&mut ws, Message::Text(json!({"op": "identify", "d": {"token": token}}).to_string().into()))
                .await;
            raw::next(&mut ws).await.unwrap_err()
        }
    };

    // A time-out: out of the call, and the token minted before it is refused.
    let b = VoiceClient::join(&server.base, &tokens[1], &voice, VoiceOptions::tone(TONES[1])).await.unwrap();
    let b_token = voice_token(&server.base, &tokens[1], &voice).await;
    let until = chat::id::now_ms() + 600_000;
    let member = format!("/api/guilds/{guild}/members/{}", ids[1]);
    let st = owner(reqwest::Method::PATCH, member.clone(), json!({"timeout_until": until})).await.unwrap().status();
    assert_eq!(st, 200);
    assert_eq!(b.wait_closed(T).await.unwrap().code, Some(4014));
    a.wait_for(|m| matches!(m, ServerMsg::ParticipantLeave { user_id } if *user_id == ids[1]), T).await.unwrap();
    assert_eq!(refused(b_token.clone()).await, Some(4004));
    owner(reqwest::Method::PATCH, member.clone(), json!({"timeout_until": null})).await.unwrap();

    // A kick, then (after an invite back) a ban.
    let b = VoiceClient::join(&server.base, &tokens[1], &voice, VoiceOptions::tone(TONES[1])).await.unwrap();
    let st = owner(reqwest::Method::DELETE, member.clone(), json!(null)).await.unwrap().status();
    assert_eq!(st, 204);
    assert_eq!(b.wait_closed(T).await.unwrap().code, Some(4014));
    assert_eq!(refused(b_token).await, Some(4004));
    let c = VoiceClient::join(&server.base, &tokens[2], &voice, VoiceOptions::tone(TONES[1])).await.unwrap();
    let c_token = voice_token(&server.base, &tokens[2], &voice).await;
    let ban = format!("/api/guilds/{guild}/bans/{}", ids[2]);
    assert_eq!(owner(reqwest::Method::PUT, ban, json!({"reason": "x"})).await.unwrap().status(), 204);
    assert_eq!(c.wait_closed(T).await.unwrap().code, Some(4014));
    assert_eq!(refused(c_token).await, Some(4004));

    // Deleting the channel ends the call for everyone in it.
    let st = owner(reqwest::Method::DELETE, format!("/api/channels/{voice}"), json!(null)).await.unwrap().status();
    assert_eq!(st, 204);
    assert_eq!(a.wait_closed(T).await.unwrap().code, Some(4014));
    assert!(stats(&server.base).await["rooms"].as_array().is_none_or(Vec::is_empty));
}

/// Deafen, in the SFU (hybrid) and in a mixed (mcu) room: the deafened client is sent no audio
/// at all, counts as muted for the others, and hears again once undeafened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deafened_participant_is_sent_no_audio() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&format!("sqlite:{}", dir.path().join("v.db").display()), &[]);
    let (tokens, ids, voice, guild) = guild(&server.base, 2).await;
    let mcu = common::voice_channel(&server.base, &tokens[0], &guild, "mcu").await;
    for room in [voice, mcu] {
        let a = VoiceClient::join(&server.base, &tokens[0], &room, VoiceOptions::tone(TONES[0])).await.unwrap();
        let b = VoiceClient::join(&server.base, &tokens[1], &room, VoiceOptions::tone(TONES[1])).await.unwrap();
        a.wait_heard(&TONES, &[TONES[1]], T).await.unwrap();
        a.deafen(true).await.unwrap();
        b.wait_for(
            |m| matches!(m, ServerMsg::ParticipantUpdate { participant } if participant.user_id == ids[0] && participant.self_deaf && participant.self_mute),
            T,
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await; // what was in flight
        let before = a.received_packets();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let during = a.received_packets() - before;
        assert!(during < 5, "{room}: {during} audio packets reached a deafened client in 1 s");
        a.deafen(false).await.unwrap();
        a.clear_heard();
        a.wait_heard(&TONES, &[TONES[1]], T).await.unwrap();
        a.close().await.unwrap();
        b.close().await.unwrap();
    }
}

//! The gateway over a real WebSocket against a real server: handshake, fan-out, presence (lazy
//! for large guilds), heartbeats, the connection cap and shutdown. Bad input and close codes are
//! in `gateway_close.rs`, RESUME and slow consumers in `gateway_resume.rs`.

mod common;
mod support;

use chat::config::ChatConfig;
use common::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::{Client, Ended, Gateway, TestServer};
use tokio_tungstenite::tungstenite;

fn tok(c: &Client) -> &str {
    c.token.as_deref().expect("token")
}

async fn server_with(cfg: ChatConfig) -> TestServer {
    TestServer::with_config(Backend::Sqlite, cfg).await.expect("sqlite is always available")
}

/// The `status` of `user` in a members list.
fn status_of(members: &Value, user: &str) -> String {
    let m = members.as_array().expect("members").iter().find(|m| m["user_id"] == user).expect("member listed");
    m["status"].as_str().expect("status").to_string()
}

async fn member_status(c: &Client, guild: &str, user: &str) -> String {
    let (st, body) = c.get(&format!("/api/guilds/{guild}/members")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    status_of(&body, user)
}

#[tokio::test]
async fn hello_identify_ready_and_heartbeat() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (guild, text, voice) = alice.guild("g").await;
    alice.invite(&guild, &bob).await;
    let m = bob.say(&text, "hi alice").await;
    let (st, _) = alice.call(Method::POST, &format!("/api/channels/{text}/messages/{m}/ack"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    let (mut gw, interval) = Gateway::connect(&server).await;
    assert_eq!(interval, 41_250, "HELLO carries the configured heartbeat interval");
    gw.send(json!({ "op": 2, "d": { "token": tok(&alice) } })).await;
    let ready = gw.recv().await;
    assert_eq!((ready["op"].as_u64(), ready["t"].as_str(), ready["s"].as_u64()), (Some(0), Some("READY"), Some(1)));
    let d = &ready["d"];
    assert!(d["session_id"].as_str().is_some_and(|s| !s.is_empty()), "{d}");
    assert_eq!(d["user"]["id"], alice.id.as_str());
    assert_eq!(d["user"]["username"], "alice");
    let guilds = d["guilds"].as_array().expect("guilds");
    assert_eq!(guilds.len(), 1, "{d}");
    let g = &guilds[0];
    assert_eq!(g["guild"]["id"], guild.as_str());
    assert_eq!(g["guild"]["name"], "g");
    let channels: Vec<&str> =
        g["channels"].as_array().expect("channels").iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(channels, vec![text.as_str(), voice.as_str()]);
    let members = &g["members"];
    assert_eq!(members.as_array().expect("members").len(), 2);
    assert_eq!(status_of(members, &bob.id), "offline");
    assert_eq!(status_of(members, &alice.id), "online", "READY shows its own user present");
    let rs = g["read_states"].as_array().expect("read_states");
    assert_eq!(rs.len(), 1, "{rs:?}");
    assert_eq!(rs[0]["channel_id"], text.as_str());
    assert_eq!(rs[0]["last_read_id"], m.as_str());
    assert_eq!(rs[0]["unread_count"], 0);

    // Coming online is announced to the user's guilds, the user included.
    let p = gw.recv().await;
    assert_eq!((p["t"].as_str(), p["s"].as_u64()), (Some("PRESENCE_UPDATE"), Some(2)), "{p}");
    assert_eq!(p["d"], json!({ "user_id": alice.id, "guild_id": guild, "status": "online" }));

    gw.send(json!({ "op": 1, "d": gw.last_seq })).await;
    let ack = gw.recv().await;
    assert_eq!(ack["op"], 11, "{ack}");
    assert!(ack["s"].is_null() && ack["t"].is_null(), "{ack}");
    gw.send(json!({ "op": 1 })).await;
    assert_eq!(gw.recv().await["op"], 11, "a heartbeat without d is fine too");
    server.stop().await;
}

#[tokio::test]
async fn dispatches_reach_guild_members_only() {
    let server = TestServer::start().await;
    let (a, b, c) = (server.user("alice").await, server.user("bob").await, server.user("carol").await);
    let (g1, t1, _) = a.guild("one").await;
    let (_g2, _t2, _) = c.guild("two").await;
    let (mut ga, _) = Gateway::identify(&server, tok(&a)).await;
    let (mut gb, ready_b) = Gateway::identify(&server, tok(&b)).await;
    let (mut gc, _) = Gateway::identify(&server, tok(&c)).await;
    assert_eq!(ready_b["guilds"], json!([]));

    // B joins while connected: A hears GUILD_MEMBER_ADD, B's open session gets GUILD_CREATE.
    a.invite(&g1, &b).await;
    let add = ga.recv_event("GUILD_MEMBER_ADD").await;
    assert_eq!(add["d"]["guild_id"], g1.as_str());
    assert_eq!(add["d"]["user_id"], b.id.as_str());
    assert_eq!(add["d"]["username"], "bob");
    assert_eq!(add["d"]["status"], "online");
    let created = gb.recv_dispatch().await;
    assert_eq!((created["t"].as_str(), created["s"].as_u64()), (Some("GUILD_CREATE"), Some(2)), "{created}");
    assert_eq!(created["d"]["guild"]["id"], g1.as_str());
    assert_eq!(created["d"]["channels"].as_array().map(Vec::len), Some(2));

    // From then on B gets the guild's messages, with increasing sequence numbers.
    let m1 = a.say(&t1, "hello").await;
    let m2 = a.say(&t1, "world").await;
    for gw in [&mut ga, &mut gb] {
        let e1 = gw.recv_event("MESSAGE_CREATE").await;
        // Every dispatch up to the next message: sequence numbers without gaps. A presence update
        // may come between (presence is flushed every 100 ms), another message may not.
        let mut last = e1["s"].as_u64().unwrap();
        let e2 = loop {
            let e = gw.recv_dispatch().await;
            let s = e["s"].as_u64().unwrap();
            assert_eq!(s, last + 1, "consecutive dispatches: {e1} … {e}");
            last = s;
            if e["t"] == "MESSAGE_CREATE" {
                break e;
            }
            assert!(e["t"].as_str().is_some_and(|t| t.starts_with("PRESENCE_UPDATE")), "{e}");
        };
        for (e, id, content) in [(&e1, &m1, "hello"), (&e2, &m2, "world")] {
            assert_eq!(e["d"]["id"], id.as_str());
            assert_eq!(e["d"]["guild_id"], g1.as_str());
            assert_eq!(e["d"]["channel_id"], t1.as_str());
            assert_eq!(e["d"]["author_id"], a.id.as_str());
            assert_eq!(e["d"]["content"], content);
        }
    }
    let seen = gc.drain(Duration::from_millis(300)).await;
    assert!(seen.iter().all(|v| v["t"] != "MESSAGE_CREATE"), "another guild's member got {seen:?}");

    let path = format!("/api/channels/{t1}/messages/{m1}");
    let (st, body) = a.call(Method::PATCH, &path, Some(json!({ "content": "hello again" }))).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let e = gb.recv_event("MESSAGE_UPDATE").await;
    assert_eq!(
        (&e["d"]["id"], &e["d"]["content"], &e["d"]["guild_id"]),
        (&json!(m1), &json!("hello again"), &json!(g1))
    );
    assert!(e["d"]["edited_at"].is_i64(), "{e}");

    let (st, _) = a.call(Method::POST, &format!("/api/channels/{t1}/typing"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let e = gb.recv_event("TYPING_START").await;
    assert_eq!((&e["d"]["user_id"], &e["d"]["channel_id"]), (&json!(a.id), &json!(t1)));

    let (st, ch) = a.post(&format!("/api/guilds/{g1}/channels"), json!({ "name": "more", "kind": "text" })).await;
    assert_eq!(st, StatusCode::CREATED, "{ch}");
    let e = gb.recv_event("CHANNEL_CREATE").await;
    assert_eq!((&e["d"]["id"], &e["d"]["name"], &e["d"]["guild_id"]), (&ch["id"], &json!("more"), &json!(g1)));

    let (st, _) = a.call(Method::DELETE, &format!("/api/channels/{t1}/messages/{m2}"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let e = gb.recv_event("MESSAGE_DELETE").await;
    assert_eq!(e["d"], json!({ "id": m2, "channel_id": t1, "guild_id": g1 }));

    // A report goes to the owner (A) only, not to the reporter or anyone else.
    let (st, report) = b.post(&format!("/api/channels/{t1}/messages/{m1}/reports"), json!({ "reason": "rude" })).await;
    assert_eq!(st, StatusCode::CREATED, "{report}");
    let e = ga.recv_event("REPORT_CREATE").await;
    assert_eq!(e["d"]["id"], report["id"]);
    assert_eq!((&e["d"]["message_id"], &e["d"]["reporter_id"]), (&json!(m1), &json!(b.id)));
    assert_eq!(e["d"]["reason"], "rude");
    let seen = gb.drain(Duration::from_millis(300)).await;
    assert!(seen.iter().all(|v| v["t"] != "REPORT_CREATE"), "the reporter got {seen:?}");

    // Nothing of guild one ever reached C.
    let seen = gc.drain(Duration::from_millis(100)).await;
    assert!(seen.iter().all(|v| v["d"]["guild_id"] != g1.as_str() && v["t"] != "REPORT_CREATE"), "{seen:?}");
    server.stop().await;
}

/// Concurrent posts all commit (SQLite writers queue rather than fail "database is locked"), and a
/// socket's backlog, written several dispatches per flush, arrives whole and in sequence.
#[tokio::test]
async fn a_burst_of_concurrent_posts_arrives_whole_and_in_sequence() {
    const N: usize = 40;
    let server = TestServer::start().await;
    let (a, b) = (server.user("alice").await, server.user("bob").await);
    let (g, t, _) = a.guild("burst").await;
    a.invite(&g, &b).await;
    let (mut gb, _) = Gateway::identify(&server, tok(&b)).await;
    let posts = (0..N).map(|i| {
        let (a, t) = (&a, &t);
        async move { a.say(t, &format!("m{i}")).await }
    });
    let posted: HashSet<String> = futures_util::future::join_all(posts).await.into_iter().collect();
    assert_eq!(posted.len(), N);
    let (mut seen, mut last) = (HashSet::new(), None);
    while seen.len() < N {
        let e = gb.recv_dispatch().await;
        let s = e["s"].as_u64().expect("s");
        assert!(last.is_none_or(|l| s == l + 1), "sequence {s} after {last:?}");
        last = Some(s);
        if e["t"] == "MESSAGE_CREATE" {
            seen.insert(e["d"]["id"].as_str().expect("id").to_string());
        }
    }
    assert_eq!(seen, posted);
    server.stop().await;
}

#[tokio::test]
async fn presence_online_idle_offline_at_once_and_back_on_resume() {
    // A long resume window: going offline must not wait for it.
    let server = server_with(ChatConfig { resume_window_secs: 60, ..support::test_config() }).await;
    let (a, b) = (server.user("alice").await, server.user("bob").await);
    let (g, _, _) = a.guild("g").await;
    a.invite(&g, &b).await;
    let (mut ga, _) = Gateway::identify(&server, tok(&a)).await;
    let own = ga.recv_event("PRESENCE_UPDATE").await;
    assert_eq!(own["d"]["user_id"], a.id.as_str());
    assert_eq!(member_status(&a, &g, &b.id).await, "offline");

    let (mut gb, ready) = Gateway::identify(&server, tok(&b)).await;
    let p = ga.recv_event("PRESENCE_UPDATE").await;
    assert_eq!(p["d"], json!({ "user_id": b.id, "guild_id": g, "status": "online" }));
    assert_eq!(member_status(&a, &g, &b.id).await, "online");

    gb.send(json!({ "op": 3, "d": { "status": "idle" } })).await;
    let p = ga.recv_event("PRESENCE_UPDATE").await;
    assert_eq!(p["d"], json!({ "user_id": b.id, "guild_id": g, "status": "idle" }));
    assert_eq!(member_status(&a, &g, &b.id).await, "idle");

    // The socket goes (no close frame): B is offline at once; the session stays resumable.
    let last = gb.last_seq;
    drop(gb);
    let p = ga.recv_event("PRESENCE_UPDATE").await;
    assert_eq!(p["d"], json!({ "user_id": b.id, "guild_id": g, "status": "offline" }));
    assert_eq!(member_status(&a, &g, &b.id).await, "offline");

    // Resumed: back, with the status B had chosen.
    let (mut gb, _) = Gateway::connect(&server).await;
    let sid = ready["session_id"].as_str().expect("session id");
    gb.send(json!({ "op": 6, "d": { "token": tok(&b), "session_id": sid, "seq": last } })).await;
    gb.recv_event("RESUMED").await;
    let p = ga.recv_event("PRESENCE_UPDATE").await;
    assert_eq!(p["d"], json!({ "user_id": b.id, "guild_id": g, "status": "idle" }));
    assert_eq!(member_status(&a, &g, &b.id).await, "idle");
    server.stop().await;
}

#[tokio::test]
async fn heartbeat_deadline_closes_silent_connections() {
    let server = server_with(ChatConfig { heartbeat_interval_ms: 300, ..support::test_config() }).await;
    let a = server.user("alice").await;

    let silent_after_identify = async {
        let (mut gw, _) = Gateway::identify(&server, tok(&a)).await;
        let t0 = Instant::now();
        assert_eq!(gw.closed(Duration::from_secs(1)).await, Ended::Closed(Some(4009)));
        t0.elapsed()
    };
    let never_identified = async {
        let (mut gw, interval) = Gateway::connect(&server).await;
        assert_eq!(interval, 300);
        let t0 = Instant::now();
        assert_eq!(gw.closed(Duration::from_secs(1)).await, Ended::Closed(Some(4009)));
        t0.elapsed()
    };
    let heartbeating = async {
        let (mut gw, _) = Gateway::identify(&server, tok(&a)).await;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(1200) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            gw.send(json!({ "op": 1, "d": gw.last_seq })).await;
            while gw.recv().await["op"] != 11 {}
        }
        gw
    };
    let (t_silent, t_unidentified, mut alive) = tokio::join!(silent_after_identify, never_identified, heartbeating);
    // The deadline is 1.5 intervals after the last heartbeat (or HELLO).
    assert!(t_silent < Duration::from_millis(1000), "{t_silent:?}");
    assert!(t_unidentified < Duration::from_millis(1000), "{t_unidentified:?}");
    alive.drain(Duration::from_millis(100)).await; // panics if the server closed it
    alive.send(json!({ "op": 1 })).await;
    assert_eq!(alive.recv().await["op"], 11, "still connected after 1.2 s of heartbeats");
    server.stop().await;
}

#[tokio::test]
async fn connection_cap_refuses_upgrades_with_503() {
    let server = server_with(ChatConfig { max_gateway_connections: 2, ..support::test_config() }).await;
    let (first, _) = Gateway::connect(&server).await;
    let (_second, _) = Gateway::connect(&server).await;
    match tokio_tungstenite::connect_async(server.gateway_url()).await {
        Err(tungstenite::Error::Http(res)) => assert_eq!(res.status(), 503),
        other => panic!("third connection: {:?}", other.map(|_| "connected")),
    }
    let (st, _) = Client::anonymous(&server).get("/api/health").await;
    assert_eq!(st, StatusCode::OK, "HTTP is not capped");

    // A closed socket frees its slot.
    drop(first);
    let t0 = Instant::now();
    loop {
        match tokio_tungstenite::connect_async(server.gateway_url()).await {
            Ok(_) => break,
            Err(tungstenite::Error::Http(res)) if t0.elapsed() < Duration::from_secs(2) => {
                assert_eq!(res.status(), 503);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("slot not freed: {e}"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_sends_going_away() {
    let server = TestServer::start().await;
    let a = server.user("alice").await;
    let (mut identified, _) = Gateway::identify(&server, tok(&a)).await;
    let (mut fresh, _) = Gateway::connect(&server).await;
    let t0 = Instant::now();
    let ((), e1, e2) =
        tokio::join!(server.stop(), identified.closed(Duration::from_secs(3)), fresh.closed(Duration::from_secs(3)));
    assert_eq!(e1, Ended::Closed(Some(1001)));
    assert_eq!(e2, Ended::Closed(Some(1001)));
    assert!(t0.elapsed() < Duration::from_secs(2), "shutdown took {:?}", t0.elapsed());
}

#[tokio::test]
async fn large_guilds_are_lazy_and_presence_is_coalesced() {
    let server = server_with(ChatConfig { large_guild_threshold: 3, ..support::test_config() }).await;
    let owner = server.user("owner").await;
    let (g, _, _) = owner.guild("big").await;
    let mut users = Vec::new();
    for i in 0..4 {
        let u = server.user(&format!("u{i}")).await;
        owner.invite(&g, &u).await;
        users.push(u);
    }
    // Five members, over the threshold of 3: READY carries only my own entry.
    let (mut gw, ready) = Gateway::identify(&server, tok(&owner)).await;
    let guild = &ready["guilds"][0];
    assert_eq!((&guild["large"], &guild["member_count"]), (&json!(true), &json!(5)), "{guild}");
    let members = guild["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{guild}");
    assert_eq!(members[0]["user_id"], json!(owner.id));

    // Others coming online are not pushed to a session that did not ask.
    let (_g0, _) = Gateway::identify(&server, tok(&users[0])).await;
    let quiet = gw.drain(Duration::from_millis(400)).await;
    assert!(quiet.iter().all(|f| !f["t"].as_str().unwrap_or("").starts_with("PRESENCE")), "{quiet:?}");

    // Op 8: a page of members, with presence, and presence updates from then on.
    gw.send(json!({ "op": 8, "d": { "guild_id": g, "limit": 3 } })).await;
    let chunk = gw.recv_event("GUILD_MEMBERS_CHUNK").await;
    assert_eq!(chunk["d"]["members"].as_array().map(Vec::len), Some(3), "{chunk}");
    let after = chunk["d"]["next_after"].clone();
    assert!(after.is_string(), "{chunk}");
    gw.send(json!({ "op": 8, "d": { "guild_id": g, "after": after } })).await;
    let rest = gw.recv_event("GUILD_MEMBERS_CHUNK").await;
    assert_eq!(rest["d"]["members"].as_array().map(Vec::len), Some(2), "{rest}");
    assert!(rest["d"]["next_after"].is_null());
    let online: Vec<&Value> =
        chunk["d"]["members"].as_array().unwrap().iter().chain(rest["d"]["members"].as_array().unwrap()).collect();
    assert_eq!(online.iter().filter(|m| m["status"] == "online").count(), 2, "owner and u0: {online:?}");

    // Three come online at once: one coalesced PRESENCE_UPDATE_BULK, each user once.
    let mut socks = Vec::new();
    for u in &users[1..] {
        socks.push(Gateway::identify(&server, tok(u)).await.0);
    }
    let mut seen = HashSet::new();
    while seen.len() < 3 {
        let e = gw.recv_dispatch().await;
        match e["t"].as_str() {
            Some("PRESENCE_UPDATE_BULK") => {
                for p in e["d"]["presences"].as_array().unwrap() {
                    assert_eq!(p["status"], "online");
                    assert!(seen.insert(p["user_id"].as_str().unwrap().to_string()), "each user once: {e}");
                }
            }
            Some("PRESENCE_UPDATE") => {
                assert!(seen.insert(e["d"]["user_id"].as_str().unwrap().to_string()), "{e}");
            }
            _ => {}
        }
    }
    // A guild the session is not in: an empty chunk, and nothing subscribed.
    gw.send(json!({ "op": 8, "d": { "guild_id": "12345" } })).await;
    let none = gw.recv_event("GUILD_MEMBERS_CHUNK").await;
    assert_eq!(none["d"]["members"], json!([]));
    server.stop().await;
}

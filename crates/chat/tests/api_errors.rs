//! REST API over real HTTP: unknown and malformed ids, malformed requests (JSON, content type,
//! fields, size), unknown routes and wrong methods. The other routes' flows are in `api.rs` and
//! `api_messages.rs`.

mod common;
mod support;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Client, TestServer, assert_client_error, assert_error, creds, raw};

// ---------------------------------------------------------------------------------------------
// 3. Unknown and malformed ids

#[tokio::test]
async fn unknown_and_malformed_ids() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (g, text, _) = alice.guild("g").await;
    let m = alice.say(&text, "hello").await;
    let (g2, text2, _) = alice.guild("g2").await;
    let nope = "123456789";

    for path in [
        format!("/api/guilds/{nope}"),
        format!("/api/guilds/{nope}/channels"),
        format!("/api/guilds/{nope}/members"),
        format!("/api/guilds/{nope}/read-states"),
        format!("/api/guilds/{nope}/reports"),
    ] {
        assert_error(&alice.get(&path).await, StatusCode::NOT_FOUND, 10004);
    }
    assert_error(&alice.post(&format!("/api/guilds/{nope}/invites"), json!({})).await, StatusCode::NOT_FOUND, 10004);
    let ch = alice.post(&format!("/api/guilds/{nope}/channels"), json!({ "name": "x", "kind": "text" })).await;
    assert_error(&ch, StatusCode::NOT_FOUND, 10004);

    assert_error(&alice.get(&format!("/api/channels/{nope}/messages")).await, StatusCode::NOT_FOUND, 10003);
    let say = alice.post(&format!("/api/channels/{nope}/messages"), json!({ "content": "hi" })).await;
    assert_error(&say, StatusCode::NOT_FOUND, 10003);
    assert_error(
        &alice.call(Method::POST, &format!("/api/channels/{nope}/typing"), None).await,
        StatusCode::NOT_FOUND,
        10003,
    );
    // A guild id is not a channel id.
    assert_error(&alice.get(&format!("/api/channels/{g}/messages")).await, StatusCode::NOT_FOUND, 10003);

    // Unknown messages, and a message addressed through the wrong channel.
    for path in [format!("/api/channels/{text}/messages/{nope}"), format!("/api/channels/{text2}/messages/{m}")] {
        let edit = alice.call(Method::PATCH, &path, Some(json!({ "content": "x" }))).await;
        assert_error(&edit, StatusCode::NOT_FOUND, 10008);
        assert_error(&alice.call(Method::DELETE, &path, None).await, StatusCode::NOT_FOUND, 10008);
        assert_error(&alice.call(Method::POST, &format!("{path}/ack"), None).await, StatusCode::NOT_FOUND, 10008);
        let report = alice.post(&format!("{path}/reports"), json!({ "reason": "x" })).await;
        assert_error(&report, StatusCode::NOT_FOUND, 10008);
    }
    let resolve = alice.post(&format!("/api/reports/{nope}/resolve"), json!({ "action": "dismiss" })).await;
    assert_error(&resolve, StatusCode::NOT_FOUND, 10020);

    // Ids that are not numbers: the route does not exist.
    for path in [
        "/api/guilds/abc".to_string(),
        "/api/guilds/12x/channels".to_string(),
        "/api/guilds/-/members".to_string(),
        "/api/channels/general/messages".to_string(),
        format!("/api/guilds/{g}9999999999999999999999"),
    ] {
        assert_error(&alice.get(&path).await, StatusCode::NOT_FOUND, 10404);
    }
    let bad_msg = alice.call(Method::DELETE, &format!("/api/channels/{text}/messages/latest"), None).await;
    assert_error(&bad_msg, StatusCode::NOT_FOUND, 10404);
    assert_error(
        &alice.post("/api/reports/x/resolve", json!({ "action": "dismiss" })).await,
        StatusCode::NOT_FOUND,
        10404,
    );
    // The real ones still answer.
    assert_eq!(alice.get(&format!("/api/guilds/{g2}")).await.0, StatusCode::OK);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Malformed requests

#[tokio::test]
async fn bad_input_over_http() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (g, text, _) = alice.guild("g").await;
    let anon = Client::anonymous(&server);
    let json_ct = Some("application/json");
    let msgs = format!("/api/channels/{text}/messages");
    let err = |(st, _, body): (StatusCode, HeaderMap, Value)| (st, body);

    // Malformed JSON.
    for body in ["{not json", "", "{\"username\": \"x\",", "{\"username\" 1}", "nul"] {
        let got = err(raw(&anon, Method::POST, "/api/auth/signup", json_ct, body).await);
        assert_error(&got, StatusCode::BAD_REQUEST, 50109);
    }
    assert_error(
        &err(raw(&alice, Method::POST, &msgs, json_ct, "{\"content\": }").await),
        StatusCode::BAD_REQUEST,
        50109,
    );

    // Wrong or missing content type.
    let good = creds("bob", "password-bob").to_string();
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let got = err(raw(&anon, Method::POST, "/api/auth/signup", ct, good.clone()).await);
        assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, 50415);
        let got = err(raw(&alice, Method::POST, &msgs, ct, json!({ "content": "hi" }).to_string()).await);
        assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, 50415);
    }
    // A charset parameter is fine.
    let (st, _, body) =
        raw(&anon, Method::POST, "/api/auth/signup", Some("application/json; charset=utf-8"), good).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");

    // Missing field, unknown field, wrong types: 4xx with a code.
    let cases = [
        ("/api/auth/signup", json!({ "username": "carol" })),
        ("/api/auth/signup", json!({ "username": "carol", "password": "password-carol", "admin": true })),
        ("/api/auth/signup", json!({ "username": 5, "password": "password-carol" })),
        ("/api/auth/login", json!({ "username": "alice" })),
        ("/api/auth/login", json!({ "username": "alice", "password": ["password-alice"] })),
        ("/api/guilds", json!({})),
        ("/api/guilds", json!({ "name": null })),
        (&msgs, json!({})),
        (&msgs, json!({ "content": 42 })),
        (&msgs, json!({ "content": "hi", "tts": true })),
        (&msgs, json!("hi")),
    ];
    for (path, body) in cases {
        let got = alice.post(path, body.clone()).await;
        let code = assert_client_error(&got);
        assert_eq!((got.0, code), (StatusCode::BAD_REQUEST, 50035), "{path} {body}");
    }
    // The invite body's limits are checked like any other body.
    for body in [json!({ "max_uses": "many" }), json!({ "max_uses": -1 }), json!({ "forever": true })] {
        let got = alice.post(&format!("/api/guilds/{g}/invites"), body).await;
        assert_error(&got, StatusCode::BAD_REQUEST, 50035);
    }
    let got = err(raw(&alice, Method::POST, &format!("/api/guilds/{g}/invites"), json_ct, "{oops").await);
    assert_error(&got, StatusCode::BAD_REQUEST, 50109);
    // Query strings are checked like bodies.
    assert_error(&alice.get(&format!("{msgs}?limit=lots")).await, StatusCode::BAD_REQUEST, 50035);
    assert_error(&alice.get(&format!("{msgs}?sort=asc")).await, StatusCode::BAD_REQUEST, 50035);

    // Bodies over the limit (32 KiB by default; never below what a longest message needs).
    let big_content = json!({ "content": "x".repeat(33 * 1024) }).to_string();
    let got = err(raw(&alice, Method::POST, &msgs, json_ct, big_content.clone()).await);
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, 40013);
    let big_signup = json!({ "username": "dave", "password": "y".repeat(40_000) }).to_string();
    let got = err(raw(&anon, Method::POST, "/api/auth/signup", json_ct, big_signup).await);
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, 40013);
    let big_invite = json!({ "max_uses": 1, "pad": "z".repeat(33 * 1024) }).to_string();
    let got = err(raw(&alice, Method::POST, &format!("/api/guilds/{g}/invites"), json_ct, big_invite).await);
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, 40013);
    // Just under the limit is parsed (and then refused as too long a message).
    let under = json!({ "content": "x".repeat(32 * 1024 - 20) }).to_string();
    assert!(under.len() < 32 * 1024);
    assert_error(&err(raw(&alice, Method::POST, &msgs, json_ct, under).await), StatusCode::BAD_REQUEST, 50035);

    // Unknown routes and wrong methods.
    for path in ["/api/nope", "/api/guilds/1/emojis", "/", "/api", "/api/users/@you"] {
        assert_error(&alice.get(path).await, StatusCode::NOT_FOUND, 10404);
    }
    assert_error(&anon.post("/api/auth/register", json!({})).await, StatusCode::NOT_FOUND, 10404);
    let wrong = [
        (Method::DELETE, "/api/guilds".to_string()),
        (Method::GET, "/api/auth/login".to_string()),
        (Method::PUT, "/api/users/@me".to_string()),
        (Method::POST, "/api/health".to_string()),
        (Method::PUT, format!("/api/guilds/{g}")),
        (Method::PUT, msgs.clone()),
        (Method::GET, format!("/api/channels/{text}/typing")),
    ];
    for (method, path) in wrong {
        let got = alice.call(method.clone(), &path, None).await;
        assert!(got.0 == StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {got:?}");
        assert_error(&got, StatusCode::METHOD_NOT_ALLOWED, 40405);
    }

    // Nothing of that was stored, and the server is still fine.
    let (_, history) = alice.get(&msgs).await;
    assert_eq!(history, json!([]));
    let (st, health) = anon.get("/api/health").await;
    assert_eq!(st, StatusCode::OK, "{health}");
    assert_eq!((&health["status"], &health["store"]), (&json!("ok"), &json!("sqlite")));
    assert_eq!(alice.get("/api/users/@me").await.1["username"], "alice");
    server.stop().await;
}

/// Sends `request` as raw bytes (then reads on while the server still answers) and returns the
/// status and the JSON body of the answer.
async fn raw_http(server: &TestServer, request: Vec<u8>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    // Written concurrently with reading: the server may answer before the whole request is in.
    let (mut rd, mut wr) = tcp.split();
    let write = async {
        let _ = wr.write_all(&request).await;
    };
    let read = async {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), rd.read_to_end(&mut got)).await;
        got
    };
    let ((), got) = tokio::join!(write, read);
    let text = String::from_utf8_lossy(&got).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status in {head}"));
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body ({e}): {body:?}"));
    (status, body)
}

#[tokio::test]
async fn errors_before_any_route_are_json_too() {
    let server = TestServer::start().await;
    let json_error = |(status, body): (u16, Value), want: u16, code: u64| {
        assert_error(&(StatusCode::from_u16(status).unwrap(), body), StatusCode::from_u16(want).unwrap(), code);
    };
    // The gateway without a WebSocket upgrade.
    let plain = b"GET /gateway HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec();
    json_error(raw_http(&server, plain).await, 400, 40026);
    // A 100 KB path, a 600 KB header, a Content-Length that is not a number.
    let long_path = format!("GET /api/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000)).into_bytes();
    json_error(raw_http(&server, long_path).await, 414, 40014);
    let big_header =
        format!("GET /api/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n", "t".repeat(600_000));
    json_error(raw_http(&server, big_header.into_bytes()).await, 431, 40031);
    let bad_length = b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}".to_vec();
    json_error(raw_http(&server, bad_length).await, 400, 40000);
    // The server is fine.
    let (st, _) = Client::anonymous(&server).get("/api/health").await;
    assert_eq!(st, StatusCode::OK);
    server.stop().await;
}

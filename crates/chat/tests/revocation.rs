//! A login that ends (logout, password change, expiry) ends every gateway socket identified with
//! it, at once, with 4004; and such a session cannot be resumed.

mod common;
mod support;

use chat::config::ChatConfig;
use common::Backend;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use support::{Client, Ended, Gateway, TestServer, assert_error};

fn tok(c: &Client) -> &str {
    c.token.as_deref().expect("token")
}

#[tokio::test]
async fn logout_closes_the_sockets_of_that_login_only() {
    let server = TestServer::start().await;
    let (a, b) = (server.user("alice").await, server.user("bob").await);
    let (g, text, _) = a.guild("g").await;
    a.invite(&g, &b).await;
    // A second login of alice's, on another device: it must stay.
    let (st, other) =
        Client::anonymous(&server).post("/api/auth/login", support::creds("alice", "password-alice")).await;
    assert_eq!(st, StatusCode::OK, "{other}");
    let (mut phone, ready) = Gateway::identify(&server, tok(&a)).await;
    let session_id = ready["session_id"].as_str().expect("session id").to_string();
    let (mut laptop, _) = Gateway::identify(&server, other["token"].as_str().unwrap()).await;

    let (st, _) = a.post("/api/auth/logout", json!({})).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    b.say(&text, "after logout").await;
    assert_eq!(phone.closed(Duration::from_secs(2)).await, Ended::Closed(Some(4004)), "no MESSAGE_CREATE first");
    assert_eq!(laptop.recv_event("MESSAGE_CREATE").await["d"]["content"], "after logout");

    // The revoked session is gone for good: RESUME with a live token of the same user is refused.
    let (mut again, _) = Gateway::connect(&server).await;
    let token = other["token"].as_str().unwrap();
    again.send(json!({ "op": 6, "d": { "token": token, "session_id": session_id, "seq": 1 } })).await;
    assert_eq!(again.recv().await["op"], 9, "INVALID_SESSION");
    server.stop().await;
}

#[tokio::test]
async fn an_expired_login_closes_its_socket() {
    let cfg = ChatConfig { session_ttl_secs: 2, ..support::test_config() };
    let server = TestServer::with_config(Backend::Sqlite, cfg).await.expect("sqlite");
    let a = server.user("alice").await;
    let (mut gw, _) = Gateway::identify(&server, tok(&a)).await;
    gw.send(json!({ "op": 1 })).await;
    assert_eq!(gw.recv().await["op"], 11);
    assert_eq!(gw.closed(Duration::from_secs(5)).await, Ended::Closed(Some(4004)));
    assert_error(&a.get("/api/users/@me").await, StatusCode::UNAUTHORIZED, 40001);
    server.stop().await;
}

#[tokio::test]
async fn a_password_change_ends_every_login_and_hands_out_a_new_one() {
    let server = TestServer::start().await;
    let a = server.user("alice").await;
    let (st, other) =
        Client::anonymous(&server).post("/api/auth/login", support::creds("alice", "password-alice")).await;
    assert_eq!(st, StatusCode::OK);
    let other_token = other["token"].as_str().unwrap().to_string();
    let (mut g1, _) = Gateway::identify(&server, tok(&a)).await;
    let (mut g2, _) = Gateway::identify(&server, &other_token).await;

    let wrong = a.post("/api/auth/password", json!({ "password": "nope-nope", "new_password": "fresh-secret" })).await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, 40002);
    let short = a.post("/api/auth/password", json!({ "password": "password-alice", "new_password": "short" })).await;
    assert_error(&short, StatusCode::BAD_REQUEST, 50035);

    let (st, fresh) =
        a.post("/api/auth/password", json!({ "password": "password-alice", "new_password": "fresh-secret" })).await;
    assert_eq!(st, StatusCode::OK, "{fresh}");
    assert_eq!(g1.closed(Duration::from_secs(2)).await, Ended::Closed(Some(4004)));
    assert_eq!(g2.closed(Duration::from_secs(2)).await, Ended::Closed(Some(4004)));
    assert_error(&a.get("/api/users/@me").await, StatusCode::UNAUTHORIZED, 40001);
    let mut b = a.clone();
    b.token = Some(other_token);
    assert_error(&b.get("/api/users/@me").await, StatusCode::UNAUTHORIZED, 40001);
    b.token = fresh["token"].as_str().map(String::from);
    assert_eq!(b.get("/api/users/@me").await.0, StatusCode::OK, "the new token works");
    let anon = Client::anonymous(&server);
    assert_error(
        &anon.post("/api/auth/login", support::creds("alice", "password-alice")).await,
        StatusCode::UNAUTHORIZED,
        40002,
    );
    assert_eq!(anon.post("/api/auth/login", support::creds("alice", "fresh-secret")).await.0, StatusCode::OK);
    server.stop().await;
}

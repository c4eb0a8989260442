//! A channel's name and topic (SQLite and Postgres): the owner renames a channel and sets its
//! topic (CHANNEL_UPDATE to the guild, kept on reload); empty clears the topic; members other
//! than the owner, and bad values, are refused.

mod common;
mod support;

use common::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Gateway, TestServer, assert_error};

async fn flows(server: TestServer) {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (g, text, _) = alice.guild("g").await;
    alice.invite(&g, &bob).await;
    let (mut bob_gw, _) = Gateway::identify(&server, bob.token.as_deref().unwrap()).await;
    let path = format!("/api/channels/{text}");

    let (st, ch) = alice.call(Method::PATCH, &path, Some(json!({ "name": " lounge ", "topic": "say hi" }))).await;
    assert_eq!(st, StatusCode::OK, "{ch}");
    assert_eq!((&ch["name"], &ch["topic"]), (&json!("lounge"), &json!("say hi")));
    let e = bob_gw.recv_event("CHANNEL_UPDATE").await;
    assert_eq!((&e["d"]["name"], &e["d"]["topic"]), (&json!("lounge"), &json!("say hi")));
    let (_, list) = bob.get(&format!("/api/guilds/{g}/channels")).await;
    assert_eq!(list[0]["topic"], "say hi", "stored");
    let (_, ch) = alice.call(Method::PATCH, &path, Some(json!({ "topic": "" }))).await;
    assert_eq!((&ch["name"], &ch["topic"]), (&json!("lounge"), &json!("")));

    assert_error(&bob.call(Method::PATCH, &path, Some(json!({ "name": "mine" }))).await, StatusCode::FORBIDDEN, 50013);
    assert_error(
        &alice.call(Method::PATCH, &path, Some(json!({ "name": "  " }))).await,
        StatusCode::BAD_REQUEST,
        50035,
    );
    let long = json!({ "topic": "x".repeat(1025) });
    assert_error(&alice.call(Method::PATCH, &path, Some(long)).await, StatusCode::BAD_REQUEST, 50035);
    server.stop().await;
}

#[tokio::test]
async fn channel_settings_sqlite() {
    flows(TestServer::start().await).await;
}

#[tokio::test]
async fn channel_settings_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, support::test_config()).await {
        flows(server).await;
    }
}

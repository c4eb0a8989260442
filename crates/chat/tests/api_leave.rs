//! Leaving a server over real HTTP and the gateway (SQLite and Postgres): the member is gone for
//! the guild (GUILD_MEMBER_REMOVE) and the guild for them (GUILD_DELETE, no more of its events,
//! its channels closed to them); an invite brings them back; the owner cannot leave.

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
    let (mut alice_gw, _) = Gateway::identify(&server, alice.token.as_deref().unwrap()).await;
    let (mut bob_gw, _) = Gateway::identify(&server, bob.token.as_deref().unwrap()).await;

    let leave = format!("/api/users/@me/guilds/{g}");
    assert_eq!(bob.call(Method::DELETE, &leave, None).await.0, StatusCode::NO_CONTENT);
    let e = alice_gw.recv_event("GUILD_MEMBER_REMOVE").await;
    assert_eq!(e["d"], json!({ "guild_id": g, "user_id": bob.id }));
    assert_eq!(bob_gw.recv_event("GUILD_DELETE").await["d"], json!({ "id": g }));
    alice.say(&text, "after bob left").await;
    let events = bob_gw.drain(std::time::Duration::from_millis(300)).await;
    assert!(events.iter().all(|e| e["t"] != "MESSAGE_CREATE"), "nothing of the guild: {events:?}");
    assert_error(&bob.get(&format!("/api/channels/{text}/messages")).await, StatusCode::FORBIDDEN, 50001);
    let (_, guilds) = bob.get("/api/guilds").await;
    assert_eq!(guilds, json!([]));
    assert_error(&bob.call(Method::DELETE, &leave, None).await, StatusCode::FORBIDDEN, 50001);

    // The owner stays; an invite brings bob back.
    assert_error(&alice.call(Method::DELETE, &leave, None).await, StatusCode::BAD_REQUEST, 50035);
    alice.invite(&g, &bob).await;
    assert_eq!(bob.get(&format!("/api/channels/{text}/messages")).await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn leave_sqlite() {
    flows(TestServer::start().await).await;
}

#[tokio::test]
async fn leave_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, support::test_config()).await {
        flows(server).await;
    }
}

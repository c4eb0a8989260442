//! Replies and reactions over real HTTP and the gateway (SQLite and Postgres): a reply points at
//! a message of its channel and mentions its author unless told not to; reactions are counted
//! per emoji with who reacted, once per user, live to the channel, and only Unicode emoji.

mod common;
mod support;

use common::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Client, Gateway, TestServer, assert_error};

async fn react(c: &Client, method: Method, channel: &str, message: &str, emoji: &str) -> (StatusCode, Value) {
    c.call(method, &format!("/api/channels/{channel}/messages/{message}/reactions/{emoji}/@me"), None).await
}

async fn flows(server: TestServer) {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let (g, text, _) = alice.guild("g").await;
    alice.invite(&g, &bob).await;
    let (_, other) = alice.post(&format!("/api/guilds/{g}/channels"), json!({ "name": "other", "kind": "text" })).await;
    let other = other["id"].as_str().unwrap().to_string();
    let (mut bob_gw, _) = Gateway::identify(&server, bob.token.as_deref().unwrap()).await;
    let msgs = format!("/api/channels/{text}/messages");
    let m1 = bob.say(&text, "what do we eat").await;

    // Replies: to a message of this channel; its author is mentioned, unless asked not to be.
    let (st, r) = alice.post(&msgs, json!({ "content": "pizza", "reply_to": m1 })).await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    assert_eq!((&r["reply_to"], &r["mentions"]), (&json!(m1), &json!([bob.id])));
    let (_, quiet) = alice.post(&msgs, json!({ "content": "or pasta", "reply_to": m1, "mention_reply": false })).await;
    assert_eq!((&quiet["reply_to"], &quiet["mentions"]), (&json!(m1), &json!([])));
    let elsewhere =
        alice.post(&format!("/api/channels/{other}/messages"), json!({ "content": "x", "reply_to": m1 })).await;
    assert_error(&elsewhere, StatusCode::NOT_FOUND, 10008);
    let (_, hist) = bob.get(&msgs).await;
    assert_eq!(hist[1]["reply_to"], json!(m1));

    // Reactions: once per user and emoji, counted with who, live.
    assert_eq!(react(&alice, Method::PUT, &text, &m1, "👍").await.0, StatusCode::NO_CONTENT);
    let e = bob_gw.recv_event("MESSAGE_REACTION_ADD").await;
    assert_eq!(
        e["d"],
        json!({ "channel_id": text, "message_id": m1, "user_id": alice.id, "emoji": "👍", "guild_id": g })
    );
    assert_eq!(react(&alice, Method::PUT, &text, &m1, "👍").await.0, StatusCode::NO_CONTENT, "again: no change");
    assert_eq!(react(&bob, Method::PUT, &text, &m1, "👍").await.0, StatusCode::NO_CONTENT);
    assert_eq!(react(&bob, Method::PUT, &text, &m1, "❤️").await.0, StatusCode::NO_CONTENT);
    let (_, hist) = bob.get(&msgs).await;
    let m = hist.as_array().unwrap().iter().find(|m| m["id"] == m1.as_str()).unwrap();
    assert_eq!(
        m["reactions"],
        json!([{ "emoji": "👍", "count": 2, "users": [alice.id, bob.id] }, { "emoji": "❤️", "count": 1, "users": [bob.id] }])
    );
    assert_eq!(react(&alice, Method::DELETE, &text, &m1, "👍").await.0, StatusCode::NO_CONTENT);
    let e = bob_gw.recv_event("MESSAGE_REACTION_REMOVE").await;
    assert_eq!((&e["d"]["user_id"], &e["d"]["emoji"]), (&json!(alice.id), &json!("👍")));
    assert_eq!(react(&alice, Method::DELETE, &text, &m1, "👍").await.0, StatusCode::NO_CONTENT, "idempotent");
    let (_, hist) = bob.get(&msgs).await;
    let m = hist.as_array().unwrap().iter().find(|m| m["id"] == m1.as_str()).unwrap();
    assert_eq!(m["reactions"][0], json!({ "emoji": "👍", "count": 1, "users": [bob.id] }));

    // Not an emoji, not a member, no such message.
    assert_error(&react(&alice, Method::PUT, &text, &m1, "lol").await, StatusCode::BAD_REQUEST, 50035);
    assert_error(&react(&carol, Method::PUT, &text, &m1, "👍").await, StatusCode::FORBIDDEN, 50001);
    assert_error(&react(&alice, Method::PUT, &other, &m1, "👍").await, StatusCode::NOT_FOUND, 10008);
    server.stop().await;
}

#[tokio::test]
async fn replies_and_reactions_sqlite() {
    flows(TestServer::start().await).await;
}

#[tokio::test]
async fn replies_and_reactions_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, support::test_config()).await {
        flows(server).await;
    }
}

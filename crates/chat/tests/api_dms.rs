//! Direct messages and blocking over real HTTP and the gateway (SQLite and Postgres): opening a
//! 1:1 DM (found again by either side) and a group DM, who may open one (a shared server, nobody
//! blocked), messages, typing and read states in it, only its recipients reading it, events to
//! the recipients alone, and what a DM is not (a guild channel: no voice, no reports to a guild).

mod common;
mod support;

use common::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Client, Gateway, TestServer, assert_error};

async fn open(c: &Client, recipients: &[&Client]) -> (StatusCode, Value) {
    let ids: Vec<&str> = recipients.iter().map(|r| r.id.as_str()).collect();
    c.post("/api/users/@me/channels", json!({ "recipients": ids })).await
}

async fn dms(c: &Client) -> Value {
    let (st, list) = c.get("/api/users/@me/channels").await;
    assert_eq!(st, StatusCode::OK, "{list}");
    list
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect()
}

async fn dm_flows(server: TestServer) {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let dave = server.user("dave").await;
    let carol = server.user("carol").await; // shares no server with anyone
    let (g, _, _) = alice.guild("g").await;
    alice.invite(&g, &bob).await;
    alice.invite(&g, &dave).await;
    let (mut bob_gw, _) = Gateway::identify(&server, bob.token.as_deref().unwrap()).await;
    let (mut carol_gw, _) = Gateway::identify(&server, carol.token.as_deref().unwrap()).await;

    // Opening: 201 the first time, then the same DM from either side (200).
    let (st, dm) = open(&alice, &[&bob]).await;
    assert_eq!(st, StatusCode::CREATED, "{dm}");
    let channel = dm["id"].as_str().unwrap().to_string();
    assert_eq!(dm["kind"], "dm");
    assert_eq!(dm["guild_id"], Value::Null);
    let mut people = vec![alice.id.clone(), bob.id.clone()];
    people.sort_by_key(|s| s.parse::<i64>().unwrap());
    assert_eq!(ids(&dm["recipients"]), people);
    let created = bob_gw.recv_event("CHANNEL_CREATE").await;
    assert_eq!(created["d"]["id"], channel.as_str());
    let (st, again) = open(&bob, &[&alice, &bob]).await;
    assert_eq!((st, again["id"].as_str()), (StatusCode::OK, Some(channel.as_str())), "{again}");

    // Who may: someone sharing a server, existing, not oneself, at most 9 others.
    assert_error(&open(&alice, &[&carol]).await, StatusCode::FORBIDDEN, 50013);
    let unknown = alice.post("/api/users/@me/channels", json!({ "recipients": ["42"] })).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, 10013);
    assert_error(&open(&alice, &[&alice]).await, StatusCode::BAD_REQUEST, 50035);
    let many: Vec<String> = (0..10).map(|i| format!("{}", 1000 + i)).collect();
    let too_many = alice.post("/api/users/@me/channels", json!({ "recipients": many })).await;
    assert_error(&too_many, StatusCode::BAD_REQUEST, 50035);
    let named = alice.post("/api/users/@me/channels", json!({ "recipients": [bob.id], "name": "x" })).await;
    assert_error(&named, StatusCode::BAD_REQUEST, 50035);

    // Messages: to the recipients' gateways only; only recipients read or write.
    let msgs = format!("/api/channels/{channel}/messages");
    let (st, m) = alice.post(&msgs, json!({ "content": format!("hi <@{}> <@{}>", bob.id, carol.id) })).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(m["mentions"], json!([bob.id]), "only recipients are mentioned");
    let got = bob_gw.recv_event("MESSAGE_CREATE").await;
    assert_eq!((&got["d"]["id"], &got["d"]["channel_id"]), (&m["id"], &json!(channel)));
    assert!(got["d"].get("guild_id").is_none(), "{got}");
    assert!(carol_gw.drain(std::time::Duration::from_millis(300)).await.is_empty(), "nothing to an outsider");
    assert_error(&carol.get(&msgs).await, StatusCode::FORBIDDEN, 50001);
    assert_error(&carol.post(&msgs, json!({ "content": "let me in" })).await, StatusCode::FORBIDDEN, 50001);
    assert_error(&dave.get(&msgs).await, StatusCode::FORBIDDEN, 50001);
    let (st, hist) = bob.get(&msgs).await;
    assert_eq!((st, hist.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let (st, _) = bob.post(&format!("/api/channels/{channel}/typing"), json!({})).await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    // The list: unread and mentions until acked, latest activity first.
    let list = dms(&bob).await;
    assert_eq!(list[0]["id"], channel.as_str());
    assert_eq!((&list[0]["unread_count"], &list[0]["mention_count"]), (&json!(1), &json!(1)));
    assert_eq!(list[0]["last_message_id"], m["id"]);
    let m_id = m["id"].as_str().unwrap();
    let (st, _) = bob.post(&format!("{msgs}/{m_id}/ack"), json!({})).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(dms(&bob).await[0]["unread_count"], 0);
    assert_eq!(dms(&carol).await, json!([]));

    // A group DM: everyone in it sees it; the newest activity comes first.
    let (st, group) =
        alice.post("/api/users/@me/channels", json!({ "recipients": [bob.id, dave.id], "name": "plans" })).await;
    assert_eq!(st, StatusCode::CREATED, "{group}");
    assert_eq!(group["name"], "plans");
    assert_eq!(group["recipients"].as_array().map(Vec::len), Some(3));
    let group_id = group["id"].as_str().unwrap().to_string();
    dave.say(&group_id, "count me in").await;
    assert_eq!(dms(&dave).await[0]["id"], group_id.as_str());
    assert_eq!(dms(&bob).await.as_array().map(Vec::len), Some(2));

    // Blocking: neither side can message the other in their DM, nor open one; undone, it works.
    let blocks = format!("/api/users/@me/blocks/{}", alice.id);
    let (st, _) = bob.call(Method::PUT, &blocks, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(ids(&bob.get("/api/users/@me/blocks").await.1), vec![alice.id.clone()]);
    assert_error(&alice.post(&msgs, json!({ "content": "hello?" })).await, StatusCode::FORBIDDEN, 50013);
    assert_error(&bob.post(&msgs, json!({ "content": "bye" })).await, StatusCode::FORBIDDEN, 50013);
    assert_error(&open(&alice, &[&bob]).await, StatusCode::FORBIDDEN, 50013);
    let (st, _) = bob.get(&msgs).await;
    assert_eq!(st, StatusCode::OK, "the history stays readable");
    let (st, _) = bob.call(Method::DELETE, &blocks, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_error(&bob.call(Method::DELETE, &blocks, None).await, StatusCode::NOT_FOUND, 10013);
    let self_block = bob.call(Method::PUT, &format!("/api/users/@me/blocks/{}", bob.id), None).await;
    assert_error(&self_block, StatusCode::BAD_REQUEST, 50035);
    alice.say(&channel, "friends again").await;

    // Not a guild channel: no voice, no report to a guild; no guild may make one.
    assert_error(&bob.post(&format!("/api/channels/{channel}/voice"), json!({})).await, StatusCode::BAD_REQUEST, 50035);
    let report = bob.post(&format!("{msgs}/{m_id}/reports"), json!({ "reason": "spam" })).await;
    assert_error(&report, StatusCode::BAD_REQUEST, 50035);
    let made = alice.post(&format!("/api/guilds/{g}/channels"), json!({ "name": "x", "kind": "dm" })).await;
    assert_error(&made, StatusCode::BAD_REQUEST, 50035);
    server.stop().await;
}

#[tokio::test]
async fn dms_sqlite() {
    dm_flows(TestServer::start().await).await;
}

#[tokio::test]
async fn dms_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, support::test_config()).await {
        dm_flows(server).await;
    }
}

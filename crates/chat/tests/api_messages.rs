//! REST API over real HTTP: messages (send, edit, delete, validation, mentions), history paging,
//! read states and the report queue. Accounts, guilds and malformed requests are in `api.rs`.

mod common;
mod support;

use common::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use support::{Client, TestServer, assert_error};

fn id_of(v: &Value) -> i64 {
    v["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("string id in {v}"))
}

/// The ids of a page of messages, as numbers, in the order returned.
fn page_ids(page: &Value) -> Vec<i64> {
    page.as_array().unwrap_or_else(|| panic!("array: {page}")).iter().map(id_of).collect()
}

fn strictly_descending(ids: &[i64]) -> bool {
    ids.windows(2).all(|w| w[0] > w[1])
}

async fn history(c: &Client, channel: &str, query: &str) -> Vec<i64> {
    let (st, page) = c.get(&format!("/api/channels/{channel}/messages{query}")).await;
    assert_eq!(st, StatusCode::OK, "{query}: {page}");
    page_ids(&page)
}

async fn send(c: &Client, channel: &str, content: &str) -> (StatusCode, Value) {
    c.post(&format!("/api/channels/{channel}/messages"), json!({ "content": content })).await
}

// ---------------------------------------------------------------------------------------------
// 4. Messages (SQLite and Postgres)

async fn message_flows(server: TestServer) {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await; // never joins
    let (g, text, voice) = alice.guild("g").await;
    alice.invite(&g, &bob).await;
    let msgs = format!("/api/channels/{text}/messages");

    // Send: 201 with the stored message, content trimmed, mentions of members only.
    let (st, m1) = send(&alice, &text, &format!("  hi <@{}> and <@{}> and <@{}>  ", bob.id, carol.id, bob.id)).await;
    assert_eq!(st, StatusCode::CREATED, "{m1}");
    let m1_id = m1["id"].as_str().unwrap().to_string();
    assert_eq!(m1["channel_id"], text.as_str());
    assert_eq!(m1["author_id"], alice.id.as_str());
    assert_eq!(m1["content"], format!("hi <@{}> and <@{}> and <@{}>", bob.id, carol.id, bob.id));
    assert_eq!(m1["mentions"], json!([bob.id]));
    assert_eq!(m1["edited_at"], Value::Null);
    let (st, m2) = send(&bob, &text, &format!("<@{}> <@1> <@{}>", alice.id, bob.id)).await;
    assert_eq!(st, StatusCode::CREATED, "{m2}");
    assert_eq!(m2["mentions"], json!([alice.id, bob.id]));
    assert!(id_of(&m2) > id_of(&m1));
    let m2_id = m2["id"].as_str().unwrap().to_string();

    // History has them, newest first, exactly as returned on send.
    let (st, hist) = bob.get(&msgs).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(hist, json!([m2, m1]));

    // Edit by the author.
    let (st, edited) =
        alice.call(Method::PATCH, &format!("{msgs}/{m1_id}"), Some(json!({ "content": " edited " }))).await;
    assert_eq!(st, StatusCode::OK, "{edited}");
    assert_eq!((&edited["id"], &edited["content"]), (&m1["id"], &json!("edited")));
    assert_eq!(edited["author_id"], alice.id.as_str());
    assert!(edited["edited_at"].as_i64().is_some_and(|t| t > 0), "{edited}");
    assert_eq!(edited["mentions"], json!([]), "mentions follow the new content");
    let (_, hist) = bob.get(&msgs).await;
    assert_eq!(hist[1], edited);
    let bad_edit = alice.call(Method::PATCH, &format!("{msgs}/{m1_id}"), Some(json!({ "content": "  " }))).await;
    assert_error(&bad_edit, StatusCode::BAD_REQUEST, 50035);

    // Others may neither edit nor delete it; the owner may not edit it either (deleting others'
    // messages takes MANAGE_MESSAGES, which the owner has: see api_moderation).
    let by_bob = bob.call(Method::PATCH, &format!("{msgs}/{m1_id}"), Some(json!({ "content": "pwned" }))).await;
    assert_error(&by_bob, StatusCode::FORBIDDEN, 50013);
    assert_error(&bob.call(Method::DELETE, &format!("{msgs}/{m1_id}"), None).await, StatusCode::FORBIDDEN, 50013);
    let by_owner = alice.call(Method::PATCH, &format!("{msgs}/{m2_id}"), Some(json!({ "content": "x" }))).await;
    assert_error(&by_owner, StatusCode::FORBIDDEN, 50013);
    let (_, hist) = bob.get(&msgs).await;
    assert_eq!((&hist[0], &hist[1]["content"]), (&m2, &json!("edited")));

    // Delete by the author: 204, gone from history, then unknown.
    let (st, body) = alice.call(Method::DELETE, &format!("{msgs}/{m1_id}"), None).await;
    assert_eq!((st, body), (StatusCode::NO_CONTENT, Value::Null));
    let (_, hist) = bob.get(&msgs).await;
    assert_eq!(hist, json!([m2]));
    assert_error(&alice.call(Method::DELETE, &format!("{msgs}/{m1_id}"), None).await, StatusCode::NOT_FOUND, 10008);
    let gone = alice.call(Method::PATCH, &format!("{msgs}/{m1_id}"), Some(json!({ "content": "back" }))).await;
    assert_error(&gone, StatusCode::NOT_FOUND, 10008);

    // Voice channels take no messages.
    assert_error(&send(&alice, &voice, "hello?").await, StatusCode::BAD_REQUEST, 50035);
    let (_, voice_hist) = alice.get(&format!("/api/channels/{voice}/messages")).await;
    assert_eq!(voice_hist, json!([]));

    // Content rules: 1–2000 characters after trimming, counted in characters.
    for bad in [String::new(), "   ".into(), " \n\t ".into(), "x".repeat(2001), "é".repeat(2001), "a\u{7}b".into()] {
        assert_error(&send(&alice, &text, &bad).await, StatusCode::BAD_REQUEST, 50035);
    }
    for ok in ["x".repeat(2000), "é".repeat(2000), format!("  {}  ", "y".repeat(2000)), "line one\n\tline two".into()]
    {
        let (st, m) = send(&alice, &text, &ok).await;
        assert_eq!(st, StatusCode::CREATED, "{} chars", ok.chars().count());
        assert_eq!(m["content"], ok.trim());
    }
    let (_, hist) = bob.get(&format!("{msgs}?limit=100")).await;
    assert_eq!(hist.as_array().map(Vec::len), Some(5), "only valid messages were stored");

    // Mentioning someone after they join records it; non-members and garbage never.
    let (_, m) = send(&bob, &text, &format!("<@{}> <@{}> <@abc> <@-5> <@{}>", carol.id, g, alice.id)).await;
    assert_eq!(m["mentions"], json!([alice.id]));
    alice.invite(&g, &carol).await;
    let (_, m) = send(&bob, &text, &format!("<@{}>", carol.id)).await;
    assert_eq!(m["mentions"], json!([carol.id]));
    server.stop().await;
}

#[tokio::test]
async fn messages_sqlite() {
    message_flows(TestServer::start().await).await;
}

#[tokio::test]
async fn messages_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, support::test_config()).await {
        message_flows(server).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Paging

#[tokio::test]
async fn paging_250_messages() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (_, text, _) = alice.guild("g").await;
    let mut sent = Vec::new();
    for i in 0..250 {
        sent.push(alice.say(&text, &format!("message {i}")).await.parse::<i64>().unwrap());
    }
    assert!(sent.windows(2).all(|w| w[0] < w[1]), "ids grow with sending order");
    let all: HashSet<i64> = sent.iter().copied().collect();

    // Backwards from the latest.
    let mut seen = Vec::new();
    let mut query = "?limit=100".to_string();
    let mut sizes = Vec::new();
    loop {
        let page = history(&alice, &text, &query).await;
        sizes.push(page.len());
        if page.is_empty() {
            break;
        }
        assert!(strictly_descending(&page), "{query}: {page:?}");
        seen.extend(&page);
        query = format!("?limit=100&before={}", page.last().unwrap());
        assert!(sizes.len() < 10, "paging backwards does not end");
    }
    assert_eq!(sizes, [100, 100, 50, 0]);
    assert!(strictly_descending(&seen), "pages continue each other without overlap");
    assert_eq!(seen.len(), 250);
    assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), all);
    assert_eq!(seen.iter().rev().copied().collect::<Vec<_>>(), sent);

    // Forwards from the beginning: pages are still newest first, the cursor is their max id.
    let mut seen = Vec::new();
    let mut query = "?limit=100&after=0".to_string();
    let mut sizes = Vec::new();
    loop {
        let page = history(&alice, &text, &query).await;
        sizes.push(page.len());
        if page.is_empty() {
            break;
        }
        assert!(strictly_descending(&page), "{query}: {page:?}");
        let newest = page[0];
        if let Some(&prev) = seen.last() {
            assert!(page.iter().all(|&id| id > prev), "{query}: overlaps the previous page");
        }
        seen.extend(page.iter().rev());
        query = format!("?limit=100&after={newest}");
        assert!(sizes.len() < 10, "paging forwards does not end");
    }
    assert_eq!(sizes, [100, 100, 50, 0]);
    assert_eq!(seen, sent, "every message exactly once, oldest to newest, no gap");

    // The first page forwards is the oldest 100; the cursor is exclusive.
    assert_eq!(
        history(&alice, &text, "?after=0&limit=100").await,
        sent[..100].iter().rev().copied().collect::<Vec<_>>()
    );
    let q = format!("?after={}&limit=3", sent[10]);
    assert_eq!(history(&alice, &text, &q).await, [sent[13], sent[12], sent[11]]);
    let q = format!("?before={}&limit=3", sent[10]);
    assert_eq!(history(&alice, &text, &q).await, [sent[9], sent[8], sent[7]]);
    let q = format!("?before={}", sent[0]);
    assert_eq!(history(&alice, &text, &q).await, Vec::<i64>::new());
    let q = format!("?after={}", sent[249]);
    assert_eq!(history(&alice, &text, &q).await, Vec::<i64>::new());

    // Default limit 50: the newest 50; limits 1 and 100 are allowed.
    let newest: Vec<i64> = sent.iter().rev().copied().collect();
    assert_eq!(history(&alice, &text, "").await, newest[..50]);
    assert_eq!(history(&alice, &text, "?limit=1").await, newest[..1]);
    assert_eq!(history(&alice, &text, "?limit=100").await, newest[..100]);

    // Invalid paging parameters.
    let q = format!("?before={}&after={}", sent[200], sent[100]);
    for bad in ["?limit=0", "?limit=101", "?limit=-1", "?limit=1000000000000", &q, "?before=abc", "?after="] {
        let got = alice.get(&format!("/api/channels/{text}/messages{bad}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, 50035);
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Read states

/// `(last_read_id, unread_count, mention_count)` of `user` in `channel`.
async fn read_state(user: &Client, guild: &str, channel: &str) -> (String, i64, i64) {
    let (st, states) = user.get(&format!("/api/guilds/{guild}/read-states")).await;
    assert_eq!(st, StatusCode::OK, "{states}");
    let s = states
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["channel_id"] == channel)
        .unwrap_or_else(|| panic!("no read state for {channel}: {states}"));
    (
        s["last_read_id"].as_str().unwrap().into(),
        s["unread_count"].as_i64().unwrap(),
        s["mention_count"].as_i64().unwrap(),
    )
}

async fn ack(user: &Client, channel: &str, message: &str) -> (StatusCode, Value) {
    user.call(Method::POST, &format!("/api/channels/{channel}/messages/{message}/ack"), None).await
}

#[tokio::test]
async fn read_states_track_unreads_and_mentions() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (g, text, voice) = alice.guild("g").await;
    alice.invite(&g, &bob).await;

    // One entry per text channel, starting at zero.
    let (st, states) = bob.get(&format!("/api/guilds/{g}/read-states")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(states, json!([{ "channel_id": text, "last_read_id": "0", "unread_count": 0, "mention_count": 0 }]));
    assert!(!states.to_string().contains(&voice));

    let a1 = alice.say(&text, "one").await;
    let a2 = alice.say(&text, &format!("two <@{}>", bob.id)).await;
    let a3 = alice.say(&text, "three").await;
    bob.say(&text, "my own message does not count").await;
    assert_eq!(read_state(&bob, &g, &text).await, ("0".into(), 3, 1));
    // For alice, bob's message is the one unread.
    assert_eq!(read_state(&alice, &g, &text).await, ("0".into(), 1, 0));

    // Ack the mention: only a3 is left, with no mention.
    assert_eq!(ack(&bob, &text, &a2).await, (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(read_state(&bob, &g, &text).await, (a2.clone(), 1, 0));
    // An older ack does not move the marker back.
    assert_eq!(ack(&bob, &text, &a1).await.0, StatusCode::NO_CONTENT);
    assert_eq!(read_state(&bob, &g, &text).await, (a2.clone(), 1, 0));

    // New messages after the marker count, mentions included.
    alice.say(&text, &format!("four <@{}>", bob.id)).await;
    let a5 = alice.say(&text, &format!("five <@{}> <@{}>", bob.id, bob.id)).await;
    assert_eq!(read_state(&bob, &g, &text).await, (a2.clone(), 3, 2));
    // Acking the newest clears everything, and acking a3 afterwards changes nothing.
    assert_eq!(ack(&bob, &text, &a5).await.0, StatusCode::NO_CONTENT);
    assert_eq!(read_state(&bob, &g, &text).await, (a5.clone(), 0, 0));
    assert_eq!(ack(&bob, &text, &a3).await.0, StatusCode::NO_CONTENT);
    assert_eq!(read_state(&bob, &g, &text).await, (a5.clone(), 0, 0));
    // Alice's state is her own.
    assert_eq!(read_state(&alice, &g, &text).await, ("0".into(), 1, 0));

    // Channels are counted separately; a channel created later shows up.
    let (st, random) =
        alice.post(&format!("/api/guilds/{g}/channels"), json!({ "name": "random", "kind": "text" })).await;
    assert_eq!(st, StatusCode::CREATED);
    let random = random["id"].as_str().unwrap().to_string();
    let r1 = alice.say(&random, &format!("elsewhere <@{}>", bob.id)).await;
    assert_eq!(read_state(&bob, &g, &random).await, ("0".into(), 1, 1));
    assert_eq!(read_state(&bob, &g, &text).await, (a5.clone(), 0, 0));
    // A message acked through the wrong channel is unknown there.
    assert_error(&ack(&bob, &text, &r1).await, StatusCode::NOT_FOUND, 10008);
    assert_eq!(read_state(&bob, &g, &text).await, (a5, 0, 0));
    assert_eq!(ack(&bob, &random, &r1).await.0, StatusCode::NO_CONTENT);
    assert_eq!(read_state(&bob, &g, &random).await, (r1, 0, 0));
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7. Reports

async fn report(c: &Client, channel: &str, message: &str, reason: &str) -> (StatusCode, Value) {
    c.post(&format!("/api/channels/{channel}/messages/{message}/reports"), json!({ "reason": reason })).await
}

async fn resolve(c: &Client, report: &str, action: Value) -> (StatusCode, Value) {
    c.post(&format!("/api/reports/{report}/resolve"), json!({ "action": action })).await
}

async fn reports(c: &Client, guild: &str, status: &str) -> Value {
    let (st, list) = c.get(&format!("/api/guilds/{guild}/reports{status}")).await;
    assert_eq!(st, StatusCode::OK, "{status}: {list}");
    list
}

#[tokio::test]
async fn report_queue() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let (g, text, _) = alice.guild("g").await;
    alice.invite(&g, &bob).await;
    alice.invite(&g, &carol).await;
    let spam1 = bob.say(&text, "buy cheap stuff").await;
    let spam2 = bob.say(&text, "buy more cheap stuff").await;
    let spam3 = bob.say(&text, "still selling").await;

    // A member reports: 201 with a copy of the message.
    let (st, r1) = report(&carol, &text, &spam1, "  spam ").await;
    assert_eq!(st, StatusCode::CREATED, "{r1}");
    assert_eq!(r1["status"], "open");
    assert_eq!((&r1["guild_id"], &r1["channel_id"], &r1["message_id"]), (&json!(g), &json!(text), &json!(spam1)));
    assert_eq!((&r1["message_author"], &r1["message_content"]), (&json!(bob.id), &json!("buy cheap stuff")));
    assert_eq!((&r1["reporter_id"], &r1["reason"]), (&json!(carol.id), &json!("spam")));
    assert_eq!((&r1["resolved_by"], &r1["resolved_at"]), (&Value::Null, &Value::Null));
    let r1_id = r1["id"].as_str().unwrap().to_string();
    assert_error(&report(&carol, &text, &spam1, "   ").await, StatusCode::BAD_REQUEST, 50035);
    assert_error(&report(&carol, &text, &spam1, &"x".repeat(501)).await, StatusCode::BAD_REQUEST, 50035);

    // The owner sees it in the open queue; members do not get the queue at all.
    assert_eq!(reports(&alice, &g, "?status=open").await, json!([r1]));
    assert_error(&bob.get(&format!("/api/guilds/{g}/reports?status=open")).await, StatusCode::FORBIDDEN, 50013);
    assert_error(&carol.get(&format!("/api/guilds/{g}/reports")).await, StatusCode::FORBIDDEN, 50013);
    let (_, r2) = report(&carol, &text, &spam2, "more spam").await;
    let (_, r3) = report(&bob, &text, &spam3, "reporting myself").await;
    let (r2_id, r3_id) = (r2["id"].as_str().unwrap().to_string(), r3["id"].as_str().unwrap().to_string());
    assert_eq!(reports(&alice, &g, "").await, json!([r3, r2, r1]), "newest first");

    // Only the owner resolves.
    assert_error(&resolve(&carol, &r1_id, json!("delete")).await, StatusCode::FORBIDDEN, 50013);
    assert_error(&resolve(&bob, &r1_id, json!("dismiss")).await, StatusCode::FORBIDDEN, 50013);

    // Delete: the report says so and the message is gone.
    let (st, done) = resolve(&alice, &r1_id, json!("delete")).await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!((&done["id"], &done["status"]), (&json!(r1_id), &json!("deleted")));
    assert_eq!(done["resolved_by"], alice.id.as_str());
    assert!(done["resolved_at"].as_i64().is_some_and(|t| t >= r1["created_at"].as_i64().unwrap()), "{done}");
    assert_eq!(done["message_content"], "buy cheap stuff", "the copy survives the message");
    let remaining = history(&carol, &text, "").await;
    assert!(!remaining.contains(&spam1.parse().unwrap()), "{remaining:?}");
    assert_eq!(remaining.len(), 2);
    // Resolving again conflicts and changes nothing.
    let again = resolve(&alice, &r1_id, json!("dismiss")).await;
    assert_error(&again, StatusCode::CONFLICT, 50035);
    assert_error(&resolve(&alice, &r1_id, json!("delete")).await, StatusCode::CONFLICT, 50035);

    // Dismiss: the message stays.
    let (st, done) = resolve(&alice, &r2_id, json!("dismiss")).await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "dismissed");
    assert_eq!(done["resolved_by"], alice.id.as_str());
    assert!(history(&carol, &text, "").await.contains(&spam2.parse().unwrap()));

    // Invalid actions are a JSON 4xx with a code, and the report stays open.
    for bad in [json!("purge"), json!("DELETE"), json!("")] {
        assert_error(&resolve(&alice, &r3_id, bad).await, StatusCode::BAD_REQUEST, 50035);
    }
    // serde_json reports a non-string where an enum is expected as a syntax error, hence 50109.
    for bad in [json!(1), Value::Null, json!(["delete"])] {
        let got = resolve(&alice, &r3_id, bad.clone()).await;
        assert_eq!(got.0, StatusCode::BAD_REQUEST, "{bad}: {got:?}");
        let code = got.1["code"].as_u64().unwrap_or_default();
        assert!([50035, 50109].contains(&code), "{bad}: {got:?}");
        assert_error(&got, StatusCode::BAD_REQUEST, code);
    }
    let no_action = alice.post(&format!("/api/reports/{r3_id}/resolve"), json!({})).await;
    assert_error(&no_action, StatusCode::BAD_REQUEST, 50035);

    // The queue by status.
    assert_eq!(ids(&reports(&alice, &g, "?status=open").await), [r3_id.as_str()]);
    assert_eq!(ids(&reports(&alice, &g, "?status=deleted").await), [r1_id]);
    assert_eq!(ids(&reports(&alice, &g, "?status=dismissed").await), [r2_id]);
    assert_error(&alice.get(&format!("/api/guilds/{g}/reports?status=closed")).await, StatusCode::BAD_REQUEST, 50035);

    // A deleted message can no longer be reported.
    assert_error(&report(&carol, &text, &spam1, "again").await, StatusCode::NOT_FOUND, 10008);
    // Deleting a message its author already deleted still resolves the report.
    assert_eq!(
        bob.call(Method::DELETE, &format!("/api/channels/{text}/messages/{spam3}"), None).await.0,
        StatusCode::NO_CONTENT
    );
    let (st, done) = resolve(&alice, &r3_id, json!("delete")).await;
    assert_eq!((st, &done["status"]), (StatusCode::OK, &json!("deleted")));
    assert_eq!(reports(&alice, &g, "?status=open").await, json!([]));
    server.stop().await;
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().expect("array").iter().map(|v| v["id"].as_str().expect("id").to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Concurrency: racing joins on a limited invite, and members sending at once.

async fn concurrent_flows(server: TestServer) {
    let alice = server.user("alice").await;
    let (g, text, _) = alice.guild("g").await;
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(server.user(&format!("user{i}")).await);
    }
    let (st, inv) = alice.post(&format!("/api/guilds/{g}/invites"), json!({ "max_uses": 3 })).await;
    assert_eq!(st, StatusCode::CREATED, "{inv}");
    let code = inv["code"].as_str().unwrap().to_string();
    let path = format!("/api/invites/{code}");
    let joins = users.iter().map(|u| u.call(Method::POST, &path, None));
    let results = futures_util::future::join_all(joins).await;
    let mut ok = 0;
    for got in &results {
        if got.0 == StatusCode::OK {
            ok += 1;
        } else {
            assert_error(got, StatusCode::NOT_FOUND, 10006);
        }
    }
    assert_eq!(ok, 3, "exactly max_uses joins win: {results:?}");
    let (_, members) = alice.get(&format!("/api/guilds/{g}/members")).await;
    assert_eq!(members.as_array().map(Vec::len), Some(4), "{members}");

    // The members that got in send 20 messages each, all at once.
    let senders: Vec<&Client> =
        users.iter().zip(&results).filter(|(_, r)| r.0 == StatusCode::OK).map(|(u, _)| u).collect();
    let text_ref = &text;
    let sends = senders
        .iter()
        .flat_map(|u| (0..20).map(move |i| async move { send(u, text_ref, &format!("{} {i}", u.id)).await }));
    let sent = futures_util::future::join_all(sends).await;
    let mut ids = HashSet::new();
    for (st, m) in &sent {
        assert_eq!(*st, StatusCode::CREATED, "{m}");
        assert!(ids.insert(id_of(m)), "duplicate id {m}");
    }
    let mut seen = HashSet::new();
    let mut query = "?limit=100".to_string();
    loop {
        let page = history(&alice, &text, &query).await;
        let Some(last) = page.last() else { break };
        query = format!("?limit=100&before={last}");
        seen.extend(page);
    }
    assert_eq!(seen, ids, "every acknowledged message is stored");
    server.stop().await;
}

#[tokio::test]
async fn concurrent_sqlite() {
    concurrent_flows(TestServer::start().await).await;
}

#[tokio::test]
async fn concurrent_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, support::test_config()).await {
        concurrent_flows(server).await;
    }
}

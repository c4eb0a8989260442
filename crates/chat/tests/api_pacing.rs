//! What people type, and how fast they may post it: line endings and long emoji messages as
//! typed, the per-user posting limit and a channel's slow mode (429 with `retry_after`).

mod common;
mod support;

use common::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Client, TestServer, assert_error};

async fn send(c: &Client, channel: &str, content: &str) -> (StatusCode, Value) {
    c.post(&format!("/api/channels/{channel}/messages"), json!({ "content": content })).await
}

#[tokio::test]
async fn typed_text_is_accepted_as_typed() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (_, text, _) = alice.guild("g").await;
    // CRLF (and a lone CR) become LF; other control characters are still refused.
    let (st, m) = send(&alice, &text, "line one\r\nline two\rthree").await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(m["content"], "line one\nline two\nthree");
    assert_error(&send(&alice, &text, "bell\u{7}").await, StatusCode::BAD_REQUEST, 50035);
    // 2,000 emoji, the JSON escaping every one as a surrogate pair (12 bytes each): accepted.
    let emoji = "\u{1F600}".repeat(2000);
    let escaped: String = json!({ "content": emoji })
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("\\u{u:04x}")).collect()
            }
        })
        .collect();
    assert!(escaped.len() > 24_000, "{}", escaped.len());
    let path = format!("/api/channels/{text}/messages");
    let got = support::raw(&alice, Method::POST, &path, Some("application/json"), escaped).await;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.2);
    assert_eq!(got.2["content"].as_str().map(|c| c.chars().count()), Some(2000));
    // One character more is refused for its length, not its bytes.
    let over = json!({ "content": "\u{1F600}".repeat(2001) }).to_string();
    let got = support::raw(&alice, Method::POST, &path, Some("application/json"), over).await;
    assert_error(&(got.0, got.2), StatusCode::BAD_REQUEST, 50035);
    server.stop().await;
}

#[tokio::test]
async fn posting_is_paced_per_user_and_by_slow_mode() {
    // Default limits: a burst of 10, then one every 500 ms.
    let cfg = chat::config::ChatConfig { login_burst_per_ip: 10_000, ..Default::default() };
    let server = TestServer::with_config(Backend::Sqlite, cfg).await.expect("sqlite");
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let (g, text, _) = alice.guild("g").await;
    alice.invite(&g, &bob).await;
    let mut accepted = 0;
    let mut limited = None;
    for i in 0..30 {
        let got = send(&bob, &text, &format!("spam {i}")).await;
        match got.0 {
            StatusCode::CREATED => accepted += 1,
            _ => {
                limited = Some(got);
                break;
            }
        }
    }
    let limited = limited.expect("the flood is cut off");
    assert!((10..=12).contains(&accepted), "a burst of ~10 gets through: {accepted}");
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, 40029);
    let wait = limited.1["retry_after"].as_f64().expect("retry_after");
    assert!(wait > 0.0 && wait <= 0.5, "{wait}");
    // Others are not held back by bob's flood.
    assert_eq!(send(&alice, &text, "me too").await.0, StatusCode::CREATED);

    // Slow mode: only the owner sets it, on text channels, within 0..=21600.
    let ch = format!("/api/channels/{text}");
    let patch = |c: &Client, body: Value| {
        let (c, ch) = (c.clone(), ch.clone());
        async move { c.call(Method::PATCH, &ch, Some(body)).await }
    };
    assert_error(&patch(&bob, json!({ "slow_mode_secs": 5 })).await, StatusCode::FORBIDDEN, 50013);
    assert_error(&patch(&alice, json!({ "slow_mode_secs": 21_601 })).await, StatusCode::BAD_REQUEST, 50035);
    assert_error(&patch(&alice, json!({})).await, StatusCode::BAD_REQUEST, 50035);
    let (st, updated) = patch(&alice, json!({ "slow_mode_secs": 30 })).await;
    assert_eq!((st, &updated["slow_mode_secs"]), (StatusCode::OK, &json!(30)), "{updated}");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let carol = server.user("carol").await;
    alice.invite(&g, &carol).await;
    assert_eq!(send(&carol, &text, "first").await.0, StatusCode::CREATED);
    let slowed = send(&carol, &text, "second").await;
    assert_error(&slowed, StatusCode::TOO_MANY_REQUESTS, 40029);
    assert!(slowed.1["message"].as_str().unwrap().contains("slow mode"), "{}", slowed.1);
    let wait = slowed.1["retry_after"].as_f64().unwrap();
    assert!(wait > 25.0 && wait <= 30.0, "{wait}");
    // The owner is exempt; the channel list shows the setting.
    assert_eq!(send(&alice, &text, "owner 1").await.0, StatusCode::CREATED);
    assert_eq!(send(&alice, &text, "owner 2").await.0, StatusCode::CREATED);
    let (_, channels) = alice.get(&format!("/api/guilds/{g}/channels")).await;
    assert_eq!(channels[0]["slow_mode_secs"], 30, "{channels}");
    server.stop().await;
}

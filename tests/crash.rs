//! Durability: SIGKILL the `confab` process while clients are sending, restart it on the same
//! store, and find every message whose send was acknowledged (HTTP 201).

use serde_json::{Value, json};
mod common;

use common::Server;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    let bytes = res.bytes().await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

async fn sigkill_loses_no_acknowledged_message(database_url: &str) {
    use reqwest::Method;
    let http = reqwest::Client::new();
    // Writers go as fast as they can: the per-user posting limit would cut them off.
    let mut server = Server::start(database_url, &[("CONFAB_CHAT_MESSAGE_BURST_PER_USER", "100000000")]);
    let (st, signup) = call(
        &http,
        Method::POST,
        format!("{}/api/auth/signup", server.base),
        None,
        Some(json!({"username": "durable", "password": "password-durable"})),
    )
    .await
    .unwrap();
    assert_eq!(st, 201, "{signup}");
    let token = signup["token"].as_str().unwrap().to_string();
    let (st, guild) =
        call(&http, Method::POST, format!("{}/api/guilds", server.base), Some(&token), Some(json!({"name": "g"})))
            .await
            .unwrap();
    assert_eq!(st, 201, "{guild}");
    let channel = guild["channels"][0]["id"].as_str().unwrap().to_string();

    // Four writers send as fast as they can; every 201 is recorded as acknowledged.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, token, acked) = (http.clone(), token.clone(), acked.clone());
        let url = format!("{}/api/channels/{channel}/messages", server.base);
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                match call(
                    &http,
                    Method::POST,
                    url.clone(),
                    Some(&token),
                    Some(json!({"content": format!("w{w} m{i}")})),
                )
                .await
                {
                    Ok((201, body)) => acked.lock().unwrap().push(body["id"].as_str().unwrap().to_string()),
                    Ok((status, body)) => panic!("unexpected {status}: {body}"),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Kill mid-stream, once a good number of sends were acknowledged.
    for _ in 0..600 {
        if acked.lock().unwrap().len() >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill(); // std's kill() is SIGKILL on unix
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200, "only {} sends acknowledged before the kill", acked.len());
    eprintln!("{} sends acknowledged before SIGKILL", acked.len());

    let mut server = Server::start(database_url, &[]);
    let mut stored = std::collections::HashSet::new();
    let mut before: Option<String> = None;
    loop {
        let cursor = before.as_ref().map(|b| format!("&before={b}")).unwrap_or_default();
        let url = format!("{}/api/channels/{channel}/messages?limit=100{cursor}", server.base);
        let (st, page) = call(&http, Method::GET, url, Some(&token), None).await.unwrap();
        assert_eq!(st, 200, "{page}");
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        for m in &page {
            stored.insert(m["id"].as_str().unwrap().to_string());
        }
        before = page.last().and_then(|m| m["id"].as_str()).map(String::from);
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged messages lost: {lost:?}", lost.len(), acked.len());
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    sigkill_loses_no_acknowledged_message(&format!("sqlite:{}", dir.path().join("confab.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_postgres() {
    let Ok(admin) = std::env::var("CONFAB_TEST_POSTGRES_URL") else {
        assert_ne!(
            std::env::var("CONFAB_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "CONFAB_TEST_POSTGRES_URL is required"
        );
        eprintln!("skipping postgres: CONFAB_TEST_POSTGRES_URL not set");
        return;
    };
    use sqlx::{Connection, Executor};
    let name = format!("confab_crash_{}", std::process::id());
    let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
    conn.close().await.unwrap();
    let url = format!("{}/{name}", &admin[..admin.rfind('/').unwrap()]);
    sigkill_loses_no_acknowledged_message(&url).await;
}

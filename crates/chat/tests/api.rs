//! REST API over real HTTP: accounts and sessions, login rate limits, guilds/invites/channels, and
//! guild isolation for non-members. Messages, paging, read states and reports are in
//! `api_messages.rs`; unknown ids and malformed requests in `api_errors.rs`.

mod common;
mod support;

use chat::config::ChatConfig;
use common::Backend;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Client, TestServer, assert_error, creds, raw};

fn with_token(c: &Client, token: &str) -> Client {
    Client { token: Some(token.to_string()), ..c.clone() }
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array().expect("array").iter().map(|v| v[key].as_str().expect("id").to_string()).collect()
}

/// Voice channels carry a room mode: set at creation, changed by the owner only, null on text channels.
async fn voice_modes(server: TestServer) {
    let owner = server.user("owner").await;
    let member = server.user("member").await;
    let (g, text, voice) = owner.guild("modes").await;
    owner.invite(&g, &member).await;
    let (_, channels) = owner.get(&format!("/api/guilds/{g}/channels")).await;
    let mode_of = |id: &str| channels.as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()["voice_mode"].clone();
    assert_eq!(mode_of(&voice), "hybrid", "the default");
    assert_eq!(mode_of(&text), Value::Null);

    let (st, ch) = owner
        .post(&format!("/api/guilds/{g}/channels"), json!({"name": "bench", "kind": "voice", "voice_mode": "mcu"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ch}");
    assert_eq!(ch["voice_mode"], "mcu");
    let bad = owner
        .post(&format!("/api/guilds/{g}/channels"), json!({"name": "t", "kind": "text", "voice_mode": "sfu"}))
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, 50035);
    let bad = owner
        .post(&format!("/api/guilds/{g}/channels"), json!({"name": "v", "kind": "voice", "voice_mode": "p2p"}))
        .await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST, "{:?}", bad.1);

    let patch = |c: &Client, id: &str, mode: &str| {
        let (c, path, body) = (c.clone(), format!("/api/channels/{id}"), json!({ "voice_mode": mode }));
        async move { c.call(Method::PATCH, &path, Some(body)).await }
    };
    let (st, ch) = patch(&owner, &voice, "sfu").await;
    assert_eq!((st, ch["voice_mode"].clone()), (StatusCode::OK, json!("sfu")), "{ch}");
    assert_error(&patch(&member, &voice, "mcu").await, StatusCode::FORBIDDEN, 50013);
    assert_error(&patch(&owner, &text, "mcu").await, StatusCode::BAD_REQUEST, 50035);
    let (_, channels) = member.get(&format!("/api/guilds/{g}/channels")).await;
    let stored = channels.as_array().unwrap().iter().find(|c| c["id"] == voice.as_str()).unwrap()["voice_mode"].clone();
    assert_eq!(stored, "sfu", "the change is stored");
    server.stop().await;
}

#[tokio::test]
async fn voice_modes_sqlite() {
    voice_modes(TestServer::start().await).await;
}

#[tokio::test]
async fn voice_modes_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, support::test_config()).await {
        voice_modes(server).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Accounts

#[tokio::test]
async fn signup_login_logout_and_me() {
    let server = TestServer::start().await;
    let anon = Client::anonymous(&server);

    let (st, body) = anon.post("/api/auth/signup", creds("alice", "correct horse")).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    assert!(token.len() >= 20, "token looks random: {token}");
    let user = &body["user"];
    assert_eq!(user["username"], "alice");
    let alice_id = user["id"].as_str().expect("id as string").to_string();
    assert!(alice_id.parse::<i64>().is_ok_and(|n| n > 0), "{alice_id}");
    assert!(user.get("password_hash").is_none() && user.get("password").is_none(), "{user}");
    assert!(body["expires_at"].as_i64().is_some_and(|t| t > user["created_at"].as_i64().unwrap()), "{body}");

    // Duplicates, in any case, are refused.
    for dup in ["alice", "ALICE", "Alice"] {
        let got = anon.post("/api/auth/signup", creds(dup, "another password")).await;
        assert_error(&got, StatusCode::CONFLICT, 40009);
    }
    // Invalid usernames and passwords.
    assert_error(&anon.post("/api/auth/signup", creds("a", "long enough")).await, StatusCode::BAD_REQUEST, 50035);
    assert_error(
        &anon.post("/api/auth/signup", creds("bad name", "long enough")).await,
        StatusCode::BAD_REQUEST,
        50035,
    );
    assert_error(&anon.post("/api/auth/signup", creds("bob", "short")).await, StatusCode::BAD_REQUEST, 50035);

    // @me with the signup token.
    let alice = with_token(&anon, &token);
    let (st, me) = alice.get("/api/users/@me").await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["id"], alice_id.as_str());
    assert_eq!(me["username"], "alice");

    // Login (case-insensitive username) gives a second, independent session.
    let (st, login) = anon.post("/api/auth/login", creds("ALICE", "correct horse")).await;
    assert_eq!(st, StatusCode::OK, "{login}");
    assert_eq!(login["user"]["id"], alice_id.as_str());
    assert_eq!(login["user"]["username"], "alice");
    let token2 = login["token"].as_str().expect("token").to_string();
    assert_ne!(token2, token);
    let alice2 = with_token(&anon, &token2);
    assert_eq!(alice2.get("/api/users/@me").await.1["id"], alice_id.as_str());

    // Wrong password and unknown user: the same 401 and the same message.
    let wrong = anon.post("/api/auth/login", creds("alice", "wrong password")).await;
    let unknown = anon.post("/api/auth/login", creds("nobody", "correct horse")).await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, 40002);
    assert_error(&unknown, StatusCode::UNAUTHORIZED, 40002);
    assert_eq!(wrong.1["message"], unknown.1["message"]);

    // Logout ends only that session.
    let (st, body) = alice.call(Method::POST, "/api/auth/logout", None).await;
    assert_eq!((st, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_error(&alice.get("/api/users/@me").await, StatusCode::UNAUTHORIZED, 40001);
    assert_error(&alice.call(Method::POST, "/api/auth/logout", None).await, StatusCode::UNAUTHORIZED, 40001);
    assert_eq!(alice2.get("/api/users/@me").await.0, StatusCode::OK);

    // Missing, garbage and non-bearer credentials.
    assert_error(&anon.get("/api/users/@me").await, StatusCode::UNAUTHORIZED, 40001);
    assert_error(&with_token(&anon, "garbage").get("/api/users/@me").await, StatusCode::UNAUTHORIZED, 40001);
    assert_error(&with_token(&anon, "").get("/api/guilds").await, StatusCode::UNAUTHORIZED, 40001);
    let res = anon.http.get(server.url("/api/users/@me")).header("Authorization", format!("Basic {token2}")).send();
    let res = res.await.expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.expect("JSON");
    assert_eq!(body["code"], 40001);
    server.stop().await;
}

#[tokio::test]
async fn sessions_expire() {
    let cfg = ChatConfig { session_ttl_secs: 1, ..support::test_config() };
    let server = TestServer::with_config(Backend::Sqlite, cfg).await.expect("sqlite");
    let alice = server.user("alice").await;
    let (st, me) = alice.get("/api/users/@me").await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "alice");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_error(&alice.get("/api/users/@me").await, StatusCode::UNAUTHORIZED, 40001);
    assert_error(&alice.get("/api/guilds").await, StatusCode::UNAUTHORIZED, 40001);
    // Logging in again gives a fresh, working session.
    let (st, login) = alice.post("/api/auth/login", creds("alice", "password-alice")).await;
    assert_eq!(st, StatusCode::OK, "{login}");
    let fresh = with_token(&alice, login["token"].as_str().unwrap());
    assert_eq!(fresh.get("/api/users/@me").await.0, StatusCode::OK);
    server.stop().await;
}

/// Asserts a 429 with code 40029 and a sane `Retry-After` (whole seconds, at most `max_secs`).
fn assert_rate_limited(got: &(StatusCode, HeaderMap, Value), max_secs: u64) {
    let (st, headers, body) = got;
    assert_error(&(*st, body.clone()), StatusCode::TOO_MANY_REQUESTS, 40029);
    let after = headers.get(RETRY_AFTER).expect("Retry-After header").to_str().unwrap();
    let secs: u64 = after.parse().unwrap_or_else(|_| panic!("Retry-After in seconds: {after}"));
    assert!((1..=max_secs).contains(&secs), "Retry-After {secs}");
    // The body says how long too, in words and as `retry_after`.
    let retry = body["retry_after"].as_f64().expect("retry_after");
    assert!(retry > 0.0 && retry <= secs as f64, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("try again in {secs} s")), "{message}");
}

async fn login(c: &Client, name: &str, password: &str) -> (StatusCode, HeaderMap, Value) {
    raw(c, Method::POST, "/api/auth/login", Some("application/json"), creds(name, password).to_string()).await
}

#[tokio::test]
async fn login_rate_limit_per_account() {
    let cfg = ChatConfig { login_burst_per_account: 3, login_refill_secs_per_account: 3600, ..support::test_config() };
    let server = TestServer::with_config(Backend::Sqlite, cfg).await.expect("sqlite");
    server.user("alice").await;
    server.user("bob").await;
    let anon = Client::anonymous(&server);

    // Failed and successful attempts both count; the key ignores case.
    assert_eq!(login(&anon, "alice", "wrong password").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&anon, "alice", "password-alice").await.0, StatusCode::OK);
    assert_eq!(login(&anon, "Alice", "wrong password").await.0, StatusCode::UNAUTHORIZED);
    // The 4th attempt is refused even with the right password.
    assert_rate_limited(&login(&anon, "alice", "password-alice").await, 3600);
    assert_rate_limited(&login(&anon, "ALICE", "password-alice").await, 3600);

    // Another account from the same address is unaffected.
    let (st, _, body) = login(&anon, "bob", "password-bob").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "bob");
    server.stop().await;
}

#[tokio::test]
async fn login_rate_limit_per_ip() {
    let cfg = ChatConfig { login_burst_per_ip: 4, login_refill_secs_per_ip: 3600, ..support::test_config() };
    let server = TestServer::with_config(Backend::Sqlite, cfg).await.expect("sqlite");
    // Signups take from the same per-IP bucket: 2 of 4.
    let alice = server.user("alice").await;
    server.user("bob").await;
    let anon = Client::anonymous(&server);
    assert_eq!(login(&anon, "alice", "password-alice").await.0, StatusCode::OK);
    assert_eq!(login(&anon, "bob", "wrong password").await.0, StatusCode::UNAUTHORIZED);
    // The bucket is empty: any account, and signups, are refused from this address.
    assert_rate_limited(&login(&anon, "bob", "password-bob").await, 3600);
    assert_rate_limited(&login(&anon, "carol", "password-carol").await, 3600);
    let signup = raw(
        &anon,
        Method::POST,
        "/api/auth/signup",
        Some("application/json"),
        creds("carol", "password-carol").to_string(),
    )
    .await;
    assert_rate_limited(&signup, 3600);
    // Sessions already handed out keep working.
    let (st, me) = alice.get("/api/users/@me").await;
    assert_eq!((st, &me["username"]), (StatusCode::OK, &json!("alice")));
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Guilds, invites, channels (SQLite and Postgres)

async fn create_invite(c: &Client, guild: &str, body: Value) -> String {
    let (st, inv) = c.post(&format!("/api/guilds/{guild}/invites"), body).await;
    assert_eq!(st, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["guild_id"], guild);
    assert_eq!(inv["uses"], 0);
    inv["code"].as_str().expect("code").to_string()
}

async fn join(c: &Client, code: &str) -> (StatusCode, Value) {
    c.call(Method::POST, &format!("/api/invites/{code}"), None).await
}

async fn guild_flows(server: TestServer) {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let dave = server.user("dave").await;
    let erin = server.user("erin").await;

    // Create: the guild plus `general` (text) and `General` (voice).
    let (st, created) = alice.post("/api/guilds", json!({ "name": "  Alice's place " })).await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let g = created["guild"]["id"].as_str().expect("guild id").to_string();
    assert_eq!(created["guild"]["name"], "Alice's place");
    assert_eq!(created["guild"]["owner_id"], alice.id.as_str());
    let chans = created["channels"].as_array().expect("channels");
    assert_eq!(chans.len(), 2, "{created}");
    assert_eq!(
        (&chans[0]["name"], &chans[0]["kind"], &chans[0]["position"]),
        (&json!("general"), &json!("text"), &json!(0))
    );
    assert_eq!(
        (&chans[1]["name"], &chans[1]["kind"], &chans[1]["position"]),
        (&json!("General"), &json!("voice"), &json!(1))
    );
    assert!(chans.iter().all(|c| c["guild_id"] == g.as_str()));
    let (st, listed) = alice.get(&format!("/api/guilds/{g}/channels")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(&listed, &created["channels"]);
    let (st, got) = alice.get(&format!("/api/guilds/{g}")).await;
    assert_eq!(st, StatusCode::OK);
    for k in ["id", "name", "owner_id", "created_at"] {
        assert_eq!(got[k], created["guild"][k], "{k}");
    }
    assert_eq!(
        (&got["roles"], &got["permissions"], &got["rank"]),
        (&created["roles"], &created["permissions"], &created["rank"])
    );
    assert_error(&alice.post("/api/guilds", json!({ "name": "   " })).await, StatusCode::BAD_REQUEST, 50035);

    // An invite with an age limit, checked at the end (it must be at least 1 s old by then).
    let expiring = create_invite(&alice, &g, json!({ "max_age_secs": 1 })).await;
    let expiring_at = tokio::time::Instant::now();

    // max_uses 1: bob gets in, carol does not.
    let (st, inv) = alice.post(&format!("/api/guilds/{g}/invites"), json!({ "max_uses": 1 })).await;
    assert_eq!(st, StatusCode::CREATED, "{inv}");
    assert_eq!((&inv["max_uses"], &inv["uses"], &inv["expires_at"]), (&json!(1), &json!(0), &Value::Null));
    assert_eq!(inv["creator_id"], alice.id.as_str());
    let once = inv["code"].as_str().unwrap().to_string();
    let (st, joined) = join(&bob, &once).await;
    assert_eq!(st, StatusCode::OK, "{joined}");
    assert_eq!(joined["guild"]["id"], g.as_str());
    assert_eq!(joined["channels"].as_array().map(Vec::len), Some(2));
    assert_error(&join(&carol, &once).await, StatusCode::NOT_FOUND, 10006);
    assert_error(&join(&carol, "no-such-code").await, StatusCode::NOT_FOUND, 10006);

    // Joining twice is fine and counts once: with max_uses 2, carol twice and dave still fit.
    let twice = create_invite(&bob, &g, json!({ "max_uses": 2 })).await; // any member may invite
    assert_eq!(join(&carol, &twice).await.0, StatusCode::OK);
    let (st, again) = join(&carol, &twice).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(again["guild"]["id"], g.as_str());
    assert_eq!(join(&dave, &twice).await.0, StatusCode::OK);
    assert_error(&join(&erin, &twice).await, StatusCode::NOT_FOUND, 10006);

    // Channels: the owner creates them, a member may not.
    let (st, ch) = alice.post(&format!("/api/guilds/{g}/channels"), json!({ "name": "random", "kind": "text" })).await;
    assert_eq!(st, StatusCode::CREATED, "{ch}");
    assert_eq!((&ch["name"], &ch["kind"], &ch["position"]), (&json!("random"), &json!("text"), &json!(2)));
    assert_eq!(ch["guild_id"], g.as_str());
    let (st, ch2) =
        alice.post(&format!("/api/guilds/{g}/channels"), json!({ "name": "Lounge", "kind": "voice" })).await;
    assert_eq!((st, &ch2["kind"], &ch2["position"]), (StatusCode::CREATED, &json!("voice"), &json!(3)));
    let denied = bob.post(&format!("/api/guilds/{g}/channels"), json!({ "name": "mine", "kind": "text" })).await;
    assert_error(&denied, StatusCode::FORBIDDEN, 50013);
    let bad_kind = alice.post(&format!("/api/guilds/{g}/channels"), json!({ "name": "x", "kind": "video" })).await;
    assert_error(&bad_kind, StatusCode::BAD_REQUEST, 50035);
    let no_name = alice.post(&format!("/api/guilds/{g}/channels"), json!({ "name": "", "kind": "text" })).await;
    assert_error(&no_name, StatusCode::BAD_REQUEST, 50035);
    let (_, listed) = bob.get(&format!("/api/guilds/{g}/channels")).await;
    let names: Vec<_> = listed.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["general", "General", "random", "Lounge"]);

    // Guild lists: only one's own guilds.
    let (other, _, _) = alice.guild("Alice's other place").await;
    let (st, mine) = alice.get("/api/guilds").await;
    assert_eq!(st, StatusCode::OK);
    let mut mine = ids(&mine, "id");
    mine.sort();
    let mut want = vec![g.clone(), other.clone()];
    want.sort();
    assert_eq!(mine, want);
    let (_, bobs) = bob.get("/api/guilds").await;
    assert_eq!(ids(&bobs, "id"), [g.as_str()]);
    assert_eq!(bobs[0]["name"], "Alice's place");
    let (st, erins) = erin.get("/api/guilds").await;
    assert_eq!((st, erins), (StatusCode::OK, json!([])));

    // Members, with usernames.
    let (st, members) = bob.get(&format!("/api/guilds/{g}/members")).await;
    assert_eq!(st, StatusCode::OK, "{members}");
    let mut got: Vec<(String, String)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user_id"].as_str().unwrap().to_string(), m["username"].as_str().unwrap().to_string()))
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = [&alice, &bob, &carol, &dave]
        .iter()
        .zip(["alice", "bob", "carol", "dave"])
        .map(|(c, n)| (c.id.clone(), n.into()))
        .collect();
    want.sort();
    assert_eq!(got, want);
    let (_, other_members) = alice.get(&format!("/api/guilds/{other}/members")).await;
    assert_eq!(ids(&other_members, "user_id"), [alice.id.as_str()]);

    // The age-limited invite has expired by now.
    tokio::time::sleep_until(expiring_at + Duration::from_millis(1200)).await;
    assert_error(&join(&erin, &expiring).await, StatusCode::NOT_FOUND, 10006);
    assert_error(&erin.get(&format!("/api/guilds/{g}")).await, StatusCode::FORBIDDEN, 50001);
    // A fresh age-limited invite still works at once.
    let fresh = create_invite(&alice, &g, json!({ "max_age_secs": 60 })).await;
    assert_eq!(join(&erin, &fresh).await.0, StatusCode::OK);
    assert_eq!(erin.get(&format!("/api/guilds/{g}")).await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn guild_invite_channel_flows_sqlite() {
    guild_flows(TestServer::start().await).await;
}

#[tokio::test]
async fn guild_invite_channel_flows_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, support::test_config()).await {
        guild_flows(server).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Guild isolation

/// A 403 "not a member" whose body gives nothing of the guild away.
#[track_caller]
fn assert_no_access(got: &(StatusCode, Value), secrets: &[&str]) {
    assert_error(got, StatusCode::FORBIDDEN, 50001);
    let text = got.1.to_string();
    for s in secrets {
        assert!(!text.contains(s), "403 body leaks {s:?}: {text}");
    }
}

#[tokio::test]
async fn non_members_are_denied_everything() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mallory = server.user("mallory").await;
    let (g, text, voice) = alice.guild("Secret Garden").await;
    alice.invite(&g, &bob).await;
    let m = alice.say(&text, "the password is swordfish").await;
    let (st, report) =
        bob.post(&format!("/api/channels/{text}/messages/{m}/reports"), json!({ "reason": "leaks" })).await;
    assert_eq!(st, StatusCode::CREATED, "{report}");
    let r = report["id"].as_str().unwrap();
    let secrets = ["Secret Garden", "swordfish", "general", &g, &text, &m, &alice.id, &bob.id];

    for path in [
        format!("/api/guilds/{g}"),
        format!("/api/guilds/{g}/channels"),
        format!("/api/guilds/{g}/members"),
        format!("/api/guilds/{g}/read-states"),
        format!("/api/guilds/{g}/voice-states"),
        format!("/api/guilds/{g}/reports"),
        format!("/api/guilds/{g}/reports?status=open"),
        format!("/api/channels/{text}/messages"),
        format!("/api/channels/{text}/messages?after=0&limit=100"),
        format!("/api/channels/{voice}/messages"),
    ] {
        assert_no_access(&mallory.get(&path).await, &secrets);
    }
    let posts = [
        (Method::POST, format!("/api/channels/{text}/messages"), Some(json!({ "content": "hi" }))),
        (Method::POST, format!("/api/channels/{text}/typing"), None),
        (Method::POST, format!("/api/channels/{voice}/voice"), None),
        (Method::POST, format!("/api/guilds/{g}/invites"), Some(json!({}))),
        (Method::POST, format!("/api/guilds/{g}/channels"), Some(json!({ "name": "x", "kind": "text" }))),
        (Method::PATCH, format!("/api/channels/{text}/messages/{m}"), Some(json!({ "content": "mine" }))),
        (Method::DELETE, format!("/api/channels/{text}/messages/{m}"), None),
        (Method::POST, format!("/api/channels/{text}/messages/{m}/ack"), None),
        (Method::POST, format!("/api/channels/{text}/messages/{m}/reports"), Some(json!({ "reason": "x" }))),
        (Method::POST, format!("/api/reports/{r}/resolve"), Some(json!({ "action": "dismiss" }))),
    ];
    for (method, path, body) in posts {
        let got = mallory.call(method.clone(), &path, body).await;
        assert!(got.0 == StatusCode::FORBIDDEN, "{method} {path}: {got:?}");
        assert_no_access(&got, &secrets);
    }
    // Nothing changed: the message is intact, no stray channel, the report still open.
    let (_, history) = alice.get(&format!("/api/channels/{text}/messages")).await;
    assert_eq!(history.as_array().map(Vec::len), Some(1));
    assert_eq!(history[0]["content"], "the password is swordfish");
    assert_eq!(history[0]["edited_at"], Value::Null);
    assert_eq!(alice.get(&format!("/api/guilds/{g}/channels")).await.1.as_array().map(Vec::len), Some(2));
    let (_, open) = alice.get(&format!("/api/guilds/{g}/reports?status=open")).await;
    assert_eq!(ids(&open, "id"), [r.to_string()]);
    let (_, mallorys) = mallory.get("/api/guilds").await;
    assert_eq!(mallorys, json!([]));
    server.stop().await;
}

//! Roles, permissions and moderation over real HTTP and the gateway (SQLite and Postgres): every
//! protected route refuses a member without its permission; roles grant them, and no one can grant
//! more than they hold or act on someone who ranks as high; time-outs stop posting, reacting,
//! typing and voice; kicks and bans take a member out at once (bans keep them out); reports are
//! resolved with those actions; everything lands in the audit log.

mod common;
mod support;

use common::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Client, Gateway, TestServer, assert_error};

const KICK: u64 = 1 << 1;
const BAN: u64 = 1 << 2;
const ADMIN: u64 = 1 << 3;
const MANAGE_GUILD: u64 = 1 << 5;
const VIEW_AUDIT_LOG: u64 = 1 << 7;
const MANAGE_MESSAGES: u64 = 1 << 13;
const MANAGE_ROLES: u64 = 1 << 28;
const MODERATE: u64 = 1 << 40;

const FORBIDDEN: u64 = 50013;

async fn send(c: &Client, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    c.call(method, path, Some(body)).await
}

/// A plain member is refused by every route that needs a permission (403 50013), the owner not.
async fn refusals(bob: &Client, g: &str, text: &str, carol: &Client, carol_msg: &str) {
    let carol_id = &carol.id;
    let cases: Vec<(Method, String, Value)> = vec![
        (Method::POST, format!("/api/guilds/{g}/channels"), json!({ "name": "x", "kind": "text" })),
        (Method::PATCH, format!("/api/channels/{text}"), json!({ "topic": "mine now" })),
        (Method::DELETE, format!("/api/channels/{text}"), Value::Null),
        (Method::PATCH, format!("/api/guilds/{g}"), json!({ "name": "taken" })),
        (Method::DELETE, format!("/api/guilds/{g}"), Value::Null),
        (Method::POST, format!("/api/guilds/{g}/roles"), json!({ "name": "me", "permissions": ADMIN.to_string() })),
        (Method::DELETE, format!("/api/guilds/{g}/members/{carol_id}"), Value::Null),
        (Method::PATCH, format!("/api/guilds/{g}/members/{carol_id}"), json!({ "timeout_until": i64::MAX / 2 })),
        (Method::PUT, format!("/api/guilds/{g}/bans/{carol_id}"), json!({})),
        (Method::GET, format!("/api/guilds/{g}/bans"), Value::Null),
        (Method::GET, format!("/api/guilds/{g}/audit-log"), Value::Null),
        (Method::GET, format!("/api/guilds/{g}/invites"), Value::Null),
        (Method::GET, format!("/api/guilds/{g}/reports"), Value::Null),
        (Method::DELETE, format!("/api/channels/{text}/messages/{carol_msg}"), Value::Null),
        (Method::PUT, format!("/api/guilds/{g}/members/{carol_id}/roles/{g}"), Value::Null),
    ];
    for (method, path, body) in cases {
        let body = (!body.is_null()).then_some(body);
        let got = bob.call(method.clone(), &path, body).await;
        assert_eq!(got.0, StatusCode::FORBIDDEN, "{method} {path}: {got:?}");
        assert_eq!(got.1["code"], json!(FORBIDDEN), "{method} {path}: {got:?}");
    }
}

async fn flows(server: TestServer) {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let dave = server.user("dave").await;
    let (g, text, _voice) = alice.guild("g").await;
    for u in [&bob, &carol, &dave] {
        alice.invite(&g, u).await;
    }
    let carol_msg = carol.say(&text, "hello from carol").await;
    refusals(&bob, &g, &text, &carol, &carol_msg).await;

    // @everyone exists and may create invites; the guild tells each member what they may do.
    let (_, roles) = bob.get(&format!("/api/guilds/{g}/roles")).await;
    assert_eq!(roles.as_array().unwrap().len(), 1);
    assert_eq!(roles[0]["id"], json!(g));
    assert_eq!(roles[0]["name"], "@everyone");
    assert_eq!(roles[0]["permissions"], "1");
    let (_, mine) = bob.get(&format!("/api/guilds/{g}")).await;
    assert_eq!(mine["permissions"], "1");
    let (_, owners) = alice.get(&format!("/api/guilds/{g}")).await;
    assert_ne!(owners["permissions"], "1", "the owner has them all: {owners}");

    // A moderator role for bob.
    let mod_bits = KICK | MODERATE | MANAGE_MESSAGES | VIEW_AUDIT_LOG | MANAGE_ROLES;
    let (st, role) = alice
        .post(&format!("/api/guilds/{g}/roles"), json!({ "name": "mod", "permissions": mod_bits.to_string() }))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{role}");
    let mod_role = role["id"].as_str().unwrap().to_string();
    let (mut carol_gw, _) = Gateway::identify(&server, carol.token.as_deref().unwrap()).await;
    let (mut alice_gw, _) = Gateway::identify(&server, alice.token.as_deref().unwrap()).await;
    let give = format!("/api/guilds/{g}/members/{}/roles/{mod_role}", bob.id);
    assert_eq!(bob.call(Method::PUT, &give, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(alice.call(Method::PUT, &give, None).await.0, StatusCode::NO_CONTENT);
    let update = carol_gw.recv_event("GUILD_MEMBER_UPDATE").await;
    assert_eq!(update["d"]["user_id"], json!(bob.id));
    assert_eq!(update["d"]["roles"], json!([mod_role]));
    let (_, mine) = bob.get(&format!("/api/guilds/{g}")).await;
    assert_eq!(mine["permissions"], json!((mod_bits | 1).to_string()), "permissions apply at once");
    assert_eq!(mine["rank"], json!(1));
    let (_, members) = alice.get(&format!("/api/guilds/{g}/members")).await;
    let bob_m = members.as_array().unwrap().iter().find(|m| m["user_id"] == json!(bob.id)).unwrap();
    assert_eq!(bob_m["roles"], json!([mod_role]));

    // No escalation: bob cannot grant what he lacks, touch his own rank's role, or act on alice.
    let ban_role = json!({ "name": "b", "permissions": BAN.to_string() });
    assert_error(&bob.post(&format!("/api/guilds/{g}/roles"), ban_role).await, StatusCode::FORBIDDEN, FORBIDDEN);
    let raise = json!({ "permissions": (mod_bits | ADMIN).to_string() });
    let mod_path = format!("/api/guilds/{g}/roles/{mod_role}");
    assert_error(&send(&bob, Method::PATCH, &mod_path, raise).await, StatusCode::FORBIDDEN, FORBIDDEN);
    let kick_alice = format!("/api/guilds/{g}/members/{}", alice.id);
    assert_error(&bob.call(Method::DELETE, &kick_alice, None).await, StatusCode::FORBIDDEN, FORBIDDEN);
    let unknown_bits = json!({ "name": "x", "permissions": (1u64 << 60).to_string() });
    assert_error(&alice.post(&format!("/api/guilds/{g}/roles"), unknown_bits).await, StatusCode::BAD_REQUEST, 50035);
    let (st, low) = bob.post(&format!("/api/guilds/{g}/roles"), json!({ "name": "helper" })).await;
    assert_eq!(st, StatusCode::CREATED, "a role below his own: {low}");
    // A role at bob's own position (1) is not his to hand out: he must outrank it.
    let low_id = low["id"].as_str().unwrap();
    let give_low = format!("/api/guilds/{g}/members/{}/roles/{low_id}", dave.id);
    assert_error(&bob.call(Method::PUT, &give_low, None).await, StatusCode::FORBIDDEN, FORBIDDEN);
    let (st, _) = send(&alice, Method::PATCH, &mod_path, json!({ "position": 2 })).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(bob.call(Method::PUT, &give_low, None).await.0, StatusCode::NO_CONTENT);

    // Time-out: carol reads but cannot post, react, type or join voice; then it ends.
    let carol_path = format!("/api/guilds/{g}/members/{}", carol.id);
    let until = now_ms() + 600_000;
    let (st, m) = send(&bob, Method::PATCH, &carol_path, json!({ "timeout_until": until, "reason": "cool off" })).await;
    assert_eq!(st, StatusCode::OK, "{m}");
    assert_eq!(m["timeout_until"], json!(until));
    let mut e = alice_gw.recv_event("GUILD_MEMBER_UPDATE").await;
    while e["d"]["user_id"] != json!(carol.id) {
        e = alice_gw.recv_event("GUILD_MEMBER_UPDATE").await;
    }
    assert_eq!((e["d"]["user_id"].clone(), e["d"]["timeout_until"].clone()), (json!(carol.id), json!(until)));
    let post = carol.post(&format!("/api/channels/{text}/messages"), json!({ "content": "hi" })).await;
    assert_error(&post, StatusCode::FORBIDDEN, FORBIDDEN);
    assert!(post.1["message"].as_str().unwrap().contains("timed out"), "{post:?}");
    assert_error(
        &carol.post(&format!("/api/channels/{text}/typing"), json!({})).await,
        StatusCode::FORBIDDEN,
        FORBIDDEN,
    );
    let react = format!("/api/channels/{text}/messages/{carol_msg}/reactions/%F0%9F%91%8D/@me");
    assert_error(&carol.call(Method::PUT, &react, None).await, StatusCode::FORBIDDEN, FORBIDDEN);
    assert_error(
        &carol.post(&format!("/api/channels/{_voice}/voice"), json!({})).await,
        StatusCode::FORBIDDEN,
        FORBIDDEN,
    );
    assert_eq!(carol.get(&format!("/api/channels/{text}/messages")).await.0, StatusCode::OK, "reading is fine");
    let far = json!({ "timeout_until": now_ms() + 29 * 24 * 3600 * 1000 });
    assert_error(&send(&bob, Method::PATCH, &carol_path, far).await, StatusCode::BAD_REQUEST, 50035);
    let (st, _) = send(&bob, Method::PATCH, &carol_path, json!({ "timeout_until": null })).await;
    assert_eq!(st, StatusCode::OK);
    carol.say(&text, "back").await;

    // A moderator deletes someone's message (and it is logged).
    let spam = dave.say(&text, "spam").await;
    let del = format!("/api/channels/{text}/messages/{spam}");
    assert_eq!(bob.call(Method::DELETE, &del, None).await.0, StatusCode::NO_CONTENT);

    // Kick: carol is out of everything at once; an invite brings her back.
    assert_eq!(bob.call(Method::DELETE, &format!("{carol_path}?reason=rude"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(carol_gw.recv_event("GUILD_DELETE").await["d"], json!({ "id": g }));
    assert_eq!(alice_gw.recv_event("GUILD_MEMBER_REMOVE").await["d"]["user_id"], json!(carol.id));
    assert_error(&carol.get(&format!("/api/channels/{text}/messages")).await, StatusCode::FORBIDDEN, 50001);
    assert_error(&bob.call(Method::DELETE, &carol_path, None).await, StatusCode::NOT_FOUND, 10007);
    alice.invite(&g, &carol).await;

    // Reports: bob may see and delete but not ban; alice bans through the report.
    let (mut mod_gw, _) = Gateway::identify(&server, bob.token.as_deref().unwrap()).await;
    let bad = carol.say(&text, "something awful").await;
    let (st, report) =
        dave.post(&format!("/api/channels/{text}/messages/{bad}/reports"), json!({ "reason": "abuse" })).await;
    assert_eq!(st, StatusCode::CREATED);
    let rid = report["id"].as_str().unwrap();
    assert_eq!(mod_gw.recv_event("REPORT_CREATE").await["d"]["id"], json!(rid), "moderators hear of reports");
    let (st, open) = bob.get(&format!("/api/guilds/{g}/reports?status=open")).await;
    assert_eq!((st, open.as_array().unwrap().len()), (StatusCode::OK, 1));
    let resolve = format!("/api/reports/{rid}/resolve");
    assert_error(&bob.post(&resolve, json!({ "action": "ban" })).await, StatusCode::FORBIDDEN, FORBIDDEN);
    let (mut carol_gw2, _) = Gateway::identify(&server, carol.token.as_deref().unwrap()).await;
    let (st, done) = alice.post(&resolve, json!({ "action": "ban", "reason": "abuse" })).await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "deleted");
    assert_eq!(carol_gw2.recv_event("GUILD_DELETE").await["d"], json!({ "id": g }));
    let (_, history) = alice.get(&format!("/api/channels/{text}/messages")).await;
    assert!(history.as_array().unwrap().iter().all(|m| m["id"] != json!(bad)), "the message went");
    let (_, inv) = alice.post(&format!("/api/guilds/{g}/invites"), json!({})).await;
    let code = inv["code"].as_str().unwrap();
    assert_error(&carol.post(&format!("/api/invites/{code}"), json!({})).await, StatusCode::FORBIDDEN, 40007);
    let (st, bans) = alice.get(&format!("/api/guilds/{g}/bans")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(bans[0]["user_id"], json!(carol.id));
    assert_eq!(bans[0]["reason"], "abuse");
    let unban = format!("/api/guilds/{g}/bans/{}", carol.id);
    assert_eq!(alice.call(Method::DELETE, &unban, None).await.0, StatusCode::NO_CONTENT);
    assert_error(&alice.call(Method::DELETE, &unban, None).await, StatusCode::NOT_FOUND, 10026);
    assert_eq!(carol.post(&format!("/api/invites/{code}"), json!({})).await.0, StatusCode::OK);

    // Invites: listed with their uses, revocable.
    let (_, limited) =
        alice.post(&format!("/api/guilds/{g}/invites"), json!({ "max_uses": 3, "max_age_secs": 3600 })).await;
    let (st, invites) = alice.get(&format!("/api/guilds/{g}/invites")).await;
    assert_eq!(st, StatusCode::OK);
    let listed = invites.as_array().unwrap().iter().find(|i| i["code"] == limited["code"]).unwrap().clone();
    assert_eq!((listed["max_uses"].clone(), listed["uses"].clone()), (json!(3), json!(0)));
    assert!(listed["expires_at"].as_i64().unwrap() > now_ms());
    let used = invites.as_array().unwrap().iter().find(|i| i["code"] == json!(code)).unwrap();
    assert_eq!(used["uses"], json!(1), "carol's rejoin counted");
    let lcode = limited["code"].as_str().unwrap();
    assert_eq!(alice.call(Method::DELETE, &format!("/api/invites/{lcode}"), None).await.0, StatusCode::NO_CONTENT);
    assert_error(&dave.post(&format!("/api/invites/{lcode}"), json!({})).await, StatusCode::NOT_FOUND, 10006);

    // The audit log, newest first, for those who may read it.
    let (st, log) = bob.get(&format!("/api/guilds/{g}/audit-log")).await;
    assert_eq!(st, StatusCode::OK, "{log}");
    let actions: Vec<&str> = log.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in [
        "invite_delete",
        "member_ban_remove",
        "report_resolve",
        "member_ban_add",
        "member_kick",
        "message_delete",
        "member_timeout",
        "member_role_update",
        "role_create",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert_eq!(actions[0], "invite_delete", "newest first");
    let kick = log.as_array().unwrap().iter().find(|e| e["action"] == "member_kick").unwrap();
    assert_eq!((kick["actor_id"].clone(), kick["target_id"].clone()), (json!(bob.id), json!(carol.id)));
    assert_eq!(kick["reason"], "rude");
    let (_, page) = bob.get(&format!("/api/guilds/{g}/audit-log?limit=2")).await;
    let before = page[1]["id"].as_str().unwrap();
    let (_, next) = bob.get(&format!("/api/guilds/{g}/audit-log?limit=2&before={before}")).await;
    assert_eq!(next[0]["id"], log[2]["id"]);

    // Roles can go; their holders lose what they gave.
    assert_eq!(alice.call(Method::DELETE, &mod_path, None).await.0, StatusCode::NO_CONTENT);
    assert_error(&bob.get(&format!("/api/guilds/{g}/audit-log")).await, StatusCode::FORBIDDEN, FORBIDDEN);
    assert_error(
        &alice.call(Method::DELETE, &format!("/api/guilds/{g}/roles/{g}"), None).await,
        StatusCode::BAD_REQUEST,
        50035,
    );

    // An administrator role, then renaming and deleting channels and the server.
    let (_, admin) = alice
        .post(&format!("/api/guilds/{g}/roles"), json!({ "name": "admin", "permissions": ADMIN | MANAGE_GUILD }))
        .await;
    let admin_id = admin["id"].as_str().unwrap();
    alice.call(Method::PUT, &format!("/api/guilds/{g}/members/{}/roles/{admin_id}", dave.id), None).await;
    let (st, renamed) = send(&dave, Method::PATCH, &format!("/api/guilds/{g}"), json!({ "name": "renamed" })).await;
    assert_eq!((st, renamed["name"].clone()), (StatusCode::OK, json!("renamed")));
    assert_eq!(alice_gw.recv_event("GUILD_UPDATE").await["d"]["name"], "renamed");
    let (_, extra) = dave.post(&format!("/api/guilds/{g}/channels"), json!({ "name": "extra", "kind": "text" })).await;
    let extra = extra["id"].as_str().unwrap();
    dave.say(extra, "soon gone").await;
    assert_eq!(dave.call(Method::DELETE, &format!("/api/channels/{extra}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(alice_gw.recv_event("CHANNEL_DELETE").await["d"]["id"], json!(extra));
    assert_error(&alice.get(&format!("/api/channels/{extra}/messages")).await, StatusCode::NOT_FOUND, 10003);
    assert_error(&dave.call(Method::DELETE, &format!("/api/guilds/{g}"), None).await, StatusCode::FORBIDDEN, FORBIDDEN);
    let (mut bob_gw, _) = Gateway::identify(&server, bob.token.as_deref().unwrap()).await;
    assert_eq!(alice.call(Method::DELETE, &format!("/api/guilds/{g}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(bob_gw.recv_event("GUILD_DELETE").await["d"], json!({ "id": g }));
    assert_error(&alice.get(&format!("/api/guilds/{g}")).await, StatusCode::NOT_FOUND, 10004);
    let (_, guilds) = bob.get("/api/guilds").await;
    assert_eq!(guilds, json!([]));
    server.stop().await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn moderation_sqlite() {
    flows(TestServer::start().await).await;
}

#[tokio::test]
async fn moderation_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, support::test_config()).await {
        flows(server).await;
    }
}

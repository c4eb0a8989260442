//! User settings over real HTTP and the gateway (SQLite and Postgres): a display name and an
//! avatar (cropped to a square, served as PNG) that the user's guilds hear of at once, and logging
//! out everywhere, which ends every login and socket of the user.

mod common;
mod support;

use common::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Client, Gateway, TestServer, assert_error};

/// A `w`×`h` PNG, red on the left half and blue on the right.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(
        w,
        h,
        |x, _| if x < w / 2 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) },
    );
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn put_avatar(c: &Client, kind: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let res = c
        .http
        .put(format!("{}/api/users/@me/avatar", c.base))
        .bearer_auth(c.token.as_deref().unwrap())
        .header("content-type", kind)
        .body(body)
        .send()
        .await
        .unwrap();
    let st = res.status();
    (st, res.json().await.unwrap_or(Value::Null))
}

async fn flows(server: TestServer) {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (g, _, _) = alice.guild("g").await;
    alice.invite(&g, &bob).await;
    let (mut bob_gw, _) = Gateway::identify(&server, bob.token.as_deref().unwrap()).await;

    // A display name: shown to the guild at once, in the member list, cleared by null.
    let (st, me) = alice.call(Method::PATCH, "/api/users/@me", Some(json!({ "display_name": "  Alice A.  " }))).await;
    assert_eq!(
        (st, me["display_name"].clone(), me["username"].clone()),
        (StatusCode::OK, json!("Alice A."), json!("alice"))
    );
    let e = bob_gw.recv_event("USER_UPDATE").await;
    assert_eq!((e["d"]["id"].clone(), e["d"]["display_name"].clone()), (json!(alice.id), json!("Alice A.")));
    let (_, members) = bob.get(&format!("/api/guilds/{g}/members")).await;
    let m = members.as_array().unwrap().iter().find(|m| m["user_id"] == json!(alice.id)).unwrap().clone();
    assert_eq!(m["display_name"], "Alice A.");
    let long = json!({ "display_name": "x".repeat(33) });
    assert_error(&alice.call(Method::PATCH, "/api/users/@me", Some(long)).await, StatusCode::BAD_REQUEST, 50035);
    let (_, me) = alice.call(Method::PATCH, "/api/users/@me", Some(json!({ "display_name": null }))).await;
    assert_eq!(me["display_name"], Value::Null);
    assert_eq!(bob_gw.recv_event("USER_UPDATE").await["d"]["display_name"], Value::Null);

    // An avatar: a 300×200 image becomes its centre square at 256 px, public and cached for good.
    let (st, me) = put_avatar(&alice, "image/png", png(300, 200)).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    let hash = me["avatar"].as_str().unwrap().to_string();
    assert_eq!(bob_gw.recv_event("USER_UPDATE").await["d"]["avatar"], json!(hash));
    let url = format!("{}/api/avatars/{}/{hash}.png", server.url(""), alice.id);
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (256, 256));
    assert_eq!(img.get_pixel(10, 128).0, [255, 0, 0], "the centre square keeps both halves");
    assert_eq!(img.get_pixel(245, 128).0, [0, 0, 255]);
    let (_, got) = alice.get("/api/users/@me").await;
    assert_eq!(got["avatar"], json!(hash));

    // Not an image, or not sent as one: refused, nothing changes.
    assert_error(&put_avatar(&alice, "image/png", b"not an image".to_vec()).await, StatusCode::BAD_REQUEST, 50035);
    assert_error(&put_avatar(&alice, "text/plain", png(10, 10)).await, StatusCode::UNSUPPORTED_MEDIA_TYPE, 50415);
    assert_eq!(put_avatar(&alice, "image/png", vec![0; 9 << 20]).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    for bad in ["nothex0000000000.png", "0123.png", "../../etc/passwd"] {
        let res = reqwest::get(format!("{}/api/avatars/{}/{bad}", server.url(""), alice.id)).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    // A new one replaces (and removes) the old; DELETE clears it.
    let (_, me) = put_avatar(&alice, "image/png", png(64, 64)).await;
    assert_ne!(me["avatar"], json!(hash));
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::NOT_FOUND, "the old image went");
    let (st, me) = alice.call(Method::DELETE, "/api/users/@me/avatar", None).await;
    assert_eq!((st, me["avatar"].clone()), (StatusCode::OK, Value::Null));

    // A DM partner who shares no server any more still hears of the change.
    let carol = server.user("carol").await;
    let (g2, _, _) = alice.guild("g2").await;
    alice.invite(&g2, &carol).await;
    let (st, _) = carol.post("/api/users/@me/channels", json!({ "recipients": [alice.id] })).await;
    assert!(st.is_success(), "{st}");
    assert_eq!(
        carol.call(Method::DELETE, &format!("/api/users/@me/guilds/{g2}"), None).await.0,
        StatusCode::NO_CONTENT
    );
    let (mut carol_gw, _) = Gateway::identify(&server, carol.token.as_deref().unwrap()).await;
    alice.call(Method::PATCH, "/api/users/@me", Some(json!({ "display_name": "Al" }))).await;
    let e = carol_gw.recv_event("USER_UPDATE").await;
    assert_eq!((e["d"]["id"].clone(), e["d"]["display_name"].clone()), (json!(alice.id), json!("Al")));

    // Log out everywhere: every login and socket of alice ends; bob's do not.
    let (_, second) = Client::anonymous(&server)
        .post("/api/auth/login", json!({ "username": "alice", "password": "password-alice" }))
        .await;
    let alice2 = Client { token: second["token"].as_str().map(String::from), ..alice.clone() };
    let (mut gw1, _) = Gateway::identify(&server, alice.token.as_deref().unwrap()).await;
    let (mut gw2, _) = Gateway::identify(&server, alice2.token.as_deref().unwrap()).await;
    assert_eq!(alice.post("/api/auth/logout-all", json!({})).await.0, StatusCode::NO_CONTENT);
    gw1.expect_close(4004).await;
    gw2.expect_close(4004).await;
    assert_error(&alice.get("/api/users/@me").await, StatusCode::UNAUTHORIZED, 40001);
    assert_error(&alice2.get("/api/users/@me").await, StatusCode::UNAUTHORIZED, 40001);
    assert_eq!(bob.get("/api/users/@me").await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn profile_sqlite() {
    flows(TestServer::start().await).await;
}

#[tokio::test]
async fn profile_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, support::test_config()).await {
        flows(server).await;
    }
}

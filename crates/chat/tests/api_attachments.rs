//! Attachments over real HTTP (SQLite and Postgres): a message with an image and another file
//! (multipart), what is stored and how it is served (signed links, types from the bytes, previews,
//! nosniff, downloads for anything not an image), who can post, the limits, and files going with
//! their message.

mod common;
mod support;

use common::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Client, Gateway, TestServer, assert_error};

const BOUNDARY: &str = "confab-test-boundary";

/// A `multipart/form-data` body: `content` (if any) and files `(name, bytes)`.
fn form(content: Option<&str>, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    if let Some(c) = content {
        b.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\n{c}\r\n").bytes());
    }
    for (name, data) in files {
        b.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .bytes(),
        );
        b.extend_from_slice(data);
        b.extend(b"\r\n");
    }
    b.extend(format!("--{BOUNDARY}--\r\n").bytes());
    b
}

async fn upload(c: &Client, channel: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let mut req = c
        .http
        .post(format!("{}/api/channels/{channel}/messages", c.base))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body);
    if let Some(t) = &c.token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("upload");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A 64x48 PNG with transparency, its pixels a gradient.
fn png() -> Vec<u8> {
    let img = image::RgbaImage::from_fn(64, 48, |x, y| image::Rgba([x as u8 * 4, y as u8 * 5, 200, 128 + y as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn fetch(base: &str, url: &str) -> reqwest::Response {
    reqwest::get(format!("{base}{url}")).await.expect("fetch")
}

async fn attachment_flows(server: TestServer) {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let (g, text, _) = alice.guild("g").await;
    alice.invite(&g, &bob).await;
    let (mut bob_gw, _) = Gateway::identify(&server, bob.token.as_deref().unwrap()).await;
    let base = server.url("");

    // An image and a page pretending to be one: stored with what their bytes are.
    let pic = png();
    let page = b"<html><script>alert(1)</script></html>".as_slice();
    let (st, m) =
        upload(&alice, &text, form(Some("look at these"), &[("cat.png", &pic), ("../../evil.png", page)])).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(m["content"], "look at these");
    let (img, other) = (&m["attachments"][0], &m["attachments"][1]);
    assert_eq!((&img["filename"], &img["content_type"]), (&json!("cat.png"), &json!("image/png")));
    assert_eq!((&img["width"], &img["height"], &img["size"]), (&json!(64), &json!(48), &json!(pic.len())));
    assert_eq!((&other["filename"], &other["content_type"]), (&json!("evil.png"), &json!("application/octet-stream")));
    assert_eq!((&other["width"], &other["thumbnail_url"]), (&Value::Null, &Value::Null));
    let got = bob_gw.recv_event("MESSAGE_CREATE").await;
    assert_eq!(got["d"]["attachments"][0]["id"], img["id"]);

    // Served without a bearer token (an <img> has none), from the signed link only.
    let url = img["url"].as_str().unwrap();
    let r = fetch(&base, url).await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-disposition"].to_str().unwrap().starts_with("inline"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), pic.as_slice());
    let r = fetch(&base, img["thumbnail_url"].as_str().unwrap()).await;
    assert_eq!((r.status(), r.headers()["content-type"].to_str().unwrap()), (StatusCode::OK, "image/jpeg"));
    let thumb = image::load_from_memory(&r.bytes().await.unwrap()).expect("a preview");
    assert_eq!((thumb.width(), thumb.height()), (64, 48), "small images keep their size");
    let r = fetch(&base, other["url"].as_str().unwrap()).await;
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), page);

    // A link altered (another attachment's id, another channel, a forged signature): refused.
    let sig = url.split("?s=").nth(1).unwrap();
    let other_id = other["id"].as_str().unwrap();
    let (channel, id) = (text.as_str(), img["id"].as_str().unwrap());
    for bad in [
        format!("/api/attachments/{channel}/{other_id}/x?s={sig}"),
        format!("/api/attachments/{g}/{id}/x?s={sig}"),
        format!("/api/attachments/{channel}/{id}/x?s=9999999999.AAAAAAAAAAAAAAAAAAAAAA"),
        format!("/api/attachments/{channel}/{id}/x"),
    ] {
        let r = fetch(&base, &bad).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{bad}");
    }
    // History carries fresh links.
    let (_, hist) = bob.get(&format!("/api/channels/{text}/messages")).await;
    assert_eq!(fetch(&base, hist[0]["attachments"][0]["url"].as_str().unwrap()).await.status(), StatusCode::OK);

    // A large picture's preview fits 320x320, its shape kept.
    let wide = image::RgbImage::from_fn(800, 400, |x, _| image::Rgb([(x / 4) as u8, 90, 160]));
    let mut wide_png = std::io::Cursor::new(Vec::new());
    wide.write_to(&mut wide_png, image::ImageFormat::Png).unwrap();
    let (st, w) = upload(&alice, &text, form(Some("wide"), &[("wide.png", wide_png.get_ref())])).await;
    assert_eq!(st, StatusCode::CREATED, "{w}");
    let r = fetch(&base, w["attachments"][0]["thumbnail_url"].as_str().unwrap()).await;
    let thumb = image::load_from_memory(&r.bytes().await.unwrap()).expect("a preview");
    assert_eq!((thumb.width(), thumb.height()), (320, 160));

    // Files alone; who may post; the limits.
    let (st, alone) = upload(&bob, &text, form(None, &[("a.bin", b"\x00\x01")])).await;
    assert_eq!((st, &alone["content"]), (StatusCode::CREATED, &json!("")), "{alone}");
    assert_error(&upload(&carol, &text, form(Some("hi"), &[("a.bin", b"x")])).await, StatusCode::FORBIDDEN, 50001);
    let big = vec![7u8; 300 * 1024];
    assert_error(
        &upload(&alice, &text, form(Some("big"), &[("big.bin", &big)])).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        40013,
    );
    let eleven: Vec<(&str, &[u8])> = (0..11).map(|_| ("f.bin", b"x".as_slice())).collect();
    assert_error(&upload(&alice, &text, form(Some("many"), &eleven)).await, StatusCode::BAD_REQUEST, 50035);
    assert_error(&upload(&alice, &text, form(None, &[])).await, StatusCode::BAD_REQUEST, 50035);
    let odd = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"what\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n");
    assert_error(&upload(&alice, &text, odd.into_bytes()).await, StatusCode::BAD_REQUEST, 50035);
    let huge_json = json!({ "content": "x".repeat(200_000) });
    assert_error(
        &alice.post(&format!("/api/channels/{text}/messages"), huge_json).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        40013,
    );

    // Deleted with its message: the link stops working.
    let mid = m["id"].as_str().unwrap();
    let (st, _) = alice.call(reqwest::Method::DELETE, &format!("/api/channels/{text}/messages/{mid}"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(fetch(&base, url).await.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

fn config() -> chat::config::ChatConfig {
    chat::config::ChatConfig { max_attachment_bytes: 256 * 1024, ..support::test_config() }
}

#[tokio::test]
async fn attachments_sqlite() {
    attachment_flows(TestServer::with_config(Backend::Sqlite, config()).await.unwrap()).await;
}

#[tokio::test]
async fn attachments_postgres() {
    if let Some(server) = TestServer::with_config(Backend::Postgres, config()).await {
        attachment_flows(server).await;
    }
}

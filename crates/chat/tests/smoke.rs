mod common;
mod support;

use serde_json::json;
use support::{Gateway, TestServer};

#[tokio::test]
async fn harness_works() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (_guild, text, _voice) = alice.guild("g").await;
    let (mut gw, ready) = Gateway::identify(&server, alice.token.as_deref().unwrap()).await;
    assert_eq!(ready["user"]["username"], "alice");
    alice.say(&text, "hi").await;
    let ev = gw.recv_event("MESSAGE_CREATE").await;
    assert_eq!(ev["d"]["content"], "hi");
    let _ = json!({});
    server.stop().await;
}

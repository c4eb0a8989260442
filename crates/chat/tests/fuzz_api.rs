mod common;
mod support;

// The JSON body of every route that takes one (from `openapi.json`), fuzzed (proptest;
// `CONFAB_FUZZ_CASES` cases, 256 by default) against a live server, with path parameters naming
// the caller's own guild, channel, message, role and invite, so bodies reach validation and the
// store instead of a 404. Bodies: JSON of any shape, objects with the schema's own keys and
// values of every type, and bytes that are not JSON. Properties: never a 5xx; every refusal a
// `{code, message}`; the server still serves the owner afterwards.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Client, TestServer};

const SPEC: &str = include_str!("../openapi.json");
/// Routes that would end the test's own session (their bodies are fuzzed all the same
/// elsewhere: `api_profile.rs`).
const SKIP: &[&str] = &["/api/auth/logout", "/api/auth/logout-all", "/api/users/@me/password"];

fn cases() -> u32 {
    std::env::var("CONFAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn deref<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => deref(spec, spec.pointer(r.trim_start_matches('#')).expect("resolvable $ref")),
        None => v,
    }
}

/// (method, path template, the request schema's property names) of each JSON-body operation.
fn operations() -> Vec<(String, String, Vec<String>)> {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") else { continue };
            if SKIP.contains(&path.as_str()) {
                continue;
            }
            let props = deref(&spec, schema)["properties"].as_object().map(|p| p.keys().cloned().collect());
            out.push((method.to_uppercase(), path.clone(), props.unwrap_or_default()));
        }
    }
    assert!(out.len() >= 20, "{} operations with JSON bodies", out.len());
    out
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(|n| Value::String(n.to_string())),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("x".repeat(5000))),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    /// Values for the schema's own keys, picked by index.
    Keyed(Vec<(usize, Value)>),
    Bytes(Vec<u8>),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => json_value().prop_map(Body::Json),
        4 => prop::collection::vec((any::<usize>(), json_value()), 0..6).prop_map(Body::Keyed),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
    ]
}

struct Fixture {
    owner: Client,
    ids: Vec<(&'static str, String)>,
}

async fn fixture(server: &TestServer) -> Fixture {
    let owner = server.user("fuzzy").await;
    let (guild, channel, _voice) = owner.guild("fuzz").await;
    let message = owner.say(&channel, "hello").await;
    let (_, invite) = owner.post(&format!("/api/guilds/{guild}/invites"), json!({})).await;
    let (_, role) = owner.post(&format!("/api/guilds/{guild}/roles"), json!({"name": "r"})).await;
    let ids = vec![
        ("guild_id", guild),
        ("channel_id", channel),
        ("message_id", message),
        ("user_id", owner.id.clone()),
        ("role_id", role["id"].as_str().unwrap_or("1").to_string()),
        ("code", invite["code"].as_str().unwrap_or("x").to_string()),
    ];
    Fixture { owner, ids }
}

fn concrete(path: &str, ids: &[(&str, String)]) -> String {
    let mut out = path.to_string();
    for (name, id) in ids {
        out = out.replace(&format!("{{{name}}}"), id);
    }
    // Parameters without a fixture (emoji, report ids, …): a valid-looking value naming nothing.
    while let (Some(a), Some(b)) = (out.find('{'), out.find('}')) {
        out.replace_range(a..=b, "1");
    }
    out
}

#[test]
fn every_json_body_gets_a_clear_answer() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(TestServer::start());
    let fx = rt.block_on(fixture(&server));
    let ops = operations();
    let mut runner = TestRunner::new(Config { cases: cases(), ..Config::default() });
    runner
        .run(&(0..ops.len(), body()), |(i, body)| {
            let (method, template, props) = &ops[i];
            let path = concrete(template, &fx.ids);
            let mut req =
                fx.owner.http.request(Method::from_bytes(method.as_bytes()).unwrap(), fx.owner.base.clone() + &path);
            req = req.bearer_auth(fx.owner.token.as_deref().unwrap());
            req = match &body {
                Body::Json(v) => req.json(v),
                Body::Keyed(kv) if !props.is_empty() => {
                    let obj: serde_json::Map<String, Value> =
                        kv.iter().map(|(k, v)| (props[k % props.len()].clone(), v.clone())).collect();
                    req.json(&Value::Object(obj))
                }
                Body::Keyed(_) => req.json(&json!({})),
                Body::Bytes(b) => req.header("content-type", "application/json").body(b.clone()),
            };
            let (status, bytes) = rt.block_on(async {
                let res = req.send().await.expect("the server answers");
                (res.status(), res.bytes().await.expect("a body"))
            });
            let what = format!("{method} {path} {body:?}");
            prop_assert!(!status.is_server_error(), "{} answered {}: {:?}", what, status, bytes);
            if status.is_client_error() {
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|_| TestCaseError::fail(format!("{what}: {status} not JSON: {bytes:?}")))?;
                prop_assert!(v["code"].is_u64() && v["message"].is_string(), "{}: {}", what, v);
            }
            Ok(())
        })
        .unwrap();
    let (status, _) = rt.block_on(fx.owner.get("/api/users/@me"));
    assert_eq!(status, StatusCode::OK, "the owner is still served");
}

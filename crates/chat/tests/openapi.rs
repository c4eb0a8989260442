mod common;
mod support;

// Keeps `crates/chat/openapi.json` true: it is served, well-formed and self-contained; its
// operations are exactly the router's; every operation is routed and answers with a status the
// spec documents for it; and every error code is in the `Error` schema.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::{Client, TestServer};

/// The file the server embeds (`include_str!` in `src/api/openapi.rs`).
const SPEC: &str = include_str!("../openapi.json");
const ROUTER_SRC: &str = include_str!("../src/api/mod.rs");
const ERROR_SRC: &str = include_str!("../src/api/error.rs");

/// The HTTP methods an OpenAPI path item may hold.
const SPEC_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
/// The axum method routers the router source is expected to use.
const ROUTER_METHODS: [&str; 5] = ["get", "post", "patch", "delete", "put"];
/// Method routers this test cannot map to one OpenAPI method; seeing one fails the test.
const UNSUPPORTED_ROUTERS: [&str; 5] = ["any", "on", "head", "options", "trace"];

type Route = (String, String);

fn spec() -> Value {
    serde_json::from_str(SPEC).expect("openapi.json parses")
}

/// Every (path, method) the spec describes, with its operation object.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let paths = spec["paths"].as_object().expect("`paths` is an object");
    let mut out = Vec::new();
    for (path, item) in paths {
        for m in SPEC_METHODS {
            if let Some(op) = item.get(m) {
                out.push((path.clone(), m.to_string(), op.clone()));
            }
        }
    }
    out
}

/// Follows a local `$ref` (JSON pointer after `#`), if `v` is one.
fn deref<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {r}"));
            deref(spec, spec.pointer(pointer).unwrap_or_else(|| panic!("unresolved $ref {r}")))
        }
        None => v,
    }
}

/// Whether the operation needs a bearer token (its own `security`, else the document's).
fn secured(spec: &Value, op: &Value) -> bool {
    let security = op.get("security").or_else(|| spec.get("security"));
    security.and_then(Value::as_array).is_some_and(|reqs| {
        reqs.iter().any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
            && !reqs.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty()))
    })
}

/// `path` with every `{param}` replaced by a syntactically valid value that names nothing: `1` for
/// id-like parameters (digits), a made-up string otherwise.
fn concrete_path(spec: &Value, path: &str, op: &Value) -> String {
    let item = &spec["paths"][path];
    let params: Vec<&Value> = [item.get("parameters"), op.get("parameters")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .map(|p| deref(spec, p))
        .filter(|p| p["in"] == "path")
        .collect();
    let mut out = path.to_string();
    for p in params {
        let name = p["name"].as_str().expect("parameter name");
        let schema = deref(spec, &p["schema"]);
        let digits = schema["pattern"].as_str().is_some_and(|pat| pat.contains("[0-9]")) || schema["type"] == "integer";
        let value = if digits { "1" } else { "no-such-thing" };
        let placeholder = format!("{{{name}}}");
        assert!(out.contains(&placeholder), "{path}: parameter {name} is not in the path");
        out = out.replace(&placeholder, value);
    }
    assert!(!out.contains('{'), "{path}: a path parameter is not declared");
    out
}

/// Sends a request; the status and the JSON body (`None` when empty or not JSON).
async fn send(client: &Client, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Option<Value>) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let mut req = client.http.request(method, format!("{}{path}", client.base));
    if let Some(t) = &client.token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let bytes = res.bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).ok())
}

/// Asserts `status` is documented for the operation and, for an error, that the body is an `Error`
/// whose code the documented response's description names.
fn assert_documented(spec: &Value, what: &str, op: &Value, status: StatusCode, body: &Option<Value>) {
    let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{what}: no responses"));
    let response = responses
        .get(status.as_str())
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| panic!("{what}: answered {status} {body:?}, which the spec does not document"));
    let response = deref(spec, response);
    if status.is_client_error() || status.is_server_error() {
        let body = body.as_ref().unwrap_or_else(|| panic!("{what}: {status} without a JSON body"));
        let code = body["code"].as_u64().unwrap_or_else(|| panic!("{what}: {status} body has no code: {body}"));
        assert!(body["message"].is_string(), "{what}: {status} body has no message: {body}");
        let desc = response["description"].as_str().unwrap_or_default();
        assert!(
            desc.contains(&format!("`{code}`")),
            "{what}: answered {status} with code {code}, which its documented {status} does not mention: {desc}"
        );
    }
}

#[tokio::test]
async fn spec_is_served_and_self_contained() {
    let server = TestServer::start().await;
    let res = reqwest::get(server.url("/api/openapi.json")).await.expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let ct = res.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from);
    assert_eq!(ct.as_deref(), Some("application/json"));
    let served: Value = serde_json::from_str(&res.text().await.expect("body")).expect("served spec parses");
    assert_eq!(served, spec(), "the server serves crates/chat/openapi.json");
    assert_eq!(served["openapi"], "3.1.0");
    assert!(served["info"]["title"].is_string() && served["info"]["version"].is_string());

    // Every $ref resolves inside the document.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                    out.push(r);
                }
                o.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&served, &mut all);
    assert!(!all.is_empty(), "the spec uses $refs");
    for r in all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("$ref {r} points outside the document"));
        assert!(served.pointer(pointer).is_some(), "$ref {r} does not resolve");
    }

    // Security requirements name declared schemes.
    let schemes = served["components"]["securitySchemes"].as_object().expect("securitySchemes");
    let ops = operations(&served);
    let requirements = ops.iter().filter_map(|(_, _, op)| op.get("security")).chain(served.get("security"));
    for req in requirements.filter_map(Value::as_array).flatten() {
        for name in req.as_object().expect("security requirement").keys() {
            assert!(schemes.contains_key(name), "unknown security scheme {name}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn every_spec_operation_is_routed_and_answers_as_documented() {
    let server = TestServer::start().await;
    let spec = spec();
    let anonymous = Client::anonymous(&server);
    let mut users = 0;
    let mut user = server.user("openapi0").await;
    for (path, method, op) in operations(&spec) {
        let what = format!("{} {path}", method.to_uppercase());
        let concrete = concrete_path(&spec, &path, &op);
        let body_schema = op.get("requestBody").map(|b| {
            let b = deref(&spec, b);
            deref(&spec, &b["content"]["application/json"]["schema"]).clone()
        });
        let body = body_schema.as_ref().map(|_| json!({}));
        let needs_token = secured(&spec, &op);
        let client = if needs_token { &user } else { &anonymous };

        let (status, answer) = send(client, &method, &concrete, body.clone()).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}: not routed ({concrete}): {answer:?}");
        let code = answer.as_ref().and_then(|a| a["code"].as_u64());
        assert_ne!(code, Some(10404), "{what}: unknown route ({concrete}): {answer:?}");
        if needs_token {
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}: a valid token was refused: {answer:?}");
        }
        assert_documented(&spec, &what, &op, status, &answer);

        // Without a token: 401 exactly where the spec asks for one.
        let (status, answer) = send(&anonymous, &method, &concrete, body).await;
        if needs_token {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} without a token: {answer:?}");
            assert_documented(&spec, &what, &op, status, &answer);
        } else {
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{what} is public but wants a token: {answer:?}");
        }

        // Bodies that the spec closes (`additionalProperties: false`) reject unknown fields.
        if let Some(schema) = &body_schema
            && schema["additionalProperties"] == false
        {
            let (status, answer) = send(client, &method, &concrete, Some(json!({ "no_such_field": 1 }))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what} with an unknown field: {answer:?}");
            assert_eq!(answer.as_ref().map(|a| a["code"].clone()), Some(json!(50035)), "{what}: {answer:?}");
        }

        // Some operations (logout) end the session: carry on with a fresh account.
        if needs_token && user.get("/api/users/@me").await.0 != StatusCode::OK {
            users += 1;
            user = server.user(&format!("openapi{users}")).await;
        }
    }
    server.stop().await;
}

/// The (path, method) pairs of `.route("…", get(…).post(…))` calls in the router's source.
fn router_routes(src: &str) -> BTreeSet<Route> {
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's arguments, up to its closing parenthesis.
        let (mut depth, mut in_str, mut end) = (1, false, None);
        for (i, c) in rest.char_indices() {
            match c {
                '"' => in_str = !in_str,
                '(' if !in_str => depth += 1,
                ')' if !in_str => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &rest[..end.expect("balanced .route( call")];
        let open = args.find('"').expect("route path literal");
        let close = open + 1 + args[open + 1..].find('"').expect("closed path literal");
        let path = &args[open + 1..close];
        // Method routers: identifiers called at the top level of the second argument.
        let (mut depth, mut ident) = (0, String::new());
        for c in args[close + 1..].chars() {
            match c {
                '(' => {
                    if depth == 0 {
                        assert!(
                            !UNSUPPORTED_ROUTERS.contains(&ident.as_str()),
                            "{path}: method router `{ident}` is not understood by this test"
                        );
                        if ROUTER_METHODS.contains(&ident.as_str()) {
                            out.insert((path.to_string(), ident.clone()));
                        }
                    }
                    depth += 1;
                    ident.clear();
                }
                ')' => {
                    depth -= 1;
                    ident.clear();
                }
                c if c.is_alphanumeric() || c == '_' => ident.push(c),
                _ => ident.clear(),
            }
        }
    }
    out
}

#[test]
fn router_parser_reads_chained_method_routers() {
    let src = r#"
        Router::new()
            .route("/a/{id}", get(a::handler))
            .route("/b", axum::routing::post(b_get::handler).get(get_b(x)).delete(messages_delete::handler))
            .route_layer(layer(get(nothing)))
            .route(
                "/c",
                patch(c::handler).layer(DefaultBodyLimit::max(1)).put(c::put),
            )
    "#;
    let want: BTreeSet<Route> =
        [("/a/{id}", "get"), ("/b", "post"), ("/b", "get"), ("/b", "delete"), ("/c", "patch"), ("/c", "put")]
            .into_iter()
            .map(|(p, m)| (p.to_string(), m.to_string()))
            .collect();
    assert_eq!(router_routes(src), want);
}

#[test]
fn spec_and_router_have_the_same_routes() {
    let router = router_routes(ROUTER_SRC);
    assert!(router.len() >= 20, "parsed too few routes from src/api/mod.rs: {router:?}");
    let spec: BTreeSet<Route> = operations(&spec()).into_iter().map(|(p, m, _)| (p, m)).collect();
    let undocumented: Vec<_> = router.difference(&spec).collect();
    let unrouted: Vec<_> = spec.difference(&router).collect();
    assert!(undocumented.is_empty(), "routes missing from openapi.json: {undocumented:?}");
    assert!(unrouted.is_empty(), "openapi.json operations the router lacks: {unrouted:?}");
}

#[test]
fn every_error_code_is_documented() {
    let spec = spec();
    let desc = spec["components"]["schemas"]["Error"]["description"].as_str().expect("Error schema description");
    let codes: Vec<(&str, &str)> = ERROR_SRC
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const ")?.strip_suffix(';')?.split_once(": u32 = "))
        .collect();
    assert!(codes.len() >= 10, "parsed too few codes from src/api/error.rs: {codes:?}");
    for (name, n) in codes {
        assert!(desc.contains(&format!("`{n}`")), "error code {n} ({name}) is not in the Error schema description");
        assert!(desc.contains(name), "error code name {name} is not in the Error schema description");
    }
}

#[test]
fn operations_are_fully_described() {
    let spec = spec();
    let mut ids = BTreeSet::new();
    for (path, method, op) in operations(&spec) {
        let what = format!("{} {path}", method.to_uppercase());
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{what}: no summary");
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{what}: no operationId"));
        assert!(ids.insert(id.to_string()), "{what}: duplicate operationId {id}");
        let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{what}: no responses"));
        assert!(responses.keys().any(|s| s.starts_with('2')), "{what}: no success response");
        for (status, r) in responses {
            let r = deref(&spec, r);
            assert!(r["description"].is_string(), "{what} {status}: no description");
            if status.starts_with('4') || status.starts_with('5') {
                let json = &r["content"]["application/json"]["schema"];
                let plain = &r["content"]["text/plain"];
                assert!(
                    json.get("$ref").and_then(Value::as_str) == Some("#/components/schemas/Error") || plain.is_object(),
                    "{what} {status}: not an Error"
                );
            }
        }
        if secured(&spec, &op) {
            assert!(responses.contains_key("401"), "{what}: needs a token but documents no 401");
        }
    }
}

/// A small JSON Schema check, enough for this spec's response schemas: `$ref`, `allOf`, `anyOf`,
/// `oneOf`, `const`, `enum`, `type`, the digits `pattern` of `Id`, `minimum`/`maximum`,
/// `minLength`/`maxLength`, `required`, `properties`, `items`. Objects with `properties` are treated
/// as closed, so an undocumented response field fails too.
fn schema_errors(spec: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let schema = deref(spec, schema);
    let mut errs = Vec::new();
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        all.iter().for_each(|s| errs.extend(schema_errors(spec, s, v, at)));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(any) = schema.get(key).and_then(Value::as_array)
            && !any.iter().any(|s| schema_errors(spec, s, v, at).is_empty())
        {
            errs.push(format!("{at}: {v} matches none of {key}"));
        }
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        errs.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errs.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        let is = |ty: &str| match ty {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "string" => v.is_string(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => panic!("unknown type {ty}"),
        };
        if !types.iter().any(|t| is(t)) {
            errs.push(format!("{at}: {v} is not of type {t}"));
            return errs;
        }
    }
    if let Some(s) = v.as_str() {
        if schema.get("pattern").and_then(Value::as_str) == Some("^[0-9]+$")
            && (s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()))
        {
            errs.push(format!("{at}: {s:?} is not a string of digits"));
        }
        let n = s.chars().count() as u64;
        if schema.get("minLength").and_then(Value::as_u64).is_some_and(|m| n < m)
            || schema.get("maxLength").and_then(Value::as_u64).is_some_and(|m| n > m)
        {
            errs.push(format!("{at}: {s:?} has a length outside the schema's"));
        }
    }
    if let Some(n) = v.as_f64()
        && (schema.get("minimum").and_then(Value::as_f64).is_some_and(|m| n < m)
            || schema.get("maximum").and_then(Value::as_f64).is_some_and(|m| n > m))
    {
        errs.push(format!("{at}: {n} is outside the schema's range"));
    }
    if let Some(o) = v.as_object() {
        for r in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !o.contains_key(r) {
                errs.push(format!("{at}: missing required field {r}"));
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, x) in o {
                match props.get(k) {
                    Some(s) => errs.extend(schema_errors(spec, s, x, &format!("{at}.{k}"))),
                    None => errs.push(format!("{at}: undocumented field {k}")),
                }
            }
        }
    }
    if let (Some(a), Some(items)) = (v.as_array(), schema.get("items")) {
        for (i, x) in a.iter().enumerate() {
            errs.extend(schema_errors(spec, items, x, &format!("{at}[{i}]")));
        }
    }
    errs
}

/// Drives operations through their success paths, checking each answer against the spec.
struct Walk {
    spec: Value,
    covered: BTreeSet<Route>,
}

impl Walk {
    /// Calls `method template` (with `args` substituted for its `{params}` in order) and asserts a
    /// documented 2xx whose body matches the documented schema; returns the body.
    async fn ok(&mut self, client: &Client, method: &str, template: &str, args: &[&str], body: Option<Value>) -> Value {
        let mut path = template.to_string();
        for a in args {
            let (start, end) = (path.find('{').expect("a {param} per arg"), path.find('}').expect("closed {param}"));
            path.replace_range(start..=end, a);
        }
        let what = format!("{} {template}", method.to_uppercase());
        let op = self.spec["paths"][template][method].clone();
        assert!(op.is_object(), "{what} is not in the spec");
        let (status, answer) = send(client, method, &path, body).await;
        assert!(status.is_success(), "{what} ({path}): {status} {answer:?}");
        let response = deref(&self.spec, &op["responses"][status.as_str()]).clone();
        assert!(response.is_object(), "{what}: answered {status}, which the spec does not document");
        let schema = &response["content"]["application/json"]["schema"];
        let answer = answer.unwrap_or(Value::Null);
        if schema.is_null() {
            assert!(answer.is_null(), "{what}: documented {status} has no body, got {answer}");
        } else {
            let errs = schema_errors(&self.spec, schema, &answer, "$");
            assert!(errs.is_empty(), "{what} {status} does not match its schema:\n{}\n{answer}", errs.join("\n"));
        }
        self.covered.insert((template.to_string(), method.to_string()));
        answer
    }
}

#[tokio::test]
async fn success_responses_match_their_schemas() {
    let server = TestServer::start().await;
    let mut w = Walk { spec: spec(), covered: BTreeSet::new() };
    let anon = Client::anonymous(&server);
    let id = |v: &Value| v["id"].as_str().expect("id").to_string();

    w.ok(&anon, "get", "/api/health", &[], None).await;
    w.ok(&anon, "get", "/api/openapi.json", &[], None).await;
    let creds = json!({"username": "alice", "password": "password-alice"});
    let signup = w.ok(&anon, "post", "/api/auth/signup", &[], Some(creds.clone())).await;
    let alice = Client { token: signup["token"].as_str().map(String::from), id: id(&signup["user"]), ..anon.clone() };
    let login = w.ok(&anon, "post", "/api/auth/login", &[], Some(creds)).await;
    let alice2 = Client { token: login["token"].as_str().map(String::from), ..alice.clone() };
    let bob = server.user("bob").await;

    w.ok(&alice, "get", "/api/users/@me", &[], None).await;
    let full = w.ok(&alice, "post", "/api/guilds", &[], Some(json!({"name": "Guild"}))).await;
    let (guild, text) = (id(&full["guild"]), id(&full["channels"][0]));
    w.ok(&alice, "get", "/api/guilds", &[], None).await;
    w.ok(&alice, "get", "/api/guilds/{guild_id}", &[&guild], None).await;
    w.ok(&alice, "post", "/api/guilds/{guild_id}/channels", &[&guild], Some(json!({"name": "voice", "kind": "voice"})))
        .await;
    w.ok(&alice, "get", "/api/guilds/{guild_id}/channels", &[&guild], None).await;
    let voice = id(&full["channels"][1]);
    w.ok(&alice, "patch", "/api/channels/{channel_id}", &[&voice], Some(json!({"voice_mode": "sfu"}))).await;
    let renamed = Some(json!({"name": "lounge", "topic": "say hi"}));
    w.ok(&alice, "patch", "/api/channels/{channel_id}", &[&text], renamed).await;
    w.ok(&alice, "post", "/api/channels/{channel_id}/voice", &[&voice], None).await;
    w.ok(&alice, "get", "/api/guilds/{guild_id}/voice-states", &[&guild], None).await;
    let stage = Some(json!({"name": "stage", "kind": "live"}));
    let stage = id(&w.ok(&alice, "post", "/api/guilds/{guild_id}/channels", &[&guild], stage).await);
    w.ok(&alice, "post", "/api/channels/{channel_id}/stream-key", &[&stage], None).await;
    w.ok(&alice, "get", "/api/channels/{channel_id}/stream", &[&stage], None).await;
    let settings = Some(json!({"title": "Launch", "public": true}));
    w.ok(&alice, "patch", "/api/channels/{channel_id}/stream", &[&stage], settings).await;
    let reason = Some(json!({"reason": "spam"}));
    w.ok(&bob, "post", "/api/channels/{channel_id}/stream/reports", &[&stage], reason).await;
    w.ok(&alice, "post", "/api/guilds/{guild_id}/invites", &[&guild], Some(json!({}))).await;
    let invite = w
        .ok(
            &alice,
            "post",
            "/api/guilds/{guild_id}/invites",
            &[&guild],
            Some(json!({"max_uses": 5, "max_age_secs": 600})),
        )
        .await;
    let code = invite["code"].as_str().expect("code").to_string();
    w.ok(&bob, "post", "/api/invites/{code}", &[&code], None).await;
    w.ok(&alice, "get", "/api/guilds/{guild_id}/members", &[&guild], None).await;

    let hello = json!({ "content": format!("hi <@{}>", alice.id) });
    let m = id(&w.ok(&bob, "post", "/api/channels/{channel_id}/messages", &[&text], Some(hello)).await);
    w.ok(&bob, "post", "/api/channels/{channel_id}/messages", &[&text], Some(json!({"content": "second"}))).await;
    w.ok(&alice, "get", "/api/channels/{channel_id}/messages", &[&text], None).await;
    let edit = Some(json!({"content": "edited"}));
    w.ok(&bob, "patch", "/api/channels/{channel_id}/messages/{message_id}", &[&text, &m], edit).await;
    // A file (multipart, which the walk's JSON sender cannot send), fetched by its signed link.
    let form = "--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n\r\nhello\r\n--b--\r\n";
    let sent: Value = bob
        .http
        .post(format!("{}/api/channels/{text}/messages", bob.base))
        .bearer_auth(bob.token.as_deref().expect("token"))
        .header("content-type", "multipart/form-data; boundary=b")
        .body(form)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("message");
    let file = &sent["attachments"][0];
    let (file_id, link) = (id(file), file["url"].as_str().expect("url"));
    let name = link.rsplit('/').next().expect("name and signature");
    w.ok(&anon, "get", "/api/attachments/{channel_id}/{attachment_id}/{filename}", &[&text, &file_id, name], None)
        .await;
    let reaction = "/api/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me";
    w.ok(&alice, "put", reaction, &[&text, &m, "%F0%9F%91%8D"], None).await;
    w.ok(&alice, "delete", reaction, &[&text, &m, "%F0%9F%91%8D"], None).await;
    let reply = Some(json!({ "content": "a reply", "reply_to": m }));
    w.ok(&alice, "post", "/api/channels/{channel_id}/messages", &[&text], reply).await;
    w.ok(&alice, "get", "/api/guilds/{guild_id}/read-states", &[&guild], None).await;
    w.ok(&alice, "post", "/api/channels/{channel_id}/messages/{message_id}/ack", &[&text, &m], None).await;
    w.ok(&alice, "post", "/api/channels/{channel_id}/typing", &[&text], None).await;
    let reason = Some(json!({"reason": "spam"}));
    let report = id(&w
        .ok(&alice, "post", "/api/channels/{channel_id}/messages/{message_id}/reports", &[&text, &m], reason)
        .await);
    w.ok(&alice, "get", "/api/guilds/{guild_id}/reports", &[&guild], None).await;
    w.ok(&alice, "post", "/api/reports/{report_id}/resolve", &[&report], Some(json!({"action": "dismiss"}))).await;
    w.ok(&alice, "get", "/api/guilds/{guild_id}/reports", &[&guild], None).await;
    w.ok(&bob, "delete", "/api/channels/{channel_id}/messages/{message_id}", &[&text, &m], None).await;
    let dm = Some(json!({ "recipients": [bob.id] }));
    w.ok(&alice, "post", "/api/users/@me/channels", &[], dm).await;
    w.ok(&bob, "post", "/api/users/@me/channels", &[], Some(json!({ "recipients": [alice.id] }))).await;
    w.ok(&alice, "get", "/api/users/@me/channels", &[], None).await;
    w.ok(&alice, "put", "/api/users/@me/blocks/{user_id}", &[&bob.id], None).await;
    w.ok(&alice, "get", "/api/users/@me/blocks", &[], None).await;
    w.ok(&alice, "delete", "/api/users/@me/blocks/{user_id}", &[&bob.id], None).await;
    // Roles, moderation and management.
    let role = Some(json!({"name": "mod", "permissions": "8194"}));
    let role = id(&w.ok(&alice, "post", "/api/guilds/{guild_id}/roles", &[&guild], role).await);
    w.ok(&alice, "get", "/api/guilds/{guild_id}/roles", &[&guild], None).await;
    let role_path = "/api/guilds/{guild_id}/roles/{role_id}";
    w.ok(&alice, "patch", role_path, &[&guild, &role], Some(json!({"name": "moderator", "position": 2}))).await;
    let member_role = "/api/guilds/{guild_id}/members/{user_id}/roles/{role_id}";
    w.ok(&alice, "put", member_role, &[&guild, &bob.id, &role], None).await;
    w.ok(&alice, "delete", member_role, &[&guild, &bob.id, &role], None).await;
    w.ok(&alice, "delete", role_path, &[&guild, &role], None).await;
    let member = "/api/guilds/{guild_id}/members/{user_id}";
    let until = Some(json!({"timeout_until": chat::id::now_ms() + 60_000, "reason": "calm down"}));
    w.ok(&alice, "patch", member, &[&guild, &bob.id], until).await;
    w.ok(&alice, "patch", member, &[&guild, &bob.id], Some(json!({"timeout_until": null}))).await;
    let carol = server.user("carol").await;
    w.ok(&alice, "get", "/api/guilds/{guild_id}/invites", &[&guild], None).await;
    w.ok(&carol, "post", "/api/invites/{code}", &[&code], None).await;
    w.ok(&alice, "delete", member, &[&guild, &carol.id], None).await;
    let bans = "/api/guilds/{guild_id}/bans/{user_id}";
    w.ok(&alice, "put", bans, &[&guild, &carol.id], Some(json!({"reason": "spam"}))).await;
    w.ok(&alice, "get", "/api/guilds/{guild_id}/bans", &[&guild], None).await;
    w.ok(&alice, "delete", bans, &[&guild, &carol.id], None).await;
    w.ok(&alice, "delete", "/api/invites/{code}", &[&code], None).await;
    w.ok(&alice, "get", "/api/guilds/{guild_id}/audit-log", &[&guild], None).await;
    w.ok(&alice, "patch", "/api/guilds/{guild_id}", &[&guild], Some(json!({"name": "Renamed"}))).await;
    w.ok(&alice, "delete", "/api/channels/{channel_id}", &[&stage], None).await;
    let doomed = id(&w.ok(&alice, "post", "/api/guilds", &[], Some(json!({"name": "Doomed"}))).await["guild"]);
    w.ok(&alice, "delete", "/api/guilds/{guild_id}", &[&doomed], None).await;
    // User settings: a display name, an avatar (its body is an image, sent by hand), logout-all.
    w.ok(&alice, "patch", "/api/users/@me", &[], Some(json!({"display_name": "Alice"}))).await;
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(4, 4).write_to(&mut png, image::ImageFormat::Png).expect("png");
    let res = alice
        .http
        .put(format!("{}/api/users/@me/avatar", alice.base))
        .bearer_auth(alice.token.as_deref().expect("token"))
        .header("content-type", "image/png")
        .body(png.into_inner())
        .send()
        .await
        .expect("avatar");
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.expect("user");
    let user_schema = json!({"$ref": "#/components/schemas/User"});
    assert!(schema_errors(&w.spec, &user_schema, &me, "$").is_empty(), "{me}");
    w.covered.insert(("/api/users/@me/avatar".into(), "put".into()));
    let file = format!("{}.png", me["avatar"].as_str().expect("avatar"));
    let res = anon.http.get(format!("{}/api/avatars/{}/{file}", anon.base, alice.id)).send().await.expect("get");
    assert_eq!(
        (res.status(), res.headers()["content-type"].clone()),
        (StatusCode::OK, "image/png".parse().expect("header"))
    );
    w.covered.insert(("/api/avatars/{user_id}/{file}".into(), "get".into()));
    w.ok(&alice, "delete", "/api/users/@me/avatar", &[], None).await;
    w.ok(&alice2, "post", "/api/auth/logout", &[], None).await;
    w.ok(&bob, "delete", "/api/users/@me/guilds/{guild_id}", &[&guild], None).await;
    let change = Some(json!({"password": "password-bob", "new_password": "a-new-password"}));
    w.ok(&bob, "post", "/api/auth/password", &[], change).await;
    w.ok(&alice, "post", "/api/auth/logout-all", &[], None).await;

    let all: BTreeSet<Route> = operations(&w.spec).into_iter().map(|(p, m, _)| (p, m)).collect();
    let missed: Vec<_> = all.difference(&w.covered).collect();
    assert!(missed.is_empty(), "operations this walk does not exercise (extend it): {missed:?}");
    server.stop().await;
}

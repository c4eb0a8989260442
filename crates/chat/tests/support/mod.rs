//! A real chat server on 127.0.0.1:0 for integration tests, and small HTTP and gateway clients.
//! Tests that use it declare `mod common; mod support;`.
#![allow(dead_code)]

use crate::common::{Backend, TestDb};
use chat::app::App;
use chat::config::ChatConfig;
use futures_util::{SinkExt, StreamExt};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct TestServer {
    pub addr: SocketAddr,
    pub app: App,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _db: TestDb,
}

impl TestServer {
    /// A server on a fresh SQLite store with default limits (login limits relaxed for tests).
    pub async fn start() -> TestServer {
        TestServer::with_config(Backend::Sqlite, test_config()).await.expect("sqlite is always available")
    }

    /// `None` when the backend is unavailable (Postgres without a server).
    pub async fn with_config(backend: Backend, mut cfg: ChatConfig) -> Option<TestServer> {
        let db = TestDb::new(backend).await?;
        if cfg.attachments_dir == ChatConfig::default().attachments_dir {
            // In the system's temp dir, never in the source tree.
            let dir = std::env::temp_dir().join(format!("confab-test-attachments-{}", chat::auth::new_token()));
            cfg.attachments_dir = dir.display().to_string();
        }
        let store = db.open().await;
        let app = App::new(store, cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let router = chat::server::router(&app);
        let task = tokio::spawn(chat::server::serve(listener, app.clone(), router, async {
            let _ = stopped.await;
        }));
        Some(TestServer { addr, app, stop: Some(stop), task: Some(task), _db: db })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn gateway_url(&self) -> String {
        format!("ws://{}/gateway", self.addr)
    }

    /// Graceful shutdown; returns once the server finished.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task").expect("serve");
        }
    }

    /// A client with a fresh account `name` (password `password-<name>`).
    pub async fn user(&self, name: &str) -> Client {
        let mut c = Client::anonymous(self);
        let (st, body) = c
            .call(
                Method::POST,
                "/api/auth/signup",
                Some(json!({"username": name, "password": format!("password-{name}")})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "signup {name}: {body}");
        c.token = body["token"].as_str().map(String::from);
        c.id = body["user"]["id"].as_str().unwrap_or_default().to_string();
        c
    }
}

/// Default config with generous login and posting limits, so tests signing up many users or
/// posting bursts are not throttled.
pub fn test_config() -> ChatConfig {
    ChatConfig { login_burst_per_ip: 10_000, message_burst_per_user: 10_000, ..ChatConfig::default() }
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
    pub id: String,
}

impl Client {
    pub fn anonymous(server: &TestServer) -> Client {
        Client { http: reqwest::Client::new(), base: server.url(""), token: None, id: String::new() }
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let bytes = res.bytes().await.expect("body");
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Creates a guild; returns (guild id, text channel id, voice channel id).
    pub async fn guild(&self, name: &str) -> (String, String, String) {
        let (st, body) = self.post("/api/guilds", json!({ "name": name })).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        let id = |v: &Value| v["id"].as_str().expect("id").to_string();
        (id(&body["guild"]), id(&body["channels"][0]), id(&body["channels"][1]))
    }

    /// Creates an invite to `guild` and has `other` join with it.
    pub async fn invite(&self, guild: &str, other: &Client) {
        let (st, inv) = self.post(&format!("/api/guilds/{guild}/invites"), json!({})).await;
        assert_eq!(st, StatusCode::CREATED, "{inv}");
        let code = inv["code"].as_str().expect("code");
        let (st, body) = other.post(&format!("/api/invites/{code}"), json!({})).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }

    /// Sends a message; returns its id.
    pub async fn say(&self, channel: &str, content: &str) -> String {
        let (st, body) = self.post(&format!("/api/channels/{channel}/messages"), json!({ "content": content })).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("id").to_string()
    }
}

/// A raw gateway connection.
pub struct Gateway {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub last_seq: u64,
}

/// How a gateway connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

impl Gateway {
    /// Connects and reads HELLO; returns the connection and the heartbeat interval (ms).
    pub async fn connect(server: &TestServer) -> (Gateway, u64) {
        let (ws, _) = tokio_tungstenite::connect_async(server.gateway_url()).await.expect("connect gateway");
        let mut g = Gateway { ws, last_seq: 0 };
        let hello = g.recv().await;
        assert_eq!(hello["op"], 10, "{hello}");
        let interval = hello["d"]["heartbeat_interval"].as_u64().expect("interval");
        (g, interval)
    }

    /// Connects and identifies; returns the connection and READY's `d`.
    pub async fn identify(server: &TestServer, token: &str) -> (Gateway, Value) {
        let (mut g, _) = Gateway::connect(server).await;
        g.send(json!({ "op": 2, "d": { "token": token } })).await;
        let ready = g.recv_dispatch().await;
        assert_eq!(ready["t"], "READY", "{ready}");
        (g, ready["d"].clone())
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send(WsMessage::Text(v.to_string().into())).await.expect("send");
    }

    pub async fn send_raw(&mut self, m: WsMessage) {
        let _ = self.ws.send(m).await;
    }

    /// The next text frame as JSON (panics after 5 s or on close).
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("gateway frame within 5 s")
                .expect("connection open")
                .expect("frame");
            if let WsMessage::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
                if let Some(s) = v["s"].as_u64() {
                    self.last_seq = s;
                }
                return v;
            }
        }
    }

    /// The next dispatch (op 0), skipping heartbeat ACKs.
    pub async fn recv_dispatch(&mut self) -> Value {
        loop {
            let v = self.recv().await;
            if v["op"] == 0 {
                return v;
            }
        }
    }

    /// The next dispatch named `t`, skipping others (e.g. PRESENCE_UPDATE).
    pub async fn recv_event(&mut self, t: &str) -> Value {
        loop {
            let v = self.recv_dispatch().await;
            if v["t"] == t {
                return v;
            }
        }
    }

    /// Reads until the server closes; returns the close code (within `within`).
    pub async fn closed(&mut self, within: Duration) -> Ended {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await.expect("server closed in time") {
                Some(Ok(WsMessage::Close(frame))) => {
                    // Read on, as a client should: that sends our Close back and sees the socket end.
                    while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, self.ws.next()).await {}
                    return Ended::Closed(frame.map(|f: CloseFrame| f.code.into()));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ended::Dropped,
            }
        }
    }
}

/// Gateway helpers for watching for silence and for a specific close.
impl Gateway {
    /// Every text frame (as JSON) that arrives within `within`; panics if the connection ends.
    pub async fn drain(&mut self, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return out,
                Ok(Some(Ok(WsMessage::Text(t)))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
                    if let Some(s) = v["s"].as_u64() {
                        self.last_seq = s;
                    }
                    out.push(v);
                }
                Ok(Some(Ok(WsMessage::Close(f)))) => panic!("unexpected close {f:?} after {out:?}"),
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("connection ended: {other:?}"),
            }
        }
    }

    /// Asserts the server closes the connection with `code` within 2 s.
    pub async fn expect_close(&mut self, code: u16) {
        assert_eq!(self.closed(Duration::from_secs(2)).await, Ended::Closed(Some(code)));
    }
}

// Assertions and raw requests for API tests.

/// Asserts an API error: the status, and a body of exactly `{code, message}` with this code (plus
/// `retry_after`, seconds, on a 429 or 503).
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: u64) {
    let (st, body) = got;
    assert_eq!(*st, status, "status of {body}");
    let obj = body.as_object().unwrap_or_else(|| panic!("error body is not an object: {body}"));
    let retry = obj.get("retry_after").map(|r| r.as_f64().unwrap_or_else(|| panic!("retry_after is a number: {body}")));
    let may_retry = [StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE].contains(&status);
    assert!(retry.is_none() || may_retry, "retry_after only where waiting helps: {body}");
    let extra = usize::from(retry.is_some());
    assert_eq!(obj.len(), 2 + extra, "error body has only code and message: {body}");
    assert_eq!(body["code"].as_u64(), Some(code), "code of {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "message of {body}");
}

/// Like [`assert_error`] for any 4xx status; returns the code.
#[track_caller]
pub fn assert_client_error(got: &(StatusCode, Value)) -> u64 {
    let (st, body) = got;
    assert!(st.is_client_error(), "expected a 4xx, got {st}: {body}");
    assert_error(got, *st, body["code"].as_u64().unwrap_or_else(|| panic!("numeric code in {body}")));
    body["code"].as_u64().unwrap_or_default()
}

/// A request with full control over headers and body; returns status, headers and the JSON body
/// (`Null` when empty; panics if the body is not JSON, since every answer of the API is).
pub async fn raw(
    c: &Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = c.http.request(method, format!("{}{path}", c.base)).body(body);
    if let Some(t) = &c.token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    let res = req.send().await.expect("request");
    let (status, headers) = (res.status(), res.headers().clone());
    let text = res.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {text:?}"))
    };
    (status, headers, value)
}

pub fn creds(name: &str, password: &str) -> Value {
    json!({ "username": name, "password": password })
}

//! Many nodes as one service: three `confab` processes on one NATS (Debian's nats-server, started
//! here with JetStream) and one Postgres database. Black-box, over HTTP and the gateway.
//! Skipped without Postgres or nats-server, unless `CONFAB_REQUIRE_POSTGRES=1` (CI).

mod common;

use common::Server;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A throwaway nats-server with JetStream, on a free port, its store in a temp dir.
struct Nats {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nats {
    fn start() -> Option<Nats> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut n = Nats { child: None, port, dir: tempfile::tempdir().ok()? };
        n.run().then_some(n)
    }

    fn run(&mut self) -> bool {
        let store = self.dir.path().display().to_string();
        let port = self.port.to_string();
        let Ok(child) = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd", &store])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return false;
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// NATS and a fresh Postgres database, or `None` (skipped) when either is missing outside CI.
async fn infra(name: &str) -> Option<(Nats, String)> {
    let required = std::env::var("CONFAB_REQUIRE_POSTGRES").as_deref() == Ok("1");
    let Ok(admin) = std::env::var("CONFAB_TEST_POSTGRES_URL") else {
        assert!(!required, "CONFAB_TEST_POSTGRES_URL is required");
        eprintln!("skipping: CONFAB_TEST_POSTGRES_URL not set");
        return None;
    };
    let Some(nats) = Nats::start() else {
        assert!(!required, "nats-server is required (apt-get install nats-server)");
        eprintln!("skipping: no nats-server");
        return None;
    };
    use sqlx::{Connection, Executor};
    let db = format!("confab_cluster_{name}_{}", std::process::id());
    let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).await.unwrap();
    conn.close().await.unwrap();
    Some((nats, format!("{}/{db}", &admin[..admin.rfind('/').unwrap()])))
}

fn node(db: &str, nats: &Nats, id: &str) -> Server {
    let url = nats.url();
    Server::start(db, &[("CONFAB_CLUSTER_NATS_URL", &url), ("CONFAB_CLUSTER_NODE_ID", id)])
}

async fn call(method: reqwest::Method, url: String, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let (status, v) = call(reqwest::Method::POST, format!("{base}{path}"), token, Some(body)).await;
    assert!(status < 300, "POST {path}: {status} {v}");
    v
}

async fn signup(base: &str, name: &str) -> (String, String) {
    let s = post(base, "/api/auth/signup", None, json!({ "username": name, "password": "password-cluster" })).await;
    (s["token"].as_str().unwrap().to_string(), s["user"]["id"].as_str().unwrap().to_string())
}

/// A gateway client: identified, READY read.
struct Gw {
    ws: Ws,
    seq: u64,
    session: String,
    ready: Value,
}

impl Gw {
    async fn open(base: &str) -> Ws {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("{}/gateway", base.replace("http", "ws"))).await.unwrap();
        let hello = next_json(&mut ws).await.expect("HELLO");
        assert_eq!(hello["op"], 10);
        ws
    }

    async fn identify(base: &str, token: &str) -> Gw {
        let mut ws = Gw::open(base).await;
        ws.send(Message::Text(json!({ "op": 2, "d": { "token": token } }).to_string().into())).await.unwrap();
        let mut gw = Gw { ws, seq: 0, session: String::new(), ready: Value::Null };
        let ready = gw.event("READY", Duration::from_secs(10)).await;
        gw.session = ready["session_id"].as_str().unwrap().to_string();
        gw.ready = ready;
        gw
    }

    /// The next dispatch named `name` (others skipped), or a panic after `within`.
    async fn event(&mut self, name: &str, within: Duration) -> Value {
        self.event_where(name, within, |_| true).await
    }

    async fn event_where(&mut self, name: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let f = tokio::time::timeout_at(deadline, next_json(&mut self.ws))
                .await
                .unwrap_or_else(|_| panic!("no {name} within {within:?}"))
                .unwrap_or_else(|| panic!("socket closed waiting for {name}"));
            if let Some(s) = f["s"].as_u64() {
                self.seq = s;
            }
            if f["t"] == name && pred(&f["d"]) {
                return f["d"].clone();
            }
        }
    }

    /// The close code the server ends the socket with, within `within`.
    async fn closed(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await.ok()? {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    }
}

async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Three users on three nodes in one guild (made on the first), each with a gateway on their node.
struct Three {
    nodes: Vec<Server>,
    tokens: Vec<String>,
    users: Vec<String>,
    guild: String,
    text: String,
    voice: String,
}

async fn three(db: &str, nats: &Nats) -> Three {
    let nodes = vec![node(db, nats, "a"), node(db, nats, "b"), node(db, nats, "c")];
    let (mut tokens, mut users) = (Vec::new(), Vec::new());
    for (i, n) in nodes.iter().enumerate() {
        let (t, u) = signup(&n.base, &format!("user{i}")).await;
        tokens.push(t);
        users.push(u);
    }
    let g = post(&nodes[0].base, "/api/guilds", Some(&tokens[0]), json!({ "name": "cluster" })).await;
    let guild = g["guild"]["id"].as_str().unwrap().to_string();
    let text = g["channels"][0]["id"].as_str().unwrap().to_string();
    let voice = g["channels"][1]["id"].as_str().unwrap().to_string();
    let inv = post(&nodes[0].base, &format!("/api/guilds/{guild}/invites"), Some(&tokens[0]), json!({})).await;
    let code = inv["code"].as_str().unwrap().to_string();
    for i in 1..3 {
        post(&nodes[i].base, &format!("/api/invites/{code}"), Some(&tokens[i]), json!({})).await;
    }
    Three { nodes, tokens, users, guild, text, voice }
}

const WAIT: Duration = Duration::from_secs(10);

/// Snowflake worker bits (see `chat::id`): which node minted an id.
fn worker(id: &str) -> u64 {
    (id.parse::<u64>().unwrap() >> 12) & 0x3ff
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_chat_as_one() {
    let Some((nats, db)) = infra("chat").await else { return };
    let t = three(&db, &nats).await;
    let mut gws = Vec::new();
    for i in 0..3 {
        gws.push(Gw::identify(&t.nodes[i].base, &t.tokens[i]).await);
    }
    // Presence: user0 (on a) sees user2 (on c) come online... already online: READY on c after
    // a and b identified shows them online.
    let members = &gws[2].ready["guilds"][0]["members"];
    let online: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "online")
        .filter_map(|m| m["user_id"].as_str())
        .collect();
    assert!(online.contains(&t.users[0].as_str()) && online.contains(&t.users[1].as_str()), "{members}");

    // Messages from every node reach every node, in the order each node sent them.
    let path = format!("/api/channels/{}/messages", t.text);
    let mut sent = Vec::new();
    for k in 0..12 {
        let from = k % 3;
        let m = post(&t.nodes[from].base, &path, Some(&t.tokens[from]), json!({ "content": format!("m{k}") })).await;
        sent.push((from, m["id"].as_str().unwrap().to_string()));
    }
    for gw in gws.iter_mut() {
        let mut got: Vec<(usize, String)> = Vec::new();
        while got.len() < sent.len() {
            let m = gw.event("MESSAGE_CREATE", WAIT).await;
            let k: usize = m["content"].as_str().unwrap()[1..].parse().unwrap();
            got.push((k % 3, m["id"].as_str().unwrap().to_string()));
        }
        for from in 0..3 {
            let theirs: Vec<&String> = got.iter().filter(|(f, _)| *f == from).map(|(_, id)| id).collect();
            let want: Vec<&String> = sent.iter().filter(|(f, _)| *f == from).map(|(_, id)| id).collect();
            assert_eq!(theirs, want, "node {from}'s messages, once each and in order");
        }
    }
    // Each node mints ids with its own worker number.
    let workers: std::collections::HashSet<u64> = sent.iter().map(|(_, id)| worker(id)).collect();
    assert_eq!(workers.len(), 3, "three nodes, three worker ids: {workers:?}");

    // Typing on c reaches a; a status change on b reaches c.
    post(&t.nodes[2].base, &format!("/api/channels/{}/typing", t.text), Some(&t.tokens[2]), json!({})).await;
    let typing = gws[0].event("TYPING_START", WAIT).await;
    assert_eq!(typing["user_id"], t.users[2].as_str());
    gws[1].ws.send(Message::Text(json!({ "op": 3, "d": { "status": "idle" } }).to_string().into())).await.unwrap();
    gws[2].event_where("PRESENCE_UPDATE", WAIT, |d| d["user_id"] == t.users[1].as_str() && d["status"] == "idle").await;

    // History is the same from every node.
    let mut histories = Vec::new();
    for (i, n) in t.nodes.iter().enumerate() {
        let (status, h) =
            call(reqwest::Method::GET, format!("{}{path}?limit=50", n.base), Some(&t.tokens[i]), None).await;
        assert_eq!(status, 200);
        histories.push(h);
    }
    assert_eq!(histories[0].as_array().unwrap().len(), 12);
    assert!(histories.iter().all(|h| *h == histories[0]));
    let _ = &t.guild;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_working_on_every_node() {
    let Some((nats, db)) = infra("revoke").await else { return };
    let t = three(&db, &nats).await;
    // user1's token, used on c's gateway and b's API; logged out through a.
    let mut gw = Gw::identify(&t.nodes[2].base, &t.tokens[1]).await;
    let me = |base: &str| call(reqwest::Method::GET, format!("{base}/api/users/@me"), Some(&t.tokens[1]), None);
    assert_eq!(me(&t.nodes[1].base).await.0, 200, "cached on b now");
    let started = Instant::now();
    post(&t.nodes[0].base, "/api/auth/logout", Some(&t.tokens[1]), json!({})).await;
    assert_eq!(gw.closed(WAIT).await, Some(4004), "c's gateway ends the session");
    let closed_after = started.elapsed();
    assert_eq!(me(&t.nodes[1].base).await.0, 401, "b's cache forgot the token");
    eprintln!("revocation: c closed the socket {closed_after:?} after the logout on a");
    // A ban on a reaches the banned user's gateway on b.
    let mut gw2 = Gw::identify(&t.nodes[1].base, &t.tokens[2]).await;
    let ban = format!("{}/api/guilds/{}/bans/{}", t.nodes[0].base, t.guild, t.users[2]);
    let (status, v) = call(reqwest::Method::PUT, ban, Some(&t.tokens[0]), Some(json!({}))).await;
    assert!(status < 300, "{status} {v}");
    let gone = gw2.event("GUILD_DELETE", WAIT).await;
    assert_eq!(gone["id"], t.guild.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_takes_its_presence_and_its_clients_carry_on_elsewhere() {
    let Some((nats, db)) = infra("kill").await else { return };
    let mut t = three(&db, &nats).await;
    let mut watcher = Gw::identify(&t.nodes[0].base, &t.tokens[0]).await;
    let mut victim = Gw::identify(&t.nodes[1].base, &t.tokens[1]).await;
    let path = format!("/api/channels/{}/messages", t.text);
    post(&t.nodes[0].base, &path, Some(&t.tokens[0]), json!({ "content": "before" })).await;
    victim.event("MESSAGE_CREATE", WAIT).await;

    // In a call on its node too.
    let user1 = t.users[1].clone();
    let opts = testbed::VoiceOptions { send: false, ..Default::default() };
    let call = testbed::VoiceClient::join(&t.nodes[1].base, &t.tokens[1], &t.voice, opts).await.unwrap();
    let in_call = |d: &Value| d["user_id"] == user1.as_str() && d["channel_id"] == t.voice.as_str();
    watcher.event_where("VOICE_STATE_UPDATE", WAIT, in_call).await;

    let killed = Instant::now();
    t.nodes[1].kill(); // SIGKILL
    // Offline, and out of the call, once the others notice (5 s of silence).
    let (mut offline, mut left) = (false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(offline && left) {
        let f = tokio::time::timeout_at(deadline, next_json(&mut watcher.ws))
            .await
            .expect("presence and voice state cleared")
            .expect("socket open");
        let d = &f["d"];
        offline |= f["t"] == "PRESENCE_UPDATE" && d["user_id"] == user1.as_str() && d["status"] == "offline";
        left |= f["t"] == "VOICE_STATE_UPDATE" && d["user_id"] == user1.as_str() && d["channel_id"].is_null();
    }
    drop(call);
    eprintln!("presence of the killed node's user cleared {:?} after the kill", killed.elapsed());

    // The dead node's client goes to c: its session is unknown there (INVALID_SESSION), so it
    // identifies afresh and is online again, and every message sent meanwhile is in history.
    let mut ws = Gw::open(&t.nodes[2].base).await;
    let resume = json!({ "op": 6, "d": { "token": t.tokens[1], "session_id": victim.session, "seq": victim.seq } });
    ws.send(Message::Text(resume.to_string().into())).await.unwrap();
    let f = next_json(&mut ws).await.expect("an answer to RESUME");
    assert_eq!(f["op"], 9, "INVALID_SESSION, never a silent hole: {f}");
    let mut again = Gw::identify(&t.nodes[2].base, &t.tokens[1]).await;
    watcher.event_where("PRESENCE_UPDATE", WAIT, |d| d["user_id"] == user1.as_str() && d["status"] == "online").await;
    post(&t.nodes[0].base, &path, Some(&t.tokens[0]), json!({ "content": "after" })).await;
    assert_eq!(again.event("MESSAGE_CREATE", WAIT).await["content"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_loses_no_acknowledged_message() {
    let Some((mut nats, db)) = infra("restart").await else { return };
    let t = three(&db, &nats).await;
    let mut reader = Gw::identify(&t.nodes[1].base, &t.tokens[1]).await;
    let path = format!("/api/channels/{}/messages", t.text);
    nats.kill();
    let mut acked = Vec::new();
    for k in 0..10 {
        let m = post(&t.nodes[0].base, &path, Some(&t.tokens[0]), json!({ "content": format!("during {k}") })).await;
        acked.push(m["id"].as_str().unwrap().to_string());
    }
    assert!(nats.run(), "nats-server restarted");
    // The nodes reconnect by themselves; what was published meanwhile follows.
    let mut got = Vec::new();
    while got.len() < acked.len() {
        let m = reader.event("MESSAGE_CREATE", Duration::from_secs(20)).await;
        got.push(m["id"].as_str().unwrap().to_string());
    }
    assert_eq!(got, acked, "every acknowledged message, once, in order");
    let after = post(&t.nodes[2].base, &path, Some(&t.tokens[2]), json!({ "content": "after" })).await;
    assert_eq!(reader.event("MESSAGE_CREATE", WAIT).await["id"], after["id"]);
}

#[tokio::test]
async fn a_cluster_refuses_sqlite_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = confab::config::Config {
        listen: "127.0.0.1:0".into(),
        database_url: format!("sqlite:{}", dir.path().join("c.db").display()),
        ..Default::default()
    };
    cfg.media.bind = "127.0.0.1:0".into();
    cfg.live.rtmp_bind = String::new();
    cfg.cluster.nats_url = "nats://127.0.0.1:1".into();
    let err = confab::server::Running::start(&cfg).await.err().expect("refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("share one Postgres store"), "{msg}");
}

/// Joins `voice` through `api`'s API, retrying while the placement still names a dead node.
async fn join_retrying(api: &str, token: &str, voice: &str, tone: f32) -> testbed::VoiceClient {
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        match testbed::VoiceClient::join(api, token, voice, testbed::VoiceOptions::tone(tone)).await {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("join failed ({e:#}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("no join within 25 s: {e:#}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_rooms_live_on_media_nodes_and_move_when_one_dies() {
    let Some((nats, db)) = infra("voice").await else { return };
    let url = nats.url();
    let api_env = [
        ("CONFAB_CLUSTER_NATS_URL", url.as_str()),
        ("CONFAB_CLUSTER_NODE_ID", "api"),
        ("CONFAB_CLUSTER_ROLES", "api,gateway"),
    ];
    let api = Server::start(&db, &api_env);
    let mut media = [node(&db, &nats, "m1"), node(&db, &nats, "m2")];
    let (t0, _) = signup(&api.base, "caller0").await;
    let (t1, _) = signup(&api.base, "caller1").await;
    let g = post(&api.base, "/api/guilds", Some(&t0), json!({ "name": "calls" })).await;
    let guild = g["guild"]["id"].as_str().unwrap().to_string();
    let voice = g["channels"][1]["id"].as_str().unwrap().to_string();
    let inv = post(&api.base, &format!("/api/guilds/{guild}/invites"), Some(&t0), json!({})).await;
    post(&api.base, &format!("/api/invites/{}", inv["code"].as_str().unwrap()), Some(&t1), json!({})).await;
    // The API node serves no media: once it has heard the media nodes, grants name one of them.
    let path = format!("/api/channels/{voice}/voice");
    let deadline = Instant::now() + WAIT;
    let endpoint = loop {
        let (status, v) = call(reqwest::Method::POST, format!("{}{path}", api.base), Some(&t0), Some(json!({}))).await;
        if status == 200 {
            break v["endpoint"].as_str().unwrap().to_string();
        }
        assert_eq!((status, &v["code"]), (503, &json!(50503)), "{v}");
        assert!(Instant::now() < deadline, "no media node heard");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let host =
        media.iter().position(|m| endpoint == format!("{}/voice", m.base.replace("http", "ws"))).expect(&endpoint);

    // Both join through the API node and land on the same media node: they hear each other.
    let tones = [500.0, 800.0];
    let c0 = join_retrying(&api.base, &t0, &voice, tones[0]).await;
    let c1 = join_retrying(&api.base, &t1, &voice, tones[1]).await;
    c0.wait_heard(&tones, &tones[1..], WAIT).await.unwrap();
    c1.wait_heard(&tones, &tones[..1], WAIT).await.unwrap();
    let (_, again) = call(reqwest::Method::POST, format!("{}{path}", api.base), Some(&t1), Some(json!({}))).await;
    assert_eq!(again["endpoint"], endpoint.as_str(), "every join goes to the room's node");

    // Its node dies: rejoining through the API node places the room on the other one.
    media[host].kill();
    drop((c0, c1));
    let c0 = join_retrying(&api.base, &t0, &voice, tones[0]).await;
    let c1 = join_retrying(&api.base, &t1, &voice, tones[1]).await;
    c0.wait_heard(&tones, &tones[1..], WAIT).await.unwrap();
    c1.wait_heard(&tones, &tones[..1], WAIT).await.unwrap();
    let (_, moved) = call(reqwest::Method::POST, format!("{}{path}", api.base), Some(&t0), Some(json!({}))).await;
    let other = format!("{}/voice", media[1 - host].base.replace("http", "ws"));
    assert_eq!(moved["endpoint"], other.as_str(), "the room moved to the live media node");
}

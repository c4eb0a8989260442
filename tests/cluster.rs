//! Many nodes as one service: three `confab` processes on one NATS (Debian's nats-server, started
//! here with JetStream) and one Postgres database. Black-box, over HTTP and the gateway.
//! Skipped without Postgres or nats-server, unless `CONFAB_REQUIRE_POSTGRES=1` (CI).

mod common;

use common::Server;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testbed::rejoin::Rejoining;
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
    let inv = post(&nodes[0].base, &format!("/api/guilds/{guild}/invites"), Some(&tokens[0]), json!({})).await;
    let code = inv["code"].as_str().unwrap().to_string();
    for i in 1..3 {
        post(&nodes[i].base, &format!("/api/invites/{code}"), Some(&tokens[i]), json!({})).await;
    }
    Three { nodes, tokens, users, guild, text }
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

    let user1 = t.users[1].clone();
    let killed = Instant::now();
    t.nodes[1].kill(); // SIGKILL
    // Offline once the others notice (5 s of silence).
    watcher
        .event_where("PRESENCE_UPDATE", Duration::from_secs(15), |d| {
            d["user_id"] == user1.as_str() && d["status"] == "offline"
        })
        .await;
    eprintln!("presence of the killed node's user cleared {:?} after the kill", killed.elapsed());

    // The dead node's client resumes on c: it is sent what it missed meanwhile, then RESUMED,
    // and is online again.
    let during = post(&t.nodes[0].base, &path, Some(&t.tokens[0]), json!({ "content": "during" })).await;
    let mut again = resume(&t.nodes[2].base, &t.tokens[1], &victim).await;
    let missed: Vec<&str> =
        again.1.iter().filter(|f| f["t"] == "MESSAGE_CREATE").filter_map(|f| f["d"]["id"].as_str()).collect();
    assert_eq!(missed, vec![during["id"].as_str().unwrap()], "the message sent while it was away, once");
    watcher.event_where("PRESENCE_UPDATE", WAIT, |d| d["user_id"] == user1.as_str() && d["status"] == "online").await;
    post(&t.nodes[0].base, &path, Some(&t.tokens[0]), json!({ "content": "after" })).await;
    assert_eq!(again.0.event("MESSAGE_CREATE", WAIT).await["content"], "after");
}

/// RESUMEs `old`'s session on `base`: the socket, and the dispatches replayed before RESUMED.
async fn resume(base: &str, token: &str, old: &Gw) -> (Gw, Vec<Value>) {
    let mut ws = Gw::open(base).await;
    let msg = json!({ "op": 6, "d": { "token": token, "session_id": old.session, "seq": old.seq } });
    ws.send(Message::Text(msg.to_string().into())).await.unwrap();
    let mut replayed = Vec::new();
    loop {
        let f = tokio::time::timeout(WAIT, next_json(&mut ws)).await.expect("an answer to RESUME").expect("open");
        assert_ne!(f["op"], 9, "INVALID_SESSION on {base}");
        if f["t"] == "RESUMED" {
            let seq = f["s"].as_u64().unwrap();
            let gw = Gw { ws, seq, session: old.session.clone(), ready: Value::Null };
            return (gw, replayed);
        }
        let s = f["s"].as_u64().unwrap();
        assert!(s > old.seq, "only what came after the client's sequence: {f}");
        replayed.push(f);
    }
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
    let join = |t: String, tone: f32| {
        let (api, voice) = (api.base.clone(), voice.clone());
        async move { Rejoining::join(&api, &t, &voice, testbed::VoiceOptions::tone(tone)).await.unwrap() }
    };
    let (c0, c1) = (join(t0.clone(), tones[0]).await, join(t1.clone(), tones[1]).await);
    c0.client().wait_heard(&tones, &tones[1..], WAIT).await.unwrap();
    c1.client().wait_heard(&tones, &tones[..1], WAIT).await.unwrap();
    let (_, again) = call(reqwest::Method::POST, format!("{}{path}", api.base), Some(&t1), Some(json!({}))).await;
    assert_eq!(again["endpoint"], endpoint.as_str(), "every join goes to the room's node");

    // Its node dies: the others see both leave the voice channel (the dead node's voice states
    // cleared), and both clients rejoin by themselves through the API node, which places the
    // room on the other media node: they hear each other again.
    let mut watcher = Gw::identify(&api.base, &t0).await;
    let killed = Instant::now();
    media[host].kill();
    let mut left = std::collections::HashSet::new();
    while left.len() < 2 {
        let d = watcher.event_where("VOICE_STATE_UPDATE", Duration::from_secs(15), |d| d["channel_id"].is_null()).await;
        left.insert(d["user_id"].as_str().unwrap().to_string());
    }
    let n0 = c0.wait_rejoins(1, Duration::from_secs(40)).await.unwrap();
    let n1 = c1.wait_rejoins(1, Duration::from_secs(40)).await.unwrap();
    n0.wait_heard(&tones, &tones[1..], WAIT).await.unwrap();
    n1.wait_heard(&tones, &tones[..1], WAIT).await.unwrap();
    eprintln!("voice: both heard each other again {:?} after their node was killed", killed.elapsed());
    let (_, moved) = call(reqwest::Method::POST, format!("{}{path}", api.base), Some(&t0), Some(json!({}))).await;
    let other = format!("{}/voice", media[1 - host].base.replace("http", "ws"));
    assert_eq!(moved["endpoint"], other.as_str(), "the room moved to the live media node");
}

/// Every frame until the socket closes or `quiet` passes without one; keeps the sequence.
async fn drain(gw: &mut Gw, quiet: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(Some(f)) = tokio::time::timeout(quiet, next_json(&mut gw.ws)).await {
        if let Some(s) = f["s"].as_u64() {
            gw.seq = s;
        }
        out.push(f);
    }
    out
}

/// Frames until every id of `want` was among the MESSAGE_CREATEs seen (with `seen` before), then a
/// short quiet moment more (a duplicate would show); at most 15 s.
async fn drain_until(gw: &mut Gw, want: &[&String], seen: &[String]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut out = Vec::new();
    loop {
        let have: std::collections::HashSet<String> = seen.iter().cloned().chain(created(&out)).collect();
        let done = want.iter().all(|id| have.contains(*id));
        let wait = if done { Duration::from_millis(200) } else { deadline.saturating_duration_since(Instant::now()) };
        match tokio::time::timeout(wait, next_json(&mut gw.ws)).await {
            Ok(Some(f)) => {
                if let Some(s) = f["s"].as_u64() {
                    gw.seq = s;
                }
                out.push(f);
            }
            _ => return out,
        }
    }
}

fn created(frames: &[Value]) -> Vec<String> {
    frames.iter().filter(|f| f["t"] == "MESSAGE_CREATE").map(|f| f["d"]["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_every_client_resumes_and_misses_nothing() {
    let Some((nats, db)) = infra("load").await else { return };
    let mut nodes = [node(&db, &nats, "a"), node(&db, &nats, "b"), node(&db, &nats, "c")];
    let (owner, _) = signup(&nodes[0].base, "owner").await;
    let g = post(&nodes[0].base, "/api/guilds", Some(&owner), json!({ "name": "load" })).await;
    let guild = g["guild"]["id"].as_str().unwrap().to_string();
    let text = g["channels"][0]["id"].as_str().unwrap().to_string();
    let inv = post(&nodes[0].base, &format!("/api/guilds/{guild}/invites"), Some(&owner), json!({})).await;
    let code = inv["code"].as_str().unwrap().to_string();
    // 21 clients, 7 on each node, each with a gateway there.
    let (mut tokens, mut gws, mut home) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..21 {
        let n = i % 3;
        let (t, _) = signup(&nodes[n].base, &format!("load{i}")).await;
        post(&nodes[n].base, &format!("/api/invites/{code}"), Some(&t), json!({})).await;
        tokens.push(t);
        home.push(n);
    }
    for i in 0..21 {
        gws.push(Gw::identify(&nodes[home[i]].base, &tokens[i]).await);
    }
    // Four clients per node post eight messages each; b is killed while they do.
    let path = format!("/api/channels/{text}/messages");
    let mut senders = Vec::new();
    for i in 0..12 {
        let (base, token, path) = (nodes[home[i]].base.clone(), tokens[i].clone(), path.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for k in 0..8 {
                let req = reqwest::Client::new().post(format!("{base}{path}")).bearer_auth(&token);
                match req.json(&json!({ "content": format!("s{i} m{k}") })).send().await {
                    Ok(r) if r.status().as_u16() == 201 => {
                        acked.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string())
                    }
                    _ => break, // its node is gone
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            (i, acked)
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    nodes[1].kill();
    let mut acked: Vec<(usize, Vec<String>)> = Vec::new();
    for s in senders {
        acked.push(s.await.unwrap());
    }
    // Every acknowledged message is in the store.
    let (_, history) =
        call(reqwest::Method::GET, format!("{}{path}?limit=100", nodes[0].base), Some(&owner), None).await;
    let stored: std::collections::HashSet<&str> =
        history.as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    for (_, ids) in &acked {
        assert!(ids.iter().all(|id| stored.contains(id.as_str())), "an acknowledged message is missing");
    }
    // What every client must have been sent: all that was acknowledged, by the killed node too
    // (a node answers 201 only once the dispatch is in the stream).
    let must: Vec<&(usize, Vec<String>)> = acked.iter().collect();
    let want: Vec<&String> = must.iter().flat_map(|(_, ids)| ids).collect();
    let started = Instant::now();
    let mut resumed_in = Vec::new();
    for (i, gw) in gws.iter_mut().enumerate() {
        let mut got = if home[i] == 1 {
            created(&drain(gw, Duration::from_millis(500)).await) // until its node's socket closes
        } else {
            created(&drain_until(gw, &want, &[]).await)
        };
        if home[i] == 1 {
            // b's clients resume, alternately on a and c.
            let to = if i % 2 == 0 { 0 } else { 2 };
            let t = Instant::now();
            let (mut again, replayed) = resume(&nodes[to].base, &tokens[i], gw).await;
            resumed_in.push(t.elapsed());
            got.extend(created(&replayed));
            let more = drain_until(&mut again, &want, &got).await;
            got.extend(created(&more));
        }
        let unique: std::collections::HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "client {i} was sent a message twice");
        for (sender, ids) in &must {
            let theirs: Vec<&String> = got.iter().filter(|id| ids.contains(id)).collect();
            assert_eq!(
                theirs,
                ids.iter().collect::<Vec<_>>(),
                "client {i} (node {}): sender {sender}'s messages",
                home[i]
            );
        }
    }
    resumed_in.sort();
    eprintln!(
        "kill -9 under load: {} messages acknowledged; 7 clients resumed on other nodes in {:?} (median {:?}); checked in {:?}",
        acked.iter().map(|(_, v)| v.len()).sum::<usize>(),
        resumed_in,
        resumed_in[resumed_in.len() / 2],
        started.elapsed()
    );
}

/// One LL-HLS viewer on an edge: `rounds` blocking reloads of the source rendition, fetching the
/// newest two parts each time. Returns (path, X-Cache, bytes) of every part and blocking reload.
async fn edge_viewer(base: String, ch: String, a: String, rounds: usize) -> Vec<(String, String, Vec<u8>)> {
    let http = reqwest::Client::new();
    let dir = format!("{base}/live/{ch}/source/");
    let mut url = format!("{dir}index.m3u8?a={a}");
    let mut got = Vec::new();
    for _ in 0..rounds {
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let cache = r.headers()["x-cache"].to_str().unwrap().to_string();
        let text = r.text().await.unwrap();
        // A blocking reload names what it waited for: the crowd's meet in one origin request.
        if let Some(q) = url.split_once("index.m3u8?_HLS").map(|(_, q)| q) {
            got.push((format!("index.m3u8?_HLS{q}"), cache, text.clone().into_bytes()));
        }
        let uri = |line: &str| line.split("URI=\"").nth(1).and_then(|u| u.split('"').next()).map(str::to_string);
        let parts: Vec<String> = text.lines().filter(|l| l.starts_with("#EXT-X-PART:")).filter_map(uri).collect();
        for p in parts.iter().rev().take(2) {
            let r = http.get(format!("{dir}{p}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{p}");
            let cache = r.headers()["x-cache"].to_str().unwrap().to_string();
            let path = p.split('?').next().unwrap().to_string();
            got.push((path, cache, r.bytes().await.unwrap().to_vec()));
        }
        // Block for the part the playlist hints at next, as hls.js does.
        let hint = text.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT")).and_then(uri).expect("a preload hint");
        let (m, i) = hint.trim_start_matches("part").split(".m4s").next().unwrap().split_once('.').unwrap();
        url = format!("{dir}index.m3u8?_HLS_msn={m}&_HLS_part={i}&a={a}");
    }
    got
}

/// A stream ingested on node a is watched through node c's LL-HLS: the same bytes as a's, and
/// c asks a for each part once however many of its viewers want it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ingested_on_one_node_is_watched_through_another_fetching_each_part_once() {
    let Some((nats, db)) = infra("edge").await else { return };
    let t = three(&db, &nats).await;
    let (a, c) = (t.nodes[0].base.clone(), t.nodes[2].base.clone());
    let ch = common::live_channel(&a, &t.tokens[0], &t.guild, "stage").await;
    let key = post(&a, &format!("/api/channels/{ch}/stream-key"), Some(&t.tokens[0]), json!({})).await;
    let mut publisher = common::publish(key["rtmp_url"].as_str().unwrap(), 20);
    // Node c learns that the stream is live (from a's STREAM_UPDATE) and hands out a watch token.
    let deadline = Instant::now() + Duration::from_secs(15);
    let watch = loop {
        let (_, s) =
            call(reqwest::Method::GET, format!("{c}/api/channels/{ch}/stream"), Some(&t.tokens[2]), None).await;
        if s["state"] == "live" {
            break s["watch_token"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the stream never showed live on node c: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let master = reqwest::get(format!("{c}/live/{ch}/index.m3u8?a={watch}")).await.unwrap();
    assert_eq!(master.status(), 200);
    assert!(master.text().await.unwrap().contains("source/index.m3u8"));
    let refused = reqwest::get(format!("{c}/live/{ch}/source/index.m3u8")).await.unwrap();
    assert_eq!(refused.status(), 403, "the edge checks watch tokens too");
    // Viewers are counted by the origin, wherever they watch.
    let (status, v) = call(reqwest::Method::POST, format!("{c}/live/{ch}/viewers?a={watch}"), None, None).await;
    assert_eq!(status, 201, "{v}");

    // Eight viewers on c at once.
    let crowd: Vec<_> = (0..8).map(|_| tokio::spawn(edge_viewer(c.clone(), ch.clone(), watch.clone(), 8))).collect();
    let mut fetched: std::collections::HashMap<String, (usize, usize, Vec<u8>)> = Default::default();
    for v in crowd {
        for (path, cache, bytes) in v.await.unwrap() {
            let e = fetched.entry(path.clone()).or_insert((0, 0, bytes.clone()));
            e.0 += usize::from(cache == "MISS");
            e.1 += 1;
            assert_eq!(e.2, bytes, "{path}: every viewer got the same bytes");
        }
    }
    let _ = publisher.kill();
    let _ = publisher.wait();
    let asks: usize = fetched.values().map(|e| e.1).sum();
    let parts = fetched.keys().filter(|p| p.starts_with("part")).count();
    assert!(parts >= 8 && asks >= 8 * 16, "{parts} parts, {asks} asks");
    for (path, (misses, n, bytes)) in &fetched {
        assert_eq!(*misses, 1, "{path}: fetched from the origin {misses} times for {n} viewers");
        if !path.starts_with("part") {
            continue;
        }
        let origin = reqwest::get(format!("{a}/live/{ch}/source/{path}?a={watch}")).await.unwrap();
        if origin.status() == 200 {
            assert_eq!(&origin.bytes().await.unwrap()[..], &bytes[..], "{path}: the origin's bytes");
        }
    }
    eprintln!(
        "edge: {parts} parts and {} blocking reloads, {asks} requests on node c, one origin fetch each",
        fetched.len() - parts
    );
}

/// NATS away longer than a node's publish queue holds: the dispatches that did not fit are
/// dropped, and once NATS is back every session in the cluster is ended (4009) so its client
/// identifies afresh; every acknowledged message is in the history it then reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatches_dropped_in_a_long_outage_make_every_session_start_afresh() {
    let Some((mut nats, db)) = infra("resync").await else { return };
    let url = nats.url();
    let small = [
        ("CONFAB_CLUSTER_NATS_URL", url.as_str()),
        ("CONFAB_CLUSTER_NODE_ID", "a"),
        ("CONFAB_CLUSTER_PUBLISH_QUEUE", "4"),
        ("CONFAB_CHAT_MESSAGE_BURST_PER_USER", "100000"),
    ];
    let nodes = [Server::start(&db, &small), node(&db, &nats, "b")];
    let (t0, _) = signup(&nodes[0].base, "poster").await;
    let (t1, _) = signup(&nodes[1].base, "reader").await;
    let g = post(&nodes[0].base, "/api/guilds", Some(&t0), json!({ "name": "outage" })).await;
    let (guild, text) = (g["guild"]["id"].as_str().unwrap(), g["channels"][0]["id"].as_str().unwrap().to_string());
    let inv = post(&nodes[0].base, &format!("/api/guilds/{guild}/invites"), Some(&t0), json!({})).await;
    post(&nodes[1].base, &format!("/api/invites/{}", inv["code"].as_str().unwrap()), Some(&t1), json!({})).await;
    let mut reader = Gw::identify(&nodes[1].base, &t1).await;

    // More posts while NATS is away than the queue and the publisher's window (256) hold.
    nats.kill();
    let path = format!("/api/channels/{text}/messages");
    let posts = (0..400).map(|k| {
        let (base, t0, path) = (nodes[0].base.clone(), t0.clone(), path.clone());
        async move { post(&base, &path, Some(&t0), json!({ "content": format!("m{k}") })).await["id"].clone() }
    });
    let acked: Vec<Value> = futures_util::stream::iter(posts).buffered(16).collect().await;
    assert!(nats.run(), "nats-server restarted");
    assert_eq!(reader.closed(Duration::from_secs(30)).await, Some(4009), "the reader's session ended");
    // Its RESUME is refused; a fresh IDENTIFY and the history have every acknowledged message.
    let mut ws = Gw::open(&nodes[1].base).await;
    let msg = json!({ "op": 6, "d": { "token": t1, "session_id": reader.session, "seq": reader.seq } });
    ws.send(Message::Text(msg.to_string().into())).await.unwrap();
    let f = tokio::time::timeout(WAIT, next_json(&mut ws)).await.unwrap().unwrap();
    assert_eq!(f["op"], 9, "INVALID_SESSION: {f}");
    Gw::identify(&nodes[1].base, &t1).await;
    let mut seen = std::collections::HashSet::new();
    let mut before = String::new();
    loop {
        let q = if before.is_empty() { "?limit=100".to_string() } else { format!("?limit=100&before={before}") };
        let (_, page) = call(reqwest::Method::GET, format!("{}{path}{q}", nodes[1].base), Some(&t1), None).await;
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        before = page
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .min_by_key(|id| id.parse::<u64>().unwrap())
            .unwrap();
        seen.extend(page.iter().map(|m| m["id"].clone()));
    }
    assert!(acked.iter().all(|id| seen.contains(id)), "every acknowledged message is in the history");
}

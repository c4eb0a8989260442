//! One cluster step: `nodes` confab processes on one fresh Postgres database and, for more than
//! one, a `nats-server` of their own (JetStream on). Chat clients connect to the nodes in turn
//! and messages are posted through them in turn, so most deliveries cross the bus; the figure
//! that compares steps is deliveries per core-second of everything serving (the nodes and NATS).
//! Then, on a multi-node step, voice rooms are granted (where placement puts them), a stream
//! ingested by the first node is watched through the second (`cluster_edge`), and the last
//! node is killed with `resumers` clients on it (how long until each is RESUMED elsewhere); on
//! the one-node step, authenticated requests per second with the login cache on and off
//! (`cluster_probes`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use futures_util::{StreamExt, stream};
use indicatif::ProgressBar;
use serde_json::json;
use tokio::sync::watch;

use super::api::{Account, Api, run_tag};
use super::chat_run::{Recorder, connect, serve, unix_nanos};
use super::cluster_edge::edge_fetches;
use super::cluster_probes::{Resumers, auth_rate, place_rooms, resume_after_kill};
use super::procstat::{cores, sample};
use super::results::{ClusterStep, Dist};
use super::scenario::ClusterSweep;
use super::server::{Server, Target};

/// Time left for in-flight dispatches after the last message.
const DRAIN: Duration = Duration::from_secs(2);
/// Long enough for every node to have heard every other's heartbeat.
const SETTLE: Duration = Duration::from_millis(2500);

/// A `nats-server` with JetStream on a free loopback port and a store of its own.
pub(super) struct Nats {
    child: Child,
    pub url: String,
    dir: PathBuf,
}

impl Nats {
    fn start() -> Result<Nats> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("confab-bench-nats-{}", run_tag()));
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nats-server (apt-get install nats-server)")?;
        let nats = Nats { child, url: format!("nats://127.0.0.1:{port}"), dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(nats);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("nats-server did not listen on {port} within 5 s")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh database on the Postgres at `CONFAB_BENCH_POSTGRES_URL` (made with `psql`).
fn fresh_database() -> Result<String> {
    let admin = std::env::var("CONFAB_BENCH_POSTGRES_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .context("a cluster step needs CONFAB_BENCH_POSTGRES_URL (postgres://…, a user that may create databases)")?;
    let name = format!("confab_bench_{}", run_tag());
    let ok = Command::new("psql").args([&admin, "-qc", &format!("CREATE DATABASE {name}")]).status();
    ensure!(ok.context("running psql")?.success(), "psql could not create {name}");
    let cut = admin.rfind('/').context("CONFAB_BENCH_POSTGRES_URL has no database")?;
    Ok(format!("{}/{name}", &admin[..cut]))
}

pub async fn run_step(target: &Target, sweep: &ClusterSweep, nodes: usize, pb: &ProgressBar) -> Result<ClusterStep> {
    let mut step = ClusterStep { sweep: sweep.name.clone(), nodes, ..ClusterStep::default() };
    let db = fresh_database()?;
    let nats = if nodes > 1 { Some(Nats::start()?) } else { None };
    let mut servers: Vec<Server> = Vec::new();
    for i in 0..nodes {
        let mut env = Vec::new();
        if let Some(n) = &nats {
            env = vec![("CONFAB_CLUSTER_NATS_URL", n.url.clone()), ("CONFAB_CLUSTER_NODE_ID", format!("n{i}"))];
        }
        servers.push(target.start_node(&db, &env).with_context(|| format!("node {i}"))?);
    }
    let apis: Vec<Api> = servers.iter().map(|s| Api::new(&s.base)).collect::<Result<_>>()?;
    tokio::time::sleep(SETTLE).await;

    pb.set_message(format!("{} ×{nodes}: accounts", sweep.name));
    let tag = run_tag();
    let names = (0..sweep.guilds * sweep.users_per_guild).map(|i| format!("c{tag}-{i}")).collect();
    let users = apis[0].signup_many(names, || {}).await?;
    let mut guilds = Vec::new();
    for (g, members) in users.chunks(sweep.users_per_guild).enumerate() {
        let (guild, text) = apis[0].guild(&format!("cluster {tag} {g}"), &members[0], members).await?;
        guilds.push((guild, text, members.to_vec()));
    }

    // Chat clients over every node; the killed node's resumers beside them.
    pb.set_message(format!("{} ×{nodes}: connecting", sweep.name));
    let rec = Arc::new(Recorder::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let conns: Vec<_> = stream::iter(0..sweep.connections)
        .map(|i| {
            let (n, base) = (guilds.len(), &servers[i % nodes].base);
            let members = &guilds[i % n].2;
            let token = members[(i / n) % members.len()].token.clone();
            async move { (i % n, connect(base, i, &token).await) }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut per_guild = vec![0u64; guilds.len()];
    let mut tasks = Vec::new();
    for (g, c) in conns {
        match c {
            Ok((ws, hb)) => {
                per_guild[g] += 1;
                tasks.push(tokio::spawn(serve(ws, hb, tasks.len(), rec.clone(), stop_rx.clone())));
            }
            Err(e) if step.errors.len() < 5 => step.errors.push(format!("connect: {e:#}")),
            Err(_) => {}
        }
    }
    step.connected = tasks.len();
    let resumers = match nodes > 1 && sweep.resumers > 0 {
        true => Some(Resumers::open(&servers[nodes - 1].base, &users, sweep.resumers).await?),
        false => None,
    };

    // The fan-out: posts through the nodes in turn, at the sweep's rate.
    pb.set_message(format!("{} ×{nodes}: {} msg/s", sweep.name, sweep.messages_per_sec));
    let pids: Vec<u32> = servers.iter().filter_map(|s| s.pid).collect();
    let before: Vec<_> = pids.iter().map(|p| sample(*p)).collect();
    let nats_before = nats.as_ref().and_then(|n| sample(n.pid()));
    let start = Instant::now();
    let (sent, post_errors) = post(&apis, &guilds, sweep, &per_guild, &mut step.deliveries_expected).await;
    let end = Instant::now();
    let after: Vec<_> = pids.iter().map(|p| sample(*p)).collect();
    let nats_after = nats.as_ref().and_then(|n| sample(n.pid()));
    step.errors.extend(post_errors);
    tokio::time::sleep(DRAIN).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    step.messages_sent = sent;
    step.window_secs = end.duration_since(start).as_secs_f64();
    let (deliveries, hist) = rec.merged();
    step.deliveries = deliveries;
    step.delivery = Dist::from(&hist);
    step.delivered_per_sec = deliveries as f64 / step.window_secs.max(1e-3);
    step.nodes_cores =
        before.iter().zip(&after).filter_map(|(a, b)| Some(cores(a.as_ref()?, b.as_ref()?))).sum::<f64>();
    step.nats_cores = match (&nats_before, &nats_after) {
        (Some(a), Some(b)) => cores(a, b),
        _ => 0.0,
    };
    step.deliveries_per_core_sec = step.delivered_per_sec / (step.nodes_cores + step.nats_cores).max(1e-3);

    if nodes > 1 && sweep.rooms > 0 {
        pb.set_message(format!("{} ×{nodes}: placing {} rooms", sweep.name, sweep.rooms));
        let (guild, _, members) = &guilds[0];
        step.rooms_per_node = place_rooms(&apis, &servers, &members[0], guild, sweep.rooms).await?;
    }
    if nodes > 1 && sweep.edge_viewers > 0 {
        pb.set_message(format!("{} ×{nodes}: {} LL-HLS viewers on an edge", sweep.name, sweep.edge_viewers));
        let (guild, _, members) = &guilds[0];
        let f = edge_fetches(
            &apis[0],
            &apis[1],
            &members[0],
            &members[1 % members.len()],
            guild,
            sweep.edge_viewers,
            sweep.edge_rounds,
        )
        .await
        .context("LL-HLS through an edge")?;
        step.edge_viewers = sweep.edge_viewers;
        (step.edge_parts, step.edge_part_requests, step.edge_part_origin_fetches) =
            (f.parts, f.part_requests, f.part_origin_fetches);
        (step.edge_reloads, step.edge_reload_requests, step.edge_reload_origin_fetches) =
            (f.reloads, f.reload_requests, f.reload_origin_fetches);
    }
    if let Some(r) = resumers {
        pb.set_message(format!("{} ×{nodes}: kill -9 and resume", sweep.name));
        let others: Vec<String> = servers[..nodes - 1].iter().map(|s| s.base.clone()).collect();
        let last = servers.last_mut().context("no node")?;
        (step.resumed, step.resume_invalid, step.resume_failed, step.resume) =
            resume_after_kill(r, last, &others, &mut step.errors).await;
    }
    if nodes == 1 && sweep.auth_clients > 0 {
        pb.set_message(format!("{} ×{nodes}: auth, cache on and off", sweep.name));
        step.auth.push(auth_rate(&apis[0], servers[0].pid, &users, sweep).await.context("auth with the cache")?);
        servers.clear();
        let off = target.start_node(&db, &[("CONFAB_CHAT_AUTH_CACHE", "false".into())])?;
        let mut no_cache = auth_rate(&Api::new(&off.base)?, off.pid, &users, sweep).await.context("auth uncached")?;
        no_cache.cache = false;
        step.auth.push(no_cache);
    }
    Ok(step)
}

/// Posts the sweep's messages through the nodes in turn; returns (sent, first errors).
async fn post(
    apis: &[Api],
    guilds: &[(String, String, Vec<Account>)],
    sweep: &ClusterSweep,
    per_guild: &[u64],
    expected: &mut u64,
) -> (u64, Vec<String>) {
    let total = (sweep.messages_per_sec * sweep.duration_secs).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / sweep.messages_per_sec);
    let start = Instant::now();
    let posts = (0..total).map(|k| {
        let g = k % guilds.len();
        let (api, (_, text, members)) = (&apis[k % apis.len()], &guilds[g]);
        async move {
            tokio::time::sleep_until((start + interval * k as u32).into()).await;
            let body = json!({"content": format!("bench {}", unix_nanos())});
            (g, api.post(&format!("/api/channels/{text}/messages"), Some(&members[0].token), body).await)
        }
    });
    let results: Vec<_> = stream::iter(posts).buffered(64).collect().await;
    let (mut sent, mut errors) = (0, Vec::new());
    for (g, r) in results {
        match r {
            Ok(_) => {
                sent += 1;
                *expected += per_guild[g];
            }
            Err(e) if errors.len() < 5 => errors.push(format!("post: {e:#}")),
            Err(_) => {}
        }
    }
    (sent, errors)
}

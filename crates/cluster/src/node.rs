//! A node's life in the cluster: connect, lease a worker id, subscribe before anything is
//! published ([`Cluster::connect`]), then run the subscriber and the heartbeat
//! ([`Connected::start`]) until stopped.

use crate::broker::NatsBroker;
use crate::config::ClusterConfig;
use crate::journal::NatsJournal;
use crate::membership::{Heard, Membership, NodeInfo};
use crate::placement::Placement;
use crate::worker::{RENEW, WorkerLease};
use crate::{Error, wire};
use chat::app::App;
use chat::gateway::broker::Notice;
use chat::gateway::journal::{Item, Journal, Snapshot};
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often a node sends its whole presence view (besides when it meets a node).
const ROSTER_EVERY: Duration = Duration::from_secs(10);

/// Connected and subscribed; not yet serving.
pub struct Connected {
    pub node: String,
    pub worker: u16,
    pub broker: Arc<NatsBroker>,
    /// The signing secret every node shares (see [`crate::secrets`]).
    pub secret: String,
    pub cluster: Cluster,
    pub placement: Placement,
    journal: Arc<NatsJournal>,
    cfg: ClusterConfig,
    client: async_nats::Client,
    sub: async_nats::Subscriber,
    events: Events,
    lease: WorkerLease,
    publisher: tokio::task::JoinHandle<()>,
}

/// A running node: its view of the cluster.
#[derive(Clone)]
pub struct Cluster {
    pub node: String,
    membership: Arc<Mutex<Membership>>,
    stop: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
}

impl Cluster {
    /// Connects to NATS (retrying with backoff while it is down: logged), leases a worker id and
    /// subscribes to the cluster's subjects.
    /// `resume_window`: how long a chat session waits for its client to resume (snapshots of it
    /// are kept a little longer).
    pub async fn connect(cfg: &ClusterConfig, resume_window: Duration) -> Result<Connected, Error> {
        cfg.check().map_err(Error::Bus)?;
        let node = cfg.node_name();
        let name = node.clone();
        let reconnected = Arc::new(tokio::sync::Notify::new());
        let on_connect = reconnected.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("confab {node}"))
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(|attempt| Duration::from_millis((100u64 << attempt.min(5)).min(2000)))
            .event_callback(move |ev| {
                let (name, on_connect) = (name.clone(), on_connect.clone());
                async move {
                    match ev {
                        async_nats::Event::Connected => {
                            tracing::info!(node = %name, "NATS connected");
                            on_connect.notify_one();
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(node = %name, "NATS disconnected; reconnecting")
                        }
                        other => tracing::warn!(node = %name, event = %other, "NATS"),
                    }
                }
            })
            .connect(&cfg.nats_url)
            .await
            .map_err(|e| Error::Bus(format!("connecting to {}: {e}", cfg.nats_url)))?;
        let js = async_nats::jetstream::new(client.clone());
        let lease = tokio::time::timeout(Duration::from_secs(10), WorkerLease::claim(&js, &node))
            .await
            .map_err(|_| Error::Bus(format!("no JetStream at {} (run nats-server with -js)", cfg.nats_url)))??;
        let sub = client.subscribe(wire::NODES).await.map_err(|e| Error::Bus(format!("subscribing: {e}")))?;
        let events = events(&js, reconnected).await?;
        let secret = crate::secrets::signing_secret(&js).await?;
        let cluster = Cluster {
            node: node.clone(),
            membership: Arc::new(Mutex::new(Membership::new(&node, Duration::from_millis(cfg.dead_after_ms)))),
            stop: CancellationToken::new(),
            tasks: tokio_util::task::TaskTracker::new(),
        };
        let placement = Placement::open(&js, cluster.clone()).await?;
        let journal = Arc::new(NatsJournal::open(&js, resume_window).await?);
        let (broker, publisher) = NatsBroker::new(&node, js, cfg.publish_queue);
        tracing::info!(node = %node, worker = lease.id, nats = %cfg.nats_url, "joined the cluster");
        let cfg = cfg.clone();
        Ok(Connected {
            node,
            worker: lease.id,
            broker,
            secret,
            cluster,
            placement,
            journal,
            cfg,
            client,
            sub,
            events,
            lease,
            publisher,
        })
    }

    /// The live nodes as last heard, this one included.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.membership.lock().unwrap_or_else(|p| p.into_inner()).live().cloned().collect()
    }

    /// The HTTP address node `id` advertises, while it is live.
    pub fn http_of(&self, id: &str) -> Option<String> {
        let membership = self.membership.lock().unwrap_or_else(|p| p.into_inner());
        membership.live().find(|n| n.id == id).map(|n| n.http.trim_end_matches('/').to_string())
    }

    /// The `ws(s)://host` origins of the other live media nodes, for the web client's policy.
    pub fn voice_origins(&self) -> Vec<String> {
        self.nodes()
            .iter()
            .filter(|n| n.id != self.node && n.roles.contains(&crate::Role::Media))
            .map(|n| crate::placement::voice_url(n, "").trim_end_matches("/voice").to_string())
            .collect()
    }

    /// Stops the tasks and releases the worker id; the others see this node gone within the
    /// deadline.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Connected {
    /// Starts the subscriber and the heartbeat, and places the chat plane's voice rooms. `info` is
    /// called each period for what to announce, `rooms` for the voice rooms hosted here.
    pub fn start(
        self,
        app: App,
        info: impl Fn() -> NodeInfo + Send + Sync + 'static,
        rooms: impl Fn() -> Vec<chat::id::Id> + Send + Sync + 'static,
    ) -> Cluster {
        let Connected { cluster, placement, journal, client, sub, events, lease, publisher, cfg, .. } = self;
        app.set_placer(Arc::new(placement.clone()));
        app.set_journal(journal.clone());
        cluster.tasks.spawn(reader(cluster.clone(), app.clone(), events));
        cluster.tasks.spawn(subscriber(cluster.clone(), app.clone(), client.clone(), sub));
        let period = Duration::from_millis(cfg.heartbeat_ms);
        let beat = Heartbeat { lease, period, publisher, placement, journal };
        cluster.tasks.spawn(heartbeat(cluster.clone(), app, client, beat, info, rooms));
        cluster
    }
}

/// The stream of events and notices, and where this node reads it from next.
struct Events {
    stream: async_nats::jetstream::stream::Stream,
    next: u64,
    /// Set on every reconnection: the server may have restarted and lost the consumer.
    reconnected: Arc<tokio::sync::Notify>,
}

/// The stream, created if absent; this node reads what is stored from now on.
async fn events(js: &async_nats::jetstream::Context, reconnected: Arc<tokio::sync::Notify>) -> Result<Events, Error> {
    use async_nats::jetstream::stream;
    let cfg = stream::Config {
        name: wire::STREAM.into(),
        subjects: wire::STREAM_SUBJECTS.iter().map(|s| s.to_string()).collect(),
        max_age: STREAM_AGE,
        max_bytes: STREAM_BYTES,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(120),
        num_replicas: 1,
        ..Default::default()
    };
    let mut stream = js.get_or_create_stream(cfg).await.map_err(|e| Error::Bus(format!("the events stream: {e}")))?;
    let last = stream.info().await.map_err(|e| Error::Bus(format!("the events stream: {e}")))?.state.last_sequence;
    Ok(Events { stream, next: last + 1, reconnected })
}

impl Events {
    /// An ordered consumer from `self.next` on, retried with backoff until NATS answers.
    async fn open(&self, stop: &CancellationToken) -> Option<async_nats::jetstream::consumer::pull::Ordered> {
        use async_nats::jetstream::consumer;
        let mut backoff = Duration::from_millis(100);
        loop {
            let cfg = consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: self.next },
                ..Default::default()
            };
            let opened = match self.stream.create_consumer(cfg).await {
                Ok(c) => c.messages().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match opened {
                Ok(m) => return Some(m),
                Err(e) => tracing::warn!(error = %e, from = self.next, "reading the events stream; retrying"),
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

/// How long the stream keeps events, and its size at most (the oldest go first).
const STREAM_AGE: Duration = Duration::from_secs(600);
const STREAM_BYTES: i64 = 1 << 30;

/// Events and notices, in the stream's order: dispatches to this node's sessions, notices (from
/// other nodes) applied. After an error or a reconnection it reads on from the message after the
/// last one it handled, so none is skipped or handled twice.
async fn reader(cluster: Cluster, app: App, mut events: Events) {
    let me = cluster.node.clone();
    'open: loop {
        let Some(mut messages) = events.open(&cluster.stop).await else { return };
        loop {
            let msg = tokio::select! {
                _ = cluster.stop.cancelled() => return,
                _ = events.reconnected.notified() => continue 'open,
                m = messages.next() => match m {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "reading the events stream; reopening it");
                        continue 'open;
                    }
                    None => continue 'open,
                },
            };
            let Ok(pos) = msg.info().map(|i| i.stream_sequence) else { continue };
            events.next = pos + 1;
            app.hub.at(pos, || app.recent.push(pos, handle(&me, &app, pos, msg.subject.as_str(), &msg.payload)));
        }
    }
}

/// One stream message at `pos`: events to this node's sessions (numbered `pos`), notices applied
/// (this node's own only for topic changes, which it applies in stream order like every node).
/// Returns it as read, for the ring of recent messages.
fn handle(me: &str, app: &App, pos: u64, subject: &str, payload: &[u8]) -> Option<Item> {
    if let Some(topic) = wire::topic_of(subject) {
        let Some((origin, ev)) = wire::read_event(payload) else {
            tracing::warn!(subject, "an unreadable dispatch from the bus");
            return None;
        };
        app.hub.deliver_at(topic, &ev, pos, Instant::now());
        if origin != me {
            app.observe_remote(&origin, &ev);
        }
        Some(Item::Event(topic, ev))
    } else if subject == wire::NOTICES {
        let Some((origin, n)) = wire::read_notice(payload) else {
            tracing::warn!("an unreadable notice from the bus");
            return None;
        };
        match (&n, origin == me) {
            (Notice::Join { .. } | Notice::Leave { .. } | Notice::Resync, true) => app.apply_at(&n, Some(pos)),
            (_, true) => {}
            (Notice::Presence { user, status }, false) => app.remote_presence(&origin, *user, *status),
            (_, false) => app.apply_at(&n, Some(pos)),
        }
        Some(Item::Notice(n))
    } else {
        None
    }
}

/// Heartbeats and presence views, as they come.
async fn subscriber(cluster: Cluster, app: App, client: async_nats::Client, mut sub: async_nats::Subscriber) {
    let me = cluster.node.clone();
    loop {
        let msg = tokio::select! {
            _ = cluster.stop.cancelled() => return,
            m = sub.next() => match m { Some(m) => m, None => return },
        };
        let subject = msg.subject.as_str();
        if subject == wire::HEARTBEATS {
            let Ok(info) = serde_json::from_slice::<NodeInfo>(&msg.payload) else { continue };
            let id = info.id.clone();
            let heard = cluster.membership.lock().unwrap_or_else(|p| p.into_inner()).heard(info, Instant::now());
            if heard == Heard::New && id != me {
                tracing::info!(node = %me, peer = %id, "a node joined");
                // A node new to us may know nothing of our users yet.
                send_roster(&client, &me, &app).await;
            }
        } else if subject == wire::ROSTER {
            let Ok(r) = serde_json::from_slice::<wire::RosterMsg>(&msg.payload) else { continue };
            if r.o != me {
                app.remote_presence_all(&r.o, r.users).await;
            }
        }
    }
}

async fn send_roster(client: &async_nats::Client, me: &str, app: &App) {
    let msg = wire::RosterMsg { o: me.to_string(), users: app.local_presence() };
    let payload = serde_json::to_vec(&msg).unwrap_or_default();
    if let Err(e) = client.publish(wire::ROSTER, payload.into()).await {
        tracing::warn!(error = %e, "sending the presence view failed");
    }
}

struct Heartbeat {
    lease: WorkerLease,
    period: Duration,
    publisher: tokio::task::JoinHandle<()>,
    placement: Placement,
    journal: Arc<NatsJournal>,
}

/// Heartbeats out, silent nodes declared dead, the worker id and room leases renewed, the presence
/// view now and then.
async fn heartbeat(
    cluster: Cluster,
    app: App,
    client: async_nats::Client,
    beat: Heartbeat,
    info: impl Fn() -> NodeInfo,
    rooms: impl Fn() -> Vec<chat::id::Id>,
) {
    let Heartbeat { mut lease, period, publisher, placement, journal } = beat;
    let mut saved = Saved::default();
    let me = cluster.node.clone();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut last_renew, mut last_roster, mut last_rooms) = (Instant::now(), Instant::now(), Instant::now());
    let mut cpu = CpuMeter::default();
    loop {
        tokio::select! {
            _ = cluster.stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let mut node = info();
        node.load.cpu = cpu.sample();
        if let Err(e) = client.publish(wire::HEARTBEATS, wire::heartbeat_payload(&node).into()).await {
            tracing::warn!(error = %e, "heartbeat not sent");
        }
        let (dead, leader) = {
            let mut m = cluster.membership.lock().unwrap_or_else(|p| p.into_inner());
            (m.expire(Instant::now()), m.is_leader())
        };
        for d in dead {
            tracing::warn!(node = %me, peer = %d, "a node went silent: dead");
            app.node_gone(&d, leader).await;
        }
        if last_renew.elapsed() >= RENEW {
            last_renew = Instant::now();
            if let Err(e) = lease.renew(&me).await {
                tracing::error!(error = %e, worker = lease.id, "the worker id lease was lost: ids may collide");
            }
        }
        if last_rooms.elapsed() >= crate::placement::RENEW {
            last_rooms = Instant::now();
            placement.renew(&rooms()).await;
            saved.save(&app, journal.as_ref()).await;
        }
        if last_roster.elapsed() >= ROSTER_EVERY {
            last_roster = Instant::now();
            send_roster(&client, &me, &app).await;
        }
    }
    lease.release().await;
    publisher.abort();
    let _ = client.flush().await;
}

/// The process's CPU time between samples, in cores.
#[derive(Default)]
struct CpuMeter {
    last: Option<(Instant, f64)>,
}

impl CpuMeter {
    fn sample(&mut self) -> f64 {
        let Some(secs) = process_cpu_secs() else { return 0.0 };
        let now = Instant::now();
        let cores = match self.last {
            Some((t, s)) if now > t => (secs - s) / now.duration_since(t).as_secs_f64(),
            _ => 0.0,
        };
        self.last = Some((now, secs));
        (cores * 100.0).round() / 100.0
    }
}

/// User plus system CPU seconds of this process (Linux; `None` elsewhere).
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Snapshots of this node's sessions last kept, to keep only what changed (and the rest before
/// it expires).
#[derive(Default)]
struct Saved {
    last: std::collections::HashMap<String, (Snapshot, Instant)>,
}

/// Unchanged snapshots are kept again after this (the bucket forgets them after the resume window
/// and a minute).
const RESAVE: Duration = Duration::from_secs(30);

impl Saved {
    async fn save(&mut self, app: &App, journal: &dyn Journal) {
        let now = Instant::now();
        let snaps = app.hub.snapshots();
        let live: std::collections::HashSet<&str> = snaps.iter().map(|s| s.id.as_str()).collect();
        self.last.retain(|id, _| live.contains(id.as_str()));
        for s in &snaps {
            let fresh = self.last.get(&s.id).is_some_and(|(old, at)| old == s && now.duration_since(*at) < RESAVE);
            if fresh {
                continue;
            }
            match journal.save(s).await {
                Ok(()) => {
                    self.last.insert(s.id.clone(), (s.clone(), now));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "keeping session snapshots failed");
                    return;
                }
            }
        }
    }
}

//! The whole server composed from its crates: store, chat plane, media engine, voice gateway, on
//! one HTTP listener and the media engine's UDP ports (one per worker). The CLI and the C ABI both start it from here.

use crate::config::{Config, MediaConfig};
use crate::media::McuMixers;
use crate::whip::Whip;
use anyhow::{Context, Result};
use chat::app::App;
use chat::store::Store;
use sfu::{Sfu, SfuConfig};
use signaling::Voice;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A started server. Dropping it does not stop it: call [`Running::stop`].
pub struct Running {
    /// The HTTP address (API, `/gateway`, `/voice`).
    pub http: SocketAddr,
    /// The media engine's bound UDP address.
    pub udp: SocketAddr,
    /// The RTMP ingest's address (`None`: turned off).
    pub rtmp: Option<SocketAddr>,
    /// The Prometheus listener's address (`None`: `[metrics] listen` is empty).
    pub metrics: Option<SocketAddr>,
    pub app: App,
    pub voice: Voice,
    /// The rooms' video compositors and audio mixes.
    pub mixers: Arc<McuMixers>,
    /// This node's view of the cluster (`None`: a single-process server).
    pub cluster: Option<cluster::Cluster>,
    sfu: Sfu,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    metrics_task: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
}

/// Opens the configured store, applying migrations.
pub async fn open_store(cfg: &Config) -> Result<Store> {
    Store::open(&cfg.database_url).await.with_context(|| format!("opening store {}", redact(&cfg.database_url)))
}

/// The chat plane's settings; attachments left at their default directory go beside a SQLite
/// database (`data/attachments` for the default one), so one directory holds all of a server.
fn chat_config(cfg: &Config) -> chat::config::ChatConfig {
    let mut chat = cfg.chat.clone();
    let default = chat::config::ChatConfig::default().attachments_dir;
    if chat.attachments_dir == default
        && let Some(db) = cfg.database_url.strip_prefix("sqlite:")
        && let Some(dir) = std::path::Path::new(db.trim_start_matches("//").split('?').next().unwrap_or(db)).parent()
        && !dir.as_os_str().is_empty()
    {
        chat.attachments_dir = dir.join("attachments").display().to_string();
    }
    chat
}

impl Running {
    /// Opens the store, binds both ports and starts serving in the background.
    pub async fn start(cfg: &Config) -> Result<Running> {
        // A missing GStreamer plugin is reported now, naming its Debian package, not when a
        // room first needs video.
        let compositor = cfg.video.compositor();
        let needed = mcu::COMPOSITOR_ELEMENTS.iter().copied().chain([compositor.encoder.as_str()]);
        mcu::check_elements(needed).context("the video MCU cannot run")?;
        if !cfg.live.rtmp_bind.is_empty() && !cfg.live.renditions.is_empty() || cfg.live.whip {
            mcu::check_elements(mcu::ladder::LADDER_ELEMENTS.iter().copied())
                .context("the live transcode ladder cannot run")?;
        }
        if cfg.live.whip {
            let elements = mcu::aac::AAC_ELEMENTS.iter().chain(mcu::opus::OPUS_ELEMENTS);
            mcu::check_elements(elements.copied()).context("WHIP and WHEP cannot run")?;
        }
        let mixers = Arc::new(McuMixers::new(compositor));
        let clustered = cfg.cluster.enabled();
        if clustered && !cfg.database_url.starts_with("postgres") {
            anyhow::bail!(
                "[cluster] nats_url is set but database_url is {}: the nodes of a cluster share one \
                 Postgres store (postgres://…); SQLite is one process's",
                redact(&cfg.database_url)
            );
        }
        let joined = match clustered {
            true => Some(
                cluster::Cluster::connect(&cfg.cluster, cfg.chat.resume_window())
                    .await
                    .context("joining the cluster")?,
            ),
            false => None,
        };
        let store = open_store(cfg).await?;
        let listener =
            tokio::net::TcpListener::bind(&cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
        let http = listener.local_addr()?;
        tracing::info!(store = store.backend(), database = %redact(&cfg.database_url), "store ready");
        let mut chat_cfg = chat_config(cfg);
        let app = match &joined {
            Some(j) => {
                // Ids carry the leased worker number, so no two live nodes mint the same id.
                chat_cfg.node_id = j.worker;
                // Tokens and signed links minted by one node are checked by another.
                chat_cfg.voice_token_secret.get_or_insert_with(|| j.secret.clone());
                let broker = j.broker.clone();
                App::with_broker(store, chat_cfg, move |_| broker)
            }
            None => App::new(store, chat_cfg),
        };
        // A node serving neither media nor live ingest (WHIP) never has a peer: its engine binds
        // loopback only, so it opens no public UDP port and two such nodes never collide.
        let mut media_cfg = cfg.media.clone();
        if !cfg.cluster.serves(cluster::Role::Media) && !cfg.cluster.serves(cluster::Role::Live) {
            media_cfg.bind = "127.0.0.1:0".into();
        }
        let (sfu, events) = Sfu::start(sfu_config(&media_cfg)?, Some(mixers.clone() as Arc<dyn sfu::Mixers>))
            .await
            .with_context(|| format!("binding media UDP {}", media_cfg.bind))?;
        let udp = sfu.local_addr();
        let workers = sfu.addresses().len();
        tracing::info!(udp = %udp, advertised = %sfu.advertised_addr(), workers, "media engine ready");
        let voice_cfg = signaling::VoiceConfig { turn: cfg.turn.clone(), ..cfg.voice.clone() };
        let voice = Voice::new(app.clone(), sfu.clone(), events, voice_cfg);
        let serves = |role| cfg.cluster.serves(role);
        let mut live_cfg = cfg.live.clone();
        if !serves(cluster::Role::Live) {
            (live_cfg.rtmp_bind, live_cfg.whip) = (String::new(), false);
        }
        let live = crate::live::start(&live_cfg, &app, live_cfg.whip.then_some(&sfu)).await?;
        if let Some(j) = &joined {
            let origins = crate::live::ClusterOrigins { app: app.clone(), cluster: j.cluster.clone() };
            live.streams.set_edge(Arc::new(live::edge::Edge::new(Arc::new(origins))));
        }
        let mut router = chat::server::router_for(&app, serves(cluster::Role::Api), serves(cluster::Role::Gateway))
            .merge(live::http::router(live.streams.clone()));
        if serves(cluster::Role::Api) {
            let others = joined.as_ref().map(|j| {
                let c = j.cluster.clone();
                Arc::new(move || c.voice_origins()) as crate::web::Origins
            });
            router = router.merge(crate::web::router_with(others));
        }
        if serves(cluster::Role::Media) {
            router = router.merge(signaling::router(&voice));
        }
        if live_cfg.whip {
            router = router.merge(crate::whip::router(Whip::new(&app, &sfu, &live, cfg.live.max_ingest_kbps)));
        }
        let (mut metrics, mut metrics_task) = (None, None);
        if !cfg.metrics.listen.is_empty() {
            let l = tokio::net::TcpListener::bind(&cfg.metrics.listen)
                .await
                .with_context(|| format!("binding metrics.listen {}", cfg.metrics.listen))?;
            telemetry::install().map_err(anyhow::Error::msg)?;
            router = router.layer(axum::middleware::from_fn(telemetry::http::track));
            let sources = crate::metrics::Sources {
                app: app.clone(),
                sfu: sfu.clone(),
                mixers: mixers.clone(),
                streams: live.streams.clone(),
            };
            metrics = Some(l.local_addr()?);
            let (tx, rx) = oneshot::channel::<()>();
            let serve = telemetry::serve(l, crate::metrics::collector(sources), async {
                let _ = rx.await;
            });
            metrics_task = Some((tx, tokio::spawn(serve)));
            tracing::info!("metrics on http://{}/metrics", metrics.unwrap_or(http));
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(chat::server::serve(listener, app.clone(), router, async {
            let _ = stopped.await;
        }));
        tracing::info!("confab listening on http://{http}");
        let cluster = joined.map(|j| {
            let info = node_info(cfg, &j.node, http, &app, &sfu, &voice, &live.streams);
            let v = voice.clone();
            j.start(app.clone(), info, move || v.room_ids())
        });
        Ok(Running {
            http,
            udp,
            rtmp: live.rtmp,
            metrics,
            app,
            voice,
            mixers,
            cluster,
            sfu,
            stop: Some(stop),
            task,
            metrics_task,
        })
    }

    /// Serves until `signal` resolves (or the server fails), then stops gracefully.
    pub async fn serve_until(mut self, signal: impl Future<Output = ()>) -> Result<()> {
        tokio::select! {
            _ = signal => {}
            res = &mut self.task => {
                self.sfu.shutdown();
                return res.context("server task")?.context("serving");
            }
        }
        self.stop().await
    }

    /// Graceful stop: in-flight requests finish, sockets get close frames, the media engine ends.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let res = (&mut self.task).await;
        if let Some((stop, task)) = self.metrics_task.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.sfu.shutdown();
        if let Some(c) = &self.cluster {
            c.stop().await;
        }
        res.context("server task")?.context("serving")?;
        tracing::info!("shut down cleanly");
        Ok(())
    }
}

/// What this node tells the cluster of itself each heartbeat.
fn node_info(
    cfg: &Config,
    node: &str,
    http: SocketAddr,
    app: &App,
    sfu: &Sfu,
    voice: &Voice,
    streams: &Arc<live::hub::Streams>,
) -> impl Fn() -> cluster::membership::NodeInfo + Send + Sync + 'static {
    let c = &cfg.cluster;
    let advertise = if c.advertise_http.is_empty() { format!("http://{http}") } else { c.advertise_http.clone() };
    let media = c.serves(cluster::Role::Media).then(|| sfu.advertised_addr().to_string());
    let (roles, app, voice, streams, node) =
        (c.roles.clone(), app.clone(), voice.clone(), streams.clone(), node.to_string());
    move || {
        let (peers, rooms) = voice.counts();
        cluster::membership::NodeInfo {
            id: node.clone(),
            roles: roles.clone(),
            http: advertise.clone(),
            media: media.clone(),
            load: cluster::membership::Load {
                sessions: app.hub.session_count() as u64,
                peers: peers as u64,
                rooms: rooms as u64,
                streams: streams.count() as u64,
                cpu: 0.0,
            },
        }
    }
}

fn sfu_config(m: &MediaConfig) -> Result<SfuConfig> {
    let bind = m.bind.parse().with_context(|| format!("media.bind {:?} is not an ip:port", m.bind))?;
    let public_ip = match &m.public_ip {
        Some(ip) => Some(ip.parse().with_context(|| format!("media.public_ip {ip:?} is not an IP address"))?),
        None => None,
    };
    Ok(SfuConfig {
        bind,
        public_ip,
        last_n: m.last_n,
        peer_timeout: std::time::Duration::from_secs(m.peer_timeout_secs),
        ice_tcp: m.ice_tcp,
        workers: m.workers,
        ..SfuConfig::default()
    })
}

/// A database URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..s + 3 + colon], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords_only() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite:data/x.db"), "sqlite:data/x.db");
    }
}

//! Live streaming plugged into the server: the RTMP ingest (`live`) authorising stream keys
//! against the chat store, and a pump that turns what publishers send into LL-HLS (`live::hub`)
//! and stream states for the chat plane (STREAM_UPDATE).

use crate::config::LiveConfig;
use anyhow::{Context, Result};
use chat::app::App;
use chat::id::{Id, now_ms};
use chat::store::ChannelKind;
use chat::streams::{StreamPhase, StreamState};
use live::hub::{HlsConfig, Streams};
use live::{IngestEvent, ServerConfig, StreamKeys};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Stream keys are checked against their stored hashes; a stream is named by its channel's id.
struct ChatKeys(App);

impl StreamKeys for ChatKeys {
    fn authorize<'a>(&'a self, key: &'a str) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
        Box::pin(async move {
            let hash = chat::auth::hash_token(key);
            let channel = self.0.store.stream_keys.channel_for_stream_key(&hash).await.ok().flatten()?;
            let ch = self.0.channel(channel).await.ok().flatten()?;
            (ch.kind == ChannelKind::Live).then(|| channel.to_string())
        })
    }
}

/// The running ingest: its address and the streams it feeds (served by `live::http`).
pub struct Live {
    pub rtmp: Option<SocketAddr>,
    pub streams: Arc<Streams>,
}

/// Binds RTMP (unless turned off) and starts the ingest and its pump; both end with the chat
/// plane's shutdown.
pub async fn start(cfg: &LiveConfig, app: &App) -> Result<Live> {
    let hls = HlsConfig { segment_secs: cfg.segment_secs, part_secs: cfg.part_secs, window: cfg.window_segments };
    let streams = Arc::new(Streams::new(hls));
    if cfg.rtmp_bind.is_empty() {
        return Ok(Live { rtmp: None, streams });
    }
    let listener = tokio::net::TcpListener::bind(&cfg.rtmp_bind)
        .await
        .with_context(|| format!("binding RTMP {} (set live.rtmp_bind, or \"\" to turn RTMP off)", cfg.rtmp_bind))?;
    let addr = listener.local_addr()?;
    let public = if cfg.rtmp_public.is_empty() { addr.to_string() } else { cfg.rtmp_public.clone() };
    app.set_rtmp_base(format!("rtmp://{public}/{}", live::session::APP));
    let server_cfg = ServerConfig {
        ingest: live::IngestConfig { max_kbps: cfg.max_ingest_kbps, ..Default::default() },
        max_connections: cfg.max_ingest_connections,
    };
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(live::serve(listener, server_cfg, Arc::new(ChatKeys(app.clone())), tx, app.shutdown.clone()));
    tokio::spawn(pump(app.clone(), streams.clone(), rx));
    tracing::info!("rtmp ingest on rtmp://{addr}/{}", live::session::APP);
    Ok(Live { rtmp: Some(addr), streams })
}

/// Frames into the packagers; the stream's life into the chat plane.
async fn pump(app: App, streams: Arc<Streams>, mut events: mpsc::Receiver<IngestEvent>) {
    while let Some(ev) = events.recv().await {
        match ev {
            IngestEvent::Started { stream, .. } => streams.start(&stream),
            IngestEvent::Video { stream, ts_ms, video } => {
                if streams.video(&stream, ts_ms, video) {
                    report(&app, &stream, StreamPhase::Live).await;
                }
            }
            IngestEvent::Audio { stream, ts_ms, audio } => {
                if streams.audio(&stream, ts_ms, audio) {
                    report(&app, &stream, StreamPhase::Live).await;
                }
            }
            IngestEvent::Ended { stream, .. } => {
                streams.end(&stream);
                report(&app, &stream, StreamPhase::Ended).await;
            }
        }
    }
}

async fn report(app: &App, stream: &str, phase: StreamPhase) {
    let Ok(channel) = stream.parse::<i64>().map(Id) else { return };
    let Ok(Some(ch)) = app.channel(channel).await else { return };
    let mut state = app.stream_states.get(channel).unwrap_or_else(|| StreamState::idle(ch.guild_id, channel));
    let now = now_ms();
    match phase {
        StreamPhase::Live => {
            (state.started_at, state.ended_at) = (Some(now), None);
            state.playlist = Some(format!("/live/{channel}/index.m3u8"));
            state.renditions = vec![live::http::SOURCE.to_string()];
        }
        StreamPhase::Ended => state.ended_at = Some(now),
        StreamPhase::Idle => {}
    }
    state.state = phase;
    app.update_stream(state);
}

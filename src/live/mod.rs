//! Live streaming plugged into the server: the RTMP ingest (`live`) authorising stream keys
//! against the chat store, and a pump that turns what publishers send into LL-HLS (`live::hub`):
//! the source's own H.264 as the `source` rendition, and the transcoded ladder (`mcu::ladder`,
//! GStreamer) for the configured renditions smaller than the source; and stream states for the
//! chat plane (STREAM_UPDATE). `feed`: WHEP for streams published over RTMP.

mod feed;

use crate::config::LiveConfig;
use anyhow::{Context, Result};
use bytes::Bytes;
use chat::app::App;
use chat::id::{Id, now_ms};
use chat::store::ChannelKind;
use chat::streams::StreamPhase;
use live::flv::Video;
use live::hub::{HlsConfig, Streams};
use live::{FrameCodec, IngestEvent, Publishers, ServerConfig, StreamKeys};
use mcu::ladder::{Ladder, LadderConfig, LadderInput, LadderOutput, Rendition};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;

use feed::Feed;
pub use feed::Feeds;

/// Stream keys are checked against their stored hashes; a stream is named by its channel's id.
pub struct ChatKeys(pub App);

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

/// LL-HLS is for the channel's members (holding a watch token from `GET /api/channels/{id}/stream`)
/// and, when its owner made it public, for anyone.
pub struct ChatAccess(pub App);

impl live::hub::Access for ChatAccess {
    fn allows(&self, stream: &str, token: Option<&str>) -> bool {
        let Ok(channel) = stream.parse::<i64>().map(Id) else { return false };
        self.0.stream_states.is_public(channel)
            || token.is_some_and(|t| self.0.watch_tokens.verify(channel, t, now_ms()))
    }
}

/// In a cluster, where a stream another node ingests is: that node, as its stream state says,
/// at the HTTP address its heartbeat advertises.
pub struct ClusterOrigins {
    pub app: App,
    pub cluster: cluster::Cluster,
}

impl live::edge::Origins for ClusterOrigins {
    fn origin(&self, stream: &str) -> Option<String> {
        let channel = stream.parse::<i64>().ok().map(Id)?;
        let node = self.app.stream_states.origin(channel)?;
        self.cluster.http_of(&node)
    }
}

/// The running ingest: its address and the streams it feeds (served by `live::http`); WHIP
/// sessions (`crate::whip`) publish through the same publishers and pump.
pub struct Live {
    pub rtmp: Option<SocketAddr>,
    pub streams: Arc<Streams>,
    pub publishers: Arc<Publishers>,
    pub events: mpsc::Sender<IngestEvent>,
    /// WHEP feeds of RTMP streams (when `sfu` was given to [`start`]).
    pub feeds: Option<Arc<Feeds>>,
}

/// Binds RTMP (unless turned off) and starts the ingest and its pump; both end with the chat
/// plane's shutdown. With `sfu`, streams published over RTMP can be watched over WHEP too.
pub async fn start(cfg: &LiveConfig, app: &App, sfu: Option<&sfu::Sfu>) -> Result<Live> {
    let hls = HlsConfig { segment_secs: cfg.segment_secs, part_secs: cfg.part_secs, window: cfg.window_segments };
    let mut streams = Streams::new(hls).with_access(Arc::new(ChatAccess(app.clone())));
    if !cfg.record_dir.is_empty() {
        streams = streams.with_recorder(live::record::Recorder::start(cfg.record_dir.clone().into()));
    }
    let streams = Arc::new(streams);
    let publishers = Arc::new(Publishers::new(cfg.max_streams));
    let (tx, rx) = mpsc::channel(4096);
    let feeds = sfu.map(|s| Arc::new(Feeds::new(s.clone())));
    tokio::spawn(pump(app.clone(), streams.clone(), cfg.clone(), feeds.clone(), rx));
    let live = Live { rtmp: None, streams, publishers, events: tx, feeds };
    if cfg.rtmp_bind.is_empty() {
        return Ok(live);
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
    let keys = Arc::new(ChatKeys(app.clone()));
    let (publishers, tx, shutdown) = (live.publishers.clone(), live.events.clone(), app.shutdown.clone());
    tokio::spawn(live::serve(listener, server_cfg, keys, publishers, tx, shutdown));
    tracing::info!("rtmp ingest on rtmp://{addr}/{}", live::session::APP);
    Ok(Live { rtmp: Some(addr), ..live })
}

/// Frames into the packagers and the ladders; the stream's life into the chat plane.
async fn pump(
    app: App,
    streams: Arc<Streams>,
    cfg: LiveConfig,
    feeds: Option<Arc<Feeds>>,
    mut events: mpsc::Receiver<IngestEvent>,
) {
    let mut ladders: HashMap<String, Ladder> = HashMap::new();
    // WHEP feeds of RTMP streams, and each stream's AAC config (it may come before the video's).
    let mut whep: HashMap<String, Feed> = HashMap::new();
    let mut aac_configs: HashMap<String, Bytes> = HashMap::new();
    // Streams reported live (once their source rendition has a part), and their viewer counts.
    let mut playable: HashMap<String, u64> = HashMap::new();
    let mut tick = tokio::time::interval(VIEWER_REPORT);
    loop {
        let ev = tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            _ = tick.tick() => {
                report_viewers(&app, &streams, &mut playable);
                continue;
            }
        };
        let stream = match ev {
            IngestEvent::Started { stream, .. } => {
                streams.start(&stream);
                playable.remove(&stream);
                stream
            }
            IngestEvent::Video { stream, ts_ms, video } => {
                match &video {
                    Video::AvcConfig(record) if !ladders.contains_key(&stream) => {
                        let mut feed = feeds.as_ref().map(|f| Feed::start(f, &stream));
                        let tap = feed.as_ref().map(|f| Box::new(f.video_sink()) as Tap);
                        if let Some(ladder) = start_ladder(&cfg, &streams, &stream, Source::Rtmp(record.clone()), tap) {
                            ladders.insert(stream.clone(), ladder);
                            if let Some(mut feed) = feed.take() {
                                if let Some(asc) = aac_configs.get(&stream) {
                                    feed.audio(0, &live::flv::Audio::AacConfig(asc.clone()));
                                }
                                whep.insert(stream.clone(), feed);
                            }
                        }
                    }
                    Video::AvcFrame { keyframe, composition_ms, data } => {
                        if let Some(l) = ladders.get(&stream) {
                            let pts = i64::from(ts_ms) + i64::from(*composition_ms);
                            l.push(pts.max(0) as u64, u64::from(ts_ms), *keyframe, data.clone());
                        }
                    }
                    _ => {}
                }
                streams.video(&stream, live::http::SOURCE, ts_ms, video);
                stream
            }
            IngestEvent::Frame { stream, ts_ms, codec, keyframe, data } => {
                if !ladders.contains_key(&stream)
                    && keyframe
                    && let Some(ladder) = start_ladder(&cfg, &streams, &stream, Source::WebRtc(codec, &data), None)
                {
                    ladders.insert(stream.clone(), ladder);
                }
                if let Some(l) = ladders.get(&stream) {
                    l.push(u64::from(ts_ms), u64::from(ts_ms), keyframe, data);
                }
                stream
            }
            IngestEvent::Audio { stream, ts_ms, audio } => {
                if let live::flv::Audio::AacConfig(asc) = &audio {
                    aac_configs.insert(stream.clone(), asc.clone());
                }
                if let Some(feed) = whep.get_mut(&stream) {
                    feed.audio(ts_ms, &audio);
                }
                streams.audio(&stream, ts_ms, audio);
                stream
            }
            IngestEvent::Ended { stream, .. } => {
                whep.remove(&stream);
                aac_configs.remove(&stream);
                // The ladder's last frames are flushed (a bounded wait) before the playlists end.
                if let Some(ladder) = ladders.remove(&stream) {
                    let _ = tokio::task::spawn_blocking(move || ladder.finish()).await;
                }
                streams.end(&stream);
                playable.remove(&stream);
                report(&app, &stream, StreamPhase::Ended).await;
                continue;
            }
        };
        if !playable.contains_key(&stream) && streams.playable(&stream) {
            playable.insert(stream.clone(), 0);
            report(&app, &stream, StreamPhase::Live).await;
        }
    }
}

/// How often viewer counts are looked at; a change goes out as STREAM_UPDATE.
const VIEWER_REPORT: std::time::Duration = std::time::Duration::from_secs(2);

fn report_viewers(app: &App, streams: &Streams, playable: &mut HashMap<String, u64>) {
    for (stream, reported) in playable.iter_mut() {
        let count = streams.viewer_count(stream);
        let Ok(channel) = stream.parse::<i64>().map(Id) else { continue };
        if count == *reported {
            continue;
        }
        *reported = count;
        if let Some(mut state) = app.stream_states.get(channel) {
            state.viewer_count = count;
            app.update_stream(state);
        }
    }
}

/// What a ladder starts from.
enum Source<'a> {
    /// RTMP's H.264 config: the source is served as it came; the ladder makes the smaller sizes.
    Rtmp(Bytes),
    /// A WebRTC keyframe: the ladder also makes the source's own size, as `source`.
    WebRtc(FrameCodec, &'a [u8]),
}

/// Where else a ladder's output goes (a WHEP feed).
type Tap = Box<dyn Fn(&LadderOutput) + Send + Sync>;

/// A ladder for the configured renditions smaller than the source (none: no ladder), whose
/// output feeds the stream's renditions, and `tap`.
fn start_ladder(
    cfg: &LiveConfig,
    streams: &Arc<Streams>,
    stream: &str,
    from: Source<'_>,
    tap: Option<Tap>,
) -> Option<Ladder> {
    let (width, height, input) = match from {
        Source::Rtmp(record) => {
            let info = live::codec::avc(&record).ok()?;
            (info.width, info.height, LadderInput::Avc(record))
        }
        Source::WebRtc(FrameCodec::Vp8, frame) => match mcu::vp8::inspect(frame) {
            mcu::vp8::FrameKind::Key { width, height } => (u32::from(width), u32::from(height), LadderInput::Vp8),
            _ => return None,
        },
        Source::WebRtc(FrameCodec::H264AnnexB, frame) => {
            let (w, h) = live::codec::annexb_size(frame)?;
            (w, h, LadderInput::AnnexB)
        }
    };
    if u64::from(width) * u64::from(height) > u64::from(mcu::vp8::MAX_SOURCE_PIXELS) {
        tracing::warn!(stream, width, height, "source larger than 1080p: not transcoded");
        return None;
    }
    let mut renditions: Vec<Rendition> = Vec::new();
    if !matches!(input, LadderInput::Avc(_)) {
        // ~0.09 bit per pixel at the configured rate: 2.5 Mbit/s at 720p30, 5.6 at 1080p30.
        let kbps = (u64::from(width) * u64::from(height) * u64::from(cfg.fps) * 9 / 100_000) as u32;
        let name = live::http::SOURCE.to_string();
        renditions.push(Rendition { name, width: width & !1, height: height & !1, bitrate_kbps: kbps.max(200) });
    }
    renditions.extend(cfg.renditions.iter().filter(|r| r.height < height).map(|r| {
        // The source's aspect ratio, rounded to even sizes (x264 wants them).
        let width = (u64::from(width) * u64::from(r.height) / u64::from(height.max(1))) as u32;
        Rendition { name: r.name.clone(), width: (width + 1) & !1, height: r.height & !1, bitrate_kbps: r.bitrate_kbps }
    }));
    if renditions.is_empty() {
        return None;
    }
    let hub = streams.get(stream)?;
    for r in renditions.iter().filter(|r| r.name != live::http::SOURCE) {
        hub.add_rendition(&r.name);
    }
    let names: Vec<String> = renditions.iter().map(|r| r.name.clone()).collect();
    let ladder_cfg = LadderConfig {
        renditions,
        gop_frames: (cfg.segment_secs * f64::from(cfg.fps)).round().max(1.0) as u32,
        preset: cfg.x264_preset.clone(),
    };
    let (streams, id) = (streams.clone(), stream.to_string());
    let sink = move |out: LadderOutput| {
        if let Some(tap) = &tap {
            tap(&out);
        }
        package(&streams, &id, &names, out)
    };
    match Ladder::start(&input, &ladder_cfg, sink) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(stream, error = %e, "the transcode ladder did not start; serving the source only");
            None
        }
    }
}

/// One output of a ladder into the stream's renditions.
fn package(streams: &Streams, id: &str, names: &[String], out: LadderOutput) {
    match out {
        LadderOutput::Config { rendition, record } => {
            streams.video(id, &names[rendition], 0, Video::AvcConfig(record));
        }
        LadderOutput::Frame { rendition, pts_ms, dts_ms, keyframe, data } => {
            let composition_ms = i32::try_from(pts_ms.saturating_sub(dts_ms)).unwrap_or(0);
            let ts = u32::try_from(dts_ms).unwrap_or(u32::MAX);
            streams.video(id, &names[rendition], ts, Video::AvcFrame { keyframe, composition_ms, data });
        }
    }
}

async fn report(app: &App, stream: &str, phase: StreamPhase) {
    let Ok(channel) = stream.parse::<i64>().map(Id) else { return };
    let Ok(Some(ch)) = app.channel(channel).await else { return };
    let Ok(mut state) = app.stream_state(&ch).await else { return };
    let now = now_ms();
    match phase {
        StreamPhase::Live => {
            (state.started_at, state.ended_at) = (Some(now), None);
            state.playlist = Some(format!("/live/{channel}/index.m3u8"));
            state.renditions = vec![live::http::SOURCE.to_string()];
        }
        StreamPhase::Ended => (state.ended_at, state.viewer_count) = (Some(now), 0),
        StreamPhase::Idle => {}
    }
    state.state = phase;
    app.update_stream(state);
}

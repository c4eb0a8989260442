//! What a synthetic participant hears: one task per remote audio track that listens (decodes and
//! keeps the recent PCM so a test can ask which tones it hears, or, for a load client, only counts)
//! and keeps per-stream statistics (loss, jitter, capture-time latency). Remote video tracks are
//! handed to [`video_recv`](crate::video_recv) from here too, as both arrive on the same `on_track`.
//! The microphone is [`audio_send`](crate::audio_send)'s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;

use crate::capture_time::ABS_CAPTURE_TIME_URI;
use crate::hist::Histogram;
use crate::opus_io::{Decoder, PcmHistory};
use crate::pattern::{SwitchLog, ToneWatch};
use crate::peer::{AUDIO_LEVEL_URI, extmap_id};
use crate::rtp_stats::RtpStats;
use crate::tone::detect_tones;
use crate::video_recv::{VideoListener, VideoTrackStats, read_video_track};

/// Decoded audio kept per remote track.
const KEEP_PCM: Duration = Duration::from_secs(2);
/// Opus' RTP clock.
const AUDIO_CLOCK: u32 = 48_000;

/// What a client does with what it receives.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// Decode audio (tones heard) and video (pictures). Off, as load clients run: count packets,
    /// loss, jitter and capture-time latency only, decoding just the first audio frame of each
    /// track (join time is to the first *decoded* frame).
    pub decode: bool,
    /// Log when the dominant one of these two tones changes (pattern latency; needs `decode`).
    pub watch_tones: Option<[f32; 2]>,
    /// Log when the one of these two colours shown changes (pattern latency; needs `decode`).
    pub watch_colours: Option<[[u8; 3]; 2]>,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        Self { decode: true, watch_tones: None, watch_colours: None }
    }
}

/// What one remote track delivered.
#[derive(Debug, Clone, Default)]
pub struct TrackStats {
    /// The receive m-line (slot) it arrived on, if found.
    pub mid: Option<String>,
    pub ssrc: u32,
    /// From the sender's `a=msid`, empty if it sent none.
    pub stream_id: String,
    pub track_id: String,
    pub packets: u64,
    pub bytes: u64,
    /// Packets missing from the sequence (gaps), not counting reordering.
    pub lost: u64,
    pub decode_errors: u64,
    /// RFC 3550 interarrival jitter.
    pub jitter: Duration,
    /// End-to-end latency of packets carrying the sender's capture time, since the last
    /// [`Listener::reset_window`].
    pub latency: Histogram,
    pub first_packet_at: Option<Instant>,
    /// RFC 6464 level of the last packet that carried one (0 loudest, 127 silence) and its V bit.
    pub last_level: Option<u8>,
    pub last_voice: Option<bool>,
    pub last_packet_at: Option<Instant>,
}

struct TrackState {
    stats: TrackStats,
    rtp: RtpStats,
    pcm: PcmHistory,
    watch: Option<ToneWatch>,
}

/// Everything heard so far, across all remote tracks.
#[derive(Default)]
pub struct Listener {
    tracks: Mutex<Vec<TrackState>>,
    packets: AtomicU64,
    options: ReceiveOptions,
    first_decoded_at: Mutex<Option<Instant>>,
    /// When a watched tone became the one heard (any track).
    pub detections: SwitchLog,
}

impl Listener {
    pub fn new(options: ReceiveOptions) -> Self {
        Self { options, ..Self::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<TrackState>> {
        // A poisoned lock only means a reader panicked mid-update; the data is still usable.
        self.tracks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Candidates present in the audio that arrived within `window`, judged per track and merged.
    pub fn heard_within(&self, candidates: &[f32], window: Duration) -> Vec<f32> {
        let since = Instant::now().checked_sub(window).unwrap_or_else(Instant::now);
        let mut heard: Vec<f32> = Vec::new();
        for track in self.lock().iter() {
            for f in detect_tones(&track.pcm.since(since), candidates) {
                if !heard.contains(&f) {
                    heard.push(f);
                }
            }
        }
        heard.sort_by(f32::total_cmp);
        heard
    }

    pub fn received_packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    pub fn track_stats(&self) -> Vec<TrackStats> {
        let snapshot = |t: &TrackState| TrackStats {
            packets: t.rtp.packets,
            bytes: t.rtp.bytes,
            lost: t.rtp.lost,
            jitter: t.rtp.jitter(),
            latency: t.rtp.latency.clone(),
            first_packet_at: t.rtp.first_packet_at,
            last_packet_at: t.rtp.last_packet_at,
            ..t.stats.clone()
        };
        self.lock().iter().map(snapshot).collect()
    }

    /// When the first remote audio frame was decoded, on any track.
    pub fn first_decoded_at(&self) -> Option<Instant> {
        *self.first_decoded_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a measurement window: forgets latency samples and pattern detections so far.
    pub fn reset_window(&self) {
        self.lock().iter_mut().for_each(|t| t.rtp.latency.clear());
        self.detections.clear();
    }

    /// Forgets the decoded audio (not the counters), e.g. before a new phase of a scenario.
    pub fn clear_audio(&self) {
        self.lock().iter_mut().for_each(|t| t.pcm.clear());
    }

    fn add_track(&self, stats: TrackStats) -> usize {
        let mut tracks = self.lock();
        let watch = self.options.watch_tones.map(ToneWatch::new);
        tracks.push(TrackState { stats, rtp: RtpStats::new(AUDIO_CLOCK), pcm: PcmHistory::new(KEEP_PCM), watch });
        tracks.len() - 1
    }
}

/// Starts a reader for every audio track `tracks` yields (video tracks are drained unread).
/// Aborting the returned task aborts the readers.
pub fn spawn_listeners(
    pc: Arc<dyn PeerConnection>,
    tracks: mpsc::Receiver<Arc<dyn TrackRemote>>,
    listener: Arc<Listener>,
) -> JoinHandle<()> {
    spawn_av_listeners(pc, tracks, listener, None)
}

/// As [`spawn_listeners`], with video tracks decoded into `video` when given.
pub fn spawn_av_listeners(
    pc: Arc<dyn PeerConnection>,
    mut tracks: mpsc::Receiver<Arc<dyn TrackRemote>>,
    listener: Arc<Listener>,
    video: Option<Arc<VideoListener>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut readers = JoinSet::new();
        while let Some(track) = tracks.recv().await {
            while readers.try_join_next().is_some() {}
            let ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
            let mid = track_mid(pc.as_ref(), &track).await;
            if track.kind().await == RtpCodecKind::Video {
                match &video {
                    Some(video) => {
                        let index = video.add_track(VideoTrackStats { mid, ssrc, ..Default::default() }, track.clone());
                        let capture =
                            pc.remote_description().await.and_then(|d| extmap_id(&d.sdp, ABS_CAPTURE_TIME_URI));
                        readers.spawn(read_video_track(track, index, capture, video.clone()));
                    }
                    // Unread, its packets would pile up in webrtc-rs' queue and be logged as dropped.
                    None => _ = readers.spawn(async move { while track.poll().await.is_some() {} }),
                }
                continue;
            }
            let stats = TrackStats {
                mid,
                ssrc,
                stream_id: track.stream_id().await,
                track_id: track.track_id().await,
                ..Default::default()
            };
            // The sender writes the level with the id the negotiation settled on; both descriptions agree.
            let remote = pc.remote_description().await;
            let ids = ExtIds {
                level: remote.as_ref().and_then(|d| extmap_id(&d.sdp, AUDIO_LEVEL_URI)),
                capture: remote.as_ref().and_then(|d| extmap_id(&d.sdp, ABS_CAPTURE_TIME_URI)),
            };
            let index = listener.add_track(stats);
            readers.spawn(read_track(track, index, ids, listener.clone()));
        }
        // Keep the readers alive (owned by the JoinSet) until this task is aborted.
        while readers.join_next().await.is_some() {}
    })
}

/// The mid of the transceiver whose receiver carries `track`.
async fn track_mid(pc: &dyn PeerConnection, track: &Arc<dyn TrackRemote>) -> Option<String> {
    for transceiver in pc.get_transceivers().await {
        if let Ok(Some(receiver)) = transceiver.receiver().await
            && std::ptr::addr_eq(Arc::as_ptr(receiver.track()), Arc::as_ptr(track))
        {
            return transceiver.mid().await.ok().flatten();
        }
    }
    None
}

/// The header extension ids the negotiation settled on (both descriptions agree).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExtIds {
    pub level: Option<u8>,
    pub capture: Option<u8>,
}

async fn read_track(track: Arc<dyn TrackRemote>, index: usize, ids: ExtIds, listener: Arc<Listener>) {
    let mut decoder = match Decoder::new() {
        Ok(d) => d,
        Err(e) => return tracing::warn!("track not decoded: {e:#}"),
    };
    let mut decoded_one = false;
    while let Some(event) = track.poll().await {
        let packet = match event {
            TrackRemoteEvent::OnRtpPacket(packet) => packet,
            TrackRemoteEvent::OnEnded => break,
            _ => continue,
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        listener.packets.fetch_add(1, Ordering::Relaxed);
        let h = &packet.header;
        let level = ids.level.and_then(|id| h.get_extension(id)).and_then(|b| b.first().copied());
        let capture = ids.capture.and_then(|id| h.get_extension(id));
        // An empty payload would make libopus conceal a loss; it carries no audio of its own.
        let decode = !packet.payload.is_empty() && (listener.options.decode || !decoded_one);
        let decoded = if decode { decoder.decode(&packet.payload).map(Some) } else { Ok(None) };

        let mut tracks = listener.lock();
        let Some(state) = tracks.get_mut(index) else { return };
        state.rtp.on_packet(
            now,
            wall,
            h.sequence_number,
            h.timestamp,
            h.marker,
            packet.payload.len(),
            capture.as_deref(),
        );
        if let Some(byte) = level {
            state.stats.last_level = Some(byte & 0x7f);
            state.stats.last_voice = Some(byte & 0x80 != 0);
        }
        match decoded {
            Ok(Some(pcm)) if !pcm.is_empty() => {
                if !decoded_one {
                    decoded_one = true;
                    let mut first = listener.first_decoded_at.lock().unwrap_or_else(|e| e.into_inner());
                    first.get_or_insert(now);
                }
                if let Some(which) = state.watch.as_mut().and_then(|w| w.on_frame(pcm)) {
                    listener.detections.push(now, which);
                }
                if listener.options.decode {
                    state.pcm.push(now, pcm);
                }
            }
            Ok(_) => {}
            Err(_) => state.stats.decode_errors += 1,
        }
    }
}

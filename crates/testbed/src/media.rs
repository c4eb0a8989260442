//! The audio of a synthetic participant: a task that speaks (a tone or silence, Opus every 20 ms,
//! with its RFC 6464 level), and one task per remote track that listens (decodes and keeps the
//! recent PCM so a test can ask which tones it hears). Remote video tracks are handed to
//! [`video_recv`](crate::video_recv) from here too, as both arrive on the same `on_track`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rtc::media::Sample;
use rtc::rtp::extension::audio_level_extension::AudioLevelExtension;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;

use crate::opus_io::{Decoder, Encoder, PcmHistory};
use crate::peer::{AUDIO_LEVEL_URI, Mic, extmap_id};
use crate::tone::{FRAME_SAMPLES, ToneGenerator, audio_level_dbov, detect_tones};
use crate::video_recv::{VideoListener, VideoTrackStats, read_video_track};

const FRAME: Duration = Duration::from_millis(20);
/// Decoded audio kept per remote track.
const KEEP_PCM: Duration = Duration::from_secs(2);

/// Switches of the send loop, shared with the client.
#[derive(Debug, Default)]
pub struct SendControl {
    /// Send nothing at all, as a muted client does.
    pub muted: AtomicBool,
    /// Keep sending, but silence (level 127) instead of the tone.
    pub silent: AtomicBool,
    pub frames_sent: AtomicU64,
    pub send_errors: AtomicU64,
}

/// Speaks into `mic` every 20 ms until aborted: `tone` is `(Hz, dBFS)`, `None` sends silence.
pub fn spawn_sender(mic: Mic, tone: Option<(f32, f32)>, ctl: Arc<SendControl>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let pt = match mic.payload_type().await {
            Ok(pt) => pt,
            Err(e) => return tracing::warn!("sender not started: {e:#}"),
        };
        let mut encoder = match Encoder::new() {
            Ok(enc) => enc,
            Err(e) => return tracing::warn!("sender not started: {e:#}"),
        };
        let mut generator = tone.map(|(hz, dbfs)| ToneGenerator::new(hz, dbfs));
        // The default (burst) catch-up keeps the long-run rate at exactly 50 frames/s after a stall.
        let mut tick = tokio::time::interval(FRAME);
        loop {
            tick.tick().await;
            if ctl.muted.load(Ordering::Relaxed) {
                continue;
            }
            // The generator runs even while silent, so unsilencing resumes the same sine.
            let tone_frame = generator.as_mut().map(ToneGenerator::next_frame);
            let pcm = match tone_frame {
                Some(frame) if !ctl.silent.load(Ordering::Relaxed) => frame,
                _ => [0; FRAME_SAMPLES],
            };
            let level = audio_level_dbov(&pcm);
            let sent = match encoder.encode(&pcm) {
                Ok(packet) => {
                    let sample = Sample { data: packet.into(), duration: FRAME, ..Sample::new(Instant::now()) };
                    let ext = AudioLevelExtension { level, voice: level < 127 };
                    mic.track.sample_writer(mic.ssrc, pt).with_audio_level(ext).write_sample(&sample).await.is_ok()
                }
                Err(_) => false,
            };
            let counter = if sent { &ctl.frames_sent } else { &ctl.send_errors };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    })
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
    /// RFC 6464 level of the last packet that carried one (0 loudest, 127 silence) and its V bit.
    pub last_level: Option<u8>,
    pub last_voice: Option<bool>,
    pub last_packet_at: Option<Instant>,
}

struct TrackState {
    stats: TrackStats,
    pcm: PcmHistory,
}

/// Everything heard so far, across all remote tracks.
#[derive(Default)]
pub struct Listener {
    tracks: Mutex<Vec<TrackState>>,
    packets: AtomicU64,
}

impl Listener {
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
        self.lock().iter().map(|t| t.stats.clone()).collect()
    }

    /// Forgets the decoded audio (not the counters), e.g. before a new phase of a scenario.
    pub fn clear_audio(&self) {
        self.lock().iter_mut().for_each(|t| t.pcm.clear());
    }

    fn add_track(&self, stats: TrackStats) -> usize {
        let mut tracks = self.lock();
        tracks.push(TrackState { stats, pcm: PcmHistory::new(KEEP_PCM) });
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
                        readers.spawn(read_video_track(track, index, video.clone()));
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
            let level_id = pc.remote_description().await.and_then(|d| extmap_id(&d.sdp, AUDIO_LEVEL_URI));
            let index = listener.add_track(stats);
            readers.spawn(read_track(track, index, level_id, listener.clone()));
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

async fn read_track(track: Arc<dyn TrackRemote>, index: usize, level_id: Option<u8>, listener: Arc<Listener>) {
    let mut decoder = match Decoder::new() {
        Ok(d) => d,
        Err(e) => return tracing::warn!("track not decoded: {e:#}"),
    };
    let mut last_seq: Option<u16> = None;
    while let Some(event) = track.poll().await {
        let packet = match event {
            TrackRemoteEvent::OnRtpPacket(packet) => packet,
            TrackRemoteEvent::OnEnded => break,
            _ => continue,
        };
        let now = Instant::now();
        listener.packets.fetch_add(1, Ordering::Relaxed);
        let seq = packet.header.sequence_number;
        // A forward jump under 1000 counts as loss; anything else is reordering or a new source.
        let gap = last_seq.map_or(0, |last| seq.wrapping_sub(last).wrapping_sub(1));
        let lost = if gap < 1000 { u64::from(gap) } else { 0 };
        last_seq = Some(seq);
        let level = level_id.and_then(|id| packet.header.get_extension(id)).and_then(|b| b.first().copied());
        // An empty payload would make libopus conceal a loss; it carries no audio of its own.
        let decoded = if packet.payload.is_empty() { Ok(&[][..]) } else { decoder.decode(&packet.payload) };

        let mut tracks = listener.lock();
        let Some(state) = tracks.get_mut(index) else { return };
        let stats = &mut state.stats;
        stats.packets += 1;
        stats.bytes += packet.payload.len() as u64;
        stats.lost += lost;
        stats.last_packet_at = Some(now);
        if let Some(byte) = level {
            stats.last_level = Some(byte & 0x7f);
            stats.last_voice = Some(byte & 0x80 != 0);
        }
        match decoded {
            Ok(pcm) if !pcm.is_empty() => state.pcm.push(now, pcm),
            Ok(_) => {}
            Err(_) => stats.decode_errors += 1,
        }
    }
}

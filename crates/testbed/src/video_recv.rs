//! The video a synthetic participant receives: one task per remote video track feeding a
//! [`VideoReceiver`], sending the keyframe requests it asks for, and keeping per track the counters
//! and only the latest decoded picture (memory stays bounded however long a test runs).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use signaling::protocol::Id;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::hist::Histogram;
use crate::media::ReceiveOptions;
use crate::pattern::{ColourWatch, SwitchLog};
use crate::picture::I420;
use crate::rtp_stats::RtpStats;
use crate::vp8_rtp::VideoReceiver;

/// Decode instants kept for the frame rate; more than any test camera produces in a second.
const MAX_FPS_SAMPLES: usize = 240;
/// H.264 received is kept (for ffmpeg to read) up to this much.
const MAX_H264_KEPT: usize = 64 << 20;
/// VP8's RTP clock.
const VIDEO_CLOCK: u32 = 90_000;

/// What one remote video track delivered.
#[derive(Debug, Clone, Default)]
pub struct VideoTrackStats {
    /// The receive m-line (slot) it arrived on, if found.
    pub mid: Option<String>,
    /// Whose camera the slot carries, from the latest `slots` message; `None` for the composite, an
    /// unused slot, or when no `slots` message named it (filled in by `VoiceClient`).
    pub user_id: Option<Id>,
    pub ssrc: u32,
    pub packets: u64,
    pub bytes: u64,
    /// Packets missing from the sequence.
    pub lost: u64,
    /// Whole frames assembled, and how many of them were keyframes (decoding receivers only).
    pub frames: u64,
    /// Frames as RTP marks them (marker bits), counted by every receiver.
    pub rtp_frames: u64,
    /// RFC 3550 interarrival jitter.
    pub jitter: Duration,
    /// End-to-end latency of packets carrying the sender's capture time (forwarded cameras),
    /// since the last [`VideoListener::reset_window`].
    pub latency: Histogram,
    pub keyframes: u64,
    /// Pictures decoded.
    pub decoded: u64,
    /// Delta frames not decoded while a keyframe was awaited.
    pub skipped: u64,
    pub decode_errors: u64,
    pub last_decode_error: Option<String>,
    /// Keyframe requests (PLI) sent.
    pub plis_sent: u64,
    /// Pictures decoded in the last second.
    pub fps: f32,
    pub first_frame_at: Option<Instant>,
    pub last_frame_at: Option<Instant>,
    /// Size of the latest picture.
    pub size: Option<(u32, u32)>,
}

struct VideoTrack {
    stats: VideoTrackStats,
    rtp: RtpStats,
    watch: Option<ColourWatch>,
    latest: Option<Arc<I420>>,
    decoded_at: VecDeque<Instant>,
    remote: Arc<dyn TrackRemote>,
}

/// Everything seen so far, across all remote video tracks.
pub struct VideoListener {
    tracks: Mutex<Vec<VideoTrack>>,
    /// The SSRC our keyframe requests name as their sender (RFC 4585 wants one of ours).
    feedback_ssrc: u32,
    options: ReceiveOptions,
    /// When a watched colour became the one shown (any track).
    pub detections: SwitchLog,
    /// H.264 received (not decoded here), Annex B, whole access units from a keyframe on.
    h264: Mutex<Vec<u8>>,
}

impl Default for VideoListener {
    fn default() -> Self {
        Self::new(1, ReceiveOptions::default())
    }
}

impl VideoListener {
    pub fn new(feedback_ssrc: u32, options: ReceiveOptions) -> Self {
        let (tracks, detections, h264) = (Mutex::default(), SwitchLog::default(), Mutex::default());
        Self { tracks, feedback_ssrc, options, detections, h264 }
    }

    /// Starts a measurement window: forgets latency samples and pattern detections so far.
    pub fn reset_window(&self) {
        self.lock().iter_mut().for_each(|t| t.rtp.latency.clear());
        self.detections.clear();
    }

    /// The H.264 received so far (Annex B, from a keyframe on), e.g. for `ffprobe`.
    pub fn h264_stream(&self) -> Vec<u8> {
        self.h264.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<VideoTrack>> {
        // A poisoned lock only means a reader panicked mid-update; the data is still usable.
        self.tracks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn track_stats(&self) -> Vec<VideoTrackStats> {
        let now = Instant::now();
        self.lock()
            .iter()
            .map(|t| {
                let recent =
                    t.decoded_at.iter().filter(|at| now.duration_since(**at) <= Duration::from_secs(1)).count();
                VideoTrackStats {
                    fps: recent as f32,
                    packets: t.rtp.packets,
                    bytes: t.rtp.bytes,
                    rtp_frames: t.rtp.frames,
                    jitter: t.rtp.jitter(),
                    latency: t.rtp.latency.clone(),
                    // Without a decoder the sequence is the only loss count.
                    lost: if self.options.decode { t.stats.lost } else { t.rtp.lost },
                    ..t.stats.clone()
                }
            })
            .collect()
    }

    /// The latest picture decoded on the track received on `mid`.
    pub fn latest_picture(&self, mid: &str) -> Option<Arc<I420>> {
        self.lock().iter().find(|t| t.stats.mid.as_deref() == Some(mid)).and_then(|t| t.latest.clone())
    }

    /// The latest picture of every track that has one, with its mid.
    pub fn latest_pictures(&self) -> Vec<(Option<String>, Arc<I420>)> {
        self.lock().iter().filter_map(|t| Some((t.stats.mid.clone(), t.latest.clone()?))).collect()
    }

    /// Sends a keyframe request (PLI) for the track received on `mid`, as a decoder would.
    pub async fn request_keyframe(&self, mid: &str) -> Result<()> {
        let (index, remote, ssrc) = {
            let tracks = self.lock();
            let index = tracks
                .iter()
                .position(|t| t.stats.mid.as_deref() == Some(mid))
                .context("no video track on that mid")?;
            (index, tracks[index].remote.clone(), tracks[index].stats.ssrc)
        };
        self.send_pli(index, remote.as_ref(), ssrc).await
    }

    async fn send_pli(&self, index: usize, remote: &dyn TrackRemote, media_ssrc: u32) -> Result<()> {
        let pli = PictureLossIndication { sender_ssrc: self.feedback_ssrc, media_ssrc };
        remote.write_rtcp(vec![Box::new(pli)]).await.context("sending a PLI")?;
        if let Some(t) = self.lock().get_mut(index) {
            t.stats.plis_sent += 1;
        }
        Ok(())
    }

    pub(crate) fn add_track(&self, stats: VideoTrackStats, remote: Arc<dyn TrackRemote>) -> usize {
        let mut tracks = self.lock();
        let watch = self.options.watch_colours.map(ColourWatch::new);
        let rtp = RtpStats::new(VIDEO_CLOCK);
        tracks.push(VideoTrack { stats, rtp, watch, latest: None, decoded_at: VecDeque::new(), remote });
        tracks.len() - 1
    }
}

/// Receives track `index` of `listener` until it ends.
/// Without `capture_id`, capture times are not read.
pub(crate) async fn read_video_track(
    track: Arc<dyn TrackRemote>,
    index: usize,
    capture_id: Option<u8>,
    listener: Arc<VideoListener>,
) {
    let mut receiver = match VideoReceiver::new() {
        Ok(r) => r,
        Err(e) => return tracing::warn!("video track not decoded: {e:#}"),
    };
    let mut h264 = crate::h264_rtp::H264Assembler::default();
    while let Some(event) = track.poll().await {
        let packet = match event {
            TrackRemoteEvent::OnRtpPacket(packet) => packet,
            TrackRemoteEvent::OnEnded => break,
            _ => continue,
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        let h = &packet.header;
        let capture = capture_id.and_then(|id| h.get_extension(id));
        let (seq, ts, len) = (h.sequence_number, h.timestamp, packet.payload.len());
        if h.payload_type == crate::peer::H264_PT {
            let au = h264.push(seq, h.marker, &packet.payload);
            let mut tracks = listener.lock();
            let Some(t) = tracks.get_mut(index) else { return };
            t.rtp.on_packet(now, wall, seq, ts, h.marker, len, capture.as_deref());
            if let Some(au) = au {
                let s = &mut t.stats;
                (s.frames, s.keyframes) = (s.frames + 1, s.keyframes + u64::from(au.keyframe));
                s.first_frame_at.get_or_insert(now);
                s.last_frame_at = Some(now);
                let mut stream = listener.h264.lock().unwrap_or_else(|e| e.into_inner());
                if stream.len() + au.data.len() <= MAX_H264_KEPT {
                    stream.extend_from_slice(&au.data);
                }
            }
            continue;
        }
        if !listener.options.decode {
            let mut tracks = listener.lock();
            let Some(t) = tracks.get_mut(index) else { return };
            t.rtp.on_packet(now, wall, seq, ts, h.marker, len, capture.as_deref());
            continue;
        }
        let got = receiver.push(now, seq, ts, h.marker, &packet.payload);
        let detected = {
            let mut tracks = listener.lock();
            let Some(t) = tracks.get_mut(index) else { return };
            t.rtp.on_packet(now, wall, seq, ts, h.marker, len, capture.as_deref());
            let detected = match (&got.picture, t.watch.as_mut()) {
                (Some(picture), Some(watch)) => watch.on_picture(picture),
                _ => None,
            };
            let s = &mut t.stats;
            s.lost += got.lost;
            if let Some(keyframe) = got.frame {
                s.frames += 1;
                s.keyframes += u64::from(keyframe);
            }
            s.skipped += u64::from(got.skipped);
            if let Some(e) = got.decode_error {
                s.decode_errors += 1;
                s.last_decode_error = Some(e);
            }
            if let Some(picture) = got.picture {
                s.decoded += 1;
                s.first_frame_at.get_or_insert(now);
                s.last_frame_at = Some(now);
                s.size = Some((picture.width, picture.height));
                t.latest = Some(Arc::new(picture));
                while t.decoded_at.len() >= MAX_FPS_SAMPLES
                    || t.decoded_at.front().is_some_and(|at| now.duration_since(*at) > Duration::from_secs(1))
                {
                    t.decoded_at.pop_front();
                }
                t.decoded_at.push_back(now);
            }
            detected
        };
        if let Some(which) = detected {
            listener.detections.push(now, which);
        }
        if got.send_pli
            && let Err(e) = listener.send_pli(index, track.as_ref(), h.ssrc).await
        {
            tracing::debug!("{e:#}");
        }
    }
}

//! A WHIP session's task: what the engine delivers for the peer becomes ingest events for the
//! pump. Video is timestamped and gated (after a loss, frames wait for a keyframe, which is asked
//! for), Opus is re-encoded to AAC, and a publisher over the bitrate limit is cut. The session ends
//! on DELETE, when the peer goes (DTLS closed, silence past the engine's timeout, failure), or at
//! shutdown; then its stream is released and ends.

use super::Whip;
use live::{EndReason, FrameCodec, IngestEvent};
use mcu::aac::{AacOutput, OpusToAac};
use sfu::{GoneReason, IngestCodec, IngestMedia, IngestSink};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Frames and packets waiting for the task (several seconds' worth).
const QUEUE: usize = 2048;
/// The bitrate limit is checked over this window.
const WINDOW: Duration = Duration::from_secs(5);
const AAC_BITRATE: u32 = 128_000;

/// What the engine's sink shares with the task: frames, and whether one was dropped (the next
/// video frame then follows a gap) or how the peer went.
pub(super) struct Rx {
    frames: mpsc::Receiver<IngestMedia>,
    lost: Arc<AtomicBool>,
}

pub(super) struct Tx {
    frames: mpsc::Sender<IngestMedia>,
    lost: Arc<AtomicBool>,
}

pub(super) fn channel() -> (Tx, Rx) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let lost = Arc::new(AtomicBool::new(false));
    (Tx { frames: tx, lost: lost.clone() }, Rx { frames: rx, lost })
}

/// The engine calls this on its own thread: it never blocks. When the peer is dropped, so is the
/// sender, which ends the task even if `Gone` found the queue full.
pub(super) fn sink(tx: Tx) -> IngestSink {
    Box::new(move |m| {
        if tx.frames.try_send(m).is_err() {
            tx.lost.store(true, Ordering::Relaxed);
        }
    })
}

pub(super) struct Task {
    pub whip: Whip,
    pub stream: String,
    pub session: String,
    pub peer: sfu::PeerId,
    /// The publisher id holding the stream.
    pub who: u64,
}

/// Timestamps in ms since the session's first media: each track keeps its RTP spacing from its
/// first frame, placed at that frame's arrival (WebRTC's clocks have random origins).
#[derive(Default)]
struct Clock {
    origin: Option<Instant>,
    audio: Option<(u64, i64)>,
    video: Option<(u64, i64)>,
}

impl Clock {
    fn ms(&mut self, video: bool, media_us: u64, arrived: Instant) -> u64 {
        let origin = *self.origin.get_or_insert(arrived);
        let at = arrived.saturating_duration_since(origin).as_millis() as i64;
        let track = if video { &mut self.video } else { &mut self.audio };
        let (first_us, first_ms) = *track.get_or_insert((media_us, at));
        let since = (media_us as i64 - first_us as i64) / 1000;
        (first_ms + since).max(0) as u64
    }
}

impl Task {
    pub async fn run(self, mut rx: Rx, stop: CancellationToken) {
        let i = &self.whip.inner;
        let shutdown = i.app.shutdown.clone();
        let aac = start_aac(i.events.clone(), self.stream.clone());
        if aac.is_some() {
            // Before any video: the init segment, written at the first keyframe, then has audio.
            let audio = live::flv::Audio::AacConfig(bytes::Bytes::from_static(&mcu::aac::ASC));
            let _ = i.events.send(IngestEvent::Audio { stream: self.stream.clone(), ts_ms: 0, audio }).await;
        }
        let (mut clock, mut codec, mut waiting_key) = (Clock::default(), None::<IngestCodec>, true);
        let mut window: VecDeque<(Instant, usize)> = VecDeque::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let reason = loop {
            let m = tokio::select! {
                _ = stop.cancelled() => break EndReason::Finished,
                _ = shutdown.cancelled() => break EndReason::Closed,
                _ = tick.tick() => match self.over_limit(&mut window) {
                    Some(reason) => break reason,
                    None => continue,
                },
                m = rx.frames.recv() => match m {
                    Some(m) => m,
                    None => break EndReason::Closed,
                },
            };
            match m {
                IngestMedia::Connected => tracing::info!(stream = %self.stream, "whip media connected"),
                IngestMedia::Audio { data, media_us, arrived } => {
                    window.push_back((arrived, data.len()));
                    if let Some(aac) = &aac {
                        aac.push(clock.ms(false, media_us, arrived), &data);
                    }
                }
                IngestMedia::Video { codec: c, data, keyframe, contiguous, media_us, arrived } => {
                    window.push_back((arrived, data.len()));
                    if *codec.get_or_insert(c) != c {
                        continue; // a codec change mid-stream: the ladder decodes the first one
                    }
                    let keyframe = match c {
                        IngestCodec::Vp8 => match mcu::vp8::inspect(&data) {
                            mcu::vp8::FrameKind::Key { .. } => true,
                            mcu::vp8::FrameKind::Delta => false,
                            mcu::vp8::FrameKind::Invalid => {
                                waiting_key = true;
                                continue;
                            }
                        },
                        IngestCodec::H264 => keyframe,
                    };
                    if !contiguous || rx.lost.swap(false, Ordering::Relaxed) {
                        waiting_key = true;
                    }
                    if waiting_key && !keyframe {
                        i.sfu.request_keyframe(self.peer);
                        continue;
                    }
                    waiting_key = false;
                    let codec = match c {
                        IngestCodec::Vp8 => FrameCodec::Vp8,
                        IngestCodec::H264 => FrameCodec::H264AnnexB,
                    };
                    let ts_ms = u32::try_from(clock.ms(true, media_us, arrived)).unwrap_or(u32::MAX);
                    let data = bytes::Bytes::from_owner(data);
                    let ev = IngestEvent::Frame { stream: self.stream.clone(), ts_ms, codec, keyframe, data };
                    let _ = i.events.send(ev).await;
                }
                IngestMedia::Gone(reason) => break gone(reason),
                _ => {}
            }
        };
        self.finish(reason, aac).await;
    }

    /// The publisher's bitrate over the last [`WINDOW`], if over the limit: the reason to cut it.
    fn over_limit(&self, window: &mut VecDeque<(Instant, usize)>) -> Option<EndReason> {
        let now = Instant::now();
        while window.front().is_some_and(|(t, _)| now.saturating_duration_since(*t) > WINDOW) {
            window.pop_front();
        }
        let max = self.whip.inner.max_kbps;
        let kbps = window.iter().map(|(_, n)| *n as u64).sum::<u64>() * 8 / WINDOW.as_millis() as u64;
        (max > 0 && kbps > u64::from(max)).then_some(EndReason::TooMuchBitrate { kbps, max })
    }

    async fn finish(self, reason: EndReason, aac: Option<OpusToAac>) {
        let i = &self.whip.inner;
        self.whip.sessions().remove(&self.session);
        i.sfu.remove_peer(self.peer);
        if let Some(aac) = aac {
            let _ = tokio::task::spawn_blocking(move || aac.finish()).await;
        }
        i.publishers.release(&self.stream, self.who);
        tracing::info!(stream = %self.stream, %reason, "whip stream ended");
        let _ = i.events.send(IngestEvent::Ended { stream: self.stream.clone(), reason }).await;
    }
}

fn gone(reason: GoneReason) -> EndReason {
    match reason {
        GoneReason::Timeout => EndReason::Timeout("no media from the publisher"),
        GoneReason::Closed => EndReason::Finished,
        GoneReason::Failed => EndReason::Protocol("ICE or DTLS failed".into()),
        GoneReason::Unreachable => EndReason::Timeout("the media connection never completed"),
    }
}

/// The stream's Opus → AAC transcoder, delivering into the pump; `None` (video only) if
/// GStreamer cannot make one.
fn start_aac(events: mpsc::Sender<IngestEvent>, stream: String) -> Option<OpusToAac> {
    let sink = move |out: AacOutput| {
        // The config was announced up front (`mcu::aac::ASC`).
        let AacOutput::Frame { pts_ms, data } = out else { return };
        let (ts_ms, audio) = (u32::try_from(pts_ms).unwrap_or(u32::MAX), live::flv::Audio::AacFrame(data));
        // On GStreamer's thread, outside the runtime: waiting for room in the queue is fine.
        let _ = events.blocking_send(IngestEvent::Audio { stream: stream.clone(), ts_ms, audio });
    };
    match OpusToAac::start(AAC_BITRATE, sink) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "no AAC encoder: the stream goes on without audio");
            None
        }
    }
}

//! WHEP for streams published over RTMP: the ladder's top rendition (x264 with no B-frames, which
//! WebRTC can carry; OBS's own H.264 usually has them) in Annex B, and the stream's AAC re-encoded
//! to Opus (`mcu::opus`), pushed to the media engine as a feed (`sfu::feed`) that WHEP viewers
//! (`crate::whip::whep`) watch as they watch a WHIP publisher.

use live::annexb::AvcToAnnexB;
use live::flv::Audio;
use mcu::ladder::LadderOutput;
use mcu::opus::AacToOpus;
use sfu::{FeedMedia, PeerId, Sfu};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Feed ids: the top three bits set (WHIP publishers have the top one, WHEP viewers two).
const FEED_BIT: u64 = 7 << 61;
/// Opus for viewers: transparent for stereo music at 20 ms.
const OPUS_BITRATE: u32 = 128_000;

/// The feeds of the streams now published over RTMP, by stream.
pub struct Feeds {
    sfu: Sfu,
    by_stream: Mutex<HashMap<String, PeerId>>,
    next: AtomicU64,
}

impl Feeds {
    pub fn new(sfu: Sfu) -> Feeds {
        Feeds { sfu, by_stream: Mutex::default(), next: AtomicU64::new(1) }
    }

    /// The feed WHEP viewers of `stream` watch, once its ladder runs.
    pub fn source(&self, stream: &str) -> Option<PeerId> {
        self.lock().get(stream).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PeerId>> {
        self.by_stream.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One stream's feed: registered in the engine while its publisher is live.
pub struct Feed {
    feeds: Arc<Feeds>,
    stream: String,
    id: PeerId,
    /// Set by the ladder's top rendition's configuration record.
    video: Arc<Mutex<Option<AvcToAnnexB>>>,
    opus: Option<AacToOpus>,
}

impl Feed {
    pub fn start(feeds: &Arc<Feeds>, stream: &str) -> Feed {
        let id = FEED_BIT | feeds.next.fetch_add(1, Ordering::Relaxed);
        feeds.sfu.add_feed(id);
        feeds.lock().insert(stream.to_string(), id);
        tracing::info!(stream, feed = id, "whep feed");
        Feed { feeds: feeds.clone(), stream: stream.to_string(), id, video: Arc::default(), opus: None }
    }

    /// What the ladder's sink calls with each output (on a GStreamer thread): rendition 0 (the
    /// largest) is converted and pushed.
    pub fn video_sink(&self) -> impl Fn(&LadderOutput) + Send + Sync + 'static {
        let (sfu, id, video) = (self.feeds.sfu.clone(), self.id, self.video.clone());
        move |out| match out {
            LadderOutput::Config { rendition: 0, record } => match AvcToAnnexB::new(record) {
                Ok(c) => *video.lock().unwrap_or_else(|p| p.into_inner()) = Some(c),
                Err(e) => tracing::warn!(feed = id, error = %e, "ladder's H.264 config"),
            },
            LadderOutput::Frame { rendition: 0, pts_ms, keyframe, data, .. } => {
                let converted =
                    video.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|c| c.convert(data, *keyframe));
                if let Some(Ok(annexb)) = converted {
                    sfu.feed(id, FeedMedia::H264 { data: annexb.into(), keyframe: *keyframe, pts_ms: *pts_ms });
                }
            }
            _ => {}
        }
    }

    /// The stream's audio: its config starts the Opus encoder, its frames go through it.
    pub fn audio(&mut self, ts_ms: u32, audio: &Audio) {
        match audio {
            Audio::AacConfig(asc) => {
                if let Some(old) = self.opus.take() {
                    old.finish();
                }
                let (sfu, id) = (self.feeds.sfu.clone(), self.id);
                let sink = move |p: mcu::opus::OpusPacket| {
                    sfu.feed(id, FeedMedia::Opus { data: p.data.to_vec().into(), pts_ms: p.pts_ms })
                };
                match AacToOpus::start(asc, OPUS_BITRATE, sink) {
                    Ok(t) => self.opus = Some(t),
                    Err(e) => tracing::warn!(stream = self.stream, error = %e, "no Opus for WHEP viewers"),
                }
            }
            Audio::AacFrame(frame) => {
                if let Some(t) = &self.opus {
                    t.push(u64::from(ts_ms), frame.clone());
                }
            }
            Audio::Unsupported(_) => {}
        }
    }
}

impl Drop for Feed {
    /// The stream ended: its viewers are closed, WHEP answers 409 again.
    fn drop(&mut self) {
        let mut map = self.feeds.lock();
        if map.get(&self.stream) == Some(&self.id) {
            map.remove(&self.stream);
        }
        drop(map);
        self.feeds.sfu.remove_feed(self.id);
    }
}

//! Feeds: live sources that are not peers — a stream published over RTMP, transcoded by the
//! caller — whose H.264 and Opus frames are pushed with [`crate::Sfu::feed`] and written to
//! WHEP viewers added with [`crate::Sfu::add_viewer`], as a WHIP publisher's are.
//!
//! A feed keys on its own schedule (its encoder's GOP) and cannot be asked for a keyframe, so
//! each viewer is written video from the next keyframe on. Frames carry the feed's timestamps;
//! their wall-clock times (which str0m puts in sender reports) are derived from those, not from
//! when they arrive, so audio and video stay in sync whatever each one's transcode delay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::{Codec, PayloadParams};
use str0m::media::{Frequency, MediaTime, Mid};
use str0m::rtp::ExtensionValues;

use crate::PeerId;
use crate::direct::{Copy, Packetizer, PtFrom};
use crate::engine::Engine;

/// One frame of a feed.
#[derive(Debug, Clone)]
pub enum FeedMedia {
    /// One H.264 access unit in Annex B, its SPS and PPS in-band before each keyframe.
    H264 { data: Arc<[u8]>, keyframe: bool, pts_ms: u64 },
    /// One Opus packet (48 kHz).
    Opus { data: Arc<[u8]>, pts_ms: u64 },
}

/// A feed's state in the engine.
#[derive(Debug, Default)]
pub(crate) struct Feed {
    /// The first frame's time and when it was written: frame `t` is "captured" at
    /// `at + (t - pts)`.
    anchor: Option<(u64, Instant)>,
    packetizer: Packetizer,
}

impl Engine {
    pub(crate) fn add_feed(&mut self, id: PeerId) {
        if !self.peers.contains_key(&id) {
            self.feeds.entry(id).or_default();
        }
    }

    /// Ends the feed; its viewers are gone with it (as a WHIP publisher's are).
    pub(crate) fn remove_feed(&mut self, id: PeerId) {
        if self.feeds.remove(&id).is_some() {
            self.drop_watching(id, None);
        }
    }

    /// One frame of feed `id`, written to each of its connected viewers.
    pub(crate) fn feed(&mut self, id: PeerId, m: FeedMedia, now: Instant) {
        let Some(feed) = self.feeds.get_mut(&id) else { return };
        let (data, keyframe, pts_ms, video) = match m {
            FeedMedia::H264 { data, keyframe, pts_ms } => (data, keyframe, pts_ms, true),
            FeedMedia::Opus { data, pts_ms } => (data, false, pts_ms, false),
        };
        let (t0, at) = *feed.anchor.get_or_insert((pts_ms, now));
        let wallclock = at + Duration::from_millis(pts_ms.saturating_sub(t0));
        let time = if video {
            MediaTime::new(pts_ms * 90, Frequency::NINETY_KHZ)
        } else {
            MediaTime::new(pts_ms * 48, Frequency::FORTY_EIGHT_KHZ)
        };
        if self.watchers.get(&id).is_none_or(|v| v.is_empty()) {
            return;
        }
        // Packetised once; every viewer's copy shares the packets.
        let mut packets = std::mem::take(&mut self.packets);
        packets.clear();
        if video {
            if let Err(e) = feed.packetizer.packetize(Codec::H264, &data, &mut packets) {
                tracing::debug!(feed = id, error = ?e, "feed frame not packetised");
            }
        } else {
            packets.push(data);
        }
        let time = time.numer() as u32;
        let exts = ExtensionValues::default();
        let viewers = self.watchers.get_mut(&id).map(std::mem::take).unwrap_or_default();
        for &v in viewers.iter().filter(|_| !packets.is_empty()) {
            let Some(l) = self.peers.get_mut(&v).filter(|l| l.connected) else { continue };
            let mid = if video { l.video_slots.first() } else { l.slots.first() };
            let Some(&mid) = mid else { continue };
            if video && !l.composite_keyed {
                if !keyframe {
                    continue;
                }
                l.composite_keyed = true;
            }
            let pt = PtFrom::Pick(if video { best_video_pt } else { best_audio_pt });
            let copy = Copy { pt, time, wallclock, exts: &exts, payloads: &packets, video };
            match l.write_direct(mid, copy) {
                Ok(()) if video => l.counters.video_frames_out += 1,
                Ok(()) => {}
                Err(e) => {
                    tracing::trace!(parent: &l.span, error = ?e, "feed write failed");
                    l.counters.dropped_errors += 1;
                }
            }
            self.mark_dirty(v);
        }
        self.packets = packets;
        if let Some(slot) = self.watchers.get_mut(&id) {
            *slot = viewers;
        }
    }
}

/// Whether the viewer's offer takes H.264 on its video m-line (what a feed sends).
pub(crate) fn takes_h264(rtc: &str0m::Rtc, video: Mid) -> bool {
    let Some(m) = rtc.media(video) else { return false };
    rtc.codec_config().params().iter().any(|p| m.remote_pts().contains(&p.pt()) && h264_rank(p).is_some())
}

fn best_video_pt(rtc: &mut str0m::Rtc, mid: Mid) -> Option<str0m::media::Pt> {
    rtc.writer(mid).and_then(|w| best_pt(w.payload_params(), true))
}

fn best_audio_pt(rtc: &mut str0m::Rtc, mid: Mid) -> Option<str0m::media::Pt> {
    rtc.writer(mid).and_then(|w| best_pt(w.payload_params(), false))
}

/// The payload type to write a feed's frames with: Opus, or the viewer's best H.264 (packetization
/// mode 1; Main profile first: confab's ladder encodes it).
fn best_pt<'a>(params: impl Iterator<Item = &'a PayloadParams>, video: bool) -> Option<str0m::media::Pt> {
    if !video {
        return params.into_iter().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt());
    }
    params.filter_map(|p| Some((h264_rank(p)?, p.pt()))).min_by_key(|(rank, _)| *rank).map(|(_, pt)| pt)
}

/// Lower is better; `None`: not H.264 that can carry a feed (single-NAL mode cannot fragment).
fn h264_rank(p: &PayloadParams) -> Option<u8> {
    let spec = p.spec();
    if spec.codec != Codec::H264 || spec.format.packetization_mode != Some(1) {
        return None;
    }
    Some(match spec.format.profile_level_id.map(|id| id >> 16) {
        Some(0x4d) => 0,
        Some(0x64) => 1,
        _ => 2,
    })
}

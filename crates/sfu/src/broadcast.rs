//! WHEP viewers of an ingest peer: receive-only peers in no room that are written the ingest's
//! frames as they arrive, untouched (its codec, its RTP time, its capture time), so a browser
//! watches a WHIP publisher with no transcode and no packaging delay. A viewer that connects or
//! asks for a keyframe gets one asked of the publisher (rate-limited, as in rooms). Viewers of a
//! feed (`feed`: a source that is not a peer) are added the same way.

use std::time::Instant;

use str0m::media::MediaData;
use str0m::rtp::ExtensionValues;

use crate::direct::{Copy, PtFrom};
use crate::engine::Engine;
use crate::peer::Peer;
use crate::{PeerId, SfuError};

impl Engine {
    /// Adds `id`, watching the ingest peer or feed `source`.
    pub(crate) fn add_viewer(
        &mut self,
        id: PeerId,
        source: PeerId,
        p: crate::offer::Prepared,
        sink: crate::IngestSink,
        now: Instant,
    ) -> Result<(), SfuError> {
        let feed = self.feeds.contains_key(&source);
        if !feed && !self.peers.get(&source).is_some_and(|s| s.ingest.is_some() && s.source.is_none()) {
            return Err(SfuError::NoSource);
        }
        if feed && !p.video_slots.first().is_some_and(|v| crate::feed::takes_h264(&p.rtc, *v)) {
            return Err(SfuError::NoH264);
        }
        if self.peers.contains_key(&id) {
            return Err(SfuError::DuplicatePeer);
        }
        if self.peers.len() >= self.cfg.max_peers {
            return Err(SfuError::Full);
        }
        if !self.router.add(id, p.ufrag.clone()) {
            return Err(SfuError::DuplicatePeer);
        }
        let span = tracing::info_span!("viewer", peer = id, source);
        tracing::info!(parent: &span, "whep viewer added");
        let mut peer = Peer::new(id, crate::ingest::INGEST_ROOM, p, String::new(), span, now);
        (peer.ingest, peer.source) = (Some(sink), Some(source));
        self.peers.insert(id, peer);
        self.watchers.entry(source).or_default().push(id);
        self.drain(id, now);
        Ok(())
    }

    /// One frame of ingest peer `src`, written to each of its connected viewers (a video frame
    /// packetised once for all of them).
    pub(crate) fn broadcast(&mut self, src: PeerId, d: MediaData, _now: Instant) {
        if self.watchers.get(&src).is_none_or(|v| v.is_empty()) {
            return;
        }
        let Some(p) = self.peers.get_mut(&src) else { return };
        let mut packets = std::mem::take(&mut self.packets);
        packets.clear();
        let video = p.camera == Some(d.mid);
        let packed = if video {
            p.packetizer.packetize(d.params.spec().codec, &d.data, &mut packets)
        } else {
            packets.push(d.data.clone());
            Ok(())
        };
        if let Err(e) = packed {
            tracing::debug!(parent: &p.span, error = ?e, "ingest frame not packetised");
            p.counters.dropped_errors += 1;
        }
        // Taken out for the loop and put back (no copy per frame): nothing here changes viewers.
        let viewers = self.watchers.get_mut(&src).map(std::mem::take).unwrap_or_default();
        let exts = ExtensionValues { abs_capture_time: d.ext_vals.abs_capture_time, ..ExtensionValues::default() };
        // The frame's own RTP time: viewers see the publisher's timeline.
        let time = d.time.rebase(d.params.spec().clock_rate).numer() as u32;
        for &v in viewers.iter().filter(|_| !packets.is_empty()) {
            let Some(l) = self.peers.get_mut(&v).filter(|l| l.connected) else { continue };
            let mid = if video { l.video_slots.first() } else { l.slots.first() };
            let Some(&mid) = mid else { continue };
            let copy = Copy {
                pt: PtFrom::Source(d.params),
                time,
                wallclock: d.network_time,
                exts: &exts,
                payloads: &packets,
                video,
            };
            match l.write_direct(mid, copy) {
                Ok(()) if video => l.counters.video_frames_out += 1,
                Ok(()) => {}
                Err(e) => {
                    tracing::trace!(parent: &l.span, error = ?e, "viewer write failed");
                    l.counters.dropped_errors += 1;
                }
            }
            self.mark_dirty(v);
        }
        self.packets = packets;
        if let Some(slot) = self.watchers.get_mut(&src) {
            *slot = viewers;
        }
    }

    /// A viewer connected or asked for a keyframe: ask its publisher.
    pub(crate) fn viewer_wants_keyframe(&mut self, viewer: PeerId, now: Instant) -> bool {
        let Some(source) = self.peers.get(&viewer).and_then(|p| p.source) else { return false };
        self.ask_keyframe(source, now);
        true
    }

    /// Forgets `id` as a viewer; when `id` was a publisher, its viewers go too.
    pub(crate) fn drop_watching(&mut self, id: PeerId, source: Option<PeerId>) {
        if let Some(s) = source
            && let Some(list) = self.watchers.get_mut(&s)
        {
            list.retain(|v| *v != id);
        }
        if let Some(viewers) = self.watchers.remove(&id) {
            for v in viewers {
                self.gone.push((v, crate::GoneReason::Closed));
            }
        }
    }
}

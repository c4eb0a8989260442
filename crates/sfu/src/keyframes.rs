//! Keyframe requests: a receiver's PLI or FIR relayed to the publisher in its slot (or to the
//! compositor), a keyframe asked for whoever just connected, every publisher asked at most once
//! per [`PLI_INTERVAL`] (a request inside it is deferred, not dropped).

use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, Mid};

use crate::PeerId;
use crate::engine::Engine;
use crate::room::Kind;

/// At most one keyframe request to a publisher per interval: a keyframe costs several times a
/// delta frame, and a room of joiners or lossy receivers must not turn the stream into keyframes.
const PLI_INTERVAL: Duration = Duration::from_millis(300);

impl Engine {
    /// Asks `source`'s screen share for a keyframe, rate-limited as a camera's (see below).
    pub(crate) fn ask_share_keyframe(&mut self, source: PeerId, now: Instant) {
        let Some(p) = self.peers.get_mut(&source) else { return };
        let Some(share) = p.share.filter(|_| p.connected) else { return };
        if p.share_last_pli.is_some_and(|t| now.saturating_duration_since(t) < PLI_INTERVAL) {
            p.share_pli_deferred = true;
            return;
        }
        p.share_pli_deferred = false;
        let asked = p.rtc.writer(share).map(|mut w| w.request_keyframe(None, KeyframeRequestKind::Pli));
        if let Some(Ok(())) = asked {
            p.share_last_pli = Some(now);
            p.counters.keyframe_requests_out += 1;
            self.mark_dirty(source);
        }
    }

    /// Asks `source`'s camera for a keyframe (PLI), at most once per [`PLI_INTERVAL`]. A request
    /// inside the interval is deferred, not dropped: a receiver that connects just after another
    /// missed the keyframe asked for the first and needs its own.
    pub(crate) fn ask_keyframe(&mut self, source: PeerId, now: Instant) {
        let Some(p) = self.peers.get_mut(&source) else { return };
        let Some(camera) = p.camera.filter(|_| p.connected) else { return };
        if p.last_pli.is_some_and(|t| now.saturating_duration_since(t) < PLI_INTERVAL) {
            p.pli_deferred = true;
            return;
        }
        p.pli_deferred = false;
        let asked = p.rtc.writer(camera).map(|mut w| w.request_keyframe(None, KeyframeRequestKind::Pli));
        if let Some(Ok(())) = asked {
            p.last_pli = Some(now);
            p.counters.keyframe_requests_out += 1;
            self.mark_dirty(source);
        }
    }

    /// `listener` sent a PLI or FIR for its receive video m-line `mid`.
    pub(crate) fn keyframe_request(&mut self, listener: PeerId, mid: Mid, now: Instant) {
        if self.viewer_wants_keyframe(listener, now) {
            return;
        }
        let Some(l) = self.peers.get(&listener) else { return };
        if let Some(slot) = l.share_slots.iter().position(|m| *m == mid) {
            let source = self.rooms.get(&l.room).and_then(|r| r.room.slots(listener, Kind::Share).nth(slot).flatten());
            if let Some(source) = source {
                self.ask_share_keyframe(source, now);
            }
            return;
        }
        let Some(slot) = l.video_slots.iter().position(|m| *m == mid) else { return };
        let Some(r) = self.rooms.get_mut(&l.room) else { return };
        if r.room.mode().composites_video() {
            if let Some(v) = r.video.as_mut().filter(|_| slot == 0) {
                v.mixer.request_keyframe();
            }
            return;
        }
        let source = r.room.slots(listener, Kind::Video).nth(slot).flatten();
        if let Some(source) = source {
            self.ask_keyframe(source, now);
        }
    }

    /// ICE and DTLS came up: whatever the peer receives must start at a keyframe.
    pub(crate) fn on_connected(&mut self, peer: PeerId, now: Instant) {
        if self.viewer_wants_keyframe(peer, now) {
            return;
        }
        let Some(p) = self.peers.get(&peer) else { return };
        let Some(r) = self.rooms.get_mut(&p.room) else { return };
        if let Some(v) = &mut r.video {
            v.mixer.request_keyframe();
        }
        let sources: Vec<PeerId> = r.room.slots(peer, Kind::Video).flatten().collect();
        let shares: Vec<PeerId> = r.room.slots(peer, Kind::Share).flatten().collect();
        for source in sources {
            self.ask_keyframe(source, now);
        }
        for source in shares {
            self.ask_share_keyframe(source, now);
        }
    }
}

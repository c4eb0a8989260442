//! Audio fan-out, speaker events and slot updates: the engine's room-facing half. Video is in
//! `video`.

use std::sync::Arc;
use std::time::Instant;

use str0m::media::MediaData;
use str0m::rtp::ExtensionValues;

use crate::SlotInfo;
use crate::direct::{Copy, PtFrom};
use crate::engine::Engine;
use crate::room::Kind;
use crate::speaker::SpeakerEvent;
use crate::{PeerId, RoomId, SfuEvent};

impl Engine {
    /// Acts on what draining peers left: frames, keyframe requests, fresh connections.
    pub fn forward_pending(&mut self, now: Instant) {
        loop {
            if let Some((src, data)) = self.pending.media.pop_front() {
                if self.peers.get(&src).is_some_and(|p| p.ingest.is_some()) {
                    self.broadcast(src, data, now);
                } else if self.peers.get(&src).is_some_and(|p| p.camera == Some(data.mid)) {
                    self.camera_frame(src, data, now);
                } else if self.peers.get(&src).is_some_and(|p| p.share == Some(data.mid)) {
                    self.share_frame(src, data, now);
                } else {
                    self.forward(src, data, now);
                }
            } else if let Some((listener, mid)) = self.pending.keyframe_requests.pop() {
                self.keyframe_request(listener, mid, now);
            } else if let Some(peer) = self.pending.connected.pop() {
                self.on_connected(peer, now);
            } else {
                break;
            }
        }
    }

    /// One microphone frame of `src`: feed its level to the room, then either hand it to the
    /// room's mixer or write it into every slot that carries `src` (never back to `src`), with the
    /// slot's rebased timestamp and the sender's level.
    fn forward(&mut self, src: PeerId, d: MediaData, now: Instant) {
        let Some(p) = self.peers.get_mut(&src) else { return };
        p.counters.frames_in += 1;
        let room = p.room;
        let Some(r) = self.rooms.get_mut(&room) else { return };
        if r.room.is_muted(src) {
            p.counters.dropped_muted += 1;
            return;
        }
        // RFC 6464: -127..=0 dBov; a frame without the extension counts as silence.
        let level = d.ext_vals.audio_level.unwrap_or(-127).max(-127);
        let vad = d.ext_vals.voice_activity.unwrap_or(level.unsigned_abs() <= self.cfg.speaker.threshold);
        r.room.on_level(src, level.unsigned_abs(), now);
        if let Some(mix) = &mut r.audio {
            mix.push(src, **d.seq_range.start(), &d.data);
        }
        self.room_events(room);
        if self.rooms.get(&room).is_some_and(|r| r.room.is_dirty()) {
            self.reassign(room, None);
        }

        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        if let Some(r) = self.rooms.get_mut(&room).filter(|r| r.audio.is_none()) {
            r.room.targets(Kind::Audio, src, (d.time.numer(), d.time.denom(), true), now, &mut targets);
        }
        // When the datagram reached the socket: forwarding latency counts its wait there.
        let arrived = d.network_time.checked_sub(self.rx_wait).unwrap_or(d.network_time);
        // Shared by every copy (`direct`); the other extensions are str0m's per stream.
        let payload: Arc<[u8]> = d.data.clone();
        let exts = ExtensionValues {
            audio_level: Some(level),
            voice_activity: Some(vad),
            abs_capture_time: d.ext_vals.abs_capture_time,
            ..ExtensionValues::default()
        };
        for &(listener, slot, t) in &targets {
            let Some(l) = self.peers.get_mut(&listener) else { continue };
            // str0m drops writes before ICE connects; don't count those as forwarded.
            let Some(&mid) = l.slots.get(slot).filter(|_| l.connected) else { continue };
            let copy = Copy {
                pt: PtFrom::Source(d.params),
                time: t as u32,
                wallclock: d.network_time,
                exts: &exts,
                payloads: std::slice::from_ref(&payload),
                video: false,
            };
            match l.write_direct(mid, copy) {
                Ok(()) => {
                    l.counters.frames_out += 1;
                    self.copy_times.push(arrived);
                }
                Err(e) => {
                    tracing::trace!(parent: &l.span, error = ?e, "write failed");
                    l.counters.dropped_errors += 1;
                }
            }
            self.mark_dirty(listener);
        }
        self.targets = targets;
    }

    /// Speaker detector events of `room` → `Speaking` / `DominantSpeaker` (and the composite's
    /// border).
    pub fn room_events(&mut self, room: RoomId) {
        let Some(r) = self.rooms.get_mut(&room) else { return };
        let mut events = std::mem::take(&mut self.speaker_events);
        r.room.poll_speaker_events(&mut events);
        for e in events.drain(..) {
            tracing::debug!(parent: &r.span, event = ?e, "speaker");
            if let (SpeakerEvent::Dominant(peer), Some(v)) = (&e, &mut r.video) {
                v.mixer.set_dominant(*peer);
            }
            let _ = self.events.send(match e {
                SpeakerEvent::Started(peer) => SfuEvent::Speaking { room, peer, speaking: true },
                SpeakerEvent::Stopped(peer) => SfuEvent::Speaking { room, peer, speaking: false },
                SpeakerEvent::Dominant(peer) => SfuEvent::DominantSpeaker { room, peer },
            });
        }
        self.speaker_events = events;
    }

    /// After a join, leave, mute or camera change: speaker events, then a new assignment.
    /// `joined` gets its `Slots` even if unchanged.
    pub fn after_room_change(&mut self, room: RoomId, joined: Option<PeerId>) {
        self.room_events(room);
        self.reassign(room, joined);
    }

    /// Recomputes `room`'s slots, tells every listener whose slots changed, and asks the cameras
    /// that gained a listener for a keyframe.
    pub fn reassign(&mut self, room: RoomId, always: Option<PeerId>) {
        let Some(r) = self.rooms.get_mut(&room) else { return };
        let mut changed = std::mem::take(&mut self.changed);
        let mut keyframes = std::mem::take(&mut self.keyframes);
        changed.clear();
        keyframes.clear();
        r.room.assign(&mut changed, &mut keyframes);
        if let Some(p) = always.filter(|p| !changed.contains(p)) {
            changed.push(p);
        }
        for &listener in &changed {
            let Some(p) = self.peers.get(&listener) else { continue };
            let slot = |mid: &str, source, (video, share)| SlotInfo { mid: mid.to_string(), source, video, share };
            let audio =
                p.slots.iter().zip(r.room.slots(listener, Kind::Audio)).map(|(m, s)| slot(m, s, (false, false)));
            let video =
                p.video_slots.iter().zip(r.room.slots(listener, Kind::Video)).map(|(m, s)| slot(m, s, (true, false)));
            let share =
                p.share_slots.iter().zip(r.room.slots(listener, Kind::Share)).map(|(m, s)| slot(m, s, (true, true)));
            let slots: Vec<SlotInfo> = audio.chain(video).chain(share).collect();
            tracing::debug!(parent: &p.span, ?slots, "slots");
            let _ = self.events.send(SfuEvent::Slots { peer: listener, slots });
        }
        let shares = r.room.take_share_keyframes();
        let now = Instant::now();
        for &source in &keyframes {
            self.ask_keyframe(source, now);
        }
        for source in shares {
            self.ask_share_keyframe(source, now);
        }
        self.changed = changed;
        self.keyframes = keyframes;
    }
}

//! Video and the mixers: camera frames forwarded (`sfu` rooms) or handed to the room's
//! compositor; the composite and the audio mix written to every participant. Keyframe requests
//! are in `keyframes`.

use std::cmp::Reverse;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use str0m::Rtc;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaData, MediaTime, Mid, Pt};
use str0m::rtp::ExtensionValues;

use crate::direct::{Copy, PtFrom};
use crate::engine::{Engine, RoomVideo};
use crate::mixer::{VideoOut, VideoSink};
use crate::room::Kind;
use crate::{PeerId, RoomId, SfuEvent};

/// The payload type `rtc` negotiated for `codec` on `mid`.
fn pt_of(rtc: &mut Rtc, mid: Mid, codec: Codec) -> Option<Pt> {
    let w = rtc.writer(mid)?;
    w.payload_params().find(|p| p.spec().codec == codec).map(|p| p.pt())
}

impl Engine {
    /// One frame of `src`'s camera: forwarded to the slots that carry it, or composited.
    pub(crate) fn camera_frame(&mut self, src: PeerId, d: MediaData, now: Instant) {
        let Some(p) = self.peers.get_mut(&src) else { return };
        p.counters.video_frames_in += 1;
        let room = p.room;
        let Some(r) = self.rooms.get_mut(&room) else { return };
        if !r.room.has_camera(src) {
            return;
        }
        if r.room.mode().composites_video() {
            if let Some(v) = &mut r.video {
                v.mixer.push_vp8(src, d.data.clone(), d.is_keyframe(), d.contiguous);
            }
            return;
        }
        self.forward_video(Kind::Video, src, d, now);
    }

    /// One frame of `src`'s screen share: into every share slot that carries it, whatever the
    /// room's mode (a share is never composited: text would become unreadable).
    pub(crate) fn share_frame(&mut self, src: PeerId, d: MediaData, now: Instant) {
        let Some(p) = self.peers.get_mut(&src) else { return };
        p.counters.video_frames_in += 1;
        let Some(r) = self.rooms.get(&p.room) else { return };
        if r.room.is_sharing(src) {
            self.forward_video(Kind::Share, src, d, now);
        }
    }

    /// Writes a camera's (`sfu` rooms) or a share's frame into the slots that carry it.
    fn forward_video(&mut self, kind: Kind, src: PeerId, d: MediaData, now: Instant) {
        let Some(room) = self.peers.get(&src).map(|p| p.room) else { return };
        if !d.contiguous && !d.is_keyframe() {
            // Receivers will decode garbage until the next keyframe: ask now rather than wait for
            // each of them to notice.
            match kind {
                Kind::Share => self.ask_share_keyframe(src, now),
                _ => self.ask_keyframe(src, now),
            }
        }
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        if let Some(r) = self.rooms.get_mut(&room) {
            let key = d.is_keyframe();
            r.room.targets(kind, src, (d.time.numer(), d.time.denom(), key), now, &mut targets);
        }
        if targets.is_empty() {
            self.targets = targets;
            return;
        }
        // Packetised once; every copy shares the packets.
        let mut packets = std::mem::take(&mut self.packets);
        let packed = self.peers.get_mut(&src).map(|p| {
            let packed = p.packetizer.packetize(d.params.spec().codec, &d.data, &mut packets);
            if let Err(e) = &packed {
                tracing::debug!(parent: &p.span, error = ?e, "video frame not packetised");
                p.counters.dropped_errors += 1;
            }
            packed.is_ok()
        });
        if packed != Some(true) {
            (self.targets, self.packets) = (targets, packets);
            return;
        }
        let exts = ExtensionValues { abs_capture_time: d.ext_vals.abs_capture_time, ..ExtensionValues::default() };
        for &(listener, slot, t) in &targets {
            let Some(l) = self.peers.get_mut(&listener) else { continue };
            let mids = if kind == Kind::Share { &l.share_slots } else { &l.video_slots };
            let Some(&mid) = mids.get(slot).filter(|_| l.connected) else { continue };
            let copy = Copy {
                pt: PtFrom::Source(d.params),
                time: t as u32,
                wallclock: d.network_time,
                exts: &exts,
                payloads: &packets,
                video: true,
            };
            match l.write_direct(mid, copy) {
                Ok(()) => l.counters.video_frames_out += 1,
                Err(e) => {
                    tracing::trace!(parent: &l.span, error = ?e, "video write failed");
                    l.counters.dropped_errors += 1;
                }
            }
            self.mark_dirty(listener);
        }
        (self.targets, self.packets) = (targets, packets);
    }

    /// Share on or off: others' share slots follow, and new viewers get a keyframe.
    pub(crate) fn set_sharing(&mut self, peer: PeerId, on: bool, now: Instant) {
        let Some(p) = self.peers.get(&peer) else { return };
        let (room, can_share) = (p.room, p.share.is_some());
        let Some(r) = self.rooms.get_mut(&room) else { return };
        if !can_share || !r.room.set_sharing(peer, on) {
            return;
        }
        tracing::debug!(parent: &r.span, peer, on, "screen share");
        if on {
            self.ask_share_keyframe(peer, now);
        }
        self.after_room_change(room, None);
    }

    pub(crate) fn set_camera(&mut self, peer: PeerId, on: bool, now: Instant) {
        let Some(p) = self.peers.get(&peer) else { return };
        let (room, has_camera) = (p.room, p.camera.is_some());
        let Some(r) = self.rooms.get_mut(&room) else { return };
        if !has_camera || !r.room.set_camera(peer, on) {
            return;
        }
        tracing::debug!(parent: &r.span, peer, on, "camera");
        if let Some(v) = &mut r.video {
            v.mixer.set_camera(peer, on);
        }
        if on {
            self.start_video(room);
            self.ask_keyframe(peer, now);
        } else {
            self.stop_video_without_cameras(room);
        }
        self.after_room_change(room, None);
    }

    /// Starts `room`'s compositor if its mode wants one, a camera is on and it has none yet;
    /// every member gets a tile. A room whose video ended does not try again.
    pub(crate) fn start_video(&mut self, room: RoomId) {
        let Some(r) = self.rooms.get_mut(&room) else { return };
        if !r.room.mode().composites_video() || r.video.is_some() || r.video_ended || !r.room.any_camera() {
            return;
        }
        let Some(mixers) = self.mixers.clone() else {
            r.video_ended = true;
            let message = "this server has no video compositor".to_string();
            let _ = self.events.send(SfuEvent::VideoEnded { room, message });
            return;
        };
        self.next_generation += 1;
        let generation = self.next_generation;
        let (tx, dropped) = (self.video_tx.clone(), Arc::new(AtomicU64::new(0)));
        let lost = dropped.clone();
        let sink: VideoSink = Box::new(move |out| {
            if tx.try_send((room, generation, out)).is_err() {
                lost.fetch_add(1, Ordering::Relaxed);
            }
        });
        match mixers.video(room, sink) {
            Ok(mut mixer) => {
                tracing::info!(parent: &r.span, "video compositor started");
                for &m in r.room.members() {
                    if let Some(p) = self.peers.get(&m) {
                        mixer.add_source(m, &p.label);
                        if !r.room.has_camera(m) {
                            mixer.set_camera(m, false);
                        }
                    }
                }
                r.video = Some(RoomVideo { mixer, generation, dropped, seen_dropped: 0, time_offset: None });
            }
            Err(message) => {
                tracing::error!(parent: &r.span, "video compositor failed to start: {message}");
                r.video_ended = true;
                let _ = self.events.send(SfuEvent::VideoEnded { room, message });
            }
        }
    }

    /// Stops `room`'s compositor once no camera is on: a grid of placeholders cost an encoder
    /// (~0.035 core at 640x360@30) in every audio-only call whose clients offer a video slot.
    pub(crate) fn stop_video_without_cameras(&mut self, room: RoomId) {
        let Some(r) = self.rooms.get_mut(&room) else { return };
        if !r.room.any_camera() && r.video.take().is_some() {
            tracing::info!(parent: &r.span, "video compositor stopped: no camera is on");
        }
    }

    /// Output of `room`'s compositor.
    pub(crate) fn video_out(&mut self, room: RoomId, generation: u64, out: VideoOut, now: Instant) {
        let Some(r) = self.rooms.get_mut(&room) else { return };
        if r.video.as_ref().is_none_or(|v| v.generation != generation) {
            return; // a stopped compositor's last words
        }
        match out {
            VideoOut::Frame { data, keyframe, pts } => {
                r.mix.composite_frames += 1;
                r.mix.composite_keyframes += u64::from(keyframe);
                let pts = (pts.as_micros() * 9 / 100) as i64;
                let clock = r.composite_clock;
                let Some(v) = r.video.as_mut() else { return };
                let offset = *v.time_offset.get_or_insert_with(|| match clock {
                    Some((last, at)) => {
                        let paused = (now.saturating_duration_since(at).as_micros() * 9 / 100) as i64;
                        last as i64 + paused.max(1) - pts
                    }
                    None => 0,
                });
                let t = (pts + offset).max(0) as u64;
                r.composite_clock = Some((t, now));
                let time = MediaTime::new(t, Frequency::NINETY_KHZ);
                let members: Vec<PeerId> = r.room.members().to_vec();
                for m in members {
                    let Some(p) = self.peers.get_mut(&m) else { continue };
                    let Some(&mid) = p.video_slots.first().filter(|_| p.connected) else { continue };
                    // A receiver starts at a keyframe (one is forced when it connects).
                    if !p.composite_keyed && !keyframe {
                        continue;
                    }
                    p.composite_keyed = true;
                    let Some(pt) = pt_of(&mut p.rtc, mid, Codec::Vp8) else { continue };
                    match p.rtc.writer(mid).map(|w| w.write(pt, now, time, data.clone())) {
                        Some(Ok(())) => p.counters.video_frames_out += 1,
                        _ => p.counters.dropped_errors += 1,
                    }
                    self.mark_dirty(m);
                }
            }
            VideoOut::KeyframeNeeded(source) => self.ask_keyframe(source, now),
            VideoOut::Failed(message) => {
                tracing::error!(parent: &r.span, "video compositor failed: {message}");
                r.video = None;
                r.video_ended = true;
                let _ = self.events.send(SfuEvent::VideoEnded { room, message });
            }
        }
    }

    /// Composite output the engine could not take in time: receivers' decoders lost a reference.
    pub(crate) fn check_video_drops(&mut self) {
        for r in self.rooms.values_mut() {
            let Some(v) = &mut r.video else { continue };
            let dropped = v.dropped.load(Ordering::Relaxed);
            if dropped != v.seen_dropped {
                v.seen_dropped = dropped;
                v.mixer.request_keyframe();
                tracing::warn!(parent: &r.span, dropped, "composite frames dropped; forcing a keyframe");
            }
        }
    }

    /// Ticks the audio mixers that are due and writes each participant its mix.
    pub(crate) fn run_mixers(&mut self, now: Instant) {
        while let Some(&Reverse((due, room))) = self.mix_timers.peek() {
            if due > now {
                break;
            }
            self.mix_timers.pop();
            let Some(r) = self.rooms.get_mut(&room) else { continue };
            let deaf: Vec<PeerId> = r.room.members().iter().copied().filter(|p| r.room.is_deaf(*p)).collect();
            let Some(mix) = &mut r.audio else { continue };
            if mix.poll_timeout() != due {
                continue; // stale entry
            }
            let mut outputs = Vec::new();
            while let Some(mixed) = mix.tick(now) {
                outputs.push(mixed);
            }
            self.mix_timers.push(Reverse((mix.poll_timeout(), room)));
            r.mix.mix_ticks += outputs.len() as u64;
            for mixed in outputs {
                let time = MediaTime::new(mixed.frame * 960, Frequency::FORTY_EIGHT_KHZ);
                for (peer, packet) in mixed.packets {
                    if deaf.contains(&peer) {
                        continue;
                    }
                    let Some(p) = self.peers.get_mut(&peer) else { continue };
                    let Some(&mid) = p.slots.first().filter(|_| p.connected) else { continue };
                    let Some(pt) = pt_of(&mut p.rtc, mid, Codec::Opus) else { continue };
                    match p.rtc.writer(mid).map(|w| w.write(pt, now, time, packet)) {
                        Some(Ok(())) => p.counters.frames_out += 1,
                        _ => p.counters.dropped_errors += 1,
                    }
                    self.mark_dirty(peer);
                }
            }
        }
    }
}

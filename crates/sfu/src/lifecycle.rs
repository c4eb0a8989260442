//! Peer lifecycle: joining, leaving, timing out; periodic housekeeping; the stats snapshot.

use std::time::Instant;

use crate::engine::{Engine, MixCounters, RoomState};
use crate::ingest::INGEST_ROOM;
use crate::offer::Prepared;
use crate::peer::{Io, Peer};
use crate::room::{REASSIGN_INTERVAL, Room};
use crate::stats::{Counters, PeerStats, RoomStats, SfuStats};
use crate::{GoneReason, PeerId, PeerOptions, RoomId, SfuError, SfuEvent};

impl Engine {
    pub(crate) fn add(
        &mut self,
        room: RoomId,
        id: PeerId,
        p: Prepared,
        opts: PeerOptions,
        now: Instant,
    ) -> Result<(), SfuError> {
        if self.peers.contains_key(&id) {
            return Err(SfuError::DuplicatePeer);
        }
        if self.peers.len() >= self.cfg.max_peers {
            return Err(SfuError::Full);
        }
        if !self.rooms.contains_key(&room) {
            self.open_room(room, opts.mode, now)?;
        }
        if !self.router.add(id, p.ufrag.clone()) {
            return Err(SfuError::DuplicatePeer);
        }
        let Some(r) = self.rooms.get_mut(&room) else { return Err(SfuError::EngineGone) };
        let span = tracing::info_span!(parent: &r.span, "peer", peer = id);
        let (audio, video, camera) = (p.slots.len(), p.video_slots.len(), p.camera.is_some());
        let shares = p.share_slots.len();
        tracing::info!(parent: &span, audio, video, shares, camera, share = p.share.is_some(), "peer added");
        r.room.join_with_shares(id, (audio, video, shares), camera);
        if let Some(mix) = &mut r.audio
            && let Err(e) = mix.add(id)
        {
            r.room.leave(id, now);
            self.router.remove(id);
            tracing::warn!(parent: &r.span, "audio mix refused the peer: {e}");
            return Err(SfuError::Full);
        }
        let peer = Peer::new(id, room, p, opts.label, span, now);
        self.peers.insert(id, peer);
        // A composite runs while some camera is on (`start_video` checks the room): this one's.
        if camera {
            self.start_video(room);
        }
        if let Some(v) = self.rooms.get_mut(&room).and_then(|r| r.video.as_mut())
            && let Some(p) = self.peers.get(&id)
        {
            v.mixer.add_source(id, &p.label);
        }
        self.drain(id, now);
        self.after_room_change(room, Some(id));
        Ok(())
    }

    /// An ingest peer: in no room, its media to `sink`.
    pub(crate) fn add_ingest(
        &mut self,
        id: PeerId,
        p: Prepared,
        sink: crate::IngestSink,
        now: Instant,
    ) -> Result<(), SfuError> {
        if self.peers.contains_key(&id) {
            return Err(SfuError::DuplicatePeer);
        }
        if self.peers.len() >= self.cfg.max_peers {
            return Err(SfuError::Full);
        }
        if !self.router.add(id, p.ufrag.clone()) {
            return Err(SfuError::DuplicatePeer);
        }
        let span = tracing::info_span!("ingest", peer = id);
        tracing::info!(parent: &span, "ingest peer added");
        let mut peer = Peer::new(id, INGEST_ROOM, p, String::new(), span, now);
        peer.ingest = Some(sink);
        self.peers.insert(id, peer);
        self.drain(id, now);
        Ok(())
    }

    /// A new room: its mode, and the audio mixer if it mixes.
    fn open_room(&mut self, room: RoomId, mode: crate::MediaMode, now: Instant) -> Result<(), SfuError> {
        let span = tracing::info_span!("room", room, ?mode);
        let audio = match (mode.mixes_audio(), &self.mixers) {
            (false, _) => None,
            (true, None) => return Err(SfuError::NoMixer),
            (true, Some(m)) => match m.audio(room, now) {
                Ok(mix) => Some(mix),
                Err(e) => {
                    tracing::error!(parent: &span, "cannot start the audio mix: {e}");
                    return Err(SfuError::NoMixer);
                }
            },
        };
        if let Some(mix) = &audio {
            self.mix_timers.push(std::cmp::Reverse((mix.poll_timeout(), room)));
        }
        let room_state = Room::new(mode, self.cfg.last_n, self.cfg.speaker);
        let state = RoomState {
            room: room_state,
            departed: Counters::default(),
            span,
            video: None,
            video_ended: false,
            composite_clock: None,
            audio,
            mix: MixCounters::default(),
        };
        self.rooms.insert(room, state);
        Ok(())
    }

    /// Frees everything of `id`; `reason` is reported as `PeerGone` (None: explicit removal).
    pub(crate) fn remove(&mut self, id: PeerId, reason: Option<GoneReason>, now: Instant) {
        let Some(mut p) = self.peers.remove(&id) else { return };
        self.router.remove(id);
        self.drop_watching(id, p.source);
        tracing::info!(parent: &p.span, ?reason, "peer removed");
        if reason != Some(GoneReason::Timeout) {
            // Say goodbye (RTCP BYE, DTLS close_notify) to a client that can still hear it.
            let _ = p.rtc.close();
            let mut io = Io {
                outbox: &mut self.outbox,
                timers: &mut self.timers,
                events: &self.events,
                pending: &mut self.pending,
            };
            p.drain(&mut io, now);
        }
        match (reason, &p.ingest) {
            (Some(reason), Some(sink)) => sink(crate::IngestMedia::Gone(reason)),
            (Some(reason), None) => {
                let _ = self.events.send(SfuEvent::PeerGone { room: p.room, peer: id, reason });
            }
            (None, _) => {}
        }
        if let Some(r) = self.rooms.get_mut(&p.room) {
            r.room.leave(id, now);
            r.departed += p.counters;
            if let Some(mix) = &mut r.audio {
                mix.remove(id);
            }
            if let Some(v) = &mut r.video {
                v.mixer.remove_source(id);
            }
            if r.room.is_empty() {
                self.closed += crate::stats::Totals {
                    counters: r.departed,
                    composite_frames: r.mix.composite_frames,
                    mix_ticks: r.mix.mix_ticks,
                };
                // Mixers stop as they are dropped.
                self.rooms.remove(&p.room);
            } else {
                self.stop_video_without_cameras(p.room);
                self.after_room_change(p.room, None);
            }
        }
    }

    /// Drops the peers that died or went quiet.
    pub(crate) fn reap(&mut self, now: Instant) {
        while let Some((id, reason)) = self.gone.pop() {
            self.remove(id, Some(reason), now);
        }
    }

    pub(crate) fn housekeeping(&mut self, now: Instant) {
        let timeout = self.cfg.peer_timeout;
        let mut deferred = std::mem::take(&mut self.keyframes);
        deferred.clear();
        for p in self.peers.values() {
            if !p.connected && now.saturating_duration_since(p.added) >= timeout {
                // Nothing arrived, or ICE checks keep arriving but DTLS never completes.
                self.gone.push((p.id, GoneReason::Unreachable));
            } else if now.saturating_duration_since(p.last_rx) >= timeout {
                self.gone.push((p.id, GoneReason::Timeout));
            }
            if p.pli_deferred {
                deferred.push(p.id);
            }
            if p.share_pli_deferred {
                self.shares_deferred.push(p.id);
            }
        }
        self.check_video_drops();
        for &source in &deferred {
            self.ask_keyframe(source, now);
        }
        for source in std::mem::take(&mut self.shares_deferred) {
            self.ask_share_keyframe(source, now);
        }
        self.keyframes = deferred;
        let reassign = now >= self.next_assign;
        if reassign {
            self.next_assign = now + REASSIGN_INTERVAL;
        }
        let ids: Vec<RoomId> = self.rooms.keys().copied().collect();
        for room in ids {
            let Some(r) = self.rooms.get_mut(&room) else { continue };
            r.room.handle_timeout(now);
            self.room_events(room);
            if reassign {
                self.reassign(room, None);
            }
        }
    }

    pub(crate) fn stats(&self) -> SfuStats {
        let rtt_ms = |p: &Peer| p.rtt.map(|d| d.as_secs_f64() * 1000.0);
        let mut peers: Vec<PeerStats> = (self.peers.values())
            .map(|p| PeerStats {
                peer: p.id,
                room: p.room,
                connected: p.connected,
                muted: self.rooms.get(&p.room).is_some_and(|r| r.room.is_muted(p.id)),
                slots: p.slots.len(),
                video_slots: p.video_slots.len(),
                camera: self.rooms.get(&p.room).is_some_and(|r| r.room.has_camera(p.id)),
                counters: p.counters,
                rtt_ms: rtt_ms(p),
            })
            .collect();
        peers.sort_by_key(|p| p.peer);
        let mut rooms: Vec<RoomStats> = (self.rooms.iter())
            .map(|(&room, r)| {
                let mut counters = r.departed;
                for m in r.room.members() {
                    counters += self.peers.get(m).map(|p| p.counters).unwrap_or_default();
                }
                RoomStats {
                    room,
                    worker: 0,
                    mode: r.room.mode(),
                    peers: r.room.len(),
                    video: r.video.is_some(),
                    composite_frames: r.mix.composite_frames,
                    composite_keyframes: r.mix.composite_keyframes,
                    mix_ticks: r.mix.mix_ticks,
                    counters,
                }
            })
            .collect();
        rooms.sort_by_key(|r| r.room);
        let mut totals = self.closed;
        for r in &rooms {
            totals += crate::stats::Totals {
                counters: r.counters,
                composite_frames: r.composite_frames,
                mix_ticks: r.mix_ticks,
            };
        }
        let forward_latency = self.forward_latency.summary();
        SfuStats { peers, rooms, garbage_datagrams: self.garbage, totals, forward_latency }
    }
}

//! Peer lifecycle: joining, leaving, timing out; periodic housekeeping; the stats snapshot.

use std::time::Instant;

use crate::engine::{Engine, RoomState};
use crate::offer::Prepared;
use crate::peer::{Io, Peer};
use crate::room::{REASSIGN_INTERVAL, Room};
use crate::stats::{Counters, PeerStats, RoomStats, SfuStats};
use crate::{GoneReason, PeerId, RoomId, SfuError, SfuEvent};

impl Engine {
    pub(crate) fn add(&mut self, room: RoomId, id: PeerId, p: Prepared, now: Instant) -> Result<(), SfuError> {
        if self.peers.contains_key(&id) {
            return Err(SfuError::DuplicatePeer);
        }
        if self.peers.len() >= self.cfg.max_peers {
            return Err(SfuError::Full);
        }
        if !self.router.add(id, p.ufrag) {
            return Err(SfuError::DuplicatePeer);
        }
        let (last_n, speaker) = (self.cfg.last_n, self.cfg.speaker);
        let r = self.rooms.entry(room).or_insert_with(|| RoomState {
            room: Room::new(last_n, speaker),
            departed: Counters::default(),
            span: tracing::info_span!("room", room),
        });
        let span = tracing::info_span!(parent: &r.span, "peer", peer = id);
        tracing::info!(parent: &span, slots = p.slots.len(), "peer added");
        r.room.join(id, p.slots.len());
        let peer = Peer {
            id,
            room,
            rtc: p.rtc,
            mic: p.mic,
            slots: p.slots,
            added: now,
            last_rx: now,
            scheduled: None,
            connected: false,
            closed: false,
            counters: Counters::default(),
            rtt: None,
            span,
        };
        self.peers.insert(id, peer);
        self.drain(id, now);
        self.after_room_change(room, Some(id));
        Ok(())
    }

    /// Frees everything of `id`; `reason` is reported as `PeerGone` (None: explicit removal).
    pub(crate) fn remove(&mut self, id: PeerId, reason: Option<GoneReason>, now: Instant) {
        let Some(mut p) = self.peers.remove(&id) else { return };
        self.router.remove(id);
        tracing::info!(parent: &p.span, ?reason, "peer removed");
        if reason != Some(GoneReason::Timeout) {
            // Say goodbye (RTCP BYE, DTLS close_notify) to a client that can still hear it.
            let _ = p.rtc.close();
            let mut io =
                Io { socket: &self.socket, timers: &mut self.timers, events: &self.events, media: &mut self.media };
            p.drain(&mut io, now);
        }
        if let Some(reason) = reason {
            let _ = self.events.send(SfuEvent::PeerGone { room: p.room, peer: id, reason });
        }
        if let Some(r) = self.rooms.get_mut(&p.room) {
            r.room.leave(id, now);
            r.departed += p.counters;
            if r.room.is_empty() {
                self.rooms.remove(&p.room);
            } else {
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
        for p in self.peers.values() {
            if now.saturating_duration_since(p.last_rx) >= timeout {
                self.gone.push((p.id, GoneReason::Timeout));
            } else if !p.connected && now.saturating_duration_since(p.added) >= timeout {
                // ICE checks keep arriving but DTLS never completes.
                self.gone.push((p.id, GoneReason::Failed));
            }
        }
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
                RoomStats { room, peers: r.room.len(), counters }
            })
            .collect();
        rooms.sort_by_key(|r| r.room);
        SfuStats { peers, rooms, garbage_datagrams: self.garbage }
    }
}

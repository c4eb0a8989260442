//! Turning a media step's clients, server stats and process samples into its figures.

use std::collections::HashMap;

use serde_json::Value;

use super::media_run::Member;
use super::procstat::{ProcSample, figures};
use super::results::{Dist, MediaStep, ServerCounters, ServerLatency};
use crate::hist::Histogram;
use crate::pattern::match_switches;

/// Receive counters of every client, at one instant.
#[derive(Debug, Default)]
pub struct ClientTotals {
    audio_packets: u64,
    audio_lost: u64,
    video_packets: u64,
    video_lost: u64,
    /// (member, mid) → (packets, RTP frames), per video track.
    video_tracks: HashMap<(usize, String), (u64, u64)>,
}

impl ClientTotals {
    pub fn of(members: &[Member]) -> ClientTotals {
        let mut t = ClientTotals::default();
        for (i, m) in members.iter().enumerate() {
            for a in m.client.track_stats() {
                t.audio_packets += a.packets;
                t.audio_lost += a.lost;
            }
            for v in m.client.video_tracks() {
                t.video_packets += v.packets;
                t.video_lost += v.lost;
                t.video_tracks.insert((i, v.mid.unwrap_or_default()), (v.packets, v.rtp_frames));
            }
        }
        t
    }
}

fn pct(lost: u64, got: u64) -> f64 {
    if lost + got == 0 { 0.0 } else { 100.0 * lost as f64 / (lost + got) as f64 }
}

/// Sums a counter over `/voice/stats` rooms.
fn room_sum(stats: &Value, key: &str) -> u64 {
    stats["rooms"].as_array().map_or(0, |rooms| rooms.iter().filter_map(|r| r[key].as_u64()).sum())
}

fn counters(before: &Value, after: &Value) -> ServerCounters {
    let d = |k: &str| room_sum(after, k).saturating_sub(room_sum(before, k));
    ServerCounters {
        packets_in: d("packets_in"),
        bytes_in: d("bytes_in"),
        packets_out: d("packets_out"),
        bytes_out: d("bytes_out"),
        frames_in: d("frames_in"),
        frames_out: d("frames_out"),
        video_frames_in: d("video_frames_in"),
        video_frames_out: d("video_frames_out"),
        composite_frames: d("composite_frames"),
        mix_ticks: d("mix_ticks"),
        keyframe_requests_in: d("keyframe_requests_in"),
        dropped_errors: d("dropped_errors"),
        uplink_lost: d("uplink_lost"),
    }
}

/// The largest value (µs) of bucket `i` of `/voice/stats`' `forward_latency.counts`: exact below
/// 8 µs, then eight buckets per power of two (the layout the server documents).
fn bucket_upper_us(i: usize) -> u64 {
    if i < 8 {
        return i as u64;
    }
    let (power, sub) = (i / 8 + 2, (i % 8) as u64);
    ((8 + sub + 1) << (power - 3)) - 1
}

/// The server's forwarding latency over the window: the difference of its bucket counts between
/// the two snapshots; the server's own (since start) summary if it gives no counts.
pub(crate) fn forward_latency(before: &Value, after: &Value) -> Option<ServerLatency> {
    let f = after.get("forward_latency")?;
    let n = |k: &str| f.get(k).and_then(Value::as_u64);
    let counts = |v: &Value| -> Option<Vec<u64>> {
        v.get("forward_latency")?.get("counts")?.as_array()?.iter().map(Value::as_u64).collect()
    };
    let (Some(b), Some(a)) = (counts(before), counts(after)) else {
        let summary = (n("count")?, n("p50_us")?, n("p95_us")?, n("p99_us")?);
        let (count, p50_us, p95_us, p99_us) = summary;
        return Some(ServerLatency { count, p50_us, p95_us, p99_us, max_us: n("max_us").unwrap_or(0), window: false });
    };
    let delta: Vec<u64> =
        a.iter().zip(b.iter().chain(std::iter::repeat(&0))).map(|(x, y)| x.saturating_sub(*y)).collect();
    let count: u64 = delta.iter().sum();
    let pct = |q: f64| {
        let rank = ((q * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        delta
            .iter()
            .enumerate()
            .find(|(_, c)| {
                seen += **c;
                seen >= rank
            })
            .map_or(0, |(i, _)| bucket_upper_us(i))
    };
    let max_us = delta.iter().rposition(|c| *c > 0).map_or(0, bucket_upper_us);
    Some(ServerLatency { count, p50_us: pct(0.5), p95_us: pct(0.95), p99_us: pct(0.99), max_us, window: true })
}

pub fn collect(
    step: &mut MediaStep,
    members: &[Member],
    (before, after): (&ClientTotals, &ClientTotals),
    (stats_before, stats_after): (&Value, &Value),
    (server, client): (&[ProcSample], &[ProcSample]),
) {
    let secs = step.window_secs.max(1e-3);
    step.server = figures(server);
    step.client = figures(client);
    let c = counters(stats_before, stats_after);
    step.server_counters = c;
    step.egress_mbps = c.bytes_out as f64 * 8.0 / secs / 1e6;
    step.ingress_mbps = c.bytes_in as f64 * 8.0 / secs / 1e6;
    step.egress_per_client_kbps = step.egress_mbps * 1e3 / step.joined.max(1) as f64;
    step.packets_out_per_sec = c.packets_out as f64 / secs;
    step.packets_in_per_sec = c.packets_in as f64 / secs;
    let server_cpu_secs = step.server.cpu_cores_avg * secs;
    step.packets_out_per_core_sec = if server_cpu_secs > 0.0 { c.packets_out as f64 / server_cpu_secs } else { 0.0 };
    step.server_forward_latency = forward_latency(stats_before, stats_after);

    let audio_packets = after.audio_packets.saturating_sub(before.audio_packets);
    let video_packets = after.video_packets.saturating_sub(before.video_packets);
    step.audio_packets_per_sec = audio_packets as f64 / secs;
    step.video_packets_per_sec = video_packets as f64 / secs;
    step.audio_loss_pct = pct(after.audio_lost.saturating_sub(before.audio_lost), audio_packets);
    step.video_loss_pct = pct(after.video_lost.saturating_sub(before.video_lost), video_packets);
    let (mut frames, mut active) = (0u64, 0usize);
    for (key, (packets, f)) in &after.video_tracks {
        let (p0, f0) = before.video_tracks.get(key).copied().unwrap_or_default();
        if *packets > p0 {
            frames += f.saturating_sub(f0);
            active += 1;
        }
    }
    step.video_fps_per_track = if active == 0 { 0.0 } else { frames as f64 / secs / active as f64 };

    let (mut audio_lat, mut video_lat) = (Histogram::default(), Histogram::default());
    let (mut audio_jitter, mut video_jitter) = (Vec::new(), Vec::new());
    for m in members {
        for a in m.client.track_stats().iter().filter(|a| a.latency.count() > 0 || a.packets > 0) {
            audio_lat.merge(&a.latency);
            audio_jitter.push(a.jitter.as_secs_f64() * 1e3);
        }
        for v in m.client.video_tracks().iter().filter(|v| v.packets > 0) {
            video_lat.merge(&v.latency);
            video_jitter.push(v.jitter.as_secs_f64() * 1e3);
        }
    }
    let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    step.audio_jitter_ms = mean(&audio_jitter);
    step.video_jitter_ms = mean(&video_jitter);
    step.audio_latency = Dist::from(&audio_lat);
    step.video_latency = Dist::from(&video_lat);

    // Pattern latency: each decoder against its room's probe.
    let (mut audio_pat, mut video_pat) = (Histogram::default(), Histogram::default());
    for probe in members.iter().filter(|m| m.role.probe) {
        let tones = probe.client.send_control().switches.events();
        let colours = probe.client.camera_control().switches.events();
        for d in members.iter().filter(|m| m.room == probe.room && m.role.decoder && m.p != probe.p) {
            for lat in match_switches(&tones, &d.client.audio_listener().detections.events()) {
                audio_pat.record(lat);
            }
            for lat in match_switches(&colours, &d.client.video_listener().detections.events()) {
                video_pat.record(lat);
            }
        }
    }
    step.audio_pattern_latency = Dist::from(&audio_pat);
    step.video_pattern_latency = Dist::from(&video_pat);

    // Join time, for those who joined a room that already had a speaker.
    let [mut join, mut signaling, mut connect, mut media] = std::array::from_fn(|_| Histogram::default());
    for m in members.iter().filter(|m| m.p > 0) {
        let speaker = members.iter().any(|o| o.room == m.room && o.role.probe);
        let s = m.client.session();
        let first = m.client.audio_listener().first_decoded_at();
        if let (true, Some(first), Some(answered), Some(connected)) = (speaker, first, s.answered_at, s.connected_at) {
            join.record(first.saturating_duration_since(s.ws_opening_at));
            signaling.record(answered.saturating_duration_since(s.ws_opening_at));
            connect.record(connected.saturating_duration_since(answered));
            media.record(first.saturating_duration_since(connected));
        }
    }
    step.join = Dist::from(&join);
    step.join_signaling = Dist::from(&signaling);
    step.join_connect = Dist::from(&connect);
    step.join_media = Dist::from(&media);
}

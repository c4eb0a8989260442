//! The smoke run's checks: every figure that must be non-zero is, every participant joined, and
//! loss on loopback stays under 1%. Nothing here is about speed.

use super::results::RunReport;

const MAX_LOSS_PCT: f64 = 1.0;

/// What is wrong with `r`, one line each; empty when all is well.
pub fn check(r: &RunReport) -> Vec<String> {
    let mut bad = Vec::new();
    for b in &r.baseline {
        if b.packets == 0 {
            bad.push(format!("baseline {} B: no packet sent", b.packet_bytes));
        }
    }
    for s in &r.media {
        let at = format!("media {} {} P={}", s.sweep, s.mode, s.participants);
        let mut need = |ok: bool, what: &str| {
            if !ok {
                bad.push(format!("{at}: {what}"));
            }
        };
        need(s.joined == s.clients, &format!("{} of {} joined ({:?})", s.joined, s.clients, s.join_errors));
        need(s.server.cpu_cores_avg > 0.0 && s.server.rss_bytes > 0, "no server CPU or RSS sampled");
        need(s.client.cpu_cores_avg > 0.0, "no client CPU sampled");
        need(s.server_counters.packets_out > 0 && s.egress_mbps > 0.0, "the server sent nothing");
        if s.mic_publishers > 0 {
            need(s.audio_packets_per_sec > 0.0, "no audio received");
            need(s.audio_loss_pct < MAX_LOSS_PCT, &format!("audio loss {:.2}%", s.audio_loss_pct));
            need(s.join.count > 0, "no join time measured");
            need(s.audio_pattern_latency.count > 0, "no probe tone switch detected");
            if s.mode != "mcu" {
                need(s.audio_latency.count > 0, "no capture-time latency on forwarded audio");
            }
        }
        if s.camera_publishers > 0 {
            need(s.video_packets_per_sec > 0.0 && s.video_fps_per_track > 0.0, "no video received");
            need(s.video_loss_pct < MAX_LOSS_PCT, &format!("video loss {:.2}%", s.video_loss_pct));
            need(s.video_pattern_latency.count > 0, "no probe colour switch detected");
        }
    }
    for c in &r.chat {
        let at = format!("chat {} C={}", c.sweep, c.connections);
        let mut need = |ok: bool, what: &str| {
            if !ok {
                bad.push(format!("{at}: {what}"));
            }
        };
        need(
            c.connected == c.connections,
            &format!("{} of {} connected ({:?})", c.connected, c.connections, c.connect_errors),
        );
        need(c.rss_idle_bytes > 0, "no server RSS sampled");
        if c.messages_per_sec_target > 0.0 {
            need(
                c.messages_sent > 0 && c.send_errors == 0,
                &format!("{} sent, {} failed", c.messages_sent, c.send_errors),
            );
            need(c.deliveries > 0, "nothing delivered");
            need(c.delivery_ratio >= 0.99, &format!("{:.1}% delivered", 100.0 * c.delivery_ratio));
        }
    }
    for l in &r.live {
        if l.parts == 0 || l.renditions.is_empty() {
            bad.push(format!("live {}: {} parts watched, renditions {:?}", l.sweep, l.parts, l.renditions));
        }
    }
    for s in &r.spike {
        // A saturated box may time out a request now and then: one in a thousand is tolerated.
        let few = |errors: u64, rps: f64, secs: f64| errors as f64 <= 0.001 * rps * secs;
        let ok = s.admitted as usize == s.viewers
            && few(s.errors, s.requests_per_sec, s.window_secs)
            && s.requests_per_sec > 0.0
            && s.served.count > 0;
        // Stalls are the benchmark's finding, not a sanity matter: a debug build on a busy CI box has some.
        if !ok {
            bad.push(format!(
                "spike {}: {} of {} admitted, {} errors, {:.0} req/s, {} stalled",
                s.sweep, s.admitted, s.viewers, s.errors, s.requests_per_sec, s.stalled_viewers
            ));
        }
        if s.chat_messages > 0 && s.chat_deliveries == 0 {
            bad.push(format!("spike {}: {} chat messages, none delivered", s.sweep, s.chat_messages));
        }
        if let Some(n) = &s.nginx
            && (n.requests_per_sec <= 0.0 || !few(n.errors, n.requests_per_sec, n.window_secs))
        {
            bad.push(format!("spike {}: nginx {:.0} req/s, {} errors", s.sweep, n.requests_per_sec, n.errors));
        }
    }
    for w in &r.writes {
        if w.acked == 0 || w.failed > 0 {
            bad.push(format!(
                "writes {} {} ×{}: {} acked, {} failed {:?}",
                w.sweep, w.store, w.concurrency, w.acked, w.failed, w.errors
            ));
        }
    }
    bad
}

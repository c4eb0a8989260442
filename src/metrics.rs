//! What `/metrics` reads at each scrape from the parts the server is composed of. Components that
//! count on a hot path (the media engine: every packet) keep their own counters and are read here,
//! so a scrape costs one snapshot and forwarding never touches the metrics registry.

use crate::media::McuMixers;
use metrics::{counter, gauge};
use sfu::Sfu;
use std::sync::Arc;

/// The parts a scrape reads.
#[derive(Clone)]
pub struct Sources {
    pub app: chat::app::App,
    pub sfu: Sfu,
    pub mixers: Arc<McuMixers>,
    pub streams: Arc<live::hub::Streams>,
}

/// Builds the collector `telemetry::serve` runs before each render.
pub fn collector(s: Sources) -> telemetry::Collect {
    describe();
    Arc::new(move || {
        let s = s.clone();
        Box::pin(async move { collect(&s).await })
    })
}

async fn collect(s: &Sources) -> String {
    gauge!("confab_gateway_sessions").set(s.app.hub.session_count() as f64);
    let stats = s.sfu.stats().await;
    for mode in ["hybrid", "sfu", "mcu"] {
        let n = stats.rooms.iter().filter(|r| mode_name(r.mode) == mode).count();
        gauge!("confab_media_rooms", "mode" => mode).set(n as f64);
    }
    gauge!("confab_media_peers").set(stats.peers.len() as f64);
    gauge!("confab_media_peers_connected").set(stats.peers.iter().filter(|p| p.connected).count() as f64);
    gauge!("confab_mcu_pipelines").set(s.mixers.pipelines() as f64);
    let t = &stats.totals;
    let c = &t.counters;
    counter!("confab_media_packets_total", "direction" => "in").absolute(c.packets_in);
    counter!("confab_media_packets_total", "direction" => "out").absolute(c.packets_out);
    counter!("confab_media_bytes_total", "direction" => "in").absolute(c.bytes_in);
    counter!("confab_media_bytes_total", "direction" => "out").absolute(c.bytes_out);
    counter!("confab_media_audio_frames_total", "direction" => "in").absolute(c.frames_in);
    counter!("confab_media_audio_frames_total", "direction" => "out").absolute(c.frames_out);
    counter!("confab_media_video_frames_total", "direction" => "in").absolute(c.video_frames_in);
    counter!("confab_media_video_frames_total", "direction" => "out").absolute(c.video_frames_out);
    counter!("confab_media_dropped_total", "reason" => "muted").absolute(c.dropped_muted);
    counter!("confab_media_dropped_total", "reason" => "error").absolute(c.dropped_errors);
    counter!("confab_media_dropped_total", "reason" => "uplink_lost").absolute(c.uplink_lost);
    counter!("confab_media_dropped_total", "reason" => "unknown_sender").absolute(stats.garbage_datagrams);
    counter!("confab_media_keyframe_requests_total").absolute(c.keyframe_requests_in);
    counter!("confab_media_composite_frames_total").absolute(t.composite_frames);
    counter!("confab_media_mix_ticks_total").absolute(t.mix_ticks);

    let streams = s.streams.gauges();
    gauge!("confab_live_streams").set(streams.len() as f64);
    gauge!("confab_live_viewers").set(streams.iter().map(|g| g.viewers).sum::<u64>() as f64);
    let lag = streams.iter().filter_map(|g| g.lag_ms).max().unwrap_or(0);
    gauge!("confab_live_transcode_lag_seconds").set(f64::from(lag) / 1000.0);

    // The engine's own histogram (log-linear µs buckets), folded onto the recorder's buckets.
    let l = &stats.forward_latency;
    let mut buckets: Vec<(f64, u64)> = telemetry::recorder::SECONDS_BUCKETS.iter().map(|&le| (le, 0)).collect();
    let mut over = 0;
    for (i, &n) in l.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
        let upper = sfu::histogram::upper_bound_us(i) as f64 / 1e6;
        match buckets.iter_mut().find(|(le, _)| upper <= *le) {
            Some((_, count)) => *count += n,
            None => over += n,
        }
    }
    let mut out = String::new();
    telemetry::exposition::histogram(
        &mut out,
        "confab_media_forward_latency_seconds",
        "Forwarded audio, from the kernel queueing a packet to its copy leaving for a listener.",
        &buckets,
        l.sum_us as f64 / 1e6,
        over,
    );
    out
}

fn mode_name(m: sfu::MediaMode) -> &'static str {
    match m {
        sfu::MediaMode::Hybrid => "hybrid",
        sfu::MediaMode::Sfu => "sfu",
        sfu::MediaMode::Mcu => "mcu",
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("confab_gateway_connections", "Chat gateway WebSockets open.");
    describe_gauge!("confab_gateway_sessions", "Chat gateway sessions held (attached or in their resume window).");
    describe_counter!("confab_gateway_dispatches_total", "Events written to chat gateway sockets.");
    describe_counter!("confab_gateway_resumes_total", "RESUME attempts by outcome.");
    describe_counter!(
        "confab_gateway_closes_total",
        "Chat gateway sockets ended, by close code (peer: the client closed)."
    );
    describe_gauge!("confab_voice_connections", "Voice gateway WebSockets open.");
    describe_counter!("confab_voice_closes_total", "Voice gateway sockets ended, by close code.");
    describe_counter!("confab_messages_created_total", "Messages stored.");
    describe_histogram!("confab_store_write_seconds", Unit::Seconds, "Store writes by operation.");
    describe_gauge!("confab_media_rooms", "Media rooms by mode.");
    describe_gauge!("confab_media_peers", "Media peers (WebRTC connections).");
    describe_gauge!("confab_media_peers_connected", "Media peers with ICE and DTLS up.");
    describe_gauge!("confab_mcu_pipelines", "GStreamer video composite pipelines running.");
    describe_counter!("confab_media_packets_total", Unit::Count, "UDP datagrams of peers, by direction.");
    describe_counter!("confab_media_bytes_total", Unit::Bytes, "UDP bytes of peers, by direction.");
    describe_counter!("confab_media_audio_frames_total", "Audio frames received and forwarded or mixed.");
    describe_counter!("confab_media_video_frames_total", "Video frames received and forwarded or composited.");
    describe_counter!("confab_media_dropped_total", "Media dropped, by reason.");
    describe_counter!("confab_media_keyframe_requests_total", "Keyframe requests (PLI/FIR) from receivers.");
    describe_counter!("confab_media_composite_frames_total", "Video composite frames encoded.");
    describe_counter!("confab_media_mix_ticks_total", "Audio mix-minus ticks run.");
    describe_gauge!("confab_live_streams", "Live streams held (published, or ended and still served).");
    describe_gauge!("confab_live_viewers", "Live viewers (players beating).");
    describe_gauge!(
        "confab_live_transcode_lag_seconds",
        Unit::Seconds,
        "How far the slowest transcoded rendition trails its source (media time)."
    );
}

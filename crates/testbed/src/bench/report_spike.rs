//! The viewer spike's part of a report: its progress line and its section (confab against nginx).

use std::fmt::Write as _;

use super::findings::fmt;
use super::results::SpikeStep;

pub fn spike_line(s: &SpikeStep) -> String {
    let nginx = s
        .nginx
        .as_ref()
        .map_or(String::new(), |n| format!(", nginx {:.0} req/s per core ({:.2}x)", n.requests_per_core, n.ratio));
    format!(
        "spike {}: {}/{} viewers admitted ({:.0}/s), {:.0} req/s, {:.1} Mbit/s, parts p99 {} ms, {} stalled, server {:.2} cores ({:.2} idle), {:.0} req/s per added core{nginx}",
        s.sweep,
        s.admitted,
        s.viewers,
        s.admitted_per_sec,
        s.requests_per_sec,
        s.mbit_per_sec,
        fmt(s.served.p99_ms),
        s.stalled_viewers,
        s.server.cpu_cores_avg,
        s.idle_server.cpu_cores_avg,
        s.requests_per_core
    )
}

pub fn section(md: &mut String, s: &SpikeStep) {
    let _ = writeln!(
        md,
        "## Viewer spike `{}`: {} viewers in {:.0} s on {} ({})\n",
        s.sweep, s.viewers, s.ramp_secs, s.source, s.rendition
    );
    let _ = writeln!(md, "| | confab (LL-HLS) | nginx (recording, static) |\n|---|---:|---:|");
    let n = s.nginx.as_ref();
    let row = |md: &mut String, what: &str, a: String, b: Option<String>| {
        let _ = writeln!(md, "| {what} | {a} | {} |", b.unwrap_or_else(|| "—".into()));
    };
    row(
        md,
        "viewers admitted (first part)",
        format!("{} of {} ({:.0}/s)", s.admitted, s.viewers, s.admitted_per_sec),
        None,
    );
    row(md, "join (start → first part) p50 / p99", format!("{} / {} ms", fmt(s.join.p50_ms), fmt(s.join.p99_ms)), None);
    row(
        md,
        "requests/s (every viewer on)",
        format!("**{:.0}**", s.requests_per_sec),
        n.map(|n| format!("{:.0}", n.requests_per_sec)),
    );
    row(md, "served Mbit/s", format!("{:.1}", s.mbit_per_sec), n.map(|n| format!("{:.1}", n.mbit_per_sec)));
    row(
        md,
        "playlist/part served p50 / p99",
        format!("{} / {} ms", fmt(s.served.p50_ms), fmt(s.served.p99_ms)),
        n.map(|n| format!("{} / {} ms", fmt(n.served.p50_ms), fmt(n.served.p99_ms))),
    );
    row(
        md,
        "blocking reload (incl. the wait) p50 / p99",
        format!("{} / {} ms", fmt(s.blocked.p50_ms), fmt(s.blocked.p99_ms)),
        None,
    );
    row(md, "viewers that stalled", format!("{} ({} stalls)", s.stalled_viewers, s.stalls), None);
    row(md, "errors", s.errors.to_string(), n.map(|n| n.errors.to_string()));
    row(
        md,
        "server CPU avg / peak",
        format!(
            "{:.2} / {:.2} cores ({:.2} with nobody watching)",
            s.server.cpu_cores_avg, s.server.cpu_cores_peak, s.idle_server.cpu_cores_avg
        ),
        n.map(|n| format!("{:.2} / {:.2} cores", n.server.cpu_cores_avg, n.server.cpu_cores_peak)),
    );
    row(
        md,
        "server RSS",
        format!("{:.0} MiB", s.server.rss_bytes as f64 / 1048576.0),
        n.map(|n| format!("{:.0} MiB", n.server.rss_bytes as f64 / 1048576.0)),
    );
    row(
        md,
        "requests/s per core",
        format!("**{:.0}** (per core the viewers added)", s.requests_per_core),
        n.map(|n| format!("**{:.0}** → confab **{:.2}x**", n.requests_per_core, n.ratio)),
    );
    row(md, "the testbed's CPU", format!("{:.2} cores", s.client.cpu_cores_avg), None);
    row(
        md,
        "chat during the spike",
        format!(
            "{} messages, {} deliveries, p50 / p99 {} / {} ms",
            s.chat_messages,
            s.chat_deliveries,
            fmt(s.chat_delivery.p50_ms),
            fmt(s.chat_delivery.p99_ms)
        ),
        None,
    );
    let _ = writeln!(
        md,
        "\nconfab answers each viewer's blocking reload when the next part exists (LL-HLS); nginx cannot hold a \
         request, so its viewers poll the recording's playlist and fetch a part-sized byte range of the newest \
         segment once per part interval (the same number of requests and bytes). Requests per core: confab's over \
         the CPU the viewers added to the stream alone (ingest and ladder excluded), nginx's over its one process.\n"
    );
}

//! The cluster sweeps' part of a report: the progress line and a section per sweep (one column per
//! node count; the multi-node steps against the single process).

use std::fmt::Write as _;

use super::cluster_probes::spread;
use super::findings::fmt;
use super::results::ClusterStep;

pub fn cluster_line(c: &ClusterStep) -> String {
    format!(
        "cluster {} ×{}: {:.0} delivered/s, p99 {} ms, {:.2} + {:.2} (NATS) cores, {:.0} deliveries per core-second{}{}",
        c.sweep,
        c.nodes,
        c.delivered_per_sec,
        fmt(c.delivery.p99_ms),
        c.nodes_cores,
        c.nats_cores,
        c.deliveries_per_core_sec,
        if c.resumed + c.resume_failed + c.resume_invalid > 0 {
            format!(", resumed {} in p50 {} / p99 {} ms", c.resumed, fmt(c.resume.p50_ms), fmt(c.resume.p99_ms))
        } else {
            String::new()
        },
        if c.rooms_per_node.is_empty() { String::new() } else { format!(", rooms {}", spread(&c.rooms_per_node)) },
    )
}

pub fn section(md: &mut String, steps: &[&ClusterStep]) {
    let Some(first) = steps.first() else { return };
    let _ = writeln!(md, "## Cluster `{}`\n", first.sweep);
    let cols: Vec<String> =
        steps.iter().map(|c| format!("**{} node{}**", c.nodes, if c.nodes > 1 { "s" } else { "" })).collect();
    let _ = writeln!(md, "| | {} |", cols.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(steps.len()));
    let row = |md: &mut String, name: &str, f: &dyn Fn(&ClusterStep) -> String| {
        let cells: Vec<String> = steps.iter().map(|c| f(c)).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    };
    row(md, "gateway connections", &|c| c.connected.to_string());
    row(md, "messages posted", &|c| c.messages_sent.to_string());
    row(md, "delivered / expected", &|c| format!("{} / {}", c.deliveries, c.deliveries_expected));
    row(md, "deliveries/s", &|c| format!("{:.0}", c.delivered_per_sec));
    row(md, "delivery latency ms p50 / p99", &|c| format!("{} / {}", fmt(c.delivery.p50_ms), fmt(c.delivery.p99_ms)));
    row(md, "CPU, cores: nodes + NATS", &|c| format!("{:.2} + {:.2}", c.nodes_cores, c.nats_cores));
    row(md, "**deliveries per core-second**", &|c| format!("**{:.0}**", c.deliveries_per_core_sec));
    let base = steps.iter().find(|c| c.nodes == 1).map(|c| c.deliveries_per_core_sec);
    if let Some(base) = base.filter(|b| *b > 0.0) {
        row(md, "vs one node (goal ≥ 0.7×)", &|c| format!("{:.2}×", c.deliveries_per_core_sec / base));
    }
    if steps.iter().any(|c| c.resumed + c.resume_invalid + c.resume_failed > 0) {
        row(md, "kill -9: resumed / invalid / failed", &|c| {
            format!("{} / {} / {}", c.resumed, c.resume_invalid, c.resume_failed)
        });
        row(md, "kill → RESUMED ms p50 / p99", &|c| format!("{} / {}", fmt(c.resume.p50_ms), fmt(c.resume.p99_ms)));
    }
    if steps.iter().any(|c| !c.rooms_per_node.is_empty()) {
        row(md, "voice rooms placed per node", &|c| spread(&c.rooms_per_node));
    }
    if steps.iter().any(|c| c.edge_viewers > 0) {
        row(md, "LL-HLS edge: players", &|c| c.edge_viewers.to_string());
        row(md, "parts: distinct / requests / origin fetches", &|c| {
            format!("{} / {} / **{}**", c.edge_parts, c.edge_part_requests, c.edge_part_origin_fetches)
        });
        row(md, "blocking reloads: distinct / requests / origin fetches", &|c| {
            format!("{} / {} / **{}**", c.edge_reloads, c.edge_reload_requests, c.edge_reload_origin_fetches)
        });
    }
    md.push('\n');
    for c in steps.iter().filter(|c| !c.auth.is_empty()) {
        let _ = writeln!(md, "Authenticated `GET /api/users/@me`, closed loop, one node:\n");
        let _ = writeln!(
            md,
            "| login cache | requests/s | server cores | per core | p50 / p99 ms |\n|---|---:|---:|---:|---:|"
        );
        for a in &c.auth {
            let per_core = a.requests_per_sec / a.server_cores.max(1e-3);
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.2} | **{:.0}** | {} / {} |",
                if a.cache { "on" } else { "off" },
                a.requests_per_sec,
                a.server_cores,
                per_core,
                fmt(a.latency.p50_ms),
                fmt(a.latency.p99_ms)
            );
        }
        if let [on, off] = &c.auth[..] {
            let _ = writeln!(
                md,
                "\nWith the cache: **{:.2}×** the requests per second, {:.2}× per server core.\n",
                on.requests_per_sec / off.requests_per_sec.max(1e-3),
                (on.requests_per_sec / on.server_cores.max(1e-3))
                    / (off.requests_per_sec / off.server_cores.max(1e-3)).max(1e-3)
            );
        }
    }
    let errors: Vec<&String> = steps.iter().flat_map(|c| &c.errors).collect();
    if !errors.is_empty() {
        let _ = writeln!(md, "Errors: {errors:?}\n");
    }
}

//! What the numbers say, computed from a run so every report states it the same way: where hybrid
//! beats all-MCU and by how much, how the SFU's egress grows with room size, forwarding per core
//! against the raw baseline, and each of the targets, met or not (or not measured here).

use super::results::{MediaStep, RunReport};

pub struct Target {
    pub target: &'static str,
    pub measured: String,
    /// `None`: this run has no step that measures it.
    pub met: Option<bool>,
}

fn steps<'a>(r: &'a RunReport, mode: &'a str) -> impl Iterator<Item = &'a MediaStep> + 'a {
    r.media.iter().filter(move |s| s.mode == mode && s.joined > 0)
}

/// The step of `mode` in the same sweep, rooms and size as `s`.
fn twin<'a>(r: &'a RunReport, s: &MediaStep, mode: &'a str) -> Option<&'a MediaStep> {
    steps(r, mode).find(|t| t.sweep == s.sweep && t.participants == s.participants && t.rooms == s.rooms)
}

/// Least-squares slope of ln(y) over ln(x): the exponent k of y ∝ x^k.
fn exponent(points: &[(f64, f64)]) -> Option<f64> {
    let pts: Vec<(f64, f64)> =
        points.iter().filter(|(x, y)| *x > 0.0 && *y > 0.0).map(|(x, y)| (x.ln(), y.ln())).collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let var: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    (var > 0.0).then(|| pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / var)
}

/// The baseline's packets per core-second at the size closest to `bytes`.
fn baseline_at(r: &RunReport, bytes: f64) -> Option<(usize, f64)> {
    r.baseline
        .iter()
        .min_by(|a, b| (a.packet_bytes as f64 - bytes).abs().total_cmp(&(b.packet_bytes as f64 - bytes).abs()))
        .map(|b| (b.packet_bytes, b.packets_per_core_sec))
}

pub fn analyse(r: &RunReport) -> (Vec<String>, Vec<Target>) {
    let mut said = Vec::new();
    let mut targets = Vec::new();

    // Hybrid against all-MCU, with cameras.
    let mut best_9: Option<(f64, &MediaStep, &MediaStep)> = None;
    for h in steps(r, "hybrid").filter(|s| s.camera_publishers > 0) {
        if let Some(m) = twin(r, h, "mcu").filter(|m| m.server.cpu_cores_avg > 0.0) {
            let less = 1.0 - h.server.cpu_cores_avg / m.server.cpu_cores_avg;
            said.push(format!(
                "{} × {} with cameras: hybrid used {:.2} cores, all-MCU {:.2}: hybrid uses {:.0}% {} CPU \
                 (the mix-minus of all-MCU decodes and re-encodes every voice; hybrid forwards them).",
                h.rooms,
                h.participants,
                h.server.cpu_cores_avg,
                m.server.cpu_cores_avg,
                100.0 * less.abs(),
                if less >= 0.0 { "less" } else { "more" }
            ));
            if h.participants == 9 && h.rooms == 1 {
                best_9 = Some((less, h, m));
            }
        }
    }
    let with_cameras = r.media.iter().any(|s| s.camera_publishers > 0 && s.mode != "sfu");
    let hybrid_target = "hybrid ≥ 40% less server CPU than all-MCU, 9-person room with cameras";
    match best_9 {
        Some((less, _, _)) => targets.push(Target {
            target: hybrid_target,
            measured: format!("{:.0}% less", 100.0 * less),
            met: Some(less >= 0.4),
        }),
        None if with_cameras => targets.push(Target { target: hybrid_target, measured: "not run".into(), met: None }),
        None => {}
    }

    // SFU egress growth, per sweep with several sizes.
    let mut sweeps: Vec<&str> = steps(r, "sfu").map(|s| s.sweep.as_str()).collect();
    sweeps.dedup();
    for sweep in sweeps {
        let pts: Vec<(f64, f64)> =
            steps(r, "sfu").filter(|s| s.sweep == sweep).map(|s| (s.participants as f64, s.egress_mbps)).collect();
        if let Some(k) = exponent(&pts) {
            let list: Vec<String> = pts.iter().map(|(p, e)| format!("{p:.0}: {e:.1} Mbit/s")).collect();
            said.push(format!(
                "SFU egress in `{sweep}` grows as P^{k:.2} with participants per room ({}): each of P receivers \
                 gets up to P−1 cameras and the last-N voices, so it is quadratic in P.",
                list.join(", ")
            ));
        }
    }

    // MCU against SFU egress at the largest common size.
    let biggest = steps(r, "mcu").filter_map(|m| twin(r, m, "sfu").map(|s| (m, s))).max_by_key(|(m, _)| m.participants);
    if let Some((m, s)) = biggest {
        let ratio = m.egress_mbps / s.egress_mbps.max(1e-9);
        said.push(format!(
            "At {} participants, all-MCU egress is {:.1} Mbit/s against the SFU's {:.1}: {:.2}× (one mix and one \
             composite per receiver, whatever the room size).",
            m.participants, m.egress_mbps, s.egress_mbps, ratio
        ));
        targets.push(Target {
            target: "MCU egress ≤ 1/10 of SFU egress at 16 participants",
            measured: format!("{ratio:.2}× at {} participants", m.participants),
            met: (m.participants >= 16).then_some(ratio <= 0.1),
        });
    }

    // SFU forwarding per core, against the raw baseline.
    let fwd = steps(r, "sfu")
        .filter(|s| s.camera_publishers == 0)
        .max_by(|a, b| a.packets_out_per_core_sec.total_cmp(&b.packets_out_per_core_sec));
    if let Some(s) = fwd {
        let size = s.server_counters.bytes_out as f64 / s.server_counters.packets_out.max(1) as f64;
        let base = baseline_at(r, size);
        let ratio = base.map(|(_, b)| s.packets_out_per_core_sec / b);
        said.push(format!(
            "The SFU sent {:.0} packets/s ({:.0} B average) on {:.2} cores at {}×{} audio-only: {:.0} packets per \
             core-second{}. All server CPU is counted as forwarding, so this is a lower bound.",
            s.packets_out_per_sec,
            size,
            s.server.cpu_cores_avg,
            s.rooms,
            s.participants,
            s.packets_out_per_core_sec,
            match (base, ratio) {
                (Some((b, bps)), Some(q)) =>
                    format!(", {q:.2} of the raw sendto baseline ({bps:.0}/s per core at {b} B)"),
                _ => String::new(),
            }
        ));
        targets.push(Target {
            target: "SFU ≥ 200k forwarded audio packets/s per core, or ≥ 0.6 of raw sendto",
            measured: format!("{:.0}/s per core, {:.2} of baseline", s.packets_out_per_core_sec, ratio.unwrap_or(0.0)),
            met: Some(s.packets_out_per_core_sec >= 200_000.0 || ratio.is_some_and(|q| q >= 0.6)),
        });
    }
    // Forwarding latency where the most streams were forwarded.
    let streams = |s: &MediaStep| s.rooms * s.participants * s.participants.saturating_sub(1).min(5);
    if let Some(s) = steps(r, "sfu").filter(|s| s.camera_publishers == 0).max_by_key(|s| streams(s)) {
        let (streams, lat) = (streams(s), s.audio_latency.p99_ms);
        targets.push(Target {
            target: "added forwarding latency p99 < 1 ms at 1,000 streams",
            measured: match &s.server_forward_latency {
                Some(f) => format!(
                    "server: p50 {} µs, p99 {} µs over {} copies, at {streams} streams",
                    f.p50_us, f.p99_us, f.count
                ),
                None => format!("end-to-end p99 {} ms at {streams} streams (client stacks included)", fmt(lat)),
            },
            met: s.server_forward_latency.map(|f| f.p99_us < 1000).filter(|_| streams >= 1000),
        });
    }

    // The same path in isolation (criterion), where the load generator does not share the cores.
    if let Some((name, copies_per_sec, raw_per_sec)) = forward_micro(r) {
        let q = copies_per_sec / raw_per_sec;
        // The same listeners one packet per flush, as the engine runs below a backlog.
        let alone = name
            .rsplit_once("_x")
            .and_then(|(l, _)| forward_rate(r, &format!("{l}_x1")))
            .filter(|_| !name.ends_with("_x1"))
            .map(|per_sec| {
                format!(
                    " One packet per flush, as the engine sends below a backlog: {per_sec:.0}/s, {:.2}×.",
                    per_sec / raw_per_sec
                )
            })
            .unwrap_or_default();
        said.push(format!(
            "In isolation (criterion `{name}`: real str0m peers, SRTP decrypt, route, encrypt, sendmmsg), one \
             core forwards {copies_per_sec:.0} copies/s, {q:.2}× the raw sendto loop of the same bench run \
             ({raw_per_sec:.0}/s).{alone} End to end the figure is lower: each wake-up forwards few packets, \
             and the webrtc-rs clients share the two cores."
        ));
        targets.push(Target {
            target: "SFU forwarding path (criterion) ≥ 200k packets/s per core, or ≥ 0.6 of raw sendto",
            measured: format!("{copies_per_sec:.0}/s per core, {q:.2} of sendto ({name})"),
            met: Some(copies_per_sec >= 200_000.0 || q >= 0.6),
        });
    }

    // The composite's cost: hybrid 3x3 with cameras (audio forwarding included, an upper bound).
    if let Some(h) = steps(r, "hybrid").find(|s| s.participants == 9 && s.rooms == 1 && s.camera_publishers >= 9) {
        targets.push(Target {
            target: "3x3 composite costs ≤ 0.5 core",
            measured: format!("{:.2} cores for the whole hybrid room (composite + audio)", h.server.cpu_cores_avg),
            met: Some(h.server.cpu_cores_avg <= 0.5),
        });
    }

    // Join time.
    let join_p95 =
        r.media.iter().filter_map(|s| s.join.p95_ms).fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    if !r.media.is_empty() {
        targets.push(Target {
            target: "join → first remote audio p95 < 300 ms on loopback",
            measured: format!("worst step p95 {} ms", fmt(join_p95)),
            met: join_p95.map(|p| p < 300.0),
        });
    }

    // Chat.
    if let Some(c) = r.chat.iter().max_by_key(|c| c.connected) {
        let kb = c.rss_per_connection_bytes / 1024.0;
        let mut line = format!(
            "An idle gateway connection costs {kb:.1} KB of server memory at {} connections: 50,000 would take \
             about {:.0} MiB.",
            c.connected,
            c.rss_per_connection_bytes * 50_000.0 / (1024.0 * 1024.0)
        );
        if let Some(limit) = open_file_limit().filter(|&l| l < 50_000) {
            line.push_str(&format!(
                " This machine's open-file limit ({limit} per process, hard) keeps one run below 50,000 sockets."
            ));
        }
        said.push(line);
        targets.push(Target {
            target: "chat: 50k idle connections at ≤ 20 KB each",
            measured: format!("{} connections at {kb:.1} KB each", c.connected),
            met: (c.connected >= 50_000).then_some(c.rss_per_connection_bytes <= 20.0 * 1024.0),
        });
    }
    let posting = r.chat.iter().filter(|c| c.messages_per_sec_target > 0.0);
    if let Some(c) = posting.max_by(|a, b| a.delivered_per_sec.total_cmp(&b.delivered_per_sec)) {
        targets.push(Target {
            target: "chat fan-out ≥ 200k delivered messages/s, p99 < 50 ms",
            measured: format!(
                "{:.0}/s, p99 {} ms ({} connections)",
                c.delivered_per_sec,
                fmt(c.delivery.p99_ms),
                c.connected
            ),
            met: Some(c.delivered_per_sec >= 200_000.0 && c.delivery.p99_ms.is_some_and(|p| p < 50.0)),
        });
    }
    for s in &r.spike {
        let stall_share = s.stalled_viewers as f64 / s.viewers.max(1) as f64;
        targets.push(Target {
            target: "spike: ≥ 2,000 concurrent LL-HLS viewers on the 2-core box with < 1% stalls",
            measured: format!(
                "{} of {} admitted ({:.0}/s), {:.1}% stalled",
                s.admitted,
                s.viewers,
                s.admitted_per_sec,
                stall_share * 100.0
            ),
            met: (s.viewers >= 2000).then_some(s.admitted as usize >= 2000 && stall_share < 0.01),
        });
        if let Some(n) = &s.nginx {
            targets.push(Target {
                target: "spike: LL-HLS requests per core ≥ 0.8× nginx's (same run)",
                measured: format!(
                    "{:.0} against {:.0} req/s per core: {:.2}x",
                    s.requests_per_core, n.requests_per_core, n.ratio
                ),
                met: (s.viewers >= 2000).then_some(n.ratio >= 0.8),
            });
        }
    }
    for l in &r.live {
        let hd = l.source.starts_with("1920x1080");
        targets.push(Target {
            target: if hd {
                "live: the default ladder from a 1080p30 source ≤ 1.0 core"
            } else {
                "live: the server's CPU for ingest and ladder (no target)"
            },
            measured: format!("{:.2} cores ({}: {})", l.server.cpu_cores_avg, l.source, l.renditions.join(", ")),
            met: hd.then_some(l.server.cpu_cores_avg <= 1.0),
        });
        targets.push(Target {
            target: "live: publish → first playable playlist < 2 s",
            measured: format!("{:.2} s", l.first_playable_secs),
            met: Some(l.first_playable_secs < 2.0),
        });
        // A player starts three parts (PART-HOLD-BACK) behind the newest.
        let hold_back_ms = 1000.0;
        targets.push(Target {
            target: "live: glass-to-glass p50 < 2.5 s through LL-HLS",
            measured: format!("part latency p50 {} ms + the player's ~1 s hold-back", fmt(l.part_latency.p50_ms)),
            met: l.part_latency.p50_ms.map(|p| p + hold_back_ms < 2500.0),
        });
        if let Some(w) = &l.whep_latency {
            targets.push(Target {
                target: "live: glass-to-glass p50 < 500 ms over WHEP on loopback",
                measured: format!("frame captured → received p50 {} ms (+ the browser's decode)", fmt(w.p50_ms)),
                met: w.p50_ms.map(|p| p < 500.0),
            });
        }
    }
    for store in ["sqlite", "postgres"] {
        let best =
            r.writes.iter().filter(|w| w.store == store).max_by(|a, b| a.writes_per_sec.total_cmp(&b.writes_per_sec));
        if let Some(w) = best {
            targets.push(Target {
                target: if store == "sqlite" {
                    "durable message writes ≥ 5,000/s on SQLite"
                } else {
                    "durable message writes ≥ 5,000/s on Postgres (fsync on)"
                },
                measured: format!(
                    "{:.0}/s with {} posters, POST p99 {} ms, server {:.2} cores",
                    w.writes_per_sec,
                    w.concurrency,
                    fmt(w.post.p99_ms),
                    w.server.cpu_cores_avg
                ),
                met: Some(w.writes_per_sec >= 5000.0),
            });
        }
    }
    if let Some(c) = r.chat.iter().filter(|c| c.messages_per_sec_target == 0.0).max_by_key(|c| c.connected) {
        targets.push(Target {
            target: "chat: 5,000 identifies at once in < 5 s",
            measured: format!("{} identified in {:.2} s", c.connected, c.connect_secs),
            met: (c.connected >= 5000).then_some(c.connect_secs < 5.0),
        });
    }
    let saturated = r.media.iter().filter(|s| s.saturated).count() + r.chat.iter().filter(|c| c.saturated).count();
    if saturated > 0 {
        said.push(format!(
            "{saturated} step(s) saturated the machine (≥ 90% of its cores busy, see \"machine busy\"): their \
             figures are bounded by the box, not by confab alone."
        ));
    }
    // Many nodes: the bus's cost per delivery, resumes, placement, the login cache.
    for multi in r.cluster.iter().filter(|c| c.nodes > 1) {
        let Some(one) = r.cluster.iter().find(|c| c.sweep == multi.sweep && c.nodes == 1) else { continue };
        if one.deliveries_per_core_sec > 0.0 {
            let ratio = multi.deliveries_per_core_sec / one.deliveries_per_core_sec;
            said.push(format!(
                "`{}`: {} nodes on NATS deliver {:.0} messages per core-second of the nodes and NATS together, one node {:.0}: {ratio:.2}× (p99 {} ms against {} ms).",
                multi.sweep,
                multi.nodes,
                multi.deliveries_per_core_sec,
                one.deliveries_per_core_sec,
                fmt(multi.delivery.p99_ms),
                fmt(one.delivery.p99_ms)
            ));
            targets.push(Target {
                target: "cluster: N nodes ≥ 0.7× one node's deliveries per core-second",
                measured: format!("{ratio:.2}× ({})", multi.sweep),
                met: Some(ratio >= 0.7),
            });
        }
        if multi.resumed + multi.resume_invalid + multi.resume_failed > 0 {
            said.push(format!(
                "kill -9 of a node with {} clients: {} resumed on the others (p50 {} ms, p99 {} ms from the kill), {} refused, {} failed.",
                multi.resumed + multi.resume_invalid + multi.resume_failed,
                multi.resumed,
                fmt(multi.resume.p50_ms),
                fmt(multi.resume.p99_ms),
                multi.resume_invalid,
                multi.resume_failed
            ));
        }
        if multi.edge_parts > 0 {
            said.push(format!(
                "LL-HLS through an edge: {} players asked for {} distinct parts {} times; the edge fetched \
                 {} from the origin ({:.2} per part), and {} blocking reloads ({} requests) in {} origin requests.",
                multi.edge_viewers,
                multi.edge_parts,
                multi.edge_part_requests,
                multi.edge_part_origin_fetches,
                multi.edge_part_origin_fetches as f64 / multi.edge_parts as f64,
                multi.edge_reloads,
                multi.edge_reload_requests,
                multi.edge_reload_origin_fetches
            ));
        }
        if !multi.rooms_per_node.is_empty() {
            said.push(format!(
                "{} voice rooms placed over {} media nodes: {}.",
                multi.rooms_per_node.iter().sum::<usize>(),
                multi.rooms_per_node.len(),
                super::cluster_probes::spread(&multi.rooms_per_node)
            ));
        }
    }
    for c in &r.cluster {
        if let [on, off] = &c.auth[..]
            && off.requests_per_sec > 0.0
        {
            let gain = on.requests_per_sec / off.requests_per_sec;
            targets.push(Target {
                target: "authenticated requests ≥ 1.1× with the login cache",
                measured: format!(
                    "{gain:.2}× ({:.0} against {:.0} per second)",
                    on.requests_per_sec, off.requests_per_sec
                ),
                met: Some(gain >= 1.1),
            });
        }
    }
    (said, targets)
}

/// The best forwarding rate among the `sfu_forward/<L>_listeners_x<B>` benchmarks (L×B copies per
/// iteration) and the `raw_sendto` rate, both per second of one core.
fn forward_micro(r: &RunReport) -> Option<(String, f64, f64)> {
    let raw = r.criterion.iter().find(|c| c.benchmark == "sfu_forward/raw_sendto")?;
    let best = r
        .criterion
        .iter()
        .filter_map(|c| Some((c.benchmark.clone(), forward_rate(r, &c.benchmark)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    Some((best.0, best.1, 1e9 / raw.mean_ns.max(1.0)))
}

/// Copies per second of one `sfu_forward/<L>_listeners_x<B>` benchmark.
fn forward_rate(r: &RunReport, name: &str) -> Option<f64> {
    let c = r.criterion.iter().find(|c| c.benchmark == name)?;
    let (l, b) = name.strip_prefix("sfu_forward/")?.split_once("_listeners_x")?;
    Some(l.parse::<f64>().ok()? * b.parse::<f64>().ok()? * 1e9 / c.mean_ns.max(1.0))
}

/// The hard `Max open files` of this process, from `/proc/self/limits`.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(4)?.parse().ok()
}

pub fn fmt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.1}") })
}

#[cfg(test)]
mod tests {
    #[test]
    fn exponent_of_a_square() {
        let k = super::exponent(&[(4.0, 16.0), (9.0, 81.0), (16.0, 256.0)]).unwrap();
        assert!((k - 2.0).abs() < 1e-9);
        assert!(super::exponent(&[(4.0, 1.0)]).is_none());
    }

    #[test]
    fn the_forwarding_micro_benchmark_is_read_with_and_without_a_backlog() {
        use super::super::results::{Criterion, MediaStep, RunReport};
        let bench = |name: &str, mean_ns: f64| Criterion { benchmark: format!("sfu_forward/{name}"), mean_ns };
        let r = RunReport {
            media: vec![MediaStep::default()],
            criterion: vec![
                bench("9_listeners_x1", 45_000.0),
                bench("9_listeners_x4", 90_000.0),
                bench("raw_sendto", 3_000.0),
            ],
            ..RunReport::default()
        };
        let (name, best, raw) = super::forward_micro(&r).expect("read");
        assert_eq!(name, "sfu_forward/9_listeners_x4");
        assert!((best - 400_000.0).abs() < 1.0 && (raw - 333_333.3).abs() < 1.0, "{best} {raw}");
        let (said, targets) = super::analyse(&r);
        let line = said.iter().find(|l| l.contains("In isolation")).expect("said");
        assert!(line.contains("One packet per flush") && line.contains("200000/s, 0.60×"), "{line}");
        assert!(targets.iter().any(|t| t.target.contains("criterion") && t.met == Some(true)));
    }
}

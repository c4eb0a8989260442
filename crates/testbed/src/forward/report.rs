//! The Markdown (and JSON) of a `forward` run: confab and Janus side by side per step.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{ForwardRun, StepResult};

/// The CPU model, cores and commit, for the report's header.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']));
    let git = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output().ok();
    let commit = git.filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    format!(
        "{} × {}, kernel {}, commit {}",
        crate::bench::procstat::online_cpus(),
        model.unwrap_or("unknown CPU"),
        std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        commit.unwrap_or_else(|| "unknown".into())
    )
}

/// What makes the figures meaningless (empty when sane): a step that forwarded nothing, or
/// lost 1% or more.
pub fn sane(run: &ForwardRun) -> Vec<String> {
    let mut out = Vec::new();
    for s in &run.steps {
        if s.received == 0 || s.packets_per_core_sec <= 0.0 {
            out.push(format!("{} at {} rooms forwarded nothing", s.target, s.rooms));
        }
        if s.loss >= 0.01 {
            out.push(format!("{} at {} rooms lost {:.2}%", s.target, s.rooms, s.loss * 100.0));
        }
        if let Some(p) = s.probes
            && (p.packets == 0 || p.lost * 100 >= p.packets + p.lost)
        {
            out.push(format!("the webrtc-rs probes at {} rooms got {} packets, lost {}", s.rooms, p.packets, p.lost));
        }
    }
    out
}

fn row(out: &mut String, s: &StepResult, sendto: f64, read_sendto: f64) {
    let ratio = if sendto > 0.0 { s.packets_per_core_sec / sendto } else { 0.0 };
    let read_ratio = if read_sendto > 0.0 { s.packets_per_core_sec / read_sendto } else { 0.0 };
    // Mixed audio carries no stamp, and a mixing server counts no forwarding latency.
    let peer_latency = if s.latency_max_ms > 0.0 {
        format!("{:.2} / {:.2} / {:.1}", s.latency_p50_ms, s.latency_p99_ms, s.latency_max_ms)
    } else {
        "—".to_string()
    };
    let server_latency = s
        .server_latency
        .filter(|l| l.count > 0)
        .map_or("—".to_string(), |l| format!("{:.2} / {:.2}", l.p50_us as f64 / 1e3, l.p99_us as f64 / 1e3));
    let _ = writeln!(
        out,
        "| {} | {} | {} | {:.2} | {:.0} | {:.2}× | {:.2}× | {} | {} | {:.3}% | {:.1} → {:.1} | {:.0} | {:.2} |",
        s.target,
        s.rooms,
        s.streams,
        s.server_cores,
        s.packets_per_core_sec,
        ratio,
        read_ratio,
        peer_latency,
        server_latency,
        s.loss * 100.0,
        s.rss_idle_mib,
        s.rss_mib,
        s.rss_per_participant_kib,
        s.client_cores,
    );
}

pub fn render(run: &ForwardRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {} — {}\n", run.name, run.date);
    let _ = writeln!(out, "{}\n", run.description);
    let _ = writeln!(out, "- Command: `{}`", run.command);
    let _ = writeln!(out, "- Machine: {}", run.machine);
    if let Some(v) = &run.janus_version {
        let _ = writeln!(
            out,
            "- Janus: {v} (Debian), VideoRoom, generated configuration (ICE-lite, one event loop per core)"
        );
    }
    let _ = writeln!(
        out,
        "- Raw `sendto` of 140-byte datagrams, same run: **{:.0} packets per core-second** (to a socket \
         nobody reads); to 64 sockets read on the light peers' cores, from the server's, in batches of \
         50 a millisecond: **{:.0}** (\"read sendto\": each send also wakes its reader, as the server's do)\n",
        run.sendto_per_core_sec, run.read_sendto_per_core_sec
    );
    let _ = writeln!(
        out,
        "| server | rooms | streams | server cores | packets / core-s | × sendto | × read sendto | peer to peer p50 / p99 / max (ms) | in the server p50 / p99 (ms) | loss | RSS idle → loaded (MiB) | KiB / participant | light peers' cores |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &run.steps {
        row(&mut out, s, run.sendto_per_core_sec, run.read_sendto_per_core_sec);
    }
    let _ = writeln!(out, "\n## confab against Janus\n");
    let mut any = false;
    for c in run.steps.iter().filter(|s| s.target == "confab") {
        if let Some(j) = run.steps.iter().find(|s| s.target == "janus" && s.rooms == c.rooms) {
            any = true;
            if run.mode == "mcu" {
                let _ = writeln!(
                    out,
                    "- {} participants: confab's mixing took **{:.2} cores** against Janus AudioBridge's {:.2} \
                     ({:.2}×); loss {:.3}% against {:.3}%; RSS {:.0} against {:.0} MiB loaded.",
                    c.streams,
                    c.server_cores,
                    j.server_cores,
                    if c.server_cores > 0.0 { j.server_cores / c.server_cores } else { 0.0 },
                    c.loss * 100.0,
                    j.loss * 100.0,
                    c.rss_mib,
                    j.rss_mib
                );
                continue;
            }
            let per = if j.packets_per_core_sec > 0.0 { c.packets_per_core_sec / j.packets_per_core_sec } else { 0.0 };
            let _ = writeln!(
                out,
                "- {} streams: confab forwards **{per:.2}×** Janus's packets per server core-second \
                 ({:.0} against {:.0}); p99 {:.2} against {:.2} ms; {:.0} against {:.0} KiB per participant.",
                c.streams,
                c.packets_per_core_sec,
                j.packets_per_core_sec,
                c.latency_p99_ms,
                j.latency_p99_ms,
                c.rss_per_participant_kib,
                j.rss_per_participant_kib
            );
        }
    }
    if !any {
        let _ = writeln!(out, "(no step ran both servers)");
    }
    let probed: Vec<&StepResult> = run.steps.iter().filter(|s| s.probes.is_some()).collect();
    if !probed.is_empty() {
        let _ = writeln!(
            out,
            "\n## webrtc-rs probes\n\nTwo webrtc-rs clients in a room of their own on the same confab, each \
             decoding the other's tone, during the window (their 100 packets/s are in confab's CPU, not in \
             the packets counted above):\n"
        );
        let _ = writeln!(out, "| rooms | packets | lost | jitter (ms) | capture to arrival p50 / p99 (ms) |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for s in probed {
            if let Some(p) = s.probes {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.2} | {:.2} / {:.2} |",
                    s.rooms, p.packets, p.lost, p.jitter_ms, p.latency_p50_ms, p.latency_p99_ms
                );
            }
        }
    }
    let problems = sane(run);
    let _ = writeln!(out, "\n## Sanity\n");
    if problems.is_empty() {
        let _ = writeln!(out, "Every step forwarded and lost under 1%.");
    }
    for p in problems {
        let _ = writeln!(out, "- {p}");
    }
    out
}

/// Writes `<out>/<name>-<date>.md` and `.json`; returns the Markdown's path.
pub fn write(run: &ForwardRun, out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let stem = format!("{}-{}", run.name, crate::bench::report::today().0);
    let md = out.join(format!("{stem}.md"));
    std::fs::write(&md, render(run))?;
    std::fs::write(out.join(format!("{stem}.json")), serde_json::to_string_pretty(run)?)?;
    Ok(md)
}

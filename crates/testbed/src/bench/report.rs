//! The Markdown report, its JSON twin and plots: `<out>/<scenario>-<date>.{md,json}` and
//! `<out>/<scenario>-<date>-*.svg`. Media tables put the modes side by side, one table per room
//! size; the header says when, on what, how busy the machine was, and the exact command.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::findings::{analyse, fmt};
use super::plot;
use super::procstat::load_and_cpus;
use super::results::{ChatStep, Criterion, Environment, LiveStep, MediaStep, RunReport, WritesStep};
use super::scenario::Scenario;
use super::server::{Target, server_env};

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM UTC`) now.
pub(crate) fn today() -> (String, String) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    (format!("{y:04}-{m:02}-{d:02}"), format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", t / 3600, t % 3600 / 60))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn environment(command: &str, target: &Target, scenario: &Scenario) -> Environment {
    let (load, cpus) = load_and_cpus();
    let cpuinfo = read("/proc/cpuinfo");
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']));
    let mem_kb: f64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let git = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output().ok();
    Environment {
        date: today().1,
        command: command.to_string(),
        cpus,
        cpu_model: model.unwrap_or("unknown").to_string(),
        memory_gib: mem_kb / 1024.0 / 1024.0,
        load_avg_at_start: load,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        git_commit: git.filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()),
        server: target.describe(),
        server_env: match target {
            Target::Spawn { .. } => {
                let secret = |k: &str| k.ends_with("_TOKEN") || k.ends_with("_SECRET");
                server_env(&scenario.server)
                    .into_iter()
                    .filter(|(k, _)| k.starts_with("CONFAB_") && !secret(k))
                    .collect()
            }
            Target::Url { .. } => Vec::new(),
        },
        pinning: scenario.cpus.as_ref().map(|c| {
            let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
            let server = if matches!(target, Target::Spawn { .. }) { list(&c.server) } else { "any (given)".into() };
            format!("server on CPU {server}, the testbed (clients, baseline) on CPU {}", list(&c.clients))
        }),
    }
}

/// Criterion's mean estimates under `dir` (`<bench>/new/estimates.json`), if any were run.
pub fn criterion(dir: &Path) -> Vec<Criterion> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && p.file_name().is_some_and(|n| n != "report") {
                stack.push(p);
            } else if p.ends_with("new/estimates.json") {
                let v: Option<serde_json::Value> =
                    std::fs::read_to_string(&p).ok().and_then(|t| serde_json::from_str(&t).ok());
                let mean = v.as_ref().and_then(|v| v["mean"]["point_estimate"].as_f64());
                let name = p.parent().and_then(Path::parent).and_then(|b| b.strip_prefix(dir).ok());
                if let (Some(mean_ns), Some(name)) = (mean, name) {
                    out.push(Criterion { benchmark: name.display().to_string(), mean_ns });
                }
            }
        }
    }
    out.sort_by(|a, b| a.benchmark.cmp(&b.benchmark));
    out
}

pub fn step_line(s: &MediaStep) -> String {
    format!(
        "media {} {} {}x{}: joined {}/{}, server {:.2} cores, egress {:.1} Mbit/s, audio loss {:.2}%, join p95 {} ms",
        s.sweep,
        s.mode,
        s.rooms,
        s.participants,
        s.joined,
        s.clients,
        s.server.cpu_cores_avg,
        s.egress_mbps,
        s.audio_loss_pct,
        fmt(s.join.p95_ms)
    )
}

pub fn chat_line(c: &ChatStep) -> String {
    format!(
        "chat {} C={}: connected {}, {:.1} KB/conn, {:.0} delivered/s, p99 {} ms",
        c.sweep,
        c.connections,
        c.connected,
        c.rss_per_connection_bytes / 1024.0,
        c.delivered_per_sec,
        fmt(c.delivery.p99_ms)
    )
}

pub fn writes_line(w: &WritesStep) -> String {
    format!(
        "writes {} {} ×{}: {:.0} durable writes/s, POST p50 {} / p99 {} ms, server {:.2} cores, {} failed",
        w.sweep,
        w.store,
        w.concurrency,
        w.writes_per_sec,
        fmt(w.post.p50_ms),
        fmt(w.post.p99_ms),
        w.server.cpu_cores_avg,
        w.failed
    )
}

fn writes_table(md: &mut String, steps: &[&WritesStep]) {
    let _ = writeln!(
        md,
        "| store | posters | durable writes/s | POST p50 / p99 ms | server CPU avg / peak | testbed CPU | failed |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for w in steps {
        let _ = writeln!(
            md,
            "| {} | {} | **{:.0}** | {} / {} | {:.2} / {:.2} | {:.2} | {} |",
            w.store,
            w.concurrency,
            w.writes_per_sec,
            fmt(w.post.p50_ms),
            fmt(w.post.p99_ms),
            w.server.cpu_cores_avg,
            w.server.cpu_cores_peak,
            w.client.cpu_cores_avg,
            w.failed
        );
    }
    let errors: Vec<&String> = steps.iter().flat_map(|w| &w.errors).collect();
    if !errors.is_empty() {
        let _ = writeln!(
            md,
            "
Errors: {errors:?}"
        );
    }
}

pub use super::report_cluster::cluster_line;
pub use super::report_spike::spike_line;

pub fn live_line(l: &LiveStep) -> String {
    format!(
        "live {} {}: renditions {:?}, playable after {:.2} s, part latency p50 {} / p95 {} ms ({}), server {:.2} cores",
        l.sweep,
        l.source,
        l.renditions,
        l.first_playable_secs,
        fmt(l.part_latency.p50_ms),
        fmt(l.part_latency.p95_ms),
        l.watched,
        l.server.cpu_cores_avg
    )
}

fn mib(b: u64) -> String {
    format!("{:.0}", b as f64 / 1024.0 / 1024.0)
}

/// One media table: a row per figure, a column per mode, for one sweep and room size.
fn media_table(md: &mut String, steps: &[&MediaStep]) {
    let _ = writeln!(md, "| | {} |", steps.iter().map(|s| format!("**{}**", s.mode)).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(steps.len()));
    let row = |md: &mut String, name: &str, f: &dyn Fn(&MediaStep) -> String| {
        let cells: Vec<String> = steps.iter().map(|s| f(s)).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    };
    let lat = |d: &super::results::Dist| {
        if d.count == 0 { "–".into() } else { format!("{} / {} / {}", fmt(d.p50_ms), fmt(d.p95_ms), fmt(d.p99_ms)) }
    };
    row(md, "joined / clients", &|s| format!("{}/{}", s.joined, s.clients));
    row(md, "mics / cameras / decoders", &|s| {
        format!("{} / {} / {}", s.mic_publishers, s.camera_publishers, s.decoders)
    });
    row(md, "server CPU, cores (avg / peak)", &|s| {
        format!("{:.2} / {:.2}", s.server.cpu_cores_avg, s.server.cpu_cores_peak)
    });
    if steps.iter().any(|s| !s.server_cpu_runs.is_empty()) {
        row(md, "server CPU of each run, cores (this column: the median run)", &|s| {
            s.server_cpu_runs.iter().map(|c| format!("{c:.2}")).collect::<Vec<_>>().join(", ")
        });
    }
    row(md, "server RSS, MiB", &|s| mib(s.server.rss_bytes));
    row(md, "testbed CPU, cores", &|s| format!("{:.2}", s.client.cpu_cores_avg));
    row(md, "machine busy, cores (other processes)", &|s| {
        format!("{:.2} ({:.2}){}", s.machine_cores, s.other_cores, if s.saturated { " saturated" } else { "" })
    });
    row(md, "load average at the window's end", &|s| format!("{:.2}", s.load_avg));
    row(md, "server egress, Mbit/s", &|s| format!("{:.2}", s.egress_mbps));
    row(md, "server ingress, Mbit/s", &|s| format!("{:.2}", s.ingress_mbps));
    row(md, "egress per client, kbit/s", &|s| format!("{:.0}", s.egress_per_client_kbps));
    row(md, "packets out / in per s", &|s| format!("{:.0} / {:.0}", s.packets_out_per_sec, s.packets_in_per_sec));
    row(md, "packets out per server core-second", &|s| format!("{:.0}", s.packets_out_per_core_sec));
    row(md, "audio received, packets/s (all clients)", &|s| format!("{:.0}", s.audio_packets_per_sec));
    row(md, "audio loss %, jitter ms", &|s| format!("{:.2}, {:.2}", s.audio_loss_pct, s.audio_jitter_ms));
    row(md, "uplink audio loss % (server's receiver reports)", &|s| {
        let c = &s.server_counters;
        let lost = c.uplink_lost as f64;
        format!("{:.2}", if lost > 0.0 { 100.0 * lost / (lost + c.frames_in as f64) } else { 0.0 })
    });
    row(md, "video received, packets/s", &|s| format!("{:.0}", s.video_packets_per_sec));
    row(md, "video loss %, jitter ms", &|s| format!("{:.2}, {:.2}", s.video_loss_pct, s.video_jitter_ms));
    row(md, "video frames/s per track (composite or camera)", &|s| format!("{:.1}", s.video_fps_per_track));
    row(md, "composite frames / mix ticks (server)", &|s| {
        format!("{} / {}", s.server_counters.composite_frames, s.server_counters.mix_ticks)
    });
    row(md, "audio e2e latency, capture time, ms p50/p95/p99", &|s| lat(&s.audio_latency));
    row(md, "video e2e latency, capture time, ms p50/p95/p99", &|s| lat(&s.video_latency));
    row(md, "audio latency by tone switch, ms p50/p95/p99", &|s| lat(&s.audio_pattern_latency));
    row(md, "video latency by colour switch, ms p50/p95/p99", &|s| lat(&s.video_pattern_latency));
    row(md, "join → first audio decoded, ms p50/p95/p99", &|s| lat(&s.join));
    row(md, "join phases p50, ms: signaling / ICE+DTLS / first audio", &|s| {
        format!("{} / {} / {}", fmt(s.join_signaling.p50_ms), fmt(s.join_connect.p50_ms), fmt(s.join_media.p50_ms))
    });
    row(md, "server forwarding latency, µs p50/p95/p99", &|s| match s.server_forward_latency {
        Some(f) if f.count > 0 => {
            format!("{} / {} / {}{}", f.p50_us, f.p95_us, f.p99_us, if f.window { "" } else { " (since start)" })
        }
        _ => "–".into(),
    });
}

fn chat_table(md: &mut String, steps: &[&ChatStep]) {
    let _ = writeln!(
        md,
        "| | {} |",
        steps.iter().map(|c| format!("**C={}**", c.connections)).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(md, "|---|{}", "---:|".repeat(steps.len()));
    let row = |md: &mut String, name: &str, f: &dyn Fn(&ChatStep) -> String| {
        let cells: Vec<String> = steps.iter().map(|c| f(c)).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    };
    row(md, "connected (guilds, users)", &|c| format!("{} ({}, {})", c.connected, c.guilds, c.users));
    row(md, "connect time, s", &|c| format!("{:.1}", c.connect_secs));
    row(md, "server RSS before / idle, MiB", &|c| format!("{} / {}", mib(c.rss_before_bytes), mib(c.rss_idle_bytes)));
    row(md, "server RSS per idle connection, KB", &|c| format!("{:.1}", c.rss_per_connection_bytes / 1024.0));
    row(md, "idle server CPU, cores", &|c| format!("{:.3}", c.idle_server.cpu_cores_avg));
    row(md, "messages/s target / sent / failed", &|c| {
        format!("{} / {} / {}", c.messages_per_sec_target, c.messages_sent, c.send_errors)
    });
    row(md, "deliveries/s", &|c| format!("{:.0}", c.delivered_per_sec));
    row(md, "delivered / expected", &|c| {
        format!("{} / {} ({:.1}%)", c.deliveries, c.deliveries_expected, 100.0 * c.delivery_ratio)
    });
    row(md, "delivery latency ms p50 / p99", &|c| format!("{} / {}", fmt(c.delivery.p50_ms), fmt(c.delivery.p99_ms)));
    row(md, "POST latency ms p50 / p99", &|c| format!("{} / {}", fmt(c.post.p50_ms), fmt(c.post.p99_ms)));
    row(md, "server CPU (avg / peak), testbed CPU", &|c| {
        format!("{:.2} / {:.2}, {:.2}", c.server.cpu_cores_avg, c.server.cpu_cores_peak, c.client.cpu_cores_avg)
    });
    row(md, "machine busy, cores (other processes), load", &|c| {
        let saturated = if c.saturated { " saturated" } else { "" };
        format!("{:.2} ({:.2}){saturated}, {:.2}", c.machine_cores, c.other_cores, c.load_avg)
    });
    row(md, "closed by the server", &|c| c.closed_by_server.to_string());
}

/// Writes the report, its JSON and plots into `out`; returns the Markdown's path.
pub fn write(out: &Path, r: &RunReport) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let stem = format!("{}-{}", r.scenario, today().0);
    let json = serde_json::to_string_pretty(r).context("serialising the figures")?;
    std::fs::write(out.join(format!("{stem}.json")), json).context("writing the JSON")?;
    let plots = plot::draw(out, &stem, r).context("drawing the plots")?;

    let e = &r.environment;
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmark `{}` — {}\n\n{}\n", r.scenario, e.date, r.description.trim());
    let _ = writeln!(md, "- Command: `{}`", e.command);
    let _ = writeln!(md, "- Machine: {} × {}, {:.0} GiB, Linux {}", e.cpus, e.cpu_model, e.memory_gib, e.kernel);
    let _ = writeln!(
        md,
        "- Load average (1 min) at start: **{:.2}** on {} cores{}",
        e.load_avg_at_start,
        e.cpus,
        if e.load_avg_at_start > 0.5 { " — the machine was not idle; figures may be pessimistic" } else { "" }
    );
    let _ = writeln!(md, "- confab {}; server {}", e.git_commit.as_deref().unwrap_or("(no git)"), e.server);
    if !e.server_env.is_empty() {
        let env: Vec<String> = e.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(md, "- Server settings: `{}`", env.join(" "));
    }
    if let Some(pinning) = &e.pinning {
        let _ = writeln!(md, "- Cores kept apart: {pinning}");
    }
    let _ = writeln!(md, "- Raw figures: [{stem}.json]({stem}.json)\n");

    let (said, targets) = analyse(r);
    let _ = writeln!(md, "## What the numbers say\n");
    said.iter().for_each(|s| _ = writeln!(md, "- {s}"));
    let _ = writeln!(md, "\n| target | measured | met |\n|---|---|---|");
    for t in &targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(md, "| {} | {} | {met} |", t.target, t.measured);
    }

    let _ = writeln!(md, "\n## Raw baseline: one thread, UDP `sendto` on loopback\n");
    let _ =
        writeln!(md, "| packet | packets | wall s | thread CPU s | packets/s per core |\n|---:|---:|---:|---:|---:|");
    for b in &r.baseline {
        let _ = writeln!(
            md,
            "| {} B | {} | {:.2} | {:.2} | {:.0} |",
            b.packet_bytes, b.packets, b.wall_secs, b.cpu_secs, b.packets_per_core_sec
        );
    }

    let mut keys: Vec<(String, usize, usize)> =
        r.media.iter().map(|s| (s.sweep.clone(), s.rooms, s.participants)).collect();
    keys.dedup();
    if !keys.is_empty() {
        let _ = writeln!(md, "\n## Media\n");
    }
    for (sweep, rooms, p) in keys {
        let steps: Vec<&MediaStep> =
            r.media.iter().filter(|s| s.sweep == sweep && s.rooms == rooms && s.participants == p).collect();
        let _ =
            writeln!(md, "### `{sweep}`: {rooms} room(s) × {p} participants, {:.0} s window\n", steps[0].window_secs);
        media_table(&mut md, &steps);
        let errors: Vec<&String> = steps.iter().flat_map(|s| &s.join_errors).collect();
        if !errors.is_empty() {
            let _ = writeln!(md, "\nJoin errors: {errors:?}");
        }
        md.push('\n');
    }
    for (title, file) in &plots {
        let _ = writeln!(md, "![{title}]({file})\n");
    }
    let mut sweeps: Vec<&str> = r.chat.iter().map(|c| c.sweep.as_str()).collect();
    sweeps.dedup();
    for sweep in sweeps {
        let steps: Vec<&ChatStep> = r.chat.iter().filter(|c| c.sweep == sweep).collect();
        let _ = writeln!(md, "## Chat `{sweep}`\n");
        chat_table(&mut md, &steps);
        md.push('\n');
    }
    let mut sweeps: Vec<&str> = r.writes.iter().map(|w| w.sweep.as_str()).collect();
    sweeps.dedup();
    for sweep in sweeps {
        let steps: Vec<&WritesStep> = r.writes.iter().filter(|w| w.sweep == sweep).collect();
        let _ = writeln!(
            md,
            "## Durable writes `{sweep}`, {:.0} s each
",
            steps[0].window_secs
        );
        writes_table(&mut md, &steps);
        md.push('\n');
    }
    for l in &r.live {
        let _ = writeln!(md, "## Live `{}`: {} published\n", l.sweep, l.source);
        let _ = writeln!(md, "| | |\n|---|---:|");
        let _ = writeln!(md, "| renditions offered | {} |", l.renditions.join(", "));
        let _ = writeln!(md, "| publish → playable master playlist | **{:.2} s** |", l.first_playable_secs);
        let _ = writeln!(md, "| publish → every rendition listed | {:.2} s |", l.all_renditions_secs);
        let _ = writeln!(
            md,
            "| part latency ({}, {} parts) p50 / p95 / max | **{} / {} / {} ms** |",
            l.watched,
            l.parts,
            fmt(l.part_latency.p50_ms),
            fmt(l.part_latency.p95_ms),
            fmt(l.part_latency.max_ms)
        );
        if let Some(w) = &l.whep_latency {
            let _ = writeln!(
                md,
                "| WHEP viewer: frame captured → received p50 / p95 / max ({} frames) | **{} / {} / {} ms** |",
                w.count,
                fmt(w.p50_ms),
                fmt(w.p95_ms),
                fmt(w.max_ms)
            );
        }
        let _ = writeln!(
            md,
            "| server CPU (ingest, ladder, packaging) avg / peak | **{:.2} / {:.2} cores** |\n",
            l.server.cpu_cores_avg, l.server.cpu_cores_peak
        );
    }
    for s in &r.spike {
        super::report_spike::section(&mut md, s);
    }
    let mut sweeps: Vec<&str> = r.cluster.iter().map(|c| c.sweep.as_str()).collect();
    sweeps.dedup();
    for sweep in sweeps {
        let steps: Vec<_> = r.cluster.iter().filter(|c| c.sweep == sweep).collect();
        super::report_cluster::section(&mut md, &steps);
    }
    if !r.criterion.is_empty() {
        let _ = writeln!(
            md,
            "## Micro-benchmarks (criterion, from `target/criterion`)\n\n| benchmark | mean |\n|---|---:|"
        );
        for c in &r.criterion {
            let _ = writeln!(md, "| {} | {:.3} µs |", c.benchmark, c.mean_ns / 1000.0);
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## How it was measured\n\n{}", METHOD.trim());
    if !r.sanity_failures.is_empty() {
        let _ = writeln!(md, "\n## Sanity check FAILED\n");
        r.sanity_failures.iter().for_each(|f| _ = writeln!(md, "- {f}"));
    }
    let path = out.join(format!("{stem}.md"));
    std::fs::write(&path, md).context("writing the report")?;
    Ok(path)
}

const METHOD: &str = "
- Each step runs on a freshly started `confab serve` (same binary, separate process); its CPU is
  utime+stime from `/proc/<pid>/stat` and its RSS `VmRSS`, sampled every 250 ms over the
  measurement window (after joins and a warm-up). The testbed (every synthetic client, one process)
  is sampled the same way: both share the machine, so a saturated box bounds what is measured.
- Clients are webrtc-rs peers sending real Opus (a pre-encoded second of each tone, replayed) and
  VP8 (libvpx, solid colours with a band of noise; a pre-encoded keyframe interval of each camera,
  replayed, except the probe's, which is encoded live); most only count what they receive (packets, RFC 3550 jitter, loss
  from sequence gaps); the last participant(s) of each room decode everything.
- Server egress and ingress come from `/voice/stats` (UDP datagrams and bytes per peer, summed).
- End-to-end latency by capture time: every frame carries `abs-capture-time`, which confab
  forwards untouched (sfu and hybrid audio, sfu cameras); receivers on the same clock compute
  now − capture, including both webrtc-rs stacks. Mixed audio and the composite are re-encoded, so
  their latency is measured by pattern: each room's first participant switches tone
  (700 ↔ 1100 Hz) and camera colour (red ↔ blue) every second; decoding receivers log when the
  new tone dominates a 20 ms frame (Goertzel) or the new colour appears in a decoded picture
  (resolution: one frame).
- Join time: from opening the voice WebSocket to the first remote audio frame decoded, for
  participants joining a room that already has a speaker (the first of each room joins first).
  The clients pace ICE checks every 20 ms, as browsers do (~50 ms, the first at once), not at
  webrtc-rs' default 200 ms, whose wait before the first check would add ~400 ms to every join.
- Raw baseline: one thread sending UDP datagrams of each size to a loopback socket nobody reads,
  packets per second of that thread's CPU time; the SFU's figure counts all server CPU as
  forwarding.
- Chat: connections spread over guilds and users (one user may hold several sockets); server
  memory per connection is the RSS difference after connecting and idling; each message carries
  its send time and every connection of the guild measures its MESSAGE_CREATE delivery.
- Live: ffmpeg (`-re`, x264 ultrafast) publishes a test picture and tone over RTMP to a live
  channel; the testbed waits for a playable master playlist, then follows the top transcoded
  rendition like an LL-HLS player (a blocking playlist reload for the next part, then the part).
  A part's latency is its arrival minus the capture time of its first frame (publisher start +
  the frame's RTMP timestamp, which confab keeps as media time); a player holds back three parts
  (~1 s) more. Server CPU is sampled while it transcodes the whole ladder.
- Viewer spikes: the source is encoded ahead and published with `-c copy` (`-re`), so the
  publisher costs the shared box next to nothing; each light viewer holds one keep-alive HTTP/1.1
  connection, fetches the master and variant playlists, the init segment and the last three
  parts (its hold-back, ~1 s of play-out buffer), then per part a blocking reload asking for a
  delta update and the part; a stall is a part arriving after its buffer ran dry (the player then
  rebuffers its hold-back). nginx's crowd polls the recording's playlist and fetches a part-sized
  range of the newest segment per part interval.
- Durable writes: each poster is its own user of one guild and posts to its text channel again
  as soon as the last post was answered; confab answers 201 only after the message is committed
  (SQLite `synchronous = FULL`; Postgres as configured: fsync on for these figures), so 201s per
  second are durable writes per second. Each step starts on a fresh server and database.
";

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(20_454), (2026, 1, 1));
        assert_eq!(super::civil(11_016), (2000, 2, 29));
    }
}

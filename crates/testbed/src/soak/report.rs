//! What a soak shows, against its goals: RSS after warm-up drifting under 5%; descriptors, peers,
//! rooms and pipelines back at their baseline once the load stops; no error-level log line or
//! panic that is not explained. Written as `results/soak-<date>.md`, SVG plots and the JSON.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::Result;
use plotters::style::RGBColor;
use serde::Serialize;

use super::SoakArgs;
use super::load::Counters;
use super::sample::Sample;
use crate::bench::plot::{Series, lines};

/// RSS may drift this much (share) between the start and the end of the loaded part after warm-up.
const RSS_DRIFT_GOAL: f64 = 0.05;

#[derive(Debug, Serialize)]
pub struct Soak {
    pub command: String,
    pub minutes: f64,
    pub warmup_minutes: f64,
    pub load_ended_at: f64,
    pub baseline: Sample,
    pub end: Sample,
    /// Mean RSS (MiB) in the first and the last window of the loaded run after warm-up.
    pub rss_early: f64,
    pub rss_late: f64,
    pub rss_drift: f64,
    /// (name, baseline, after the cool-down) of what must come back.
    pub returns: Vec<(String, f64, f64)>,
    pub load: String,
    pub failures: u64,
    /// The first client-side failures: seconds into the load, what failed.
    pub failed: Vec<(f64, String)>,
    pub errors: Vec<String>,
    /// Warning lines of the server's log: how many, and the first ones.
    pub warnings: usize,
    pub first_warnings: Vec<String>,
    pub panics: usize,
    pub samples: Vec<Sample>,
}

impl Soak {
    pub fn analyse(
        a: &SoakArgs,
        samples: Vec<Sample>,
        baseline: Sample,
        load_ended_at: f64,
        c: &Counters,
        log: &str,
    ) -> Soak {
        let start = samples.iter().find(|s| s.at >= baseline.at).map_or(baseline.at, |s| s.at);
        let warm = start + a.warmup_minutes * 60.0;
        let loaded: Vec<&Sample> = samples.iter().filter(|s| s.at >= warm && s.at <= load_ended_at).collect();
        // Windows of a fifth of the loaded part after warm-up, at most two minutes.
        let window = ((load_ended_at - warm) / 5.0).clamp(5.0, 120.0);
        let mean = |from: f64, to: f64| {
            let v: Vec<f64> = loaded.iter().filter(|s| s.at >= from && s.at <= to).map(|s| s.rss_mib).collect();
            if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
        };
        let (rss_early, rss_late) = (mean(warm, warm + window), mean(load_ended_at - window, load_ended_at));
        let rss_drift = if rss_early > 0.0 { (rss_late - rss_early) / rss_early } else { 0.0 };
        let end = samples.last().cloned().unwrap_or_default();
        let returns = vec![
            ("open fds".to_string(), baseline.fds, end.fds),
            ("media peers".into(), baseline.peers, end.peers),
            ("media rooms".into(), baseline.rooms, end.rooms),
            ("composite pipelines".into(), baseline.pipelines, end.pipelines),
            ("chat gateway sockets".into(), baseline.gateway_connections, end.gateway_connections),
            ("voice gateway sockets".into(), baseline.voice_connections, end.voice_connections),
            ("live viewers".into(), baseline.viewers, end.viewers),
            ("threads".into(), baseline.threads, end.threads),
        ];
        let errors: Vec<String> = (log.lines())
            .filter(|l| l.contains(" ERROR ") || l.contains("\"level\":\"ERROR\""))
            .map(|l| l.chars().take(300).collect())
            .collect();
        let panics = log.lines().filter(|l| l.contains("panicked")).count();
        let warns: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
        let first_warnings = warns.iter().take(10).map(|l| l.chars().take(300).collect()).collect();
        Soak {
            command: a.command.clone(),
            minutes: a.minutes,
            warmup_minutes: a.warmup_minutes,
            load_ended_at,
            baseline,
            end,
            rss_early,
            rss_late,
            rss_drift,
            returns,
            load: c.summary(),
            failures: c.failures.load(Ordering::Relaxed),
            failed: c.failed.lock().map(|f| f.clone()).unwrap_or_default(),
            errors,
            warnings: warns.len(),
            first_warnings,
            panics,
            samples,
        }
    }

    /// Whether the counts that must come back did (threads are reported, not judged: the
    /// runtime's blocking pool keeps idle threads a while).
    fn returned(&self) -> bool {
        self.returns.iter().filter(|(n, _, _)| n != "threads").all(|(_, b, e)| e <= b)
    }

    pub fn passed(&self) -> bool {
        self.rss_drift.abs() < RSS_DRIFT_GOAL && self.returned() && self.panics == 0 && self.errors.is_empty()
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

pub fn write(out: &Path, s: &Soak) -> Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let stem = format!("soak-{}", crate::bench::report::today().0);
    std::fs::write(out.join(format!("{stem}.json")), serde_json::to_string_pretty(s)?)?;
    let plots = draw(out, &stem, s)?;
    let mut md = String::new();
    let _ = writeln!(md, "# Soak: {} minutes of chat, voice churn and a live stream\n", s.minutes);
    let _ = writeln!(md, "Command: `{}`\n", s.command);
    let _ = writeln!(md, "Load (what the clients did): {}.\n", s.load);
    let _ = writeln!(md, "## Goals\n");
    let _ = writeln!(md, "| goal | figure | verdict |\n|---|---|---|");
    let _ = writeln!(
        md,
        "| RSS after {} min warm-up drifts < 5% | {:.1} → {:.1} MiB ({:+.1}%) | {} |",
        s.warmup_minutes,
        s.rss_early,
        s.rss_late,
        s.rss_drift * 100.0,
        verdict(s.rss_drift.abs() < RSS_DRIFT_GOAL)
    );
    let _ = writeln!(md, "| counts back at baseline after the load | see below | {} |", verdict(s.returned()));
    let _ = writeln!(
        md,
        "| no unexplained error-level line or panic | {} error lines, {} panics | {} |",
        s.errors.len(),
        s.panics,
        verdict(s.errors.is_empty() && s.panics == 0)
    );
    let _ = writeln!(md, "\n| after the cool-down | baseline | end |\n|---|---|---|");
    for (name, b, e) in &s.returns {
        // + 0.0: a gauge decremented back to zero reads -0.
        let _ = writeln!(md, "| {name} | {:.0} | {:.0} |", b + 0.0, e + 0.0);
    }
    let peak = |f: fn(&Sample) -> f64| s.samples.iter().map(f).fold(0.0, f64::max);
    let _ = writeln!(
        md,
        "\nPeaks under load: {:.0} MiB RSS, {:.2} cores, {} fds, {} threads, {} peers, {} rooms, {} pipelines, {} viewers.",
        peak(|x| x.rss_mib),
        peak(|x| x.cpu),
        peak(|x| x.fds),
        peak(|x| x.threads),
        peak(|x| x.peers),
        peak(|x| x.rooms),
        peak(|x| x.pipelines),
        peak(|x| x.viewers)
    );
    if s.failures > 0 {
        let _ = writeln!(md, "\nClient-side failures (counted, the run went on): {}. The first:\n", s.failures);
        for (at, what) in s.failed.iter().take(10) {
            let _ = writeln!(md, "- at {at:.0} s: {what}");
        }
    }
    if !s.errors.is_empty() {
        let _ = writeln!(md, "\n## Error-level log lines\n\n```");
        for e in s.errors.iter().take(20) {
            let _ = writeln!(md, "{e}");
        }
        let _ = writeln!(md, "```");
    }
    if s.warnings > 0 {
        let _ = writeln!(md, "\n## Warnings in the server's log\n\n{} lines; the first:\n\n```", s.warnings);
        for w in &s.first_warnings {
            let _ = writeln!(md, "{w}");
        }
        let _ = writeln!(md, "```");
    }
    let _ = writeln!(md, "\n## Over time\n\nThe load stops at {:.0} s (then the cool-down).\n", s.load_ended_at);
    for (title, file) in plots {
        let _ = writeln!(md, "![{title}]({file})\n");
    }
    let path = out.join(format!("{stem}.md"));
    std::fs::write(&path, md)?;
    Ok(path)
}

fn draw(out: &Path, stem: &str, s: &Soak) -> Result<Vec<(String, String)>> {
    let series = |name: &str, c: RGBColor, f: fn(&Sample) -> f64| -> Series {
        (name.to_string(), c, s.samples.iter().map(|x| (x.at, f(x))).collect())
    };
    let (blue, red, green, grey) =
        (RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(120, 120, 120));
    let plots: Vec<(&str, &str, Vec<Series>)> = vec![
        ("Server RSS", "MiB", vec![series("RSS", blue, |x| x.rss_mib)]),
        ("Server CPU", "cores", vec![series("CPU", red, |x| x.cpu)]),
        (
            "Descriptors and threads",
            "count",
            vec![series("open fds", blue, |x| x.fds), series("threads", grey, |x| x.threads)],
        ),
        (
            "Media",
            "count",
            vec![
                series("peers", blue, |x| x.peers),
                series("rooms", green, |x| x.rooms),
                series("composite pipelines", red, |x| x.pipelines),
            ],
        ),
        (
            "Sockets and viewers",
            "count",
            vec![
                series("chat sockets", blue, |x| x.gateway_connections),
                series("voice sockets", green, |x| x.voice_connections),
                series("live viewers", red, |x| x.viewers),
            ],
        ),
    ];
    let mut files = Vec::new();
    for (i, (title, unit, lines_)) in plots.into_iter().enumerate() {
        let file = format!("{stem}-{i}.svg");
        lines(&out.join(&file), title, "seconds", unit, &lines_)?;
        files.push((title.to_string(), file));
    }
    Ok(files)
}

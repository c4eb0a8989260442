//! SVG plots for a report (plotters, SVG backend only): per media sweep, server CPU and egress
//! against participants per room for each mode, and the audio latency (by tone switch, the same
//! method in every mode) and join time distributions (CDFs) at the sweep's largest room.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::results::{Dist, MediaStep, RunReport};

const SIZE: (u32, u32) = (720, 420);

/// A named line: its label, colour and points.
pub(crate) type Series = (String, RGBColor, Vec<(f64, f64)>);

fn colour(mode: &str) -> RGBColor {
    match mode {
        "sfu" => RGBColor(31, 119, 180),
        "mcu" => RGBColor(214, 39, 40),
        _ => RGBColor(44, 160, 44),
    }
}

/// One line (and its points) per named series.
pub(crate) fn lines(path: &Path, caption: &str, x_desc: &str, y_desc: &str, series: &[Series]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("plotting {}: {e}", path.display());
    let all = series.iter().flat_map(|s| s.2.iter());
    let (xmax, ymax) = all.fold((0.0f64, 0.0f64), |(a, b), (x, y)| (a.max(*x), b.max(*y)));
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..(xmax * 1.1).max(1.0), 0.0..(ymax * 1.15).max(1e-3))
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).draw().map_err(|e| err(&e))?;
    for (name, c, pts) in series {
        let c = *c;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        // Points mark measured steps; a CDF's many buckets would only blur the line.
        if pts.len() <= 20 {
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled()))).map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// The tone-switch latency: the one method that measures every mode alike (mixed audio carries
/// no capture time); its resolution is a 20 ms frame. Capture-time figures are in the tables.
fn audio_dist(s: &MediaStep) -> (&Dist, &'static str) {
    (&s.audio_pattern_latency, "tone switch")
}

fn join_dist(s: &MediaStep) -> (&Dist, &'static str) {
    (&s.join, "join")
}

/// Draws every plot; returns (title, file name) of each, in report order.
pub fn draw(out: &Path, stem: &str, r: &RunReport) -> Result<Vec<(String, String)>> {
    let mut made = Vec::new();
    let mut sweeps: Vec<&str> = r.media.iter().map(|s| s.sweep.as_str()).collect();
    sweeps.dedup();
    for sweep in sweeps {
        let steps: Vec<&MediaStep> = r.media.iter().filter(|s| s.sweep == sweep && s.joined > 0).collect();
        let mut modes: Vec<&str> = steps.iter().map(|s| s.mode.as_str()).collect();
        modes.sort_unstable();
        modes.dedup();
        let by_mode = |f: &dyn Fn(&MediaStep) -> f64| -> Vec<Series> {
            modes
                .iter()
                .map(|m| {
                    let pts = steps.iter().filter(|s| s.mode == *m).map(|s| (s.participants as f64, f(s))).collect();
                    (m.to_string(), colour(m), pts)
                })
                .collect()
        };
        let rooms = steps.first().map_or(1, |s| s.rooms);
        let mut plot = |kind: &str, title: String, x: &str, y: &str, series: Vec<Series>| {
            let file = format!("{stem}-{sweep}-{kind}.svg");
            if series.iter().any(|s| !s.2.is_empty()) {
                lines(&out.join(&file), &title, x, y, &series)?;
                made.push((title, file));
            }
            anyhow::Ok(())
        };
        let per_room = format!("participants per room ({rooms} room(s))");
        let mut sizes: Vec<usize> = steps.iter().map(|s| s.participants).collect();
        sizes.sort_unstable();
        sizes.dedup();
        // Against room size only when the sweep has several; one size is in the tables.
        if sizes.len() > 1 {
            plot("cpu", format!("{sweep}: server CPU"), &per_room, "cores", by_mode(&|s| s.server.cpu_cores_avg))?;
            plot("egress", format!("{sweep}: server egress"), &per_room, "Mbit/s", by_mode(&|s| s.egress_mbps))?;
        }

        // Distributions at the largest room of the sweep.
        let Some(p) = steps.iter().map(|s| s.participants).max() else { continue };
        let at_p: Vec<&&MediaStep> = steps.iter().filter(|s| s.participants == p).collect();
        let cdf = |pick: &dyn Fn(&MediaStep) -> (&Dist, &'static str)| -> Vec<Series> {
            at_p.iter()
                .map(|s| {
                    let (d, how) = pick(s);
                    let pts = d.cdf.iter().map(|(ms, q)| (*ms, q * 100.0)).collect();
                    (format!("{} ({how})", s.mode), colour(&s.mode), pts)
                })
                .collect()
        };
        let title = format!("{sweep}: audio latency by tone switch, {p} per room");
        plot("latency", title, "ms", "% of switches", cdf(&audio_dist))?;
        let title = format!("{sweep}: join to first audio, {p} per room");
        plot("join", title, "ms", "% of joins", cdf(&join_dist))?;
    }
    for s in &r.spike {
        let mut plot = |kind: &str, title: String, x: &str, y: &str, series: Vec<Series>| {
            let file = format!("{stem}-{}-{kind}.svg", s.sweep);
            if series.iter().any(|s| !s.2.is_empty()) {
                lines(&out.join(&file), &title, x, y, &series)?;
                made.push((title, file));
            }
            anyhow::Ok(())
        };
        let cores: Vec<(f64, f64)> = s.timeline.iter().map(|(t, _, c)| (*t, *c)).collect();
        let viewers: Vec<(f64, f64)> = s.timeline.iter().map(|(t, v, _)| (*t, *v / 1000.0)).collect();
        let title = format!("{}: {} viewers arriving in {:.0} s", s.sweep, s.viewers, s.ramp_secs);
        let series = vec![
            ("server cores".to_string(), RGBColor(214, 39, 40), cores),
            ("viewers on (thousands)".to_string(), RGBColor(31, 119, 180), viewers),
        ];
        plot("timeline", title, "seconds since the first viewer", "cores / thousands of viewers", series)?;
        let cdf = |d: &Dist| d.cdf.iter().map(|(ms, q)| (*ms, q * 100.0)).collect::<Vec<_>>();
        let mut series = vec![
            ("confab: part or playlist served".to_string(), RGBColor(44, 160, 44), cdf(&s.served)),
            ("confab: blocking reload (with the wait)".to_string(), RGBColor(148, 103, 189), cdf(&s.blocked)),
        ];
        if let Some(n) = &s.nginx {
            series.push(("nginx: served".to_string(), RGBColor(127, 127, 127), cdf(&n.served)));
        }
        plot("latency", format!("{}: time to serve, every viewer on", s.sweep), "ms", "% of requests", series)?;
    }
    Ok(made)
}

//! Prometheus text format for series the recorder does not hold.

use std::fmt::Write;

/// A histogram in the text format: `buckets` are (upper bound, count in that bucket alone),
/// ascending, and `over` the samples above the last bound; cumulative counts, `+Inf`, `_sum` and
/// `_count` are derived here.
pub fn histogram(out: &mut String, name: &str, help: &str, buckets: &[(f64, u64)], sum: f64, over: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut seen = 0u64;
    for (le, count) in buckets {
        seen += count;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {seen}");
    }
    seen += over;
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {seen}");
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {seen}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn cumulative_buckets() {
        let mut s = String::new();
        super::histogram(&mut s, "x_seconds", "X.", &[(0.001, 2), (0.01, 3)], 0.02, 1);
        assert!(s.contains("x_seconds_bucket{le=\"0.01\"} 5\n") && s.contains("x_seconds_bucket{le=\"+Inf\"} 6\n"));
        assert!(s.contains("x_seconds_count 6\n") && s.contains("# TYPE x_seconds histogram\n"));
    }
}

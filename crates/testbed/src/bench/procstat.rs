//! CPU and memory of a process from `/proc`: utime+stime from `/proc/<pid>/stat`, RSS from
//! `/proc/<pid>/status`, and a sampler that reads them every 250 ms while a step runs, so a report
//! gives both the window's average and its peak.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::results::ProcFigures;

const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Samples kept per sampler: an hour at 4 Hz; older ones are dropped.
const MAX_SAMPLES: usize = 14_400;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub at: Instant,
    /// CPU time used so far (user + system).
    pub cpu: Duration,
    pub rss_bytes: u64,
}

/// Clock ticks per second for `/proc/<pid>/stat`.
fn ticks_per_sec() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

/// Reads process `pid` now; `None` if it is gone or `/proc` says something unexpected.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let cpu = Duration::from_secs_f64(ticks as f64 / ticks_per_sec() as f64);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    Some(ProcSample { at, cpu, rss_bytes: rss_kb * 1024 })
}

/// CPU cores used between two samples.
pub fn cores(a: &ProcSample, b: &ProcSample) -> f64 {
    let wall = b.at.saturating_duration_since(a.at).as_secs_f64();
    if wall <= 0.0 { 0.0 } else { b.cpu.saturating_sub(a.cpu).as_secs_f64() / wall }
}

/// Samples a process every 250 ms until dropped.
pub struct Sampler {
    samples: Arc<Mutex<Vec<ProcSample>>>,
    task: JoinHandle<()>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let out = samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                let Some(s) = sample(pid) else { return };
                let mut v = out.lock().unwrap_or_else(|e| e.into_inner());
                if v.len() >= MAX_SAMPLES {
                    v.remove(0);
                }
                v.push(s);
            }
        });
        Sampler { samples, task }
    }

    /// Samples taken within `[from, to]`.
    pub fn window(&self, from: Instant, to: Instant) -> Vec<ProcSample> {
        let v = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        v.iter().filter(|s| s.at >= from && s.at <= to).copied().collect()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Average and peak (over consecutive samples) cores, and peak RSS, of `samples`.
pub fn summarise(samples: &[ProcSample]) -> (f64, f64, u64) {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else { return (0.0, 0.0, 0) };
    let avg = cores(first, last);
    let peak = samples.windows(2).map(|w| cores(&w[0], &w[1])).fold(0.0, f64::max);
    let rss = samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0);
    (avg, peak, rss)
}

/// Busy and total CPU ticks of the whole machine so far, from `/proc/stat`'s `cpu` line.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Cores the whole machine kept busy between two [`machine_ticks`] readings.
pub fn machine_cores(a: Option<(u64, u64)>, b: Option<(u64, u64)>, cpus: usize) -> f64 {
    match (a, b) {
        (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
            (busy1 - busy0) as f64 / (total1 - total0) as f64 * cpus as f64
        }
        _ => 0.0,
    }
}

/// [`summarise`] as a report's figures.
pub fn figures(samples: &[ProcSample]) -> ProcFigures {
    let (cpu_cores_avg, cpu_cores_peak, rss_bytes) = summarise(samples);
    ProcFigures { cpu_cores_avg, cpu_cores_peak, rss_bytes }
}

/// The 1-minute load average and the number of online CPUs.
pub fn load_and_cpus() -> (f64, usize) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|l| l.parse().ok()))
        .unwrap_or(0.0);
    (load, online_cpus())
}

/// The machine's online CPUs, whatever this process is pinned to (`available_parallelism`
/// counts only the cores a process may use).
pub fn online_cpus() -> usize {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_itself() {
        let me = std::process::id();
        let a = sample(me).unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = sample(me).unwrap();
        assert!(b.cpu >= a.cpu && b.rss_bytes > 0);
        assert!(sample(u32::MAX).is_none());
    }
}

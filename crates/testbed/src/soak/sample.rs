//! The soak's samples: the server's own `/metrics` (Prometheus text, read as a black box would)
//! and its CPU time from `/proc`, every few seconds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::bench::procstat;

/// One reading, `at` seconds after sampling started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    pub at: f64,
    /// Cores used since the previous sample.
    pub cpu: f64,
    pub rss_mib: f64,
    pub fds: f64,
    pub threads: f64,
    pub peers: f64,
    pub rooms: f64,
    pub pipelines: f64,
    pub gateway_connections: f64,
    pub voice_connections: f64,
    pub viewers: f64,
    pub streams: f64,
}

pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    started: Instant,
    task: JoinHandle<()>,
}

impl Sampler {
    pub fn start(metrics_url: String, pid: u32, every: Duration) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let into = samples.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut last = procstat::sample(pid);
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Ok(text) = async { http.get(&metrics_url).send().await?.text().await }.await else { continue };
                let now = procstat::sample(pid);
                let cpu = match (&last, &now) {
                    (Some(a), Some(b)) => procstat::cores(a, b),
                    _ => 0.0,
                };
                last = now;
                let s = parse(&text, started.elapsed().as_secs_f64(), cpu);
                into.lock().unwrap_or_else(|p| p.into_inner()).push(s);
            }
        });
        Sampler { samples, started, task }
    }

    pub fn latest(&self) -> Option<Sample> {
        self.samples.lock().unwrap_or_else(|p| p.into_inner()).last().cloned()
    }

    /// Seconds since sampling started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub async fn stop(self) -> Vec<Sample> {
        self.task.abort();
        let _ = self.task.await;
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The series the soak watches, summed over their labels.
fn parse(text: &str, at: f64, cpu: f64) -> Sample {
    let sum = |name: &str| -> f64 {
        (text.lines())
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{')))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Sample {
        at,
        cpu,
        rss_mib: sum("process_resident_memory_bytes") / (1024.0 * 1024.0),
        fds: sum("process_open_fds"),
        threads: sum("process_threads"),
        peers: sum("confab_media_peers"),
        rooms: sum("confab_media_rooms"),
        pipelines: sum("confab_mcu_pipelines"),
        gateway_connections: sum("confab_gateway_connections"),
        voice_connections: sum("confab_voice_connections"),
        viewers: sum("confab_live_viewers"),
        streams: sum("confab_live_streams"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_over_labels_and_skips_lookalikes() {
        let text = "# TYPE confab_media_rooms gauge\nconfab_media_rooms{mode=\"sfu\"} 2\nconfab_media_rooms{mode=\"mcu\"} 1\n\
                    confab_media_peers 5\nconfab_media_peers_connected 4\nprocess_resident_memory_bytes 1048576\n";
        let s = super::parse(text, 1.0, 0.5);
        assert_eq!((s.rooms, s.peers, s.rss_mib), (3.0, 5.0, 1.0));
    }
}

//! The engine on more than one core, in process: W engines (as `[media] workers = W` runs them,
//! each on its own thread with its own socket and room), each driven by hand as `forward`'s
//! harness does (9 listeners, one packet per drain), all at once for a fixed time. Prints the
//! copies per second of 1 and of 2 workers and their ratio; criterion's statistics do not fit a
//! figure that is the sum over threads.
//!
//! `cargo bench -p sfu --bench workers [-- SECONDS]` (default 5 s per figure).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use sfu::harness::ForwardHarness;

const LISTENERS: usize = 9;
/// Packets prepared per refill: encrypting them is the source client's work, not the engine's.
const REFILL: usize = 2_000;

/// Copies sent by one engine in `secs` of forwarding, timing only the forwarding.
fn one_worker(secs: f64, start: &Barrier) -> (u64, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _entered = rt.enter();
    let mut h = rt.block_on(ForwardHarness::new(LISTENERS)).expect("harness");
    start.wait();
    let (mut copies, mut busy) = (0u64, Duration::ZERO);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        h.prepare(REFILL);
        let t = Instant::now();
        for _ in 0..REFILL {
            copies += h.forward_one();
        }
        busy += t.elapsed();
    }
    (copies, busy)
}

/// Copies per second of forwarding, summed over `workers` threads running at once.
fn run(workers: usize, secs: f64) -> f64 {
    let start = Barrier::new(workers);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers).map(|_| s.spawn(|| one_worker(secs, &start))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .map(|(copies, busy)| copies as f64 / busy.as_secs_f64().max(1e-9))
            .sum()
    })
}

fn main() {
    let secs: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = run(1, secs);
    let two = run(2, secs);
    println!("sfu_workers: {cores} cores; 1 worker {one:.0} copies/s, 2 workers {two:.0} copies/s: {:.2}x", two / one);
}

//! The raw baseline: what one core can push through the kernel's UDP send path on this machine,
//! measured in the same run as the server. A tight `send_to` loop on one thread, to a loopback
//! socket nobody reads (the kernel drops what overflows its buffer, `send_to` still succeeds),
//! per packet size the scenario forwards. Forwarding throughput is reported against it.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::resource::{UsageWho, getrusage};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct BaselineResult {
    pub packet_bytes: usize,
    pub packets: u64,
    pub wall_secs: f64,
    /// CPU time of the sending thread (user + system).
    pub cpu_secs: f64,
    /// Packets per second of that thread's CPU time: the kernel's send rate per core.
    pub packets_per_core_sec: f64,
}

fn thread_cpu() -> Duration {
    let Ok(u) = getrusage(UsageWho::RUSAGE_THREAD) else { return Duration::ZERO };
    let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

/// Sends `size`-byte datagrams for `seconds` on the calling thread.
pub fn measure(size: usize, seconds: f64) -> Result<BaselineResult> {
    let sink = UdpSocket::bind("127.0.0.1:0").context("binding the sink")?;
    let to = sink.local_addr()?;
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding the sender")?;
    let payload = vec![0x5a_u8; size.max(1)];
    let until = Duration::from_secs_f64(seconds.max(0.05));
    let (start, cpu0) = (Instant::now(), thread_cpu());
    let mut packets = 0u64;
    // Check the clock every 1024 sends: Instant::now() is not free at these rates.
    while start.elapsed() < until {
        for _ in 0..1024 {
            if socket.send_to(&payload, to).is_ok() {
                packets += 1;
            }
        }
    }
    let wall_secs = start.elapsed().as_secs_f64();
    let cpu_secs = thread_cpu().saturating_sub(cpu0).as_secs_f64();
    // Without a thread clock, wall time is the conservative stand-in.
    let per = if cpu_secs > 0.0 { cpu_secs } else { wall_secs };
    drop(sink);
    Ok(BaselineResult { packet_bytes: size, packets, wall_secs, cpu_secs, packets_per_core_sec: packets as f64 / per })
}

/// Every size in turn, each on a thread of its own (so the async runtime is not blocked).
pub async fn run(sizes: &[usize], seconds: f64) -> Result<Vec<BaselineResult>> {
    let mut out = Vec::new();
    for &size in sizes {
        out.push(tokio::task::spawn_blocking(move || measure(size, seconds)).await.context("baseline thread")??);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sends_something() {
        let r = super::measure(120, 0.05).unwrap();
        assert!(r.packets > 0 && r.packets_per_core_sec > 0.0, "{r:?}");
    }
}

//! The raw baseline: what one core can push through the kernel's UDP send path on this machine,
//! measured in the same run as the server. A tight `send_to` loop on one thread, to a loopback
//! socket nobody reads (the kernel drops what overflows its buffer, `send_to` still succeeds),
//! per packet size the scenario forwards. Forwarding throughput is reported against it.
//!
//! [`measure_to_readers`] is the same send to sockets that are read, as a forwarding server's
//! listeners read theirs: each send then also pays for waking its reader.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sched::sched_setaffinity;
use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::Pid;
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

/// Calls `burst` (given the datagrams sent so far, returning how many it sent) until `seconds`
/// have passed: the datagrams sent, the wall time and the calling thread's CPU time.
fn timed(seconds: f64, mut burst: impl FnMut(u64) -> u64) -> (u64, f64, f64) {
    let until = Duration::from_secs_f64(seconds.max(0.05));
    let (start, cpu0) = (Instant::now(), thread_cpu());
    let mut packets = 0u64;
    while start.elapsed() < until {
        packets += burst(packets);
    }
    (packets, start.elapsed().as_secs_f64(), thread_cpu().saturating_sub(cpu0).as_secs_f64())
}

/// Sends `size`-byte datagrams for `seconds` on the calling thread.
pub fn measure(size: usize, seconds: f64) -> Result<BaselineResult> {
    let sink = UdpSocket::bind("127.0.0.1:0").context("binding the sink")?;
    let to = sink.local_addr()?;
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding the sender")?;
    let payload = vec![0x5a_u8; size.max(1)];
    // Check the clock every 1024 sends: Instant::now() is not free at these rates.
    let (packets, wall_secs, cpu_secs) =
        timed(seconds, |_| (0..1024).filter(|_| socket.send_to(&payload, to).is_ok()).count() as u64);
    // Without a thread clock, wall time is the conservative stand-in.
    let per = if cpu_secs > 0.0 { cpu_secs } else { wall_secs };
    drop(sink);
    Ok(BaselineResult { packet_bytes: size, packets, wall_secs, cpu_secs, packets_per_core_sec: packets as f64 / per })
}

/// Datagrams per batch in [`measure_to_readers`], a millisecond apart: about what a server sends
/// at 1,000 streams, so the reading thread sleeps between batches and each batch wakes it.
const BATCH: usize = 50;
/// Sockets read, round robin: a room's worth of listeners and more.
const READERS: usize = 64;

#[derive(Debug, Clone, Serialize)]
pub struct ReadBaselineResult {
    pub packets: u64,
    /// What the readers got (the rest overflowed a socket buffer).
    pub received: u64,
    pub cpu_secs: f64,
    pub packets_per_core_sec: f64,
}

/// Sends `size`-byte datagrams for `seconds`, round robin to [`READERS`] loopback sockets that a
/// thread of their own reads (a current-thread runtime, a task per socket, as the light peers;
/// it inherits the caller's cores), in batches of [`BATCH`] a millisecond apart, from a thread
/// pinned to `sender_cpus` (the server's, in a forwarding run). Packets per second of the
/// sender's CPU time: the kernel's send with its receive side and wake-ups.
pub fn measure_to_readers(size: usize, seconds: f64, sender_cpus: Option<Vec<usize>>) -> Result<ReadBaselineResult> {
    let sockets: Vec<UdpSocket> =
        (0..READERS).map(|_| UdpSocket::bind("127.0.0.1:0")).collect::<std::io::Result<_>>().context("binding")?;
    let addrs: Vec<_> = sockets.iter().map(UdpSocket::local_addr).collect::<std::io::Result<_>>()?;
    let received = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let counted = received.clone();
    let reader = std::thread::Builder::new().name("baseline-reader".into()).spawn(move || -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
        rt.block_on(async move {
            for s in sockets {
                s.set_nonblocking(true)?;
                let s = tokio::net::UdpSocket::from_std(s)?;
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    while s.recv(&mut buf).await.is_ok() {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            let _ = stopped.await;
            Ok(())
        })
    })?;
    let sender = std::thread::Builder::new().name("baseline-sender".into()).spawn(move || -> Result<(u64, f64)> {
        if let Some(cpus) = &sender_cpus {
            // This thread only (pid 0): the rest of the process stays where it is.
            sched_setaffinity(Pid::from_raw(0), &super::affinity::cpu_set(cpus)?).context("sched_setaffinity")?;
        }
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding the sender")?;
        let payload = vec![0x5a_u8; size.max(1)];
        let (packets, _, cpu_secs) = timed(seconds, |sent| {
            let to = |i: usize| addrs[(sent as usize + i) % READERS];
            let n = (0..BATCH).filter(|&i| socket.send_to(&payload, to(i)).is_ok()).count();
            std::thread::sleep(Duration::from_millis(1));
            n as u64
        });
        Ok((packets, cpu_secs))
    })?;
    let sent = sender.join().map_err(|_| anyhow::anyhow!("the sender thread panicked"))?;
    // Let the readers catch up before counting.
    std::thread::sleep(Duration::from_millis(50));
    let _ = stop.send(());
    reader.join().map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    let (packets, cpu_secs) = sent?;
    Ok(ReadBaselineResult {
        packets,
        received: received.load(Ordering::Relaxed),
        cpu_secs,
        packets_per_core_sec: if cpu_secs > 0.0 { packets as f64 / cpu_secs } else { 0.0 },
    })
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
    fn readers_get_what_is_sent() {
        let r = super::measure_to_readers(120, 0.1, None).unwrap();
        assert!(r.packets > 0 && r.packets_per_core_sec > 0.0, "{r:?}");
        assert!(r.received * 10 >= r.packets * 9, "{r:?}");
    }

    #[test]
    fn sends_something() {
        let r = super::measure(120, 0.05).unwrap();
        assert!(r.packets > 0 && r.packets_per_core_sec > 0.0, "{r:?}");
    }
}

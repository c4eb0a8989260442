//! The SFU's forwarding path per packet: SRTP decrypt, route, write into each listener's slot,
//! SRTP encrypt, `sendto` — the engine driven by hand (`sfu::harness`), with real str0m peers
//! connected over loopback. Next to it, the raw baseline: a bare `sendto` of the same size, so
//! forwarding is read as a share of what the kernel alone can do.
//!
//! `cargo bench -p sfu --bench forward`; throughput is in forwarded copies per second.
//! - `N_listeners_xB`: one source, N listeners with one slot each, B packets per flush: x1 is the
//!   engine at its usual rates (each datagram's copies leave before the next is read), x4 one
//!   under a backlog (each listener drained once for several). Each also prints the heap
//!   allocations per copy sent.
//! - `9_listeners_5_slots_x1`: each listener with five receive m-lines (a room of six's shape).
//! - `N_rooms_of_6`: as the end-to-end benchmark loads the server (everyone speaks; 34 rooms are
//!   204 `Rtc`s), five copies per datagram.
//! - `video_9_listeners`: a camera in an `sfu` room, a 2,500-byte VP8 frame (three packets) per
//!   flush, counted in packets sent.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use sfu::harness::ForwardHarness;

/// Counts heap allocations, to say how many a forwarded copy costs (a relaxed add per
/// allocation: noise next to a copy's microseconds).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An SRTP-protected 20 ms Opus packet: 12 B RTP header, ~10 B of extensions, ~100 B payload,
/// 16 B GCM tag.
const AUDIO_DATAGRAM: usize = 140;

fn forward(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _entered = rt.enter();
    let mut group = c.benchmark_group("sfu_forward");
    group.measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    for (listeners, batch) in [(1usize, 1usize), (4, 1), (9, 1), (9, 4)] {
        let mut h = rt.block_on(ForwardHarness::new(listeners)).expect("harness");
        let name = format!("{listeners}_listeners_x{batch}");
        bench_case(&mut group, &name, &mut h, batch, (listeners * batch) as u64);
        // Heap allocations per copy sent, over 2,000 more packets (prepared beforehand).
        h.prepare(2000);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let copies: u64 = (0..2000 / batch).map(|_| h.forward_batch(batch)).sum();
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        eprintln!(
            "{listeners} listeners x{batch}: {:.2} allocations per copy sent",
            allocations as f64 / copies.max(1) as f64
        );
        let lat = h.latency();
        eprintln!(
            "{listeners} listeners: forward latency p50 {} µs, p99 {} µs over {} copies",
            lat.p50_us, lat.p99_us, lat.count
        );
    }
    // A room's shape: each listener has five receive slots (m-lines), one of them carrying the
    // source. str0m's timeout handling and polls walk every m-line of a peer.
    let mut h = rt.block_on(ForwardHarness::with_slots(9, 5)).expect("harness");
    bench_case(&mut group, "9_listeners_5_slots_x1", &mut h, 1, 9);
    drop(h);
    // Rooms of six where everyone speaks, as the end-to-end benchmark loads the server: one room,
    // then 34 (1,020 streams, 204 `Rtc`s), one datagram per flush (five copies each).
    for rooms in [1usize, 34] {
        let mut h = rt.block_on(ForwardHarness::rooms(rooms, 6)).expect("rooms harness");
        bench_case(&mut group, &format!("{rooms}_rooms_of_6"), &mut h, 1, 5);
    }
    // A camera in an `sfu` room: one frame (three packets) per flush to 9 listeners.
    let mut h = rt.block_on(ForwardHarness::video(9)).expect("video harness");
    bench_case(&mut group, "video_9_listeners", &mut h, 3, 9 * 3);
    // The raw baseline: one sendto of an audio-sized datagram to a loopback socket nobody reads.
    let sink = UdpSocket::bind("127.0.0.1:0").expect("sink");
    let to = sink.local_addr().expect("addr");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    let payload = [0x80u8; AUDIO_DATAGRAM];
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_sendto", |b| b.iter(|| black_box(socket.send_to(&payload, to).ok())));
    group.finish();
}

/// Benches `name`: each iteration hands `h` `batch` prepared packets in one flush, which should
/// send `copies` datagrams. Throughput counts those copies, and the copies the engine really sent
/// are checked against them: a path that leaves copies queued for a later timer must not read as
/// fast.
fn bench_case(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, h: &mut ForwardHarness, batch: usize, copies: u64) {
    group.throughput(Throughput::Elements(copies));
    let (mut sent, mut expected) = (0u64, 0u64);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let want = iters as usize * batch;
            if h.prepared() < want {
                h.prepare(want - h.prepared());
            }
            let start = Instant::now();
            for _ in 0..iters {
                sent += black_box(h.forward_batch(batch));
            }
            expected += iters * copies;
            start.elapsed()
        })
    });
    assert!(sent >= expected * 99 / 100, "{name}: sent {sent} of {expected} copies");
}

criterion_group!(benches, forward);
criterion_main!(benches);

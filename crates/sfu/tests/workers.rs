//! Two engine workers: rooms spread over both (a room's peers together), media flows in each, and
//! the stats of both add up.

mod support;

use std::time::Duration;

use sfu::SfuConfig;

use support::{Client, MS, connected, eventually, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_on_two_workers_forward_and_add_up() {
    let (sfu, _events) = start(SfuConfig { workers: 2, ..SfuConfig::default() }).await;
    let addrs = sfu.addresses();
    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0].port(), addrs[1].port(), "a socket each");
    let a1 = Client::join(&sfu, 1, 1, 1, -20).await;
    let a2 = Client::join(&sfu, 1, 2, 1, -20).await;
    let b1 = Client::join(&sfu, 2, 3, 1, -20).await;
    let b2 = Client::join(&sfu, 2, 4, 1, -20).await;
    connected(&[&a1, &a2, &b1, &b2]).await;
    eventually(
        Duration::from_secs(5),
        50 * MS,
        || a1.from(2) > 10 && a2.from(1) > 10 && b1.from(4) > 10 && b2.from(3) > 10,
        || format!("heard: {} {} {} {}", a1.from(2), a2.from(1), b1.from(4), b2.from(3)),
    )
    .await;
    assert_eq!(a1.from(3) + a1.from(4) + b1.from(1) + b1.from(2), 0, "rooms stay apart");

    let stats = sfu.stats().await;
    assert_eq!(stats.peers.len(), 4);
    let workers: Vec<usize> = stats.rooms.iter().map(|r| r.worker).collect();
    assert_eq!(workers.len(), 2);
    assert_ne!(workers[0], workers[1], "the second room went to the idle worker");
    let in_rooms: u64 = stats.rooms.iter().map(|r| r.counters.packets_in).sum();
    assert_eq!(stats.totals.counters.packets_in, in_rooms, "totals are both workers'");
    assert!(stats.forward_latency.count > 40, "both workers' latency samples: {}", stats.forward_latency.count);

    // A third room goes to the lighter worker; the emptied room is forgotten.
    drop((b1, b2));
    for p in [3, 4] {
        sfu.remove_peer(p);
    }
    let c = Client::join(&sfu, 3, 5, 1, -20).await;
    connected(&[&c]).await;
    let stats = sfu.stats().await;
    let room3 = stats.rooms.iter().find(|r| r.room == 3).expect("room 3");
    assert_eq!(room3.worker, workers[1], "the worker room 2 left is the lighter one");
}

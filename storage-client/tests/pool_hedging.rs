//! Hedged storage requests: a write or read still running after its node's usual latency is
//! started on another node, within a budget; a hedged write's late copy is deleted; a node
//! stuck on a request is passed over.
//!
//! Time is tokio's, paused: a "hanging" node is a fault delay, and the test's clock only moves
//! when every task waits, so the latencies below are exact.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Cluster, cluster_with};
use object_store::path::Path;
use strata_storage::NodeId;
use strata_storage::pool::Hedging;
use tokio::time::Instant;

const FLOOR: Duration = Duration::from_millis(100);

fn hedged(budget_percent: u32, budget_burst: u32) -> impl FnOnce(&mut strata_storage::PoolConfig) {
    move |config| {
        config.request_timeout = Duration::from_secs(10);
        config.hedging = Hedging {
            floor: FLOOR,
            budget_percent,
            budget_burst,
        };
    }
}

/// Each of the `on_slow` requests that went to the slow node was hedged, and each hedge won.
fn assert_each_hedged_and_won(c: &Cluster, op: &str, on_slow: u64) {
    assert!(
        on_slow > 0,
        "the seed sends some {op}s to the slow node first"
    );
    for counter in ["hedges", "hedges_won"] {
        let sample = format!("storage_{counter}_total{{op=\"{op}\"}}");
        assert_eq!(c.metric(&sample), on_slow as f64, "{sample}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_write_to_a_hanging_node_is_hedged_and_its_late_copy_deleted() {
    let c = cluster_with(3, 2, 11, hedged(100, 100));
    // n0 answers, but only after 3 s: a node that vanished mid-request looks like this until
    // its timeout.
    c.faults[0].delay(Duration::from_secs(3));
    let paths: Vec<Path> = (0..12).map(|i| Path::from(format!("w{i}"))).collect();
    for path in &paths {
        let started = Instant::now();
        let placement = c.pool.put(path, "data".into()).await.unwrap();
        let took = started.elapsed();
        assert!(took <= FLOOR + Duration::from_millis(1), "{path}: {took:?}");
        assert_eq!(placement.nodes.len(), 2);
        assert!(!placement.nodes.contains(&NodeId("n0".into())), "{path}");
    }
    let started_on_n0 = c.faults[0].counts().puts;
    assert_each_hedged_and_won(&c, "put", started_on_n0);
    // The late copies land on n0 after 3 s; each is then deleted, since no placement names it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for path in &paths {
        assert!(!c.holders(path).await.contains(&0), "{path} left on n0");
    }
    assert_eq!(
        c.metric("storage_hedge_copies_deleted_total"),
        started_on_n0 as f64
    );
    // A slow node is not a failed one: it stays in use.
    assert!(c.pool.status()[0].healthy);
}

#[tokio::test(start_paused = true)]
async fn hedges_stop_when_the_budget_is_spent() {
    // A burst of 2 and 10 hedges per 100 writes; n0 takes 900 ms (slow, not stuck).
    let c = cluster_with(3, 1, 12, hedged(10, 2));
    c.faults[0].delay(Duration::from_millis(900));
    let mut waited_out = 0;
    let writes = 60;
    for i in 0..writes {
        let t = Instant::now();
        let placement = c
            .pool
            .put(&Path::from(format!("b{i}")), "v".into())
            .await
            .unwrap();
        if placement.nodes == [NodeId("n0".into())] {
            assert!(t.elapsed() >= Duration::from_millis(900));
            waited_out += 1;
        }
    }
    let hedges = c.metric(r#"storage_hedges_total{op="put"}"#);
    // The burst, then at most one per 10 writes.
    assert!(
        hedges >= 2.0 && hedges <= 2.0 + f64::from(writes) / 10.0,
        "{hedges} hedges"
    );
    // Writes that waited for n0: refused a hedge, or (once n0's p99 is its 900 ms) not slow
    // for n0 at all.
    let refused = c.metric(r#"storage_hedges_over_budget_total{op="put"}"#);
    assert!(
        refused > 0.0 && refused <= f64::from(waited_out),
        "{refused} refused, {waited_out} waited"
    );
}

#[tokio::test(start_paused = true)]
async fn a_node_stuck_on_a_request_is_passed_over_until_it_ends() {
    // No hedging at all: only the stuck-node rule can keep writes off n0.
    let c = cluster_with(3, 1, 15, |config| {
        config.request_timeout = Duration::from_secs(10);
        config.hedging = Hedging::OFF;
    });
    c.faults[0].delay(Duration::from_secs(8));
    let pool = &c.pool;
    // Writes until one lands on n0 and hangs there, while others go on.
    let hung = async {
        for i in 0..100 {
            let placement = pool
                .put(&Path::from(format!("h{i}")), "v".into())
                .await
                .unwrap();
            if placement.nodes == [NodeId("n0".into())] {
                return i;
            }
        }
        panic!("no write went to n0");
    };
    let others = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // n0's request has run 1.5 s: every write now avoids it.
        let before = c.faults[0].counts().puts;
        for i in 0..30 {
            let started = Instant::now();
            pool.put(&Path::from(format!("o{i}")), "v".into())
                .await
                .unwrap();
            assert!(started.elapsed() < Duration::from_millis(10));
        }
        assert_eq!(c.faults[0].counts().puts, before, "n0 was passed over");
    };
    let (first_hung, ()) = tokio::join!(hung, others);
    assert!(first_hung < 30, "the seed sends a write to n0 early");
    // Its request ended: n0 is used again.
    c.faults[0].heal();
    for i in 0..30 {
        pool.put(&Path::from(format!("a{i}")), "v".into())
            .await
            .unwrap();
    }
    assert!(c.faults[0].counts().puts > 1);
}

#[tokio::test(start_paused = true)]
async fn a_node_slow_as_usual_is_not_hedged() {
    // Every node takes 400 ms, well above the floor: once each has a p99, that is what a
    // write is compared with, and normal writes are not hedged.
    let c = cluster_with(3, 2, 13, hedged(5, 10));
    for f in &c.faults {
        f.delay(Duration::from_millis(400));
    }
    for i in 0..200 {
        c.pool
            .put(&Path::from(format!("s{i}")), "v".into())
            .await
            .unwrap();
    }
    let puts = c.metric(r#"storage_requests_total{op="put"}"#);
    let hedges = c.metric(r#"storage_hedges_total{op="put"}"#);
    // Until a node has 20 samples the floor decides, so the first writes are hedged.
    assert!(hedges / puts < 0.10, "{hedges} hedges of {puts} puts");
    let before = hedges;
    for i in 0..100 {
        c.pool
            .put(&Path::from(format!("t{i}")), "v".into())
            .await
            .unwrap();
    }
    assert_eq!(
        c.metric(r#"storage_hedges_total{op="put"}"#),
        before,
        "no hedges once p99s are known"
    );
}

#[tokio::test(start_paused = true)]
async fn a_read_from_a_hanging_replica_is_hedged() {
    let c = cluster_with(3, 2, 14, hedged(100, 100));
    let path = Path::from("r");
    let placement = c.pool.put(&path, "hello".into()).await.unwrap();
    let slow = Cluster::index(&placement.nodes[0]);
    c.faults[slow].delay(Duration::from_secs(5));
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(c.pool.get(&placement, &path).await.unwrap(), "hello");
        assert_eq!(
            c.pool.get_range(&placement, &path, 1..3).await.unwrap(),
            "el"
        );
        assert!(started.elapsed() <= 2 * FLOOR + Duration::from_millis(2));
    }
    assert_each_hedged_and_won(&c, "get", c.faults[slow].counts().gets);
}

#[tokio::test(start_paused = true)]
async fn without_hedging_a_hanging_node_costs_its_timeout() {
    // The teeth of the tests above: the same hang with hedging off waits for the timeout.
    let c = cluster_with(3, 2, 11, |config| {
        config.request_timeout = Duration::from_secs(10);
        config.hedging = Hedging::OFF;
    });
    c.faults[0].delay(Duration::from_secs(3));
    let mut slowest = Duration::ZERO;
    for i in 0..12 {
        let started = Instant::now();
        c.pool
            .put(&Path::from(format!("w{i}")), "data".into())
            .await
            .unwrap();
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest >= Duration::from_secs(3), "{slowest:?}");
    assert_eq!(c.metric(r#"storage_hedges_total{op="put"}"#), 0.0);
}

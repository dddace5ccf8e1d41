//! Node pool failover: switch-node on write failure, read fallback, backoff, timeouts, and a
//! clear error when too few healthy nodes remain.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, cluster};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_clock::Clock;
use strata_storage::{NodeId, StorageError};

#[tokio::test]
async fn a_node_failing_mid_stream_is_replaced_and_copies_stay_at_r() {
    let c = cluster(5, 3, 1);
    // Node 2 accepts a few writes, then dies.
    c.faults[2].fail_writes_after(2);
    let mut placed_on_failed = 0;
    for i in 0..40 {
        let path = Path::from(format!("obj-{i}"));
        let data = Bytes::from(format!("payload {i}"));
        let placement = c.pool.put(&path, data.clone().into()).await.unwrap();
        assert_eq!(placement.nodes.len(), 3, "object {i} has R copies");
        let mut unique = placement.nodes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3, "copies on distinct nodes");
        if placement.nodes.contains(&NodeId("n2".into())) {
            placed_on_failed += 1;
        }
        c.assert_copies(&path, &placement.nodes, &data).await;
    }
    assert_eq!(
        placed_on_failed, 2,
        "the dead node only holds what it accepted before dying"
    );
    let status = c.pool.status();
    assert!(
        !status[2].healthy
            && status[2]
                .last_error
                .as_deref()
                .unwrap()
                .contains("injected")
    );
    // While it sits out its backoff nobody tries it, so it saw the two good writes plus one
    // failure per backoff window (the clock never moved).
    assert_eq!(c.faults[2].counts().puts, 3);
}

#[tokio::test]
async fn reads_fall_back_to_another_replica() {
    let c = cluster(3, 2, 2);
    let path = Path::from("x");
    let placement = c.pool.put(&path, "hello".into()).await.unwrap();
    let first = Cluster::index(&placement.nodes[0]);
    c.faults[first].fail_reads(true);
    for _ in 0..10 {
        assert_eq!(c.pool.get(&placement, &path).await.unwrap(), "hello");
        assert_eq!(
            c.pool.get_range(&placement, &path, 1..4).await.unwrap(),
            "ell"
        );
    }
    // A replica whose copy is gone (deleted underneath) also falls back.
    let second = Cluster::index(&placement.nodes[1]);
    c.faults[first].heal();
    c.raw[second].delete(&path).await.unwrap();
    assert_eq!(c.pool.get(&placement, &path).await.unwrap(), "hello");
    // Both copies unreadable: the error lists each replica's failure.
    c.faults[first].fail_reads(true);
    let err = c.pool.get(&placement, &path).await.unwrap_err();
    match &err {
        StorageError::AllReplicasFailed {
            tried: 2, failures, ..
        } => {
            assert!(failures.contains("injected read failure"), "{err}");
        }
        other => panic!("expected AllReplicasFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn too_few_healthy_nodes_is_a_clear_error() {
    let c = cluster(3, 2, 3);
    c.faults[0].fail_writes(true);
    c.faults[1].fail_writes(true);
    let err = c
        .pool
        .put(&Path::from("y"), "data".into())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            StorageError::InsufficientNodes {
                required: 2,
                total: 3,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("n0") && text.contains("n1") && text.contains("storage.replicas"),
        "{text}"
    );
    // The copy that did land on n2 was removed again: no half-placed object is left behind.
    assert!(c.raw[2].get(&Path::from("y")).await.is_err());
}

#[tokio::test]
async fn an_unhealthy_node_returns_after_its_backoff() {
    let c = cluster(2, 1, 4);
    c.faults[0].fail_writes(true);
    // Write until node 0 has been tried and failed once.
    for i in 0..20 {
        c.pool
            .put(&Path::from(format!("a{i}")), "v".into())
            .await
            .unwrap();
    }
    assert_eq!(c.faults[0].counts().puts, 1, "tried once, then benched");
    c.faults[0].heal();
    for i in 0..20 {
        c.pool
            .put(&Path::from(format!("b{i}")), "v".into())
            .await
            .unwrap();
    }
    assert_eq!(
        c.faults[0].counts().puts,
        1,
        "still benched: the clock has not moved"
    );
    c.clock.advance(Duration::from_millis(1001));
    let before = c.clock.now();
    for i in 0..20 {
        c.pool
            .put(&Path::from(format!("c{i}")), "v".into())
            .await
            .unwrap();
    }
    assert!(
        c.faults[0].counts().puts > 1,
        "back in rotation after the backoff"
    );
    assert!(c.pool.status()[0].healthy);
    assert_eq!(c.clock.now(), before);
}

#[tokio::test]
async fn a_hung_node_times_out_and_is_switched() {
    let c = cluster(3, 2, 5);
    c.faults[1].delay(Duration::from_secs(30));
    let started = std::time::Instant::now();
    for i in 0..6 {
        let path = Path::from(format!("h{i}"));
        let placement = c.pool.put(&path, "v".into()).await.unwrap();
        assert!(!placement.nodes.contains(&NodeId("n1".into())));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "timeouts, not 30 s hangs"
    );
}

#[tokio::test]
async fn placement_is_spread_evenly() {
    let c = cluster(4, 2, 6);
    for i in 0..400 {
        c.pool
            .put(&Path::from(format!("s{i}")), "v".into())
            .await
            .unwrap();
    }
    let puts: Vec<u64> = c.faults.iter().map(|f| f.counts().puts).collect();
    // 800 copies over 4 nodes: 200 each on average; random placement stays near it.
    assert!(puts.iter().all(|&p| (140..=260).contains(&p)), "{puts:?}");
}

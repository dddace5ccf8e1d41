//! A pool over in-memory nodes behind fault wrappers, for the pool's tests.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use strata_clock::{ManualClock, SeededRandom};
use strata_storage::pool::{Backoff, Hedging, NodeSpec, PoolConfig};
use strata_storage::{NodeId, NodePool};
use strata_testkit::fault::{Faults, faulty_nodes};

pub struct Cluster {
    pub pool: NodePool,
    pub faults: Vec<Arc<Faults>>,
    pub raw: Vec<Arc<InMemory>>,
    pub clock: Arc<ManualClock>,
}

/// `nodes` nodes named `n0`, `n1`, ..., `replicas` copies, no hedging.
pub fn cluster(nodes: usize, replicas: usize, seed: u64) -> Cluster {
    cluster_with(nodes, replicas, seed, |config| {
        config.hedging = Hedging::OFF;
    })
}

/// Like [`cluster`], with hedging on by the shipped settings and the pool's settings tuned
/// by `tune` (zones go in as `config.nodes` specs named like the nodes).
pub fn cluster_with(
    nodes: usize,
    replicas: usize,
    seed: u64,
    tune: impl FnOnce(&mut PoolConfig),
) -> Cluster {
    let raw: Vec<Arc<InMemory>> = (0..nodes).map(|_| Arc::new(InMemory::new())).collect();
    let dyn_raw: Vec<Arc<dyn ObjectStore>> = raw.iter().map(|r| r.clone() as _).collect();
    let (faults, named) = faulty_nodes(&dyn_raw);
    let stores = named.into_iter().map(|(n, s)| (NodeId(n), s)).collect();
    let mut config = PoolConfig::new(Vec::new(), replicas);
    config.backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(8),
    };
    config.request_timeout = Duration::from_millis(300);
    tune(&mut config);
    let clock = Arc::new(ManualClock::new());
    let pool = NodePool::from_stores(
        stores,
        &config,
        clock.clone(),
        Arc::new(SeededRandom::new(seed)),
    )
    .unwrap();
    Cluster {
        pool,
        faults,
        raw,
        clock,
    }
}

/// Specs naming node `n{i}` in `zones[i]`.
pub fn zoned(zones: &[&str]) -> Vec<NodeSpec> {
    zones
        .iter()
        .enumerate()
        .map(|(i, zone)| format!("n{i}@{zone}=memory://n{i}").parse().unwrap())
        .collect()
}

impl Cluster {
    pub fn index(id: &NodeId) -> usize {
        id.0[1..].parse().unwrap()
    }

    /// Checks, bypassing the fault wrappers, that every node of the placement holds the object.
    pub async fn assert_copies(&self, path: &Path, nodes: &[NodeId], want: &Bytes) {
        for id in nodes {
            let got = self.raw[Self::index(id)]
                .get(path)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(&got, want, "copy on {id}");
        }
    }

    /// Which raw nodes hold `path`, bypassing the fault wrappers.
    pub async fn holders(&self, path: &Path) -> Vec<usize> {
        let mut holders = Vec::new();
        for (i, raw) in self.raw.iter().enumerate() {
            if raw.head(path).await.is_ok() {
                holders.push(i);
            }
        }
        holders
    }

    /// The value of one sample of the pool's metrics, e.g. `storage_hedges_total{op="put"}`;
    /// 0 when it has not been created.
    pub fn metric(&self, sample: &str) -> f64 {
        let mut registry = Registry::with_prefix("test");
        self.pool.register_metrics(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let wanted = format!("test_{sample} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&wanted))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }
}

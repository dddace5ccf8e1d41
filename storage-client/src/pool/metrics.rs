//! The pool's Prometheus metrics, registered by the broker and the proxy under their prefix
//! (`strata_broker_storage_*`, `strata_proxy_storage_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::{NodePool, Op};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
    zone: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeOpLabel {
    node: String,
    op: &'static str,
}

/// Counters the pool updates as it works.
#[derive(Debug, Default)]
pub(super) struct PoolMetrics {
    requests: Family<OpLabel, Counter>,
    hedges: Family<OpLabel, Counter>,
    hedges_won: Family<OpLabel, Counter>,
    hedges_over_budget: Family<OpLabel, Counter>,
    pub(super) hedge_copies_deleted: Counter,
    pub(super) placements_short_of_zones: Counter,
}

impl PoolMetrics {
    fn of(family: &Family<OpLabel, Counter>, op: Op) -> Counter {
        family.get_or_create(&OpLabel { op: op.name() }).clone()
    }
    pub(super) fn request(&self, op: Op) {
        Self::of(&self.requests, op).inc();
    }
    pub(super) fn hedge(&self, op: Op) {
        Self::of(&self.hedges, op).inc();
    }
    pub(super) fn hedge_won(&self, op: Op) {
        Self::of(&self.hedges_won, op).inc();
    }
    pub(super) fn over_budget(&self, op: Op) {
        Self::of(&self.hedges_over_budget, op).inc();
    }
}

impl NodePool {
    /// Adds the pool's metrics to `registry`, under `storage_`, with every node's health and
    /// recent p99 read now.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("storage");
        let m = &self.metrics;
        r.register(
            "requests",
            "Requests sent to storage nodes, by operation (hedges included)",
            m.requests.clone(),
        );
        r.register(
            "hedges",
            "Requests started again on another node because the first ran past twice its node's p99",
            m.hedges.clone(),
        );
        r.register(
            "hedges_won",
            "Hedges that finished before the request they hedged",
            m.hedges_won.clone(),
        );
        r.register(
            "hedges_over_budget",
            "Hedges not started because the hedging budget was spent",
            m.hedges_over_budget.clone(),
        );
        r.register(
            "hedge_copies_deleted",
            "Copies written by the losers of hedged writes, deleted once they landed",
            m.hedge_copies_deleted.clone(),
        );
        r.register(
            "placements_short_of_zones",
            "Objects written to fewer distinct zones than min(replicas, zones), for want of healthy nodes",
            m.placements_short_of_zones.clone(),
        );
        let healthy: Family<NodeLabel, Gauge> = Family::default();
        let p99: Family<NodeOpLabel, Gauge<f64, AtomicU64>> = Family::default();
        for (node, status) in self.nodes.iter().zip(self.status()) {
            healthy
                .get_or_create(&NodeLabel {
                    node: node.id.0.clone(),
                    zone: node.zone.clone().unwrap_or_default(),
                })
                .set(i64::from(status.healthy));
            for op in [Op::Put, Op::Get] {
                if let Some(p) = node.p99(op) {
                    p99.get_or_create(&NodeOpLabel {
                        node: node.id.0.clone(),
                        op: op.name(),
                    })
                    .set(p.as_secs_f64());
                }
            }
        }
        r.register(
            "node_healthy",
            "1 when a storage node is in use, 0 while it sits out a backoff",
            healthy,
        );
        r.register(
            "node_p99_seconds",
            "Recent p99 latency of a storage node; twice it is the hedging threshold when above the floor",
            p99,
        );
    }
}

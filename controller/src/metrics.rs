//! Prometheus metrics of the controller, rendered at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// Consumer groups' lag in records, by (group, topic).
pub type GroupLags = BTreeMap<(String, String), i64>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLagLabels {
    group: String,
    topic: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub status: u16,
}

/// Every metric the controller exports.
#[derive(Debug, Default)]
pub struct Metrics {
    pub is_leader: Gauge,
    pub reconciles: Counter,
    pub partition_moves: Counter,
    pub live_brokers: Gauge,
    pub partitions: Gauge,
    pub homeless_partitions: Gauge,
    pub admin_requests: Family<RequestLabels, Counter>,
    /// Consumer groups' lag, kept by the active controller only (empty on standbys).
    pub group_lags: Mutex<GroupLags>,
    /// The admin API's TLS, exported as `strata_controller_tls_*`.
    pub tls: Option<std::sync::Arc<strata_tls::ServerTls>>,
}

impl Metrics {
    pub(crate) fn set_group_lags(&self, lags: GroupLags) {
        *self
            .group_lags
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = lags;
    }

    /// Renders the Prometheus text format.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("strata_controller");
        if let Some(tls) = &self.tls {
            tls.metrics().register(&mut registry);
        }
        registry.register(
            "is_leader",
            "1 while this controller is the active one",
            self.is_leader.clone(),
        );
        registry.register(
            "reconciles",
            "Reconcile passes run as the active controller",
            self.reconciles.clone(),
        );
        registry.register(
            "partition_moves",
            "Assignment changes written",
            self.partition_moves.clone(),
        );
        registry.register(
            "live_brokers",
            "Registered brokers",
            self.live_brokers.clone(),
        );
        registry.register(
            "partitions",
            "Partitions of all topics",
            self.partitions.clone(),
        );
        registry.register(
            "homeless_partitions",
            "Partitions without a live owner",
            self.homeless_partitions.clone(),
        );
        let group_lag = Family::<GroupLagLabels, Gauge>::default();
        for ((group, topic), lag) in self
            .group_lags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let labels = GroupLagLabels {
                group: group.clone(),
                topic: topic.clone(),
            };
            group_lag.get_or_create(&labels).set(*lag);
        }
        registry.register(
            "group_lag_records",
            "Records between each consumer group's committed positions and its partitions' ends, \
             per topic (a broadcast group: its member furthest behind); exported by the active \
             controller",
            group_lag,
        );
        registry.register(
            "admin_requests",
            "Admin API requests by route and status",
            self.admin_requests.clone(),
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

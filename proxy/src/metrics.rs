//! Prometheus metrics of the proxy (`strata_proxy_*`), served at `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use strata_log::ReadCache;
use strata_proto::v1;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabel {
    pub rpc: &'static str,
}

/// A swimlane's records, by direction: `produced` (accepted from producers) or `delivered`
/// (sent to that lane's consumers). The main lane is `(main)`, which no lane can be named.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabel {
    pub topic: String,
    pub lane: String,
    pub direction: &'static str,
}

/// The label value of the main lane.
pub use strata_format::lanes::MAIN_LANE;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub rpc: &'static str,
    pub code: String,
}

/// Metrics of a listener beside the gRPC service (the Kafka listener), served on the same
/// `/metrics` page under `strata_proxy_`.
pub trait MetricsSource: Send + Sync + std::fmt::Debug {
    fn register(&self, registry: &mut Registry);
}

impl MetricsSource for strata_tls::ServerTls {
    fn register(&self, registry: &mut Registry) {
        self.metrics().register(registry);
    }
}

impl MetricsSource for strata_storage::NodePool {
    fn register(&self, registry: &mut Registry) {
        self.register_metrics(registry);
    }
}

/// Counters the service updates.
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    pub requests: Family<RpcLabel, Counter>,
    pub errors: Family<ErrorLabel, Counter>,
    pub produced_bytes: Counter,
    /// Forwarding attempts that were retried (moved partition, restarting broker).
    pub produce_retries: Counter,
    pub fetched_bytes: Counter,
    /// Records a consumer's tag expression left out, and the batch bytes that saved.
    pub filtered_records: Counter,
    pub filtered_bytes: Counter,
    /// Records per topic and lane, on topics that declare lanes (at most 64 lanes each).
    pub lane_records: Family<LaneLabel, Counter>,
    /// Per (topic, lane) and partition: how far the last read by that lane's consumers
    /// through this proxy was from the partition's end.
    lane_lag: std::sync::Mutex<HashMap<(String, String), HashMap<u32, i64>>>,
    /// Message-trace events by outcome: written, failed (the write failed) or dropped (too
    /// many waiting, or no trace topic).
    pub trace_events: Family<TraceLabel, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceLabel {
    outcome: &'static str,
}

/// A lane's lag on a topic: the sum over its partitions.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLagLabel {
    topic: String,
    lane: String,
}

impl ProxyMetrics {
    /// Notes where a read by a lane's consumers ended, against the partition's end.
    pub fn lane_lag(&self, topic: &str, lane: &str, partition: u32, lag: i64) {
        let mut lags = self.lane_lag.lock().unwrap_or_else(PoisonError::into_inner);
        lags.entry((topic.to_owned(), lane.to_owned()))
            .or_default()
            .insert(partition, lag.max(0));
    }

    /// Counts one message-trace event by its outcome.
    pub fn trace_event(&self, outcome: &'static str) {
        self.trace_events
            .get_or_create(&TraceLabel { outcome })
            .inc();
    }

    /// Counts one call of `rpc`, and its error if it failed.
    pub fn record(&self, rpc: &'static str, error: Option<&v1::Error>) {
        self.requests.get_or_create(&RpcLabel { rpc }).inc();
        if let Some(e) = error {
            self.errors
                .get_or_create(&ErrorLabel {
                    rpc,
                    code: e.code.clone(),
                })
                .inc();
        }
    }

    /// Renders every metric, with the cache's figures read now.
    pub fn render(
        &self,
        cache: Option<&Arc<ReadCache>>,
        extra: &[Arc<dyn MetricsSource>],
    ) -> String {
        let mut r = Registry::with_prefix("strata_proxy");
        r.register("requests", "gRPC calls by method", self.requests.clone());
        r.register(
            "errors",
            "Failed calls by method and error code",
            self.errors.clone(),
        );
        r.register(
            "produced_bytes",
            "Record batch bytes forwarded to brokers",
            self.produced_bytes.clone(),
        );
        r.register(
            "produce_retries",
            "Forwarding attempts retried after a retriable failure",
            self.produce_retries.clone(),
        );
        r.register(
            "fetched_bytes",
            "Record batch bytes served to consumers",
            self.fetched_bytes.clone(),
        );
        r.register(
            "filtered_records",
            "Records left out of fetches by the consumer's tags, property filter or lane",
            self.filtered_records.clone(),
        );
        r.register(
            "filtered_bytes",
            "Record batch bytes not sent because a consumer's selector left records out",
            self.filtered_bytes.clone(),
        );
        r.register(
            "lane_records",
            "Records of each swimlane on topics that declare lanes, produced and delivered",
            self.lane_records.clone(),
        );
        r.register(
            "trace_events",
            "Message-trace events by outcome: written, failed, or dropped (too many waiting, or no trace topic)",
            self.trace_events.clone(),
        );
        let lane_lag = Family::<LaneLagLabel, Gauge>::default();
        for ((topic, lane), partitions) in self
            .lane_lag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let label = LaneLagLabel {
                topic: topic.clone(),
                lane: lane.clone(),
            };
            lane_lag
                .get_or_create(&label)
                .set(partitions.values().sum());
        }
        r.register(
            "lane_lag_records",
            "Records between each partition's end and the last read of it by a lane's consumers through this proxy, summed over the topic's partitions",
            lane_lag,
        );
        if let Some(cache) = cache {
            let (hits, misses, evictions, loads, prefetches, bytes) = (
                Counter::<u64>::default(),
                Counter::<u64>::default(),
                Counter::<u64>::default(),
                Counter::<u64>::default(),
                Counter::<u64>::default(),
                Gauge::<i64>::default(),
            );
            hits.inc_by(cache.stats.hits.load(Ordering::Relaxed));
            misses.inc_by(cache.stats.misses.load(Ordering::Relaxed));
            evictions.inc_by(cache.stats.evictions.load(Ordering::Relaxed));
            loads.inc_by(cache.stats.object_loads.load(Ordering::Relaxed));
            prefetches.inc_by(cache.stats.prefetches.load(Ordering::Relaxed));
            bytes.set(cache.bytes() as i64);
            r.register(
                "cache_hits",
                "Segment reads served from the read cache",
                hits,
            );
            r.register("cache_misses", "Segment reads that went to storage", misses);
            r.register(
                "cache_evictions",
                "Objects dropped from the read cache",
                evictions,
            );
            r.register(
                "cache_flush_object_loads",
                "Flush objects fetched whole for tail reads, every section cached at once",
                loads,
            );
            r.register(
                "cache_prefetches",
                "Newly committed segments fetched into the read cache before a reader asked",
                prefetches,
            );
            r.register("cache_bytes", "Bytes held by the read cache", bytes);
        }
        for source in extra {
            source.register(&mut r);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &r).is_err() {
            out.clear();
        }
        out
    }
}

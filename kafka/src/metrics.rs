//! Metrics of the Kafka listener, on the proxy's `/metrics` page as `strata_proxy_kafka_*`.
//! The calls the handlers make into the proxy's service are counted there as well
//! (`strata_proxy_requests{rpc=...}`), whichever protocol they came from.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use strata_proxy::MetricsSource;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabel {
    pub api: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MechanismLabel {
    pub mechanism: &'static str,
}

#[derive(Debug, Default)]
pub struct KafkaMetrics {
    /// Successful SASL logins, by mechanism.
    pub sasl_logins: Family<MechanismLabel, Counter>,
    /// Failed SASL logins, by mechanism ("none" when the client named none).
    pub sasl_failures: Family<MechanismLabel, Counter>,
    pub connections: Gauge,
    pub requests: Family<ApiLabel, Counter>,
    /// Answers that carried an error code somewhere, by API.
    pub unsupported_versions: Family<ApiLabel, Counter>,
    /// Connections closed because of what the client sent or did.
    pub closed: Family<ReasonLabel, Counter>,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
}

impl MetricsSource for KafkaMetrics {
    fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("kafka");
        r.register(
            "connections",
            "Open Kafka client connections",
            self.connections.clone(),
        );
        r.register("requests", "Kafka requests by API", self.requests.clone());
        r.register(
            "unsupported_versions",
            "Requests at a version outside the advertised range, by API",
            self.unsupported_versions.clone(),
        );
        r.register(
            "closed_connections",
            "Connections closed because of bad input, by reason",
            self.closed.clone(),
        );
        r.register(
            "received_bytes",
            "Request bytes received",
            self.bytes_in.clone(),
        );
        r.register("sent_bytes", "Response bytes sent", self.bytes_out.clone());
        r.register(
            "sasl_logins",
            "Successful SASL logins, by mechanism",
            self.sasl_logins.clone(),
        );
        r.register(
            "sasl_failures",
            "Failed SASL logins, by mechanism",
            self.sasl_failures.clone(),
        );
    }
}

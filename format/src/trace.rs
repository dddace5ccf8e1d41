//! Message traces: the path of sampled records (a topic's `trace_sample_ppm`).

/// The internal topic that message-trace events go to; the catalog creates it when a topic
/// first turns tracing on.
pub const TRACE_TOPIC: &str = "__strata_trace";

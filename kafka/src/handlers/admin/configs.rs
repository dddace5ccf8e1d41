//! Topic settings under their Kafka names, and DescribeConfigs.
//!
//! A Strata topic has three Kafka settings (retention.ms, retention.bytes, segment.bytes) and
//! three of its own, strata.lanes (its swimlanes, a list), strata.max.delay.ms (the longest
//! delay a record may ask for) and strata.trace.sample.ppm (parts per million of its messages
//! whose path is traced); it always deletes old segments, so cleanup.policy is shown as
//! `delete`, read-only, and only `delete` is accepted for it.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strata_catalog::admin::{MAX_TRACE_SAMPLE_PPM, TopicConfigChange};
use strata_meta::schema::{self, TopicConfig};

use super::{RESOURCE_BROKER, RESOURCE_TOPIC, Refusal, outcome};
use crate::codes;
use crate::handlers::Call;
use strata_catalog::acls::{Operation, ResourceType};
use strata_proto::Coded as _;

const RETENTION_MS: &str = "retention.ms";
const RETENTION_BYTES: &str = "retention.bytes";
const SEGMENT_BYTES: &str = "segment.bytes";
const CLEANUP_POLICY: &str = "cleanup.policy";
const LANES: &str = "strata.lanes";
const MAX_DELAY_MS: &str = "strata.max.delay.ms";
const TRACE_SAMPLE_PPM: &str = "strata.trace.sample.ppm";
const DELETE_POLICY: &str = "delete";

/// Kafka's config sources (DescribeConfigs v1+).
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
/// Kafka's config types (DescribeConfigs v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

/// One setting as DescribeConfigs and CreateTopics v5+ show it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub name: &'static str,
    pub value: String,
    pub source: i8,
    pub read_only: bool,
    config_type: i8,
    doc: &'static str,
}

impl Entry {
    fn topic(
        name: &'static str,
        value: i128,
        default: i128,
        config_type: i8,
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            value: value.to_string(),
            source: if value == default {
                SOURCE_DEFAULT
            } else {
                SOURCE_DYNAMIC_TOPIC
            },
            read_only: false,
            config_type,
            doc,
        }
    }

    fn fixed(
        name: &'static str,
        value: String,
        source: i8,
        config_type: i8,
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            value,
            source,
            read_only: true,
            config_type,
            doc,
        }
    }
}

/// A topic's settings under their Kafka names.
pub(super) fn topic_entries(config: &TopicConfig) -> Vec<Entry> {
    vec![
        Entry::fixed(
            CLEANUP_POLICY,
            DELETE_POLICY.to_owned(),
            SOURCE_DEFAULT,
            TYPE_LIST,
            "Strata topics delete old segments; compaction is not offered",
        ),
        Entry::topic(
            RETENTION_BYTES,
            config.retention_bytes.into(),
            schema::DEFAULT_RETENTION_BYTES.into(),
            TYPE_LONG,
            "Delete the oldest segments while a partition holds more than this many bytes; -1 for no limit",
        ),
        Entry::topic(
            RETENTION_MS,
            config.retention_ms.into(),
            schema::DEFAULT_RETENTION_MS.into(),
            TYPE_LONG,
            "Delete segments whose newest record is older than this; -1 keeps them forever",
        ),
        // LONG rather than Kafka's INT: Strata segments may be larger than 2 GiB.
        Entry::topic(
            SEGMENT_BYTES,
            config.segment_bytes.into(),
            schema::DEFAULT_SEGMENT_BYTES.into(),
            TYPE_LONG,
            "Compaction merges small flushed objects into segments of about this size",
        ),
        Entry {
            name: LANES,
            value: config.lanes.join(","),
            source: if config.lanes.is_empty() {
                SOURCE_DEFAULT
            } else {
                SOURCE_DYNAMIC_TOPIC
            },
            read_only: false,
            config_type: TYPE_LIST,
            doc: "Swimlanes the topic carries besides the main lane (the strata-lane header); \
                  main-lane consumers never receive their records",
        },
        Entry::topic(
            MAX_DELAY_MS,
            config.max_delay_ms.into(),
            0,
            TYPE_LONG,
            "The longest delay a record may ask for, in milliseconds (at most 30 days, below \
             retention.ms, with retention.bytes -1); 0 refuses delayed records",
        ),
        Entry::topic(
            TRACE_SAMPLE_PPM,
            config.trace_sample_ppm.into(),
            0,
            TYPE_INT,
            "Parts per million of the messages whose path is traced to the __strata_trace \
             topic (0 to 1000000; 10000 traces 1%); 0 turns tracing off",
        ),
    ]
}

/// What a broker resource shows: the listener's fixed settings and the topic defaults, all
/// read-only, because tools describe brokers routinely and an error would stop them.
fn broker_entries(ctx: &Call<'_>) -> Vec<Entry> {
    vec![
        Entry::fixed(
            "auto.create.topics.enable",
            ctx.config.auto_create_topics.to_string(),
            SOURCE_STATIC_BROKER,
            TYPE_BOOLEAN,
            "Set with the proxy's [proxy.kafka] settings",
        ),
        Entry::fixed(
            "log.retention.bytes",
            schema::DEFAULT_RETENTION_BYTES.to_string(),
            SOURCE_DEFAULT,
            TYPE_LONG,
            "retention.bytes of new topics",
        ),
        Entry::fixed(
            "log.retention.ms",
            schema::DEFAULT_RETENTION_MS.to_string(),
            SOURCE_DEFAULT,
            TYPE_LONG,
            "retention.ms of new topics",
        ),
        Entry::fixed(
            "log.segment.bytes",
            schema::DEFAULT_SEGMENT_BYTES.to_string(),
            SOURCE_DEFAULT,
            TYPE_LONG,
            "segment.bytes of new topics",
        ),
        Entry::fixed(
            "num.partitions",
            ctx.config.default_partitions.to_string(),
            SOURCE_STATIC_BROKER,
            TYPE_INT,
            "Partitions of topics created without a count; set with the proxy's [proxy.kafka] settings",
        ),
    ]
}

pub(super) fn invalid_config(message: String) -> Refusal {
    Refusal::new(codes::INVALID_CONFIG, message)
}

fn parse_limit(name: &str, value: &str) -> Result<i64, Refusal> {
    value.trim().parse().map_err(|_| {
        invalid_config(format!(
            "{name} must be an integer (or -1 for no limit); got `{value}`"
        ))
    })
}

fn parse_segment_bytes(value: &str) -> Result<u64, Refusal> {
    value.trim().parse().map_err(|_| {
        invalid_config(format!(
            "{SEGMENT_BYTES} must be a positive number of bytes; got `{value}`"
        ))
    })
}

fn parse_max_delay(value: &str) -> Result<i64, Refusal> {
    value.trim().parse().map_err(|_| {
        invalid_config(format!(
            "{MAX_DELAY_MS} must be a number of milliseconds (0 refuses delayed records); got `{value}`"
        ))
    })
}

fn parse_trace_sample(value: &str) -> Result<u32, Refusal> {
    value
        .trim()
        .parse()
        .ok()
        .filter(|ppm| *ppm <= MAX_TRACE_SAMPLE_PPM)
        .ok_or_else(|| {
            invalid_config(format!(
                "{TRACE_SAMPLE_PPM} must be a whole number of parts per million from 0 (tracing off) to {MAX_TRACE_SAMPLE_PPM} (every message; 10000 traces 1%); got `{value}`"
            ))
        })
}

fn check_cleanup_policy(value: Option<&str>) -> Result<(), Refusal> {
    match value.map(str::trim) {
        None | Some(DELETE_POLICY) => Ok(()),
        Some(other) => Err(invalid_config(format!(
            "{CLEANUP_POLICY}=`{other}` is not supported: Strata topics only delete old segments; use {CLEANUP_POLICY}=delete or leave it out"
        ))),
    }
}

fn unknown_config(name: &str) -> Refusal {
    invalid_config(format!(
        "unknown topic config `{name}`; Strata topics take {RETENTION_MS}, {RETENTION_BYTES}, {SEGMENT_BYTES}, {LANES}, {MAX_DELAY_MS}, {TRACE_SAMPLE_PPM} and {CLEANUP_POLICY}=delete"
    ))
}

/// Whether `name` is a topic setting this listener knows.
pub(super) fn is_known(name: &str) -> bool {
    matches!(
        name,
        RETENTION_MS
            | RETENTION_BYTES
            | SEGMENT_BYTES
            | CLEANUP_POLICY
            | LANES
            | MAX_DELAY_MS
            | TRACE_SAMPLE_PPM
    )
}

/// Sets one named setting in `change`; `None` as the value means "back to the default".
pub(super) fn set(
    change: &mut TopicConfigChange,
    name: &str,
    value: Option<&str>,
) -> Result<(), Refusal> {
    match name {
        RETENTION_MS => {
            change.retention_ms = Some(match value {
                Some(v) => parse_limit(name, v)?,
                None => schema::DEFAULT_RETENTION_MS,
            });
        }
        RETENTION_BYTES => {
            change.retention_bytes = Some(match value {
                Some(v) => parse_limit(name, v)?,
                None => schema::DEFAULT_RETENTION_BYTES,
            });
        }
        SEGMENT_BYTES => {
            change.segment_bytes = Some(match value {
                Some(v) => parse_segment_bytes(v)?,
                None => schema::DEFAULT_SEGMENT_BYTES,
            });
        }
        CLEANUP_POLICY => check_cleanup_policy(value)?,
        LANES => change.lanes = Some(value.map(lane_list).unwrap_or_default()),
        MAX_DELAY_MS => {
            change.max_delay_ms = Some(value.map(parse_max_delay).transpose()?.unwrap_or(0))
        }
        TRACE_SAMPLE_PPM => {
            change.trace_sample_ppm = Some(value.map(parse_trace_sample).transpose()?.unwrap_or(0))
        }
        other => return Err(unknown_config(other)),
    }
    Ok(())
}

/// IncrementalAlterConfigs' APPEND (`add`) or SUBTRACT to a list setting: only strata.lanes
/// is one.
pub(super) fn change_list(
    change: &mut TopicConfigChange,
    name: &str,
    value: Option<&str>,
    add: bool,
) -> Result<(), Refusal> {
    if name != LANES {
        return Err(Refusal::new(
            codes::INVALID_REQUEST,
            format!(
                "APPEND and SUBTRACT apply to list settings only ({LANES}), and `{name}` is not one; use SET"
            ),
        ));
    }
    let lanes = value.map(lane_list).unwrap_or_default();
    if add {
        change.add_lanes.extend(lanes);
    } else {
        change.remove_lanes.extend(lanes);
    }
    Ok(())
}

/// `a, b` as lane names; the catalog checks each.
fn lane_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|lane| !lane.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(in crate::handlers) async fn describe_configs(
    ctx: &Call<'_>,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let entries = match resource.resource_type {
            RESOURCE_TOPIC => {
                let name = &resource.resource_name;
                match ctx
                    .access
                    .check(Operation::DescribeConfigs, ResourceType::Topic, name)
                    .await
                {
                    Ok(()) => ctx.service.admin().topic(name).await,
                    Err(e) => Err(e),
                }
                .map(|view| topic_entries(&view.config))
                .map_err(|e| Refusal::of_catalog(&e, codes::INVALID_REQUEST))
            }
            // An empty name is the cluster-wide default; a number is one broker. Every proxy
            // has the same settings, so all get the same answer.
            RESOURCE_BROKER
                if resource.resource_name.is_empty()
                    || resource.resource_name.parse::<i32>().is_ok() =>
            {
                ctx.access
                    .check_cluster(Operation::DescribeConfigs)
                    .await
                    .map(|()| broker_entries(ctx))
                    .map_err(|e| Refusal::new(codes::cluster_code(e.code()), e.to_string()))
            }
            RESOURCE_BROKER => Err(Refusal::new(
                codes::INVALID_REQUEST,
                format!(
                    "broker `{}` is not a broker id; give a node id from Metadata",
                    &*resource.resource_name
                ),
            )),
            other => Err(Refusal::new(
                codes::INVALID_REQUEST,
                format!(
                    "resource type {other} is not described here; describe topics (type 2) or brokers (type 4)"
                ),
            )),
        };
        // Kafka's Java client sends null for "every key", some tools an empty list: both mean all.
        let wanted = resource.configuration_keys.filter(|keys| !keys.is_empty());
        let (configs, result) = match entries {
            Ok(entries) => (
                entries
                    .into_iter()
                    .filter(|e| {
                        wanted
                            .as_ref()
                            .is_none_or(|keys| keys.iter().any(|k| &**k == e.name))
                    })
                    .map(|e| {
                        describe_entry(e, request.include_synonyms, request.include_documentation)
                    })
                    .collect(),
                Ok(()),
            ),
            Err(r) => (Vec::new(), Err(r)),
        };
        let (error_code, error_message) = outcome(&result);
        results.push(
            DescribeConfigsResult::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_configs(configs),
        );
    }
    DescribeConfigsResponse::default().with_results(results)
}

fn describe_entry(e: Entry, synonyms: bool, documentation: bool) -> DescribeConfigsResourceResult {
    let value = Some(StrBytes::from_string(e.value));
    // Kafka lists the entry's own source as its first synonym; there are no others here.
    let synonyms = if synonyms {
        vec![
            DescribeConfigsSynonym::default()
                .with_name(StrBytes::from_static_str(e.name))
                .with_value(value.clone())
                .with_source(e.source),
        ]
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(e.name))
        .with_value(value)
        .with_read_only(e.read_only)
        .with_config_source(e.source)
        .with_synonyms(synonyms)
        .with_config_type(e.config_type)
        .with_documentation(documentation.then(|| StrBytes::from_static_str(e.doc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_reasons() {
        let mut change = TopicConfigChange::default();
        set(&mut change, RETENTION_MS, Some("60000")).unwrap();
        set(&mut change, RETENTION_BYTES, None).unwrap();
        set(&mut change, CLEANUP_POLICY, Some("delete")).unwrap();
        assert_eq!(change.retention_ms, Some(60_000));
        assert_eq!(
            change.retention_bytes,
            Some(schema::DEFAULT_RETENTION_BYTES)
        );
        assert_eq!(change.segment_bytes, None);
        for (name, value, needle) in [
            (RETENTION_MS, "soon", "retention.ms must be an integer"),
            (SEGMENT_BYTES, "-1", "segment.bytes must be a positive"),
            (
                CLEANUP_POLICY,
                "compact",
                "cleanup.policy=`compact` is not supported",
            ),
            (
                "min.insync.replicas",
                "2",
                "unknown topic config `min.insync.replicas`",
            ),
        ] {
            let refusal = set(&mut change, name, Some(value)).unwrap_err();
            assert_eq!(refusal.code, codes::INVALID_CONFIG);
            assert!(refusal.message.contains(needle), "{}", refusal.message);
        }
    }

    #[test]
    fn lanes_are_a_list_that_append_and_subtract_change() {
        let mut change = TopicConfigChange::default();
        set(&mut change, LANES, Some(" test-alice, test-bob ,")).unwrap();
        assert_eq!(
            change.lanes.as_deref(),
            Some(&["test-alice".to_owned(), "test-bob".to_owned()][..])
        );
        set(&mut change, LANES, None).unwrap();
        assert_eq!(change.lanes, Some(Vec::new()));
        change_list(&mut change, LANES, Some("test-carol"), true).unwrap();
        change_list(&mut change, LANES, Some("test-bob"), false).unwrap();
        assert_eq!(change.add_lanes, ["test-carol"]);
        assert_eq!(change.remove_lanes, ["test-bob"]);
        let refusal = change_list(&mut change, RETENTION_MS, Some("1"), true).unwrap_err();
        assert_eq!(refusal.code, codes::INVALID_REQUEST);
        assert!(
            refusal.message.contains("list settings only"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn max_delay_is_milliseconds_and_delete_turns_it_off() {
        let mut change = TopicConfigChange::default();
        set(&mut change, MAX_DELAY_MS, Some(" 60000 ")).unwrap();
        assert_eq!(change.max_delay_ms, Some(60_000));
        set(&mut change, MAX_DELAY_MS, None).unwrap();
        assert_eq!(
            change.max_delay_ms,
            Some(0),
            "back to the default: no delays"
        );
        let refusal = set(&mut change, MAX_DELAY_MS, Some("1h")).unwrap_err();
        assert_eq!(refusal.code, codes::INVALID_CONFIG);
        assert!(
            refusal
                .message
                .contains("strata.max.delay.ms must be a number"),
            "{}",
            refusal.message
        );
        let refusal = change_list(&mut change, MAX_DELAY_MS, Some("1"), true).unwrap_err();
        assert_eq!(refusal.code, codes::INVALID_REQUEST);
        assert!(is_known(MAX_DELAY_MS));
    }

    #[test]
    fn trace_sample_is_parts_per_million_and_delete_turns_it_off() {
        let mut change = TopicConfigChange::default();
        set(&mut change, TRACE_SAMPLE_PPM, Some(" 10000 ")).unwrap();
        assert_eq!(change.trace_sample_ppm, Some(10_000));
        set(&mut change, TRACE_SAMPLE_PPM, Some("1000000")).unwrap();
        assert_eq!(change.trace_sample_ppm, Some(1_000_000));
        set(&mut change, TRACE_SAMPLE_PPM, None).unwrap();
        assert_eq!(
            change.trace_sample_ppm,
            Some(0),
            "back to the default: tracing off"
        );
        for bad in ["1%", "-1", "0.5", "1000001", "99999999999"] {
            let refusal = set(&mut change, TRACE_SAMPLE_PPM, Some(bad)).unwrap_err();
            assert_eq!(refusal.code, codes::INVALID_CONFIG);
            assert!(
                refusal.message.contains(
                    "strata.trace.sample.ppm must be a whole number of parts per million from 0"
                ) && refusal.message.contains("to 1000000")
                    && refusal.message.contains(&format!("got `{bad}`")),
                "{}",
                refusal.message
            );
        }
        assert_eq!(
            change.trace_sample_ppm,
            Some(0),
            "a refusal changes nothing"
        );
        let refusal = change_list(&mut change, TRACE_SAMPLE_PPM, Some("1"), true).unwrap_err();
        assert_eq!(refusal.code, codes::INVALID_REQUEST);
        assert!(is_known(TRACE_SAMPLE_PPM));
        let unknown = set(&mut change, "strata.trace", Some("1")).unwrap_err();
        assert!(
            unknown.message.contains(TRACE_SAMPLE_PPM),
            "{}",
            unknown.message
        );
    }

    #[test]
    fn a_setting_is_default_only_when_it_equals_the_default() {
        let mut config = TopicConfig {
            id: 1,
            partitions: 1,
            retention_ms: schema::DEFAULT_RETENTION_MS,
            retention_bytes: 1 << 20,
            segment_bytes: schema::DEFAULT_SEGMENT_BYTES,
            created_ms: 0,
            lanes: Vec::new(),
            lane_filtering: false,
            max_delay_ms: 0,
            delay_filtering: false,
            trace_sample_ppm: 0,
        };
        let sources = |config: &TopicConfig| -> Vec<(&str, i8)> {
            topic_entries(config)
                .iter()
                .map(|e| (e.name, e.source))
                .collect()
        };
        assert_eq!(
            sources(&config),
            [
                (CLEANUP_POLICY, SOURCE_DEFAULT),
                (RETENTION_BYTES, SOURCE_DYNAMIC_TOPIC),
                (RETENTION_MS, SOURCE_DEFAULT),
                (SEGMENT_BYTES, SOURCE_DEFAULT),
                (LANES, SOURCE_DEFAULT),
                (MAX_DELAY_MS, SOURCE_DEFAULT),
                (TRACE_SAMPLE_PPM, SOURCE_DEFAULT),
            ]
        );
        config.retention_ms = 1000;
        assert!(sources(&config).contains(&(RETENTION_MS, SOURCE_DYNAMIC_TOPIC)));
        config.lanes = vec!["test-alice".into(), "test-bob".into()];
        assert!(sources(&config).contains(&(LANES, SOURCE_DYNAMIC_TOPIC)));
        let lanes = topic_entries(&config).into_iter().find(|e| e.name == LANES);
        assert_eq!(lanes.unwrap().value, "test-alice,test-bob");
        config.max_delay_ms = 60_000;
        assert!(sources(&config).contains(&(MAX_DELAY_MS, SOURCE_DYNAMIC_TOPIC)));
        let delay = topic_entries(&config)
            .into_iter()
            .find(|e| e.name == MAX_DELAY_MS);
        assert_eq!(delay.unwrap().value, "60000");
        config.trace_sample_ppm = 10_000;
        assert!(sources(&config).contains(&(TRACE_SAMPLE_PPM, SOURCE_DYNAMIC_TOPIC)));
        let trace = topic_entries(&config)
            .into_iter()
            .find(|e| e.name == TRACE_SAMPLE_PPM)
            .unwrap();
        assert_eq!(
            (trace.value.as_str(), trace.config_type),
            ("10000", TYPE_INT)
        );
    }
}

//! The Kafka topic-administration APIs, byte level, against a whole Strata in process; and
//! kafka-python's admin client, producer and consumer against the same.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{
    AlterConfigsRequest, BrokerId, CreatePartitionsRequest, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, TopicName, alter_configs_request,
    incremental_alter_configs_request,
};
use kafka_protocol::protocol::{Request, StrBytes};
use serde_json::Value;
use strata_integration_tests::InProcess;
use strata_integration_tests::kafka_wire::KafkaWire;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;
const DEFAULT_RETENTION_MS: &str = "604800000";

/// One Kafka connection: the shared byte-level client, failing the test on any error.
struct Kafka(KafkaWire);

impl Kafka {
    async fn connect(addr: &str) -> Self {
        Self(KafkaWire::connect(addr.parse().unwrap()).await.unwrap())
    }

    async fn call<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        self.0.call(version, request).await.unwrap()
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn creatable(topic: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string((*k).to_owned()))
                        .with_value(Some(StrBytes::from_string((*v).to_owned())))
                })
                .collect(),
        )
}

async fn create(
    kafka: &mut Kafka,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
) -> CreateTopicsResponse {
    let request = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only);
    kafka.call(7, &request).await
}

async fn describe(
    kafka: &mut Kafka,
    resource_type: i8,
    resource: &str,
    keys: Option<&[&str]>,
) -> DescribeConfigsResult {
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(resource.to_owned()))
                .with_configuration_keys(keys.map(|keys| {
                    keys.iter()
                        .map(|k| StrBytes::from_string((*k).to_owned()))
                        .collect()
                })),
        ])
        .with_include_synonyms(true);
    let mut response = kafka.call(4, &request).await;
    assert_eq!(response.results.len(), 1);
    response.results.remove(0)
}

/// `(value, source, read_only)` of one config in a DescribeConfigs result.
fn entry(result: &DescribeConfigsResult, key: &str) -> (String, i8, bool) {
    let e = result
        .configs
        .iter()
        .find(|c| &*c.name == key)
        .unwrap_or_else(|| panic!("{key} missing from {result:?}"));
    (
        e.value.as_deref().unwrap_or_default().to_owned(),
        e.config_source,
        e.read_only,
    )
}

async fn rest_topic(server: &InProcess, topic: &str) -> (u16, Value) {
    let response = reqwest::get(format!("http://{}/v1/topics/{topic}", server.admin))
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn incremental(
    topic: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    IncrementalAlterConfigsRequest::default()
        .with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configs(
                    ops.iter()
                        .map(|(k, op, v)| {
                            incremental_alter_configs_request::AlterableConfig::default()
                                .with_name(StrBytes::from_string((*k).to_owned()))
                                .with_config_operation(*op)
                                .with_value(v.map(|v| StrBytes::from_string(v.to_owned())))
                        })
                        .collect(),
                ),
        ])
        .with_validate_only(validate_only)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_administration_over_the_kafka_protocol() {
    let server = InProcess::start().await.unwrap();
    let mut kafka = Kafka::connect(&server.kafka).await;

    // Create with settings, next to refusals, each with its own code.
    let response = create(
        &mut kafka,
        vec![
            creatable(
                "orders",
                3,
                &[("retention.ms", "3600000"), ("cleanup.policy", "delete")],
            ),
            creatable("bad name!", 1, &[]),
            creatable("none", 0, &[]),
            creatable("strict", 1, &[("min.insync.replicas", "2")]),
            creatable("compacted", 1, &[("cleanup.policy", "compact")]),
            creatable("placed", 1, &[])
                .with_num_partitions(-1)
                .with_assignments(vec![
                    CreatableReplicaAssignment::default()
                        .with_partition_index(0)
                        .with_broker_ids(vec![BrokerId(1)]),
                ]),
            creatable("defaulted", -1, &[]),
        ],
        false,
    )
    .await;
    let codes: Vec<(String, i16)> = response
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("orders".to_owned(), 0),
            ("bad name!".to_owned(), 17),
            ("none".to_owned(), 37),
            ("strict".to_owned(), 40),
            ("compacted".to_owned(), 40),
            ("placed".to_owned(), 42),
            ("defaulted".to_owned(), 0),
        ]
    );
    let message = |i: usize| {
        response.topics[i]
            .error_message
            .as_deref()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(message(3).contains("min.insync.replicas"), "{}", message(3));
    assert!(message(5).contains("replica assignments"), "{}", message(5));
    let orders = &response.topics[0];
    assert_eq!(orders.num_partitions, 3);
    assert_eq!(orders.replication_factor, 1);
    assert!(!orders.topic_id.is_nil());
    let shown = orders.configs.as_ref().unwrap();
    let retention = shown.iter().find(|c| &*c.name == "retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.config_source, SOURCE_DYNAMIC_TOPIC);
    let (status, view) = rest_topic(&server, "defaulted").await;
    assert_eq!(status, 200);
    assert_eq!(
        view["partitions"],
        i64::from(response.topics[6].num_partitions)
    );
    assert!(response.topics[6].num_partitions >= 1);
    for refused in ["none", "strict", "compacted", "placed"] {
        assert_eq!(
            rest_topic(&server, refused).await.0,
            404,
            "{refused} was created"
        );
    }

    // validate_only checks without creating; a second create of the same name is refused.
    let dry = create(&mut kafka, vec![creatable("dry", 2, &[])], true).await;
    assert_eq!(dry.topics[0].error_code, 0);
    assert_eq!(
        rest_topic(&server, "dry").await.0,
        404,
        "validate_only created the topic"
    );
    let again = create(&mut kafka, vec![creatable("orders", 3, &[])], false).await;
    assert_eq!(again.topics[0].error_code, 36);
    let again_dry = create(&mut kafka, vec![creatable("orders", 3, &[])], true).await;
    assert_eq!(again_dry.topics[0].error_code, 36);

    // DescribeConfigs: values and sources, key filters, unknown topics, brokers.
    let described = describe(&mut kafka, TOPIC, "orders", None).await;
    assert_eq!(described.error_code, 0);
    assert_eq!(
        entry(&described, "retention.ms"),
        ("3600000".into(), SOURCE_DYNAMIC_TOPIC, false)
    );
    assert_eq!(
        entry(&described, "retention.bytes"),
        ("-1".into(), SOURCE_DEFAULT, false)
    );
    assert_eq!(
        entry(&described, "segment.bytes"),
        ((128u64 << 20).to_string(), SOURCE_DEFAULT, false)
    );
    assert_eq!(
        entry(&described, "cleanup.policy"),
        ("delete".into(), SOURCE_DEFAULT, true)
    );
    assert_eq!(described.configs[0].synonyms.len(), 1);
    let filtered = describe(&mut kafka, TOPIC, "orders", Some(&["retention.ms"])).await;
    assert_eq!(filtered.configs.len(), 1);
    assert_eq!(&*filtered.configs[0].name, "retention.ms");
    assert_eq!(
        describe(&mut kafka, TOPIC, "missing", None)
            .await
            .error_code,
        3
    );
    let broker = describe(&mut kafka, BROKER, "1", None).await;
    assert_eq!(broker.error_code, 0);
    assert!(!broker.configs.is_empty());
    assert!(broker.configs.iter().all(|c| c.read_only));

    // IncrementalAlterConfigs: SET shows in describe and in the REST view; validate_only and
    // refused operations change nothing; DELETE goes back to the default.
    let set = kafka
        .call(
            1,
            &incremental("orders", &[("retention.ms", 0, Some("60000"))], false),
        )
        .await;
    assert_eq!(
        set.responses[0].error_code, 0,
        "{:?}",
        set.responses[0].error_message
    );
    assert_eq!(
        entry(
            &describe(&mut kafka, TOPIC, "orders", None).await,
            "retention.ms"
        ),
        ("60000".into(), SOURCE_DYNAMIC_TOPIC, false)
    );
    assert_eq!(
        rest_topic(&server, "orders").await.1["retention_ms"],
        60_000
    );
    let dry = kafka
        .call(
            1,
            &incremental("orders", &[("retention.bytes", 0, Some("1000000"))], true),
        )
        .await;
    assert_eq!(dry.responses[0].error_code, 0);
    assert_eq!(rest_topic(&server, "orders").await.1["retention_bytes"], -1);
    for (ops, code) in [
        (vec![("retention.ms", 2, Some("1"))], 42),
        (vec![("retention.ms", 0, Some("never"))], 40),
        (vec![("retention.ms", 0, Some("0"))], 40),
        (vec![("max.message.bytes", 0, Some("1"))], 40),
    ] {
        let refused = kafka.call(1, &incremental("orders", &ops, false)).await;
        assert_eq!(
            refused.responses[0].error_code, code,
            "{ops:?}: {:?}",
            refused.responses[0].error_message
        );
    }
    let missing = kafka
        .call(
            1,
            &incremental("missing", &[("retention.ms", 0, Some("60000"))], false),
        )
        .await;
    assert_eq!(missing.responses[0].error_code, 3);
    assert_eq!(
        rest_topic(&server, "orders").await.1["retention_ms"],
        60_000
    );
    let reset = kafka
        .call(
            0,
            &incremental("orders", &[("retention.ms", 1, None)], false),
        )
        .await;
    assert_eq!(reset.responses[0].error_code, 0);
    assert_eq!(
        entry(
            &describe(&mut kafka, TOPIC, "orders", None).await,
            "retention.ms"
        ),
        (DEFAULT_RETENTION_MS.into(), SOURCE_DEFAULT, false)
    );

    // Legacy AlterConfigs replaces the whole set: named keys set, the others back to defaults.
    let set = kafka
        .call(
            1,
            &incremental("orders", &[("retention.ms", 0, Some("120000"))], false),
        )
        .await;
    assert_eq!(set.responses[0].error_code, 0);
    let legacy = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(StrBytes::from_static_str("orders"))
            .with_configs(vec![
                alter_configs_request::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.bytes"))
                    .with_value(Some(StrBytes::from_static_str("1048576"))),
            ]),
    ]);
    let altered = kafka.call(2, &legacy).await;
    assert_eq!(
        altered.responses[0].error_code, 0,
        "{:?}",
        altered.responses[0].error_message
    );
    let described = describe(&mut kafka, TOPIC, "orders", None).await;
    assert_eq!(
        entry(&described, "retention.bytes"),
        ("1048576".into(), SOURCE_DYNAMIC_TOPIC, false)
    );
    assert_eq!(
        entry(&described, "retention.ms"),
        (DEFAULT_RETENTION_MS.into(), SOURCE_DEFAULT, false)
    );

    // CreatePartitions grows, checks without growing, and refuses shrinking.
    let grow = |topic: &str, count: i32, validate_only: bool| {
        CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(name(topic))
                    .with_count(count),
            ])
            .with_timeout_ms(10_000)
            .with_validate_only(validate_only)
    };
    let grown = kafka.call(3, &grow("orders", 5, false)).await;
    assert_eq!(
        grown.results[0].error_code, 0,
        "{:?}",
        grown.results[0].error_message
    );
    assert_eq!(rest_topic(&server, "orders").await.1["partitions"], 5);
    let dry = kafka.call(3, &grow("orders", 8, true)).await;
    assert_eq!(dry.results[0].error_code, 0);
    assert_eq!(rest_topic(&server, "orders").await.1["partitions"], 5);
    for count in [2, 5] {
        let shrink = kafka.call(3, &grow("orders", count, false)).await;
        assert_eq!(shrink.results[0].error_code, 37, "count {count}");
    }
    assert_eq!(
        kafka.call(0, &grow("missing", 4, false)).await.results[0].error_code,
        3
    );

    // DescribeCluster lists this node, which is also the controller.
    let cluster = kafka
        .call(1, &DescribeClusterRequest::default().with_endpoint_type(1))
        .await;
    assert_eq!(cluster.error_code, 0);
    assert!(!cluster.cluster_id.is_empty());
    assert_eq!(cluster.brokers.len(), 1);
    let node = &cluster.brokers[0];
    assert_eq!(cluster.controller_id, node.broker_id);
    let port: i32 = server.kafka.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(node.port, port);
    let controllers = kafka
        .call(1, &DescribeClusterRequest::default().with_endpoint_type(2))
        .await;
    assert_ne!(controllers.error_code, 0);

    // DeleteTopics by id (v6) and by name (v4); unknown ids and names are refused.
    let by_id = DeleteTopicsRequest::default()
        .with_topics(vec![
            DeleteTopicState::default().with_topic_id(orders.topic_id),
            DeleteTopicState::default().with_topic_id(uuid_like(7)),
        ])
        .with_timeout_ms(10_000);
    let deleted = kafka.call(6, &by_id).await;
    assert_eq!(
        deleted.responses[0].error_code, 0,
        "{:?}",
        deleted.responses[0].error_message
    );
    assert_eq!(
        deleted.responses[0]
            .name
            .as_ref()
            .map(|n| n.0.to_string())
            .as_deref(),
        Some("orders")
    );
    assert_eq!(deleted.responses[1].error_code, 100);
    assert_eq!(rest_topic(&server, "orders").await.0, 404);
    let by_name = DeleteTopicsRequest::default()
        .with_topic_names(vec![name("defaulted"), name("orders")])
        .with_timeout_ms(10_000);
    let deleted = kafka.call(4, &by_name).await;
    let codes: Vec<i16> = deleted.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [0, 3]);
    assert_eq!(rest_topic(&server, "defaulted").await.0, 404);

    server.stop().await.unwrap();
}

fn uuid_like(n: u64) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair(n, n)
}

/// kafka-python end to end: create, describe, alter retention (legacy AlterConfigs and the
/// incremental API), delete; then produce and consume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_admin_roundtrip() {
    let python = std::env::var("STRATA_KAFKA_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/kafka-venv/bin/python"
        )
        .to_owned()
    });
    if !std::path::Path::new(&python).exists() {
        strata_integration_tests::prerequisite::missing(
            "kafka_python_admin_roundtrip",
            format!("the Python with kafka-python is missing at {python}"),
            "create it with scripts/setup.sh or point STRATA_KAFKA_PYTHON at one",
        );
        return;
    }
    let server = InProcess::start().await.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/kafka/admin_roundtrip.py");
    let kafka = server.kafka.clone();
    let admin = server.admin.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(kafka)
            .arg(admin)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "script failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("admin roundtrip ok"), "{stdout}");
    server.stop().await.unwrap();
}

//! Metadata: the live proxies as brokers, each partition led by one of them, topic ids, and
//! optional auto-creation of unknown topics.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strata_meta::schema::ProxyInfo;
use strata_proto::ErrorCode;
use strata_proto::v1::{self, strata_server::Strata};

use super::{Call, answer, topic_ids};
use crate::cluster::{host_port, leader_of};
use crate::codes;
use crate::error::Result;

/// Kafka's "leader epoch unknown": partitions never lose data when their leader (a proxy)
/// changes, so clients have nothing to validate against an epoch.
pub(crate) const NO_EPOCH: i32 = -1;

pub(super) async fn handle(
    ctx: &Call<'_>,
    request: MetadataRequest,
    version: i16,
) -> Result<MetadataResponse> {
    let nodes = ctx.cluster.nodes().await?;
    // v0 asks for every topic with an empty list; later versions with a null one.
    let wanted: Option<Vec<String>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .filter_map(|t| match t.name {
                    Some(name) => Some(name.0.to_string()),
                    None => ctx.topic_by_id(t.topic_id),
                })
                .collect(),
        ),
    };
    let auto_create = ctx.config.auto_create_topics
        && (version < 4 || request.allow_auto_topic_creation)
        && wanted.is_some();
    let mut topics = describe(ctx, wanted.clone().unwrap_or_default()).await;
    if auto_create {
        let mut created = false;
        for topic in topics.iter().filter(|t| unknown(t)) {
            created |= create(ctx, &topic.name).await;
        }
        if created {
            topics = describe(ctx, wanted.unwrap_or_default()).await;
        }
    }
    Ok(MetadataResponse::default()
        .with_brokers(nodes.iter().map(broker).collect())
        .with_cluster_id(Some(StrBytes::from_string(
            ctx.cluster.cluster_id().to_owned(),
        )))
        .with_controller_id(BrokerId(nodes.first().map_or(-1, |n| n.node_id)))
        .with_topics(topics.iter().map(|t| topic(t, &nodes)).collect()))
}

async fn describe(ctx: &Call<'_>, names: Vec<String>) -> Vec<v1::TopicMetadata> {
    let request = v1::MetadataRequest { topics: names };
    match answer(ctx.service.metadata(ctx.request(request.clone())).await) {
        Ok(response) => response.topics,
        Err(e) => request
            .topics
            .into_iter()
            .map(|name| v1::TopicMetadata {
                name,
                error: Some(e.clone()),
                ..Default::default()
            })
            .collect(),
    }
}

fn unknown(topic: &v1::TopicMetadata) -> bool {
    topic
        .error
        .as_ref()
        .is_some_and(|e| e.error_code() == Some(ErrorCode::UnknownTopic))
}

/// Creates an auto-created topic; `true` if it exists afterwards (made here or by a racer).
async fn create(ctx: &Call<'_>, name: &str) -> bool {
    let request = v1::CreateTopicRequest {
        name: name.to_owned(),
        partitions: ctx.config.default_partitions,
        ..Default::default()
    };
    match answer(ctx.service.create_topic(ctx.request(request)).await) {
        Ok(v1::CreateTopicResponse { error: None, .. }) => {
            tracing::info!(
                topic = name,
                partitions = ctx.config.default_partitions,
                "auto-created topic for a Kafka client"
            );
            true
        }
        Ok(v1::CreateTopicResponse { error: Some(e), .. }) | Err(e) => {
            let exists = e.error_code() == Some(ErrorCode::TopicExists);
            // A caller without Create hears UNKNOWN_TOPIC_OR_PARTITION, as from Kafka; its
            // every Metadata request is no news for the log.
            let refused = e.error_code() == Some(ErrorCode::PermissionDenied);
            if !exists && !refused {
                tracing::warn!(topic = name, error = %e.message, "cannot auto-create topic");
            }
            exists
        }
    }
}

fn broker(node: &ProxyInfo) -> MetadataResponseBroker {
    let (host, port) = host_port(&node.kafka_addr);
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(node.node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port)
        .with_rack((!node.rack.is_empty()).then(|| StrBytes::from_string(node.rack.clone())))
}

fn topic(t: &v1::TopicMetadata, nodes: &[ProxyInfo]) -> MetadataResponseTopic {
    let error = match t.error.as_ref().and_then(v1::Error::error_code) {
        None if t.error.is_none() => codes::NONE,
        Some(ErrorCode::InvalidArgument) => codes::INVALID_TOPIC_EXCEPTION,
        Some(code) => codes::kafka_code(code),
        None => codes::UNKNOWN_SERVER_ERROR,
    };
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let leader = BrokerId(leader_of(nodes, &t.name, p.partition));
            MetadataResponsePartition::default()
                .with_partition_index(p.partition as i32)
                .with_leader_id(leader)
                .with_leader_epoch(NO_EPOCH)
                .with_replica_nodes(vec![leader])
                .with_isr_nodes(vec![leader])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_error_code(error)
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_topic_id(topic_ids::topic_uuid(&t.name, t.topic_id))
        .with_partitions(partitions)
}

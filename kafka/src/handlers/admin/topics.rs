//! CreateTopics, DeleteTopics, CreatePartitions.

use std::collections::HashSet;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strata_catalog::Admin;
use strata_catalog::admin::NewTopic;
use strata_meta::schema::{self, TopicConfig};
use strata_proto::v1::{self, strata_server::Strata};
use uuid::Uuid;

use super::configs::{self, topic_entries};
use super::{Refusal, outcome};
use crate::codes;
use strata_catalog::acls::{Operation, ResourceType};

use crate::handlers::{Call, answer, topic_ids};

/// What CreateTopics v5+ reports as a topic's replication factor. Storage replicates every
/// partition below the brokers, so Kafka's replication factor has no meaning here and the one
/// requested is ignored; 1 matches Metadata, which lists the leading proxy as the only replica.
const REPORTED_REPLICATION_FACTOR: i16 = 1;
/// Kafka's "use the broker default" for num_partitions and replication_factor.
const BROKER_DEFAULT: i32 = -1;

/// A topic as requested, checked in the order Kafka reports problems: name, partition count,
/// replication, assignments, settings.
fn new_topic(ctx: &Call<'_>, topic: &CreatableTopic) -> Result<NewTopic, Refusal> {
    let name = topic.name.0.to_string();
    schema::validate_name("topic", &name)
        .map_err(|e| Refusal::new(codes::INVALID_TOPIC_EXCEPTION, e.to_string()))?;
    let partitions = if topic.num_partitions == BROKER_DEFAULT {
        i64::from(ctx.config.default_partitions)
    } else {
        i64::from(topic.num_partitions)
    };
    Admin::check_partitions(partitions)
        .map_err(|e| Refusal::new(codes::INVALID_PARTITIONS, e.to_string()))?;
    if topic.replication_factor != -1 && topic.replication_factor < 1 {
        return Err(Refusal::new(
            codes::INVALID_REPLICATION_FACTOR,
            format!(
                "replication factor must be positive or -1, got {}; storage replicates every topic, so any positive value will do",
                topic.replication_factor
            ),
        ));
    }
    if !topic.assignments.is_empty() {
        return Err(Refusal::new(
            codes::INVALID_REQUEST,
            "explicit replica assignments are not supported: Strata places partitions on brokers itself; give num_partitions instead",
        ));
    }
    let mut change = strata_catalog::admin::TopicConfigChange::default();
    for config in &topic.configs {
        let value = config.value.as_deref();
        // A null value in CreateTopics means "not set": the default, for a setting we have.
        if value.is_none() && configs::is_known(&config.name) {
            continue;
        }
        configs::set(&mut change, &config.name, value)?;
    }
    let new = NewTopic {
        name,
        partitions,
        retention_ms: change.retention_ms,
        retention_bytes: change.retention_bytes,
        segment_bytes: change.segment_bytes,
        lanes: change.lanes,
        max_delay_ms: change.max_delay_ms,
        trace_sample_ppm: change.trace_sample_ppm,
    };
    Admin::check_settings(
        new.retention_ms.unwrap_or(schema::DEFAULT_RETENTION_MS),
        new.retention_bytes
            .unwrap_or(schema::DEFAULT_RETENTION_BYTES),
        new.segment_bytes.unwrap_or(schema::DEFAULT_SEGMENT_BYTES),
    )
    .and_then(|()| Admin::check_lanes(new.lanes.as_deref().unwrap_or_default()))
    .and_then(|()| {
        Admin::check_delay(
            new.max_delay_ms.unwrap_or(0),
            new.retention_ms.unwrap_or(schema::DEFAULT_RETENTION_MS),
            new.retention_bytes
                .unwrap_or(schema::DEFAULT_RETENTION_BYTES),
        )
    })
    .and_then(|()| Admin::check_trace_sample(&new.name, new.trace_sample_ppm.unwrap_or(0)))
    .map_err(|e| Refusal::new(codes::INVALID_CONFIG, e.to_string()))?;
    Ok(new)
}

/// Creates (or, with `validate_only`, checks) one topic; its Kafka topic id when created.
async fn create_one(ctx: &Call<'_>, new: &NewTopic, validate_only: bool) -> Result<Uuid, Refusal> {
    if validate_only {
        ctx.access
            .check_topic_creation(&new.name)
            .await
            .map_err(|e| Refusal::of_catalog(&e, codes::INVALID_REQUEST))?;
        ctx.service
            .admin()
            .validate_new_topic(new)
            .await
            .map_err(|e| Refusal::of_catalog(&e, codes::INVALID_REQUEST))?;
        return Ok(Uuid::nil());
    }
    let partitions = u32::try_from(new.partitions)
        .map_err(|_| Refusal::new(codes::INVALID_PARTITIONS, "partition count out of range"))?;
    let request = v1::CreateTopicRequest {
        name: new.name.clone(),
        partitions,
        retention_ms: new.retention_ms,
        retention_bytes: new.retention_bytes,
        segment_bytes: new.segment_bytes,
        lanes: new.lanes.clone().unwrap_or_default(),
        max_delay_ms: new.max_delay_ms.unwrap_or(0),
        trace_sample_ppm: new.trace_sample_ppm.unwrap_or(0),
    };
    match answer(ctx.service.create_topic(ctx.request(request)).await) {
        Ok(v1::CreateTopicResponse { error: None, topic }) => {
            Ok(topic.map_or(Uuid::nil(), |t| topic_ids::topic_uuid(&t.name, t.topic_id)))
        }
        Ok(v1::CreateTopicResponse { error: Some(e), .. }) | Err(e) => {
            Err(Refusal::of_service(&e, codes::INVALID_REQUEST))
        }
    }
}

/// Names given more than once in one request: Kafka refuses each of them, not just the repeat.
fn repeated_names<'a>(names: impl Iterator<Item = &'a str>) -> HashSet<String> {
    let mut seen = HashSet::new();
    names
        .filter(|name| !seen.insert(*name))
        .map(str::to_owned)
        .collect()
}

fn named_twice() -> Refusal {
    Refusal::new(
        codes::INVALID_REQUEST,
        "the topic is named more than once in this request; name each topic once",
    )
}

pub(in crate::handlers) async fn create_topics(
    ctx: &Call<'_>,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let repeated = repeated_names(request.topics.iter().map(|t| t.name.0.as_str()));
    let mut results = Vec::with_capacity(request.topics.len());
    // Kafka's timeout_ms is not needed: creation itself waits a bounded time for placement.
    for topic in &request.topics {
        let checked = if repeated.contains(&*topic.name.0) {
            Err(named_twice())
        } else {
            new_topic(ctx, topic)
        };
        let created = match &checked {
            Ok(new) => create_one(ctx, new, request.validate_only)
                .await
                .map(|id| (new, id)),
            Err(r) => Err(r.clone()),
        };
        let mut result = CreatableTopicResult::default().with_name(topic.name.clone());
        match created {
            Ok((new, id)) => {
                if !request.validate_only {
                    tracing::info!(topic = %new.name, partitions = new.partitions, "topic created by a Kafka client");
                }
                let config = TopicConfig {
                    id: 0,
                    partitions: u32::try_from(new.partitions).unwrap_or_default(),
                    retention_ms: new.retention_ms.unwrap_or(schema::DEFAULT_RETENTION_MS),
                    retention_bytes: new
                        .retention_bytes
                        .unwrap_or(schema::DEFAULT_RETENTION_BYTES),
                    segment_bytes: new.segment_bytes.unwrap_or(schema::DEFAULT_SEGMENT_BYTES),
                    created_ms: 0,
                    lanes: new.lanes.clone().unwrap_or_default(),
                    lane_filtering: false,
                    max_delay_ms: new.max_delay_ms.unwrap_or(0),
                    delay_filtering: false,
                    trace_sample_ppm: new.trace_sample_ppm.unwrap_or(0),
                };
                let shown = topic_entries(&config)
                    .into_iter()
                    .map(|e| {
                        CreatableTopicConfigs::default()
                            .with_name(StrBytes::from_static_str(e.name))
                            .with_value(Some(StrBytes::from_string(e.value)))
                            .with_read_only(e.read_only)
                            .with_config_source(e.source)
                    })
                    .collect();
                result = result
                    .with_topic_id(id)
                    .with_num_partitions(config.partitions as i32)
                    .with_replication_factor(REPORTED_REPLICATION_FACTOR)
                    .with_configs(Some(shown));
            }
            Err(refusal) => {
                let (code, message) = outcome(&Err(refusal));
                result = result
                    .with_error_code(code)
                    .with_error_message(message)
                    .with_num_partitions(-1)
                    .with_replication_factor(-1);
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn delete_one(ctx: &Call<'_>, name: &str) -> Result<(), Refusal> {
    let request = v1::DeleteTopicRequest {
        name: name.to_owned(),
    };
    match answer(ctx.service.delete_topic(ctx.request(request)).await) {
        Ok(v1::DeleteTopicResponse { error: None }) => {
            tracing::info!(topic = name, "topic deleted by a Kafka client");
            Ok(())
        }
        Ok(v1::DeleteTopicResponse { error: Some(e) }) | Err(e) => {
            Err(Refusal::of_service(&e, codes::INVALID_TOPIC_EXCEPTION))
        }
    }
}

/// v1-5 name topics in `topic_names`; v6 in `topics`, each by name or by id.
pub(in crate::handlers) async fn delete_topics(
    ctx: &Call<'_>,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), Uuid::nil()))
        .chain(request.topics.iter().map(|t| match &t.name {
            Some(name) => (Some(name.0.to_string()), Uuid::nil()),
            None => (ctx.topic_by_id(t.topic_id), t.topic_id),
        }))
        .collect();
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let (result, topic_id) = match &name {
            Some(name) => {
                let routes = ctx.service.routes();
                let topic_id =
                    topic_ids::topic_uuid(name, routes.topic_id(name).unwrap_or_default());
                (delete_one(ctx, name).await, topic_id)
            }
            None => (
                Err(Refusal::new(
                    codes::UNKNOWN_TOPIC_ID,
                    format!("no topic has id {id}; it may be deleted already"),
                )),
                id,
            ),
        };
        let (error_code, error_message) = outcome(&result);
        responses.push(
            DeletableTopicResult::default()
                .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                .with_topic_id(topic_id)
                .with_error_code(error_code)
                .with_error_message(error_message),
        );
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

async fn grow_one(
    ctx: &Call<'_>,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<(), Refusal> {
    if validate_only {
        ctx.access
            .check(Operation::Alter, ResourceType::Topic, name)
            .await
            .map_err(|e| Refusal::of_catalog(&e, codes::INVALID_PARTITIONS))?;
        return ctx
            .service
            .admin()
            .validate_add_partitions(name, i64::from(count))
            .await
            .map_err(|e| Refusal::of_catalog(&e, codes::INVALID_PARTITIONS));
    }
    let partitions = u32::try_from(count).map_err(|_| {
        Refusal::new(
            codes::INVALID_PARTITIONS,
            format!("partition count must be positive, got {count}"),
        )
    })?;
    let request = v1::CreatePartitionsRequest {
        topic: name.to_owned(),
        partitions,
    };
    match answer(ctx.service.create_partitions(ctx.request(request)).await) {
        Ok(v1::CreatePartitionsResponse { error: None, .. }) => {
            tracing::info!(
                topic = name,
                partitions,
                "partitions added by a Kafka client"
            );
            Ok(())
        }
        Ok(v1::CreatePartitionsResponse { error: Some(e), .. }) | Err(e) => {
            Err(Refusal::of_service(&e, codes::INVALID_PARTITIONS))
        }
    }
}

pub(in crate::handlers) async fn create_partitions(
    ctx: &Call<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let repeated = repeated_names(request.topics.iter().map(|t| t.name.0.as_str()));
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let result = if repeated.contains(&*topic.name.0) {
            Err(named_twice())
        } else if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
            Err(Refusal::new(
                codes::INVALID_REQUEST,
                "explicit replica assignments are not supported: Strata places partitions on brokers itself; send the new count only",
            ))
        } else {
            grow_one(ctx, &topic.name, topic.count, request.validate_only).await
        };
        let (error_code, error_message) = outcome(&result);
        results.push(
            CreatePartitionsTopicResult::default()
                .with_name(topic.name.clone())
                .with_error_code(error_code)
                .with_error_message(error_message),
        );
    }
    CreatePartitionsResponse::default().with_results(results)
}

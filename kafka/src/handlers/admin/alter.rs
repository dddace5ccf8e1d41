//! Changing topic settings: IncrementalAlterConfigs and the legacy AlterConfigs.

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, alter_configs_response, incremental_alter_configs_response,
};
use strata_catalog::admin::TopicConfigChange;
use strata_meta::schema;

use super::configs::{change_list, invalid_config, set};
use super::{RESOURCE_BROKER, RESOURCE_TOPIC, Refusal, outcome};
use crate::codes;
use crate::handlers::Call;
use strata_catalog::acls::{Operation, ResourceType};

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Applies `change` to topic `name` (or only checks it); an empty change only checks that the
/// topic exists, since the catalog refuses a change of nothing.
async fn apply(
    ctx: &Call<'_>,
    name: &str,
    change: &TopicConfigChange,
    validate_only: bool,
) -> Result<(), Refusal> {
    ctx.access
        .check(Operation::AlterConfigs, ResourceType::Topic, name)
        .await
        .map_err(|e| Refusal::of_catalog(&e, codes::INVALID_CONFIG))?;
    let admin = ctx.service.admin();
    let result = if change.is_empty() {
        admin.topic(name).await.map(drop)
    } else if validate_only {
        admin.preview_topic_config(name, change).await.map(drop)
    } else {
        admin.alter_topic_config(name, change).await.map(drop)
    };
    result.map_err(|e| Refusal::of_catalog(&e, codes::INVALID_CONFIG))?;
    if !validate_only && !change.is_empty() {
        tracing::info!(
            topic = name,
            ?change,
            "topic settings changed by a Kafka client"
        );
    }
    Ok(())
}

fn not_a_topic(resource_type: i8) -> Refusal {
    if resource_type == RESOURCE_BROKER {
        Refusal::new(
            codes::INVALID_REQUEST,
            "broker settings cannot be changed over the Kafka protocol; set them in the proxy's configuration ([proxy.kafka])",
        )
    } else {
        Refusal::new(
            codes::INVALID_REQUEST,
            format!(
                "resource type {resource_type} has no settings to change here; only topics (type 2) do"
            ),
        )
    }
}

pub(in crate::handlers) async fn incremental_alter_configs(
    ctx: &Call<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let result = async {
            if resource.resource_type != RESOURCE_TOPIC {
                return Err(not_a_topic(resource.resource_type));
            }
            let mut change = TopicConfigChange::default();
            for config in &resource.configs {
                let value = config.value.as_deref();
                match config.config_operation {
                    OP_SET if value.is_none() => {
                        return Err(invalid_config(format!(
                            "SET of `{}` needs a value; use DELETE to go back to the default",
                            &*config.name
                        )));
                    }
                    OP_SET => set(&mut change, &config.name, value)?,
                    OP_DELETE => set(&mut change, &config.name, None)?,
                    OP_APPEND => change_list(&mut change, &config.name, value, true)?,
                    OP_SUBTRACT => change_list(&mut change, &config.name, value, false)?,
                    other => {
                        return Err(Refusal::new(
                            codes::INVALID_REQUEST,
                            format!("unknown config operation {other}; use SET (0) or DELETE (1)"),
                        ));
                    }
                }
            }
            apply(ctx, &resource.resource_name, &change, request.validate_only).await
        }
        .await;
        let (error_code, error_message) = outcome(&result);
        responses.push(
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// The legacy full replace: the settings named take their values, the others go back to
/// their defaults (what Kafka does with a topic's dynamic configs).
pub(in crate::handlers) async fn alter_configs(
    ctx: &Call<'_>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let result = async {
            if resource.resource_type != RESOURCE_TOPIC {
                return Err(not_a_topic(resource.resource_type));
            }
            let mut change = TopicConfigChange {
                retention_ms: Some(schema::DEFAULT_RETENTION_MS),
                retention_bytes: Some(schema::DEFAULT_RETENTION_BYTES),
                segment_bytes: Some(schema::DEFAULT_SEGMENT_BYTES),
                lanes: Some(Vec::new()),
                max_delay_ms: Some(0),
                trace_sample_ppm: Some(0),
                ..TopicConfigChange::default()
            };
            for config in &resource.configs {
                set(&mut change, &config.name, config.value.as_deref())?;
            }
            apply(ctx, &resource.resource_name, &change, request.validate_only).await
        }
        .await;
        let (error_code, error_message) = outcome(&result);
        responses.push(
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

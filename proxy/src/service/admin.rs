//! Topic administration over gRPC, for SDK users: the same operations (and the same
//! compare-and-swap safety) as the controller's admin REST API, which any controller serves
//! without being the active one.

use strata_catalog::acls::{Access, Operation, ResourceType};
use strata_catalog::admin::NewTopic;
use strata_proto::{Coded, v1};

use super::ProxyService;
use super::access::check;

impl ProxyService {
    /// A topic's partitions with their owners, as the routing table knows them.
    pub(super) fn topic_metadata(&self, name: String) -> v1::TopicMetadata {
        match self.routes.partitions(&name) {
            Err((code, message)) => v1::TopicMetadata {
                name,
                partitions: Vec::new(),
                error: Some(v1::Error::new(code, message)),
                ..Default::default()
            },
            Ok(count) => {
                let partitions = (0..count)
                    .map(|p| {
                        let route = self.routes.route(&name, p).ok().flatten();
                        v1::PartitionMetadata {
                            partition: p,
                            broker: route.as_ref().map(|r| r.broker.clone()).unwrap_or_default(),
                            epoch: route.map_or(0, |r| r.epoch),
                        }
                    })
                    .collect();
                v1::TopicMetadata {
                    topic_id: self.routes.topic_id(&name).unwrap_or_default(),
                    lanes: self.routes.lanes(&name),
                    max_delay_ms: self.routes.max_delay_ms(&name).unwrap_or_default(),
                    trace_sample_ppm: self.routes.trace_sample_ppm(&name),
                    name,
                    partitions,
                    error: None,
                }
            }
        }
    }

    /// The routing table after a change we just made, so the answer shows it.
    async fn refreshed_metadata(&self, name: String) -> v1::TopicMetadata {
        if let Err(e) = self.routes.reload().await {
            tracing::warn!(error = %e, "reloading routes after an admin change failed");
        }
        self.topic_metadata(name)
    }

    pub(super) async fn create_topic_call(
        &self,
        access: &Access,
        r: v1::CreateTopicRequest,
    ) -> v1::CreateTopicResponse {
        if let Err(e) = access.check_topic_creation(&r.name).await {
            return v1::CreateTopicResponse {
                error: Some(e.to_wire()),
                topic: None,
            };
        }
        let new = NewTopic {
            name: r.name.clone(),
            partitions: i64::from(r.partitions),
            retention_ms: r.retention_ms,
            retention_bytes: r.retention_bytes,
            segment_bytes: r.segment_bytes,
            lanes: (!r.lanes.is_empty()).then(|| r.lanes.clone()),
            max_delay_ms: (r.max_delay_ms != 0).then_some(r.max_delay_ms),
            trace_sample_ppm: (r.trace_sample_ppm != 0).then_some(r.trace_sample_ppm),
        };
        match self.admin.create_topic(new).await {
            Ok(_) => v1::CreateTopicResponse {
                error: None,
                topic: Some(self.refreshed_metadata(r.name).await),
            },
            Err(e) => v1::CreateTopicResponse {
                error: Some(e.to_wire()),
                topic: None,
            },
        }
    }

    pub(super) async fn delete_topic_call(
        &self,
        access: &Access,
        r: v1::DeleteTopicRequest,
    ) -> v1::DeleteTopicResponse {
        if let Err(e) = check(access, Operation::Delete, ResourceType::Topic, &r.name).await {
            return v1::DeleteTopicResponse { error: Some(e) };
        }
        let error = match self.admin.delete_topic(&r.name).await {
            Ok(()) => {
                let _ = self.routes.reload().await;
                None
            }
            Err(e) => Some(e.to_wire()),
        };
        v1::DeleteTopicResponse { error }
    }

    pub(super) async fn create_partitions_call(
        &self,
        access: &Access,
        r: v1::CreatePartitionsRequest,
    ) -> v1::CreatePartitionsResponse {
        if let Err(e) = check(access, Operation::Alter, ResourceType::Topic, &r.topic).await {
            return v1::CreatePartitionsResponse {
                error: Some(e),
                topic: None,
            };
        }
        match self
            .admin
            .add_partitions(&r.topic, i64::from(r.partitions))
            .await
        {
            Ok(_) => v1::CreatePartitionsResponse {
                error: None,
                topic: Some(self.refreshed_metadata(r.topic).await),
            },
            Err(e) => v1::CreatePartitionsResponse {
                error: Some(e.to_wire()),
                topic: None,
            },
        }
    }
}

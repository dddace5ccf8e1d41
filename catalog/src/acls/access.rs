//! What one request may do: who sent it, and the rules of the listener it came through.

use std::sync::Arc;

use super::{Authorizer, CLUSTER_NAME, Operation, ResourceType};
use crate::error::{CatalogError, Result};

/// A request's principal with its listener's [`Authorizer`]. Listeners attach one to every
/// request, and the handlers ask it before they act.
#[derive(Debug, Clone)]
pub struct Access {
    principal: Option<String>,
    authorizer: Arc<Authorizer>,
}

impl Access {
    pub fn new(principal: Option<String>, authorizer: Arc<Authorizer>) -> Self {
        Self {
            principal,
            authorizer,
        }
    }

    /// `User:<name>`, or `None` for an anonymous caller.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// Whether rules decide for this listener (authentication is on).
    pub fn enforced(&self) -> bool {
        self.authorizer.enforced()
    }

    /// Whether the caller may do `operation` on `resource_type` `name`.
    pub async fn allows(
        &self,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<bool> {
        self.authorizer
            .authorize(self.principal(), operation, resource_type, name)
            .await
    }

    /// Whether the caller may write to at least one topic, existing or not, by the rules
    /// alone (see [`Authorizer::authorize_some`]). Kafka lets a producer with Write on any
    /// topic ask for an idempotent producer id without IdempotentWrite on the cluster
    /// (KIP-679); a failure to read the rules is an error, not a refusal.
    pub async fn may_write_some_topic(&self) -> Result<bool> {
        self.authorizer
            .authorize_some(self.principal(), Operation::Write, ResourceType::Topic)
            .await
    }

    /// Refuses unless the caller may do `operation` on `resource_type` `name`: PERMISSION_DENIED
    /// with a message naming the resource and the rule that would allow it.
    pub async fn check(
        &self,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<()> {
        if self.allows(operation, resource_type, name).await? {
            return Ok(());
        }
        Err(self.refusal(operation, resource_type, name))
    }

    /// Refuses unless the caller may do `operation` on the cluster.
    pub async fn check_cluster(&self, operation: Operation) -> Result<()> {
        self.check(operation, ResourceType::Cluster, CLUSTER_NAME)
            .await
    }

    /// Creating a topic takes Create on the cluster (any topic) or on the topic itself, as in
    /// Kafka; the refusal names the topic.
    pub async fn check_topic_creation(&self, topic: &str) -> Result<()> {
        if self
            .allows(Operation::Create, ResourceType::Cluster, CLUSTER_NAME)
            .await?
        {
            return Ok(());
        }
        self.check(Operation::Create, ResourceType::Topic, topic)
            .await
    }

    /// The items of a listing the caller may `operation`: a listing leaves out what the
    /// caller may not see rather than failing.
    pub async fn retain<T>(
        &self,
        items: Vec<T>,
        operation: Operation,
        resource_type: ResourceType,
        name: impl Fn(&T) -> &str,
    ) -> Result<Vec<T>> {
        if !self.enforced() {
            return Ok(items);
        }
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            if self.allows(operation, resource_type, name(&item)).await? {
                kept.push(item);
            }
        }
        Ok(kept)
    }

    /// The refusal of `operation` on `resource_type` `name` for this caller.
    pub fn refusal(
        &self,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> CatalogError {
        let (what, flag) = match resource_type {
            ResourceType::Topic => (format!("topic `{name}`"), format!("--topic {name}")),
            ResourceType::Group => (format!("group `{name}`"), format!("--group {name}")),
            ResourceType::Cluster => ("the cluster".to_owned(), "--cluster".to_owned()),
            ResourceType::TransactionalId => (
                format!("transactional id `{name}`"),
                format!("--transactional-id {name}"),
            ),
        };
        let message = match self.principal() {
            Some(principal) => format!(
                "{principal} may not {operation:?} {what}: no ACL rule allows it, or one denies \
                 it; a super user can allow it with `strata acl add --allow-principal \
                 {principal} --operation {operation:?} {flag}`"
            ),
            None => format!(
                "an anonymous caller may not {operation:?} {what}: authenticate (SASL for Kafka \
                 clients, a token or a client certificate for gRPC and REST)"
            ),
        };
        CatalogError::PermissionDenied(message)
    }
}

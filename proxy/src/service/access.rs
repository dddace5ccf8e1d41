//! Which calls a caller may make: every method asks the request's [`Access`] before it acts.
//!
//! A request from the Kafka listener carries the listener's own [`Access`] (its SASL principal
//! and rules); one from a gRPC client carries the [`Caller`] that authentication found, judged
//! by this service's authorizer.

use std::collections::{HashMap, HashSet};

use strata_catalog::CatalogError;
use strata_catalog::acls::{Access, Operation, ResourceType};
use strata_catalog::auth::Caller;
use strata_proto::{Coded as _, v1};
use tonic::Request;

use super::ProxyService;

impl ProxyService {
    /// The access of the caller of `request`.
    pub(super) fn access<T>(&self, request: &Request<T>) -> Access {
        if let Some(access) = request.extensions().get::<Access>() {
            return access.clone();
        }
        let principal = request
            .extensions()
            .get::<Caller>()
            .and_then(|caller| caller.0.clone());
        Access::new(principal, self.authorizer.clone())
    }
}

/// Refuses unless `access` may do `operation` on `resource_type` `name`, as a wire error.
pub(super) async fn check(
    access: &Access,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> Result<(), v1::Error> {
    access
        .check(operation, resource_type, name)
        .await
        .map_err(|e| e.to_wire())
}

/// Decisions on many topics for one request, each topic asked once.
pub(super) struct TopicDecisions<'a> {
    access: &'a Access,
    operation: Operation,
    decided: HashMap<String, Option<v1::Error>>,
}

impl<'a> TopicDecisions<'a> {
    pub fn new(access: &'a Access, operation: Operation) -> Self {
        Self {
            access,
            operation,
            decided: HashMap::new(),
        }
    }

    /// `None` when the caller may act on `topic`, else the refusal.
    pub async fn refusal(&mut self, topic: &str) -> Option<v1::Error> {
        if !self.access.enforced() {
            return None;
        }
        if let Some(decided) = self.decided.get(topic) {
            return decided.clone();
        }
        let refusal = match self
            .access
            .allows(self.operation, ResourceType::Topic, topic)
            .await
        {
            Ok(true) => None,
            Ok(false) => Some(
                self.access
                    .refusal(self.operation, ResourceType::Topic, topic)
                    .to_wire(),
            ),
            Err(e) => Some(CatalogError::to_wire(&e)),
        };
        self.decided.insert(topic.to_owned(), refusal.clone());
        refusal
    }
}

/// Refuses unless `access` may do `operation` on `group`.
pub(super) async fn group_check(
    access: &Access,
    operation: Operation,
    group: &str,
) -> crate::error::Result<()> {
    Ok(access.check(operation, ResourceType::Group, group).await?)
}

/// The groups of `groups` the caller may describe.
pub(super) async fn visible_groups(
    access: &Access,
    groups: Vec<v1::GroupListing>,
) -> crate::error::Result<Vec<v1::GroupListing>> {
    Ok(access
        .retain(groups, Operation::Describe, ResourceType::Group, |g| {
            g.group.as_str()
        })
        .await?)
}

impl ProxyService {
    /// A commit reads the group and every topic it commits for (Kafka's rule: committing a
    /// position is part of consuming).
    pub(super) async fn commit_check(
        &self,
        access: &Access,
        r: &v1::OffsetCommitRequest,
    ) -> crate::error::Result<()> {
        group_check(access, Operation::Read, &r.group).await?;
        let mut checked = HashSet::new();
        for offset in &r.offsets {
            if checked.insert(offset.topic.as_str()) {
                access
                    .check(Operation::Read, ResourceType::Topic, &offset.topic)
                    .await?;
            }
        }
        Ok(())
    }
}

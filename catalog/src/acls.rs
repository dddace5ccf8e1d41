//! Access rules on Kafka's model, kept in the metadata store under `acls/{id}`.
//!
//! A rule names a principal (`User:<name>`, or `User:*` for everyone), a resource (a topic, a
//! group, a transactional id, or the cluster) as a literal name or a prefix, an operation, and
//! whether it allows or denies. A request is allowed when a rule allows it and no rule denies
//! it: deny wins. Super users pass every check; anyone else with no rule that allows is
//! refused. Kafka's implications hold: Read, Write, Delete and Alter allow Describe, and
//! AlterConfigs allows DescribeConfigs.
//!
//! This module is the model, the store and the decision ([`Authorizer`]); the listeners call
//! [`Authorizer::authorize`] with what each request touches.

mod access;
mod filter;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use strata_clock::Clock;
use strata_meta::schema;
use strata_meta::{Txn, TxnOp};

pub use self::access::Access;
pub use self::filter::{AclFilter, PatternFilter};
use crate::admin::Admin;
use crate::error::{CatalogError, Result};

/// The one name of the cluster resource, as Kafka spells it.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// How long a process trusts the rules it read: a rule added or removed applies everywhere
/// within this time.
pub const RULES_CACHE_TTL: Duration = Duration::from_secs(2);

/// What a rule guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

/// How a rule's resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PatternType {
    /// The name itself, or every resource when the name is `*`.
    Literal,
    /// Every resource whose name starts with the name.
    Prefixed,
}

/// What a principal does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    Allow,
    Deny,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclRule {
    /// `User:<name>`, or `User:*` for every authenticated principal.
    pub principal: String,
    /// `*`: rules hold wherever the caller connects from.
    pub host: String,
    pub resource_type: ResourceType,
    pub pattern_type: PatternType,
    pub resource_name: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl PatternType {
    pub const ALL: [Self; 2] = [Self::Literal, Self::Prefixed];
}

impl Permission {
    pub const ALL: [Self; 2] = [Self::Allow, Self::Deny];
}

impl ResourceType {
    pub const ALL: [Self; 4] = [
        Self::Topic,
        Self::Group,
        Self::Cluster,
        Self::TransactionalId,
    ];

    /// The operations a rule on this kind of resource may name (Kafka's table).
    pub fn operations(self) -> &'static [Operation] {
        use Operation as O;
        match self {
            Self::Topic => &[
                O::All,
                O::Read,
                O::Write,
                O::Create,
                O::Delete,
                O::Alter,
                O::Describe,
                O::DescribeConfigs,
                O::AlterConfigs,
            ],
            Self::Group => &[O::All, O::Read, O::Describe, O::Delete],
            Self::Cluster => &[
                O::All,
                O::Create,
                O::ClusterAction,
                O::DescribeConfigs,
                O::AlterConfigs,
                O::IdempotentWrite,
                O::Alter,
                O::Describe,
            ],
            Self::TransactionalId => &[O::All, O::Describe, O::Write],
        }
    }
}

impl Operation {
    pub const ALL: [Self; 11] = [
        Self::All,
        Self::Read,
        Self::Write,
        Self::Create,
        Self::Delete,
        Self::Alter,
        Self::Describe,
        Self::ClusterAction,
        Self::DescribeConfigs,
        Self::AlterConfigs,
        Self::IdempotentWrite,
    ];

    /// Whether a rule naming `self` covers a request for `wanted`: the same operation, All,
    /// or (for allow rules) one that implies it.
    fn covers(self, wanted: Operation, permission: Permission) -> bool {
        use Operation as O;
        if self == wanted || self == O::All {
            return true;
        }
        // Kafka's implications hold for allow rules only: denying Read does not deny Describe.
        permission == Permission::Allow
            && match wanted {
                O::Describe => matches!(self, O::Read | O::Write | O::Delete | O::Alter),
                O::DescribeConfigs => self == O::AlterConfigs,
                _ => false,
            }
    }
}

impl AclRule {
    /// Refuses a rule that could never match, naming what is wrong and how to write it.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(CatalogError::InvalidArgument(why));
        if self.principal != "User:*" {
            crate::tokens::validate_principal(&self.principal)?;
        }
        if self.host != "*" {
            return bad(format!(
                "host `{}`: rules hold for every host; write `*`",
                self.host
            ));
        }
        if self.resource_name.is_empty() {
            return bad("a rule names a resource: give its name, or `*` for all".into());
        }
        if self.resource_type == ResourceType::Cluster
            && (self.resource_name != CLUSTER_NAME || self.pattern_type != PatternType::Literal)
        {
            return bad(format!(
                "the cluster resource is the literal `{CLUSTER_NAME}`"
            ));
        }
        if self.pattern_type == PatternType::Prefixed && self.resource_name == "*" {
            return bad(
                "a prefix of `*` matches only names starting with `*`; use a literal `*` for all"
                    .into(),
            );
        }
        if !self.resource_type.operations().contains(&self.operation) {
            return bad(format!(
                "{:?} is not an operation on a {:?}; it takes {:?}",
                self.operation,
                self.resource_type,
                self.resource_type.operations()
            ));
        }
        Ok(())
    }

    /// Whether this rule speaks about `principal` doing `operation` on `resource`.
    pub fn applies(
        &self,
        principal: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && self.resource_type == resource_type
            && self.operation.covers(operation, self.permission)
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == name || self.resource_name == "*",
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }

    /// The rule's key: the same rule added twice is one rule.
    fn id(&self) -> String {
        let canonical = schema::encode(self);
        Sha256::digest(&canonical)
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Deny if any of `rules` denies, else allow if one allows, else no verdict.
fn verdict<'a>(
    rules: impl Iterator<Item = &'a AclRule>,
    principal: &str,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> Option<Permission> {
    let mut verdict = None;
    for rule in rules {
        if rule.applies(principal, operation, resource_type, name) {
            match rule.permission {
                Permission::Deny => return Some(Permission::Deny),
                Permission::Allow => verdict = Some(Permission::Allow),
            }
        }
    }
    verdict
}

/// The rules as a check reads them: by principal, so a check scans the caller's rules and the
/// ones for everyone, not the whole cluster's.
#[derive(Debug, Default)]
struct RuleIndex {
    by_principal: std::collections::HashMap<String, Vec<AclRule>>,
    everyone: Vec<AclRule>,
}

impl RuleIndex {
    fn new(rules: Vec<AclRule>) -> Self {
        let mut index = Self::default();
        for rule in rules {
            if rule.principal == "User:*" {
                index.everyone.push(rule);
            } else {
                index
                    .by_principal
                    .entry(rule.principal.clone())
                    .or_default()
                    .push(rule);
            }
        }
        index
    }

    /// Whether `principal` may do `operation` on `resource_type` `name`: some rule allows it
    /// and none denies it.
    fn decide(
        &self,
        principal: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let own = self.by_principal.get(principal).into_iter().flatten();
        verdict(
            own.chain(&self.everyone),
            principal,
            operation,
            resource_type,
            name,
        ) == Some(Permission::Allow)
    }

    /// Whether `principal` may do `operation` on at least one `resource_type` resource, named
    /// or not yet made: Kafka's `authorizeByResourceType`. It looks at the rules, not at the
    /// resources that exist. A literal `*` deny refuses; a literal `*` allow allows; else some
    /// other allow rule must not be fully overridden by a deny: a literal allow by a literal
    /// deny of the same name, and either kind by a prefix deny its name starts with (a prefix
    /// allow with a deny on a longer prefix, or on one of its names, still allows the rest).
    fn allows_some(
        &self,
        principal: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let own = self.by_principal.get(principal).into_iter().flatten();
        let rules: Vec<&AclRule> = own
            .chain(&self.everyone)
            .filter(|r| {
                r.resource_type == resource_type && r.operation.covers(operation, r.permission)
            })
            .collect();
        let (allows, denies): (Vec<&AclRule>, Vec<&AclRule>) = rules
            .into_iter()
            .partition(|r| r.permission == Permission::Allow);
        let every = |r: &&AclRule| r.pattern_type == PatternType::Literal && r.resource_name == "*";
        if denies.iter().any(every) {
            return false;
        }
        let overridden = |allow: &AclRule| {
            denies.iter().any(|deny| match deny.pattern_type {
                PatternType::Literal => {
                    allow.pattern_type == PatternType::Literal
                        && allow.resource_name == deny.resource_name
                }
                PatternType::Prefixed => allow.resource_name.starts_with(&deny.resource_name),
            })
        };
        allows.iter().any(every) || allows.iter().any(|allow| !overridden(allow))
    }
}

impl Admin {
    /// Adds `rules` (all or none, each checked first); a rule that exists stays one rule.
    pub async fn create_acls(&self, rules: &[AclRule]) -> Result<()> {
        for rule in rules {
            rule.validate()?;
        }
        // One put per key: a rule named twice in one call is one rule, and a transaction may
        // write a key once.
        let unique: std::collections::BTreeMap<String, &AclRule> =
            rules.iter().map(|r| (r.id(), r)).collect();
        let ops: Vec<TxnOp> = unique
            .iter()
            .map(|(id, r)| TxnOp::put(self.keys().acl(id), schema::encode(r)))
            .collect();
        for chunk in ops.chunks(self.meta().max_txn_ops().max(1)) {
            self.meta().txn(Txn::new().and_then(chunk.to_vec())).await?;
        }
        for rule in rules {
            tracing::info!(?rule, "ACL rule added");
        }
        Ok(())
    }

    /// The rules `filter` matches.
    pub async fn acls(&self, filter: &AclFilter) -> Result<Vec<AclRule>> {
        let (kvs, _) = self.meta().range(&self.keys().acls()).await?;
        let mut rules = kvs
            .iter()
            .map(|kv| Ok(schema::decode::<AclRule>(&kv.key, &kv.value)?))
            .collect::<Result<Vec<_>>>()?;
        rules.retain(|r| filter.matches(r));
        rules.sort();
        Ok(rules)
    }

    /// Removes the rules `filter` matches; the rules removed.
    pub async fn delete_acls(&self, filter: &AclFilter) -> Result<Vec<AclRule>> {
        let rules = self.acls(filter).await?;
        for rule in &rules {
            if self.meta().delete(&self.keys().acl(&rule.id())).await? {
                tracing::info!(?rule, "ACL rule removed");
            }
        }
        Ok(rules)
    }
}

/// Decides requests against the cluster's rules, read at most every [`RULES_CACHE_TTL`].
#[derive(Debug)]
pub struct Authorizer {
    admin: Admin,
    enforced: bool,
    super_users: Vec<String>,
    clock: Arc<dyn Clock>,
    cache: Mutex<Option<(Instant, Arc<RuleIndex>)>>,
}

impl Authorizer {
    /// `enforced`: rules decide (authentication is on); else every request is allowed.
    pub fn new(
        admin: Admin,
        enforced: bool,
        super_users: Vec<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            admin,
            enforced,
            super_users,
            clock,
            cache: Mutex::new(None),
        }
    }

    /// Whether rules decide (authentication is on).
    pub fn enforced(&self) -> bool {
        self.enforced
    }

    /// Whether `principal` may do `operation` on `resource_type` `name`. An anonymous caller
    /// of a cluster that enforces rules may do nothing.
    pub async fn authorize(
        &self,
        principal: Option<&str>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<bool> {
        self.judge(principal, |rules, principal| {
            rules.decide(principal, operation, resource_type, name)
        })
        .await
    }

    /// Whether `principal` may do `operation` on at least one `resource_type` resource (see
    /// `RuleIndex::allows_some`): Kafka's test of "Write on any topic".
    pub async fn authorize_some(
        &self,
        principal: Option<&str>,
        operation: Operation,
        resource_type: ResourceType,
    ) -> Result<bool> {
        self.judge(principal, |rules, principal| {
            rules.allows_some(principal, operation, resource_type)
        })
        .await
    }

    /// Everyone passes when rules are not enforced, an anonymous caller fails and a super user
    /// passes; anyone else is judged by `by_rules` on the cluster's rules.
    async fn judge(
        &self,
        principal: Option<&str>,
        by_rules: impl FnOnce(&RuleIndex, &str) -> bool,
    ) -> Result<bool> {
        if !self.enforced {
            return Ok(true);
        }
        let Some(principal) = principal else {
            return Ok(false);
        };
        if self.super_users.iter().any(|s| s == principal) {
            return Ok(true);
        }
        let rules = self.rules().await?;
        Ok(by_rules(&rules, principal))
    }

    async fn rules(&self) -> Result<Arc<RuleIndex>> {
        let now = self.clock.now();
        if let Some((at, rules)) = &*self.cached()
            && now.duration_since(*at) < RULES_CACHE_TTL
        {
            return Ok(rules.clone());
        }
        let rules = Arc::new(RuleIndex::new(
            self.admin.acls(&AclFilter::default()).await?,
        ));
        *self.cached() = Some((now, rules.clone()));
        Ok(rules)
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<RuleIndex>)>> {
        // The cache holds whole values: a panic elsewhere cannot leave one half-written.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;

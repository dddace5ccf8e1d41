//! Which rules a listing or a removal is about: Kafka's ACL binding filters.

use serde::{Deserialize, Serialize};

use super::{AclRule, Operation, PatternType, Permission, ResourceType};

/// How a filter's resource name picks rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PatternFilter {
    /// Rules of either pattern type whose name is the filter's.
    #[default]
    Any,
    /// Literal rules with the filter's name.
    Literal,
    /// Prefixed rules with the filter's name.
    Prefixed,
    /// Every rule that would apply to a resource of the filter's name: its literal rules, the
    /// literal `*`, and the prefixes it starts with.
    Match,
}

/// Rules whose every given field equals the filter's; a field left out matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AclFilter {
    pub principal: Option<String>,
    pub resource_type: Option<ResourceType>,
    pub pattern: PatternFilter,
    pub resource_name: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl PatternFilter {
    pub const ALL: [Self; 4] = [Self::Any, Self::Literal, Self::Prefixed, Self::Match];
}

impl AclFilter {
    /// The filter that picks exactly `rule`.
    pub fn exactly(rule: &AclRule) -> Self {
        Self {
            principal: Some(rule.principal.clone()),
            resource_type: Some(rule.resource_type),
            pattern: match rule.pattern_type {
                PatternType::Literal => PatternFilter::Literal,
                PatternType::Prefixed => PatternFilter::Prefixed,
            },
            resource_name: Some(rule.resource_name.clone()),
            operation: Some(rule.operation),
            permission: Some(rule.permission),
        }
    }

    pub fn matches(&self, rule: &AclRule) -> bool {
        let same =
            |filter: &Option<String>, value: &str| filter.as_deref().is_none_or(|f| f == value);
        same(&self.principal, &rule.principal)
            && self.resource_type.is_none_or(|t| t == rule.resource_type)
            && self.operation.is_none_or(|o| o == rule.operation)
            && self.permission.is_none_or(|p| p == rule.permission)
            && self.pattern_matches(rule)
    }

    fn pattern_matches(&self, rule: &AclRule) -> bool {
        let name = self.resource_name.as_deref();
        let named = name.is_none_or(|n| n == rule.resource_name);
        match self.pattern {
            PatternFilter::Any => named,
            PatternFilter::Literal => rule.pattern_type == PatternType::Literal && named,
            PatternFilter::Prefixed => rule.pattern_type == PatternType::Prefixed && named,
            PatternFilter::Match => name.is_none_or(|n| match rule.pattern_type {
                PatternType::Literal => rule.resource_name == n || rule.resource_name == "*",
                PatternType::Prefixed => n.starts_with(&rule.resource_name),
            }),
        }
    }
}

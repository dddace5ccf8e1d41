//! DescribeAcls, CreateAcls and DeleteAcls: the rules `strata acl` and `/v1/acls` manage, for
//! Kafka's own tools (`kafka-acls.sh`, AdminClient's `describeAcls`, `createAcls`,
//! `deleteAcls`). Describing takes Describe on the cluster, creating and deleting Alter on the
//! cluster (super users pass); a refusal is CLUSTER_AUTHORIZATION_FAILED with its reason.
//!
//! Kafka's numbering of the enums is below ([`codes_of`]). Rules hold for every host, so a rule
//! naming another host is refused (INVALID_REQUEST), and a filter naming another host matches
//! nothing.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use strata_catalog::acls::{
    AclFilter, AclRule, Operation, PatternFilter, PatternType, Permission, ResourceType,
};
use strata_proto::Coded as _;

use super::Call;
use crate::codes;

/// A Kafka error code with its message.
type Refusal = (i16, String);

fn text(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

/// The Kafka code of a failure: these calls are about the cluster, so an ACL refusal is
/// CLUSTER_AUTHORIZATION_FAILED.
fn refusal(e: &strata_catalog::CatalogError) -> Refusal {
    (codes::cluster_code(e.code()), e.to_string())
}

/// Kafka's numbering of the ACL enums (`org.apache.kafka.common.acl` and `.resource`); in
/// filters 1 is "any". 0 (unknown) and the types Strata has no rules for (delegation tokens,
/// users, the token operations) have no value here.
mod codes_of {
    use super::{Operation, PatternFilter, PatternType, Permission, ResourceType};

    pub const ANY: i8 = 1;

    pub fn resource_type(t: ResourceType) -> i8 {
        match t {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    pub fn resource_type_of(code: i8) -> Option<ResourceType> {
        ResourceType::ALL
            .into_iter()
            .find(|t| resource_type(*t) == code)
    }

    pub fn pattern_type(p: PatternType) -> i8 {
        match p {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn pattern_type_of(code: i8) -> Option<PatternType> {
        PatternType::ALL
            .into_iter()
            .find(|p| pattern_type(*p) == code)
    }

    /// A filter's pattern type: 1 any, 2 match (every rule that applies to the name), 3
    /// literal, 4 prefixed.
    pub fn pattern_filter_of(code: i8) -> Option<PatternFilter> {
        match code {
            ANY => Some(PatternFilter::Any),
            2 => Some(PatternFilter::Match),
            _ => pattern_type_of(code).map(|p| match p {
                PatternType::Literal => PatternFilter::Literal,
                PatternType::Prefixed => PatternFilter::Prefixed,
            }),
        }
    }

    pub fn operation(o: Operation) -> i8 {
        match o {
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
        }
    }

    pub fn operation_of(code: i8) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| operation(*o) == code)
    }

    pub fn permission(p: Permission) -> i8 {
        match p {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    pub fn permission_of(code: i8) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| permission(*p) == code)
    }
}

/// A field of a request: its value, or the refusal naming the field, the code and the choices.
fn field<T>(value: Option<T>, what: &str, code: i8, choices: &str) -> Result<T, Refusal> {
    value.ok_or_else(|| {
        (
            codes::INVALID_REQUEST,
            format!("{what} {code} is not supported; use {choices}"),
        )
    })
}

/// A filter's field: `None` for 1 (any).
fn filter_field<T>(
    code: i8,
    of: fn(i8) -> Option<T>,
    what: &str,
    choices: &str,
) -> Result<Option<T>, Refusal> {
    if code == codes_of::ANY {
        return Ok(None);
    }
    field(of(code), what, code, choices).map(Some)
}

const RESOURCE_TYPES: &str = "2 (topic), 3 (group), 4 (cluster) or 5 (transactional id)";
const PATTERN_TYPES: &str = "3 (literal) or 4 (prefixed)";
const OPERATIONS: &str = "2 (all) to 12 (idempotent write)";
const PERMISSIONS: &str = "2 (deny) or 3 (allow)";

/// The rules a filter of Describe- or DeleteAcls picks, or `None` when its host is not `*`
/// (rules hold for every host, so such a filter picks none). The fields one by one: the two
/// requests carry them in types of their own.
#[allow(clippy::too_many_arguments)]
fn filter_of(
    resource_type: i8,
    resource_name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<Option<AclFilter>, Refusal> {
    let filter = AclFilter {
        principal: principal.map(|p| p.to_string()),
        resource_type: filter_field(
            resource_type,
            codes_of::resource_type_of,
            "resource type",
            &format!("1 (any), {RESOURCE_TYPES}"),
        )?,
        pattern: field(
            codes_of::pattern_filter_of(pattern_type),
            "pattern type",
            pattern_type,
            &format!("1 (any), 2 (match), {PATTERN_TYPES}"),
        )?,
        resource_name: resource_name.map(|n| n.to_string()),
        operation: filter_field(
            operation,
            codes_of::operation_of,
            "operation",
            &format!("1 (any), {OPERATIONS}"),
        )?,
        permission: filter_field(
            permission,
            codes_of::permission_of,
            "permission type",
            &format!("1 (any), {PERMISSIONS}"),
        )?,
    };
    Ok(host.is_none_or(|h| h.as_str() == "*").then_some(filter))
}

fn rule_of(creation: &AclCreation) -> Result<AclRule, Refusal> {
    let rule = AclRule {
        principal: creation.principal.to_string(),
        host: creation.host.to_string(),
        resource_type: field(
            codes_of::resource_type_of(creation.resource_type),
            "resource type",
            creation.resource_type,
            RESOURCE_TYPES,
        )?,
        pattern_type: field(
            codes_of::pattern_type_of(creation.resource_pattern_type),
            "pattern type",
            creation.resource_pattern_type,
            PATTERN_TYPES,
        )?,
        resource_name: creation.resource_name.to_string(),
        operation: field(
            codes_of::operation_of(creation.operation),
            "operation",
            creation.operation,
            OPERATIONS,
        )?,
        permission: field(
            codes_of::permission_of(creation.permission_type),
            "permission type",
            creation.permission_type,
            PERMISSIONS,
        )?,
    };
    // Names the host, and why only `*` is taken: proxies see clients through load balancers.
    rule.validate().map_err(|e| refusal(&e))?;
    Ok(rule)
}

pub(crate) async fn describe(ctx: &Call<'_>, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let response = DescribeAclsResponse::default();
    let rules = async {
        ctx.access
            .check_cluster(Operation::Describe)
            .await
            .map_err(|e| refusal(&e))?;
        let filter = filter_of(
            request.resource_type_filter,
            request.resource_name_filter.as_ref(),
            request.pattern_type_filter,
            request.principal_filter.as_ref(),
            request.host_filter.as_ref(),
            request.operation,
            request.permission_type,
        )?;
        match filter {
            Some(filter) => ctx
                .service
                .admin()
                .acls(&filter)
                .await
                .map_err(|e| refusal(&e)),
            None => Ok(Vec::new()),
        }
    };
    match rules.await {
        Ok(rules) => response.with_resources(by_resource(rules)),
        Err((code, message)) => response
            .with_error_code(code)
            .with_error_message(text(message)),
    }
}

/// Rules grouped by resource, as DescribeAcls answers them.
fn by_resource(rules: Vec<AclRule>) -> Vec<DescribeAclsResource> {
    let mut resources: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
    for rule in rules {
        resources
            .entry((rule.resource_type, rule.resource_name, rule.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(rule.principal))
                    .with_host(StrBytes::from_string(rule.host))
                    .with_operation(codes_of::operation(rule.operation))
                    .with_permission_type(codes_of::permission(rule.permission)),
            );
    }
    resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(codes_of::resource_type(resource_type))
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(codes_of::pattern_type(pattern_type))
                .with_acls(acls)
        })
        .collect()
}

/// Adds each valid rule; each creation has its own result, so one bad rule refuses only itself.
pub(crate) async fn create(ctx: &Call<'_>, request: CreateAclsRequest) -> CreateAclsResponse {
    let allowed = ctx
        .access
        .check_cluster(Operation::Alter)
        .await
        .map_err(|e| refusal(&e));
    let mut outcomes: Vec<Result<(), Refusal>> = Vec::with_capacity(request.creations.len());
    let mut rules = Vec::new();
    for (i, creation) in request.creations.iter().enumerate() {
        match allowed.clone().and_then(|()| rule_of(creation)) {
            Ok(rule) => {
                rules.push((i, rule));
                outcomes.push(Ok(()));
            }
            Err(refused) => outcomes.push(Err(refused)),
        }
    }
    if !rules.is_empty() {
        // A rule asked for twice is one rule, and one write: a transaction may not write one
        // key twice.
        let mut valid: Vec<AclRule> = Vec::with_capacity(rules.len());
        for (_, rule) in &rules {
            if !valid.contains(rule) {
                valid.push(rule.clone());
            }
        }
        if let Err(e) = ctx.service.admin().create_acls(&valid).await {
            for (i, _) in &rules {
                outcomes[*i] = Err(refusal(&e));
            }
        }
    }
    let results = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(()) => AclCreationResult::default(),
            Err((code, message)) => AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(text(message)),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// Removes what each filter matches, in order; each filter's result lists the rules removed.
pub(crate) async fn delete(ctx: &Call<'_>, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let allowed = ctx
        .access
        .check_cluster(Operation::Alter)
        .await
        .map_err(|e| refusal(&e));
    let mut results = Vec::with_capacity(request.filters.len());
    for f in &request.filters {
        let removed = async {
            allowed.clone()?;
            let filter = filter_of(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )?;
            match filter {
                Some(filter) => ctx
                    .service
                    .admin()
                    .delete_acls(&filter)
                    .await
                    .map_err(|e| refusal(&e)),
                None => Ok(Vec::new()),
            }
        };
        results.push(match removed.await {
            Ok(rules) => DeleteAclsFilterResult::default()
                .with_matching_acls(rules.into_iter().map(matching).collect()),
            Err((code, message)) => DeleteAclsFilterResult::default()
                .with_error_code(code)
                .with_error_message(text(message)),
        });
    }
    DeleteAclsResponse::default().with_filter_results(results)
}

fn matching(rule: AclRule) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(codes_of::resource_type(rule.resource_type))
        .with_resource_name(StrBytes::from_string(rule.resource_name))
        .with_pattern_type(codes_of::pattern_type(rule.pattern_type))
        .with_principal(StrBytes::from_string(rule.principal))
        .with_host(StrBytes::from_string(rule.host))
        .with_operation(codes_of::operation(rule.operation))
        .with_permission_type(codes_of::permission(rule.permission))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Every value decodes from its own code, every code that decodes encodes back, and no
    /// other code decodes: the table is a bijection onto Kafka's numbers.
    fn bijection<T: Copy + PartialEq + std::fmt::Debug>(
        values: &[T],
        code: fn(T) -> i8,
        of: fn(i8) -> Option<T>,
        expected: &[i8],
    ) {
        let codes: Vec<i8> = values.iter().map(|v| code(*v)).collect();
        assert_eq!(codes, expected, "{values:?}");
        for v in values {
            assert_eq!(of(code(*v)), Some(*v));
        }
        let decoded: Vec<i8> = (i8::MIN..=i8::MAX).filter(|c| of(*c).is_some()).collect();
        let mut sorted = expected.to_vec();
        sorted.sort_unstable();
        assert_eq!(decoded, sorted);
    }

    #[test]
    fn every_enum_value_round_trips_through_kafkas_numbers() {
        bijection(
            &ResourceType::ALL,
            codes_of::resource_type,
            codes_of::resource_type_of,
            &[2, 3, 4, 5],
        );
        bijection(
            &[PatternType::Literal, PatternType::Prefixed],
            codes_of::pattern_type,
            codes_of::pattern_type_of,
            &[3, 4],
        );
        bijection(
            &Operation::ALL,
            codes_of::operation,
            codes_of::operation_of,
            &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        );
        bijection(
            &[Permission::Deny, Permission::Allow],
            codes_of::permission,
            codes_of::permission_of,
            &[2, 3],
        );
    }

    #[test]
    fn filters_take_any_and_match_and_refuse_unknown_codes() {
        assert_eq!(codes_of::pattern_filter_of(1), Some(PatternFilter::Any));
        assert_eq!(codes_of::pattern_filter_of(2), Some(PatternFilter::Match));
        assert_eq!(codes_of::pattern_filter_of(3), Some(PatternFilter::Literal));
        assert_eq!(
            codes_of::pattern_filter_of(4),
            Some(PatternFilter::Prefixed)
        );
        assert_eq!(codes_of::pattern_filter_of(0), None);
        let any = filter_of(1, None, 1, None, None, 1, 1).unwrap().unwrap();
        assert_eq!(any, AclFilter::default());
        let named = StrBytes::from_static_str("orders");
        let reads = filter_of(2, Some(&named), 3, None, None, 3, 3)
            .unwrap()
            .unwrap();
        assert_eq!(reads.resource_type, Some(ResourceType::Topic));
        assert_eq!(reads.operation, Some(Operation::Read));
        assert_eq!(reads.permission, Some(Permission::Allow));
        let (code, message) = filter_of(6, None, 1, None, None, 1, 1).unwrap_err();
        assert_eq!(code, codes::INVALID_REQUEST);
        assert!(message.contains("resource type 6"), "{message}");
        assert!(
            filter_of(1, None, 1, None, None, 0, 1).is_err(),
            "unknown operation"
        );
        let elsewhere = StrBytes::from_static_str("10.0.0.1");
        assert_eq!(
            filter_of(1, None, 1, None, Some(&elsewhere), 1, 1).unwrap(),
            None,
            "a host other than * matches no rule"
        );
    }

    #[test]
    fn a_creation_with_another_host_or_a_bad_code_is_refused_with_the_reason() {
        let creation = AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("orders"))
            .with_resource_pattern_type(3)
            .with_principal(StrBytes::from_static_str("User:alice"))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(3)
            .with_permission_type(3);
        let rule = rule_of(&creation).unwrap();
        assert_eq!(
            (rule.resource_type, rule.operation, rule.permission),
            (ResourceType::Topic, Operation::Read, Permission::Allow)
        );
        let (code, message) = rule_of(
            &creation
                .clone()
                .with_host(StrBytes::from_static_str("10.0.0.1")),
        )
        .unwrap_err();
        assert_eq!(code, codes::INVALID_REQUEST);
        assert!(
            message.contains("10.0.0.1") && message.contains('*'),
            "{message}"
        );
        let (code, message) = rule_of(&creation.clone().with_resource_pattern_type(1)).unwrap_err();
        assert_eq!(code, codes::INVALID_REQUEST);
        assert!(message.contains("pattern type 1"), "{message}");
        let (code, _) = rule_of(&creation.with_operation(12)).unwrap_err();
        assert_eq!(
            code,
            codes::INVALID_REQUEST,
            "IdempotentWrite is not a topic's"
        );
    }
}

//! The ACL routes of the admin API: `GET`, `POST` and `DELETE /v1/acls`.
//!
//! Listing takes Describe on the cluster, adding and removing Alter on the cluster (super
//! users pass). Filters are query parameters (`principal`, `resource_type`, `resource_name`,
//! `pattern`, `operation`, `permission`), so a listing and a removal read alike, and a typo in
//! a parameter's name is refused rather than ignored: a removal whose filter silently lost a
//! field would remove more than asked.
//!
//! Enum values are read without regard to case, `-` or `_`: `Topic`, `topic` and `TOPIC`,
//! `IdempotentWrite`, `idempotent-write` and Kafka's `IDEMPOTENT_WRITE` are one value. Answers
//! spell them as the rules are stored: `Topic`, `Literal`, `IdempotentWrite`, `Allow`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use strata_catalog::acls::{
    Access, AclFilter, AclRule, Operation, PatternFilter, PatternType, Permission, ResourceType,
};
use strata_proto::ErrorCode;

use super::{ApiError, ApiJson, ApiResult, ApiState};

/// Lower case without `-`, `_` or spaces: how names are compared.
fn folded(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The value of `values` whose name `text` spells, or a refusal naming `field` and the
/// choices.
fn parse<T: Copy + std::fmt::Debug>(field: &str, text: &str, values: &[T]) -> ApiResult<T> {
    let wanted = folded(text);
    values
        .iter()
        .copied()
        .find(|v| folded(&format!("{v:?}")) == wanted)
        .ok_or_else(|| {
            let names: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "{field} `{text}` is unknown; use one of {}",
                    names.join(", ")
                ),
            )
        })
}

fn parse_opt<T: Copy + std::fmt::Debug>(
    field: &str,
    text: Option<&str>,
    values: &[T],
) -> ApiResult<Option<T>> {
    text.map(|t| parse(field, t, values)).transpose()
}

/// The query of `GET` and `DELETE /v1/acls`. Every value a string, parsed here, so a bad one
/// is answered with the choices rather than serde's message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AclQuery {
    principal: Option<String>,
    resource_type: Option<String>,
    resource_name: Option<String>,
    pattern: Option<String>,
    operation: Option<String>,
    permission: Option<String>,
    /// `DELETE` only: the caller means a filter that matches every rule.
    all: Option<bool>,
}

impl AclQuery {
    fn filter(&self) -> ApiResult<AclFilter> {
        Ok(AclFilter {
            principal: self.principal.clone(),
            resource_type: parse_opt(
                "resource_type",
                self.resource_type.as_deref(),
                &ResourceType::ALL,
            )?,
            pattern: parse_opt("pattern", self.pattern.as_deref(), &PatternFilter::ALL)?
                .unwrap_or_default(),
            resource_name: self.resource_name.clone(),
            operation: parse_opt("operation", self.operation.as_deref(), &Operation::ALL)?,
            permission: parse_opt("permission", self.permission.as_deref(), &Permission::ALL)?,
        })
    }
}

/// The query, with axum's plain-text rejection turned into an API error.
fn query(query: Result<Query<AclQuery>, QueryRejection>) -> ApiResult<AclQuery> {
    query.map(|Query(q)| q).map_err(|rejection| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "{}; the filters are principal, resource_type, resource_name, pattern, \
                 operation, permission (and all=true to remove every rule)",
                rejection.body_text()
            ),
        )
    })
}

/// Whether `filter` picks some rules rather than all of them.
fn narrows(filter: &AclFilter) -> bool {
    filter.principal.is_some()
        || filter.resource_type.is_some()
        || filter.resource_name.is_some()
        || filter.operation.is_some()
        || filter.permission.is_some()
        || matches!(
            filter.pattern,
            PatternFilter::Literal | PatternFilter::Prefixed
        )
}

pub(super) async fn list_acls(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    q: Result<Query<AclQuery>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    access.check_cluster(Operation::Describe).await?;
    let q = query(q)?;
    if q.all.is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "`all` is for DELETE; a listing without filters lists every rule",
        ));
    }
    Ok(Json(state.admin.acls(&q.filter()?).await?))
}

/// A rule as posted: `host` defaults to `*` and `pattern_type` to literal.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRule {
    principal: String,
    #[serde(default)]
    host: Option<String>,
    resource_type: String,
    #[serde(default)]
    pattern_type: Option<String>,
    resource_name: String,
    operation: String,
    permission: String,
}

impl NewRule {
    fn rule(&self) -> ApiResult<AclRule> {
        Ok(AclRule {
            principal: self.principal.clone(),
            host: self.host.clone().unwrap_or_else(|| "*".to_owned()),
            resource_type: parse("resource_type", &self.resource_type, &ResourceType::ALL)?,
            pattern_type: parse_opt(
                "pattern_type",
                self.pattern_type.as_deref(),
                &PatternType::ALL,
            )?
            .unwrap_or(PatternType::Literal),
            resource_name: self.resource_name.clone(),
            operation: parse("operation", &self.operation, &Operation::ALL)?,
            permission: parse("permission", &self.permission, &Permission::ALL)?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRules {
    rules: Vec<NewRule>,
}

/// Adds every rule or none: each is checked before any is stored. A rule that exists already
/// stays one rule.
pub(super) async fn create_acls(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<NewRules>,
) -> ApiResult<impl IntoResponse> {
    access.check_cluster(Operation::Alter).await?;
    if body.rules.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "`rules` is empty: give at least one rule",
        ));
    }
    // Which rule is wrong, when there are several to tell apart.
    let at_rule = |i: usize, e: ApiError| match body.rules.len() {
        1 => e,
        _ => {
            let r = &body.rules[i];
            ApiError::new(
                e.code,
                format!(
                    "rule {i} ({} {} {} on {} `{}`): {}",
                    r.permission,
                    r.principal,
                    r.operation,
                    r.resource_type,
                    r.resource_name,
                    e.message
                ),
            )
        }
    };
    let mut rules: Vec<AclRule> = Vec::with_capacity(body.rules.len());
    for (i, new) in body.rules.iter().enumerate() {
        let rule = new.rule().map_err(|e| at_rule(i, e))?;
        rule.validate().map_err(|e| at_rule(i, ApiError::from(e)))?;
        // The same rule twice (`read` and `Read`, say) is one rule, and one write: a
        // transaction may not write one key twice.
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    state.admin.create_acls(&rules).await?;
    Ok((StatusCode::CREATED, Json(json!({ "rules": rules }))))
}

pub(super) async fn delete_acls(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    q: Result<Query<AclQuery>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    access.check_cluster(Operation::Alter).await?;
    let q = query(q)?;
    let filter = q.filter()?;
    if !narrows(&filter) && q.all != Some(true) {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "a removal without a filter would remove every rule; give a filter \
             (principal, resource_type, resource_name, pattern, operation, permission), \
             or all=true to remove them all",
        ));
    }
    let removed = state.admin.delete_acls(&filter).await?;
    Ok(Json(json!({ "removed": removed })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn enum_values_are_read_whatever_their_case_and_separators() {
        for text in [
            "IdempotentWrite",
            "idempotentwrite",
            "idempotent-write",
            "IDEMPOTENT_WRITE",
        ] {
            assert_eq!(
                parse("operation", text, &Operation::ALL).unwrap(),
                Operation::IdempotentWrite
            );
        }
        for t in ResourceType::ALL {
            let name = format!("{t:?}");
            assert_eq!(
                parse("t", &name.to_uppercase(), &ResourceType::ALL).unwrap(),
                t
            );
        }
        assert_eq!(
            parse("t", "transactional-id", &ResourceType::ALL).unwrap(),
            ResourceType::TransactionalId
        );
        let refused = parse("operation", "Reed", &Operation::ALL).unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidArgument);
        assert!(
            refused.message.contains("`Reed`") && refused.message.contains("IdempotentWrite"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn only_a_filter_that_picks_some_rules_narrows() {
        assert!(!narrows(&AclFilter::default()));
        let matching = AclFilter {
            pattern: PatternFilter::Match,
            ..AclFilter::default()
        };
        assert!(
            !narrows(&matching),
            "match without a name matches every rule"
        );
        let deny = AclFilter {
            permission: Some(Permission::Deny),
            ..AclFilter::default()
        };
        assert!(narrows(&deny));
    }
}

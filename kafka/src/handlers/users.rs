//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): SCRAM users managed by
//! Kafka's own tools (`kafka-configs.sh --alter --add-config 'SCRAM-SHA-256=[...]'`), kept as
//! `strata user` keeps them. With SASL on, describing takes Describe on the cluster, altering
//! Alter on the cluster (super users pass).

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use strata_catalog::acls::Operation;
use strata_catalog::users::{ScramCredential, ScramMechanism, UserRecord};
use strata_proto::Coded as _;

use super::Call;
use crate::codes;

fn text(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

/// Whether the caller may `operation` the cluster's users: anyone without SASL; with it, as
/// the ACL rules say. Else the Kafka code and message of the refusal.
async fn permission(ctx: &Call<'_>, operation: Operation) -> Result<(), (i16, String)> {
    ctx.access
        .check_cluster(operation)
        .await
        .map_err(|e| (codes::cluster_code(e.code()), e.to_string()))
}

pub(crate) async fn describe(
    ctx: &Call<'_>,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let response = DescribeUserScramCredentialsResponse::default();
    if let Err((code, message)) = permission(ctx, Operation::Describe).await {
        // Each named user carries the error too: librdkafka reads the results, and an
        // empty list beside a top-level error crashes confluent-kafka 2.x's Python binding.
        let results = request
            .users
            .unwrap_or_default()
            .into_iter()
            .map(|u| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(u.name)
                    .with_error_code(code)
                    .with_error_message(text(message.clone()))
            })
            .collect();
        return response
            .with_error_code(code)
            .with_error_message(text(message))
            .with_results(results);
    }
    let admin = ctx.service.admin();
    let info = |user: &UserRecord| {
        user.credentials
            .iter()
            .map(|c| {
                CredentialInfo::default()
                    .with_mechanism(c.mechanism.kafka_type())
                    .with_iterations(c.iterations as i32)
            })
            .collect::<Vec<_>>()
    };
    let results = match request.users {
        // Null or empty: every user.
        None => match admin.users().await {
            Ok(users) => users
                .iter()
                .map(|u| {
                    DescribeUserScramCredentialsResult::default()
                        .with_user(StrBytes::from_string(u.name.clone()))
                        .with_credential_infos(info(u))
                })
                .collect(),
            Err(e) => {
                return response
                    .with_error_code(codes::kafka_code(e.code()))
                    .with_error_message(text(e.to_string()));
            }
        },
        Some(names) if names.is_empty() => {
            return Box::pin(describe(
                ctx,
                DescribeUserScramCredentialsRequest::default().with_users(None),
            ))
            .await;
        }
        Some(names) => {
            let mut results = Vec::with_capacity(names.len());
            for name in names {
                let result =
                    DescribeUserScramCredentialsResult::default().with_user(name.name.clone());
                results.push(match admin.user(&name.name).await {
                    Ok(Some(user)) => result.with_credential_infos(info(&user)),
                    Ok(None) => result
                        .with_error_code(codes::RESOURCE_NOT_FOUND)
                        .with_error_message(text(format!(
                            "user `{}` has no SCRAM credentials",
                            name.name.as_str()
                        ))),
                    Err(e) => result
                        .with_error_code(codes::kafka_code(e.code()))
                        .with_error_message(text(e.to_string())),
                });
            }
            results
        }
    };
    response.with_results(results)
}

pub(crate) async fn alter(
    ctx: &Call<'_>,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let allowed = permission(ctx, Operation::Alter).await;
    let admin = ctx.service.admin();
    let mut results = Vec::new();
    for deletion in request.deletions {
        let result = AlterUserScramCredentialsResult::default().with_user(deletion.name.clone());
        let outcome = if let Err(refusal) = &allowed {
            Err(refusal.clone())
        } else if let Some(mechanism) = ScramMechanism::from_kafka_type(deletion.mechanism) {
            match admin.delete_credential(&deletion.name, mechanism).await {
                Ok(true) => Ok(()),
                Ok(false) => Err((
                    codes::RESOURCE_NOT_FOUND,
                    format!(
                        "user `{}` has no {} credential",
                        deletion.name.as_str(),
                        mechanism.name()
                    ),
                )),
                Err(e) => Err((codes::kafka_code(e.code()), e.to_string())),
            }
        } else {
            Err(unsupported(deletion.mechanism))
        };
        results.push(with_outcome(result, outcome));
    }
    for upsertion in request.upsertions {
        let result = AlterUserScramCredentialsResult::default().with_user(upsertion.name.clone());
        let outcome = if let Err(refusal) = &allowed {
            Err(refusal.clone())
        } else if let Some(mechanism) = ScramMechanism::from_kafka_type(upsertion.mechanism) {
            let credential = ScramCredential::from_salted_password(
                mechanism,
                upsertion.salt.to_vec(),
                u32::try_from(upsertion.iterations).unwrap_or(0),
                &upsertion.salted_password,
            );
            match admin.upsert_credential(&upsertion.name, credential).await {
                Ok(()) => Ok(()),
                Err(e @ strata_catalog::CatalogError::InvalidArgument(_)) => {
                    Err((codes::UNACCEPTABLE_CREDENTIAL, e.to_string()))
                }
                Err(e) => Err((codes::kafka_code(e.code()), e.to_string())),
            }
        } else {
            Err(unsupported(upsertion.mechanism))
        };
        results.push(with_outcome(result, outcome));
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn unsupported(mechanism: i8) -> (i16, String) {
    (
        codes::UNSUPPORTED_SASL_MECHANISM,
        format!(
            "SCRAM mechanism {mechanism} is not supported; use 1 (SCRAM-SHA-256) or 2 (SCRAM-SHA-512)"
        ),
    )
}

fn with_outcome(
    result: AlterUserScramCredentialsResult,
    outcome: Result<(), (i16, String)>,
) -> AlterUserScramCredentialsResult {
    match outcome {
        Ok(()) => result,
        Err((code, message)) => result
            .with_error_code(code)
            .with_error_message(text(message)),
    }
}

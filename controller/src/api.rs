//! The admin REST API (axum), on port 7080 by default.
//!
//! Every error is JSON, `{"error": {"code": "UNKNOWN_TOPIC", "message": "..."}}`, with the
//! HTTP status of its [`ErrorCode`]; that includes malformed bodies, unknown routes and wrong
//! methods. The OpenAPI document at `/openapi.json` is built from [`openapi::ROUTES`], the same
//! table a test walks against the live router.

mod acls;
pub mod openapi;
mod security;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, MatchedPath, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use strata_catalog::Admin;
use strata_catalog::acls::{Access, Operation, ResourceType};
use strata_catalog::admin::{NewTopic, TopicConfigChange};
use strata_meta::{Election, MetaStore};
use strata_proto::{Coded, ErrorCode};

use crate::error::ControllerError;
use crate::metrics::{Metrics, RequestLabels};
pub use crate::probe::BrokerStatus;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub admin: Admin,
    pub meta: Arc<dyn MetaStore>,
    pub metrics: Arc<Metrics>,
    pub election: Election,
    /// Asks brokers for their partitions' states.
    pub brokers: BrokerStatus,
    /// Who calls; see [`security`].
    pub auth: Arc<strata_catalog::auth::Authenticator>,
    /// What callers may do: the ACL rules, enforced when authentication is on.
    pub authorizer: Arc<strata_catalog::acls::Authorizer>,
    /// The process's clock: when a token is made, and from when it expires.
    pub clock: Arc<dyn strata_clock::Clock>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// An error of any layer answers with the code it knows for itself.
impl<E: Coded> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "error": { "code": self.code.as_str(), "message": self.message } });
        (status, Json(body)).into_response()
    }
}

/// A JSON body whose rejections are API errors rather than axum's plain-text answers.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let detail = match &rejection {
                    JsonRejection::MissingJsonContentType(_) => {
                        "send the body as JSON with `content-type: application/json`".to_owned()
                    }
                    other => format!(
                        "{}; see /openapi.json for the expected shape",
                        other.body_text()
                    ),
                };
                Err(ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("malformed request body: {detail}"),
                ))
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The router with every route of [`openapi::ROUTES`].
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/controller", get(controller_leader))
        .route("/v1/topics", get(list_topics).post(create_topic))
        .route(
            "/v1/topics/{topic}",
            get(describe_topic)
                .patch(alter_topic_config)
                .delete(delete_topic),
        )
        .route("/v1/topics/{topic}/partitions", post(add_partitions))
        .route("/v1/partitions", get(list_partitions))
        .route("/v1/brokers", get(list_brokers))
        .route("/v1/brokers/{broker}/drain", post(drain).delete(undrain))
        .route("/v1/reassignments", post(reassign))
        .route("/v1/groups", get(list_groups))
        .route("/v1/groups/{group}", get(describe_group))
        .route("/v1/users", get(security::list_users))
        .route(
            "/v1/users/{user}",
            put(security::set_user).delete(security::delete_user),
        )
        .route(
            "/v1/tokens",
            get(security::list_tokens).post(security::create_token),
        )
        .route("/v1/tokens/{id}", delete(security::delete_token))
        .route(
            "/v1/acls",
            get(acls::list_acls)
                .post(acls::create_acls)
                .delete(acls::delete_acls),
        )
        .fallback(|| async {
            ApiError::new(ErrorCode::NotFound, "no such route; see /openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not take that method; see /openapi.json",
            )
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state
        .metrics
        .admin_requests
        .get_or_create(&RequestLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the metadata store answers.
async fn readyz(State(state): State<ApiState>) -> ApiResult<Json<serde_json::Value>> {
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.meta.get(state.admin.keys().root()),
    );
    match probe.await {
        Ok(Ok(_)) => Ok(Json(json!({ "status": "ready" }))),
        Ok(Err(e)) => Err(ControllerError::Meta(e).into()),
        Err(_) => Err(ApiError::new(
            ErrorCode::Unavailable,
            "metadata store did not answer within 2 s",
        )),
    }
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi::document())
}

async fn controller_leader(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
) -> ApiResult<Json<serde_json::Value>> {
    access.check_cluster(Operation::Describe).await?;
    let leader = state
        .election
        .leader()
        .await
        .map_err(ControllerError::from)?;
    Ok(Json(json!({
        "leader": leader.as_ref().map(|l| String::from_utf8_lossy(&l.value).into_owned()),
        "term": leader.map(|l| l.revision),
    })))
}

async fn list_topics(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
) -> ApiResult<impl IntoResponse> {
    let topics = state.admin.list_topics().await?;
    Ok(Json(
        access
            .retain(topics, Operation::Describe, ResourceType::Topic, |t| {
                t.name.as_str()
            })
            .await?,
    ))
}

async fn create_topic(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    ApiJson(new): ApiJson<NewTopic>,
) -> ApiResult<impl IntoResponse> {
    access.check_topic_creation(&new.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(state.admin.create_topic(new).await?),
    ))
}

async fn describe_topic(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    Path(topic): Path<String>,
) -> ApiResult<impl IntoResponse> {
    access
        .check(Operation::Describe, ResourceType::Topic, &topic)
        .await?;
    Ok(Json(
        state.admin.describe_topic(&topic, &state.brokers).await?,
    ))
}

async fn delete_topic(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    Path(topic): Path<String>,
) -> ApiResult<impl IntoResponse> {
    access
        .check(Operation::Delete, ResourceType::Topic, &topic)
        .await?;
    state.admin.delete_topic(&topic).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the fields the body names; the others keep their values. Brokers pick the new
/// retention up at their next maintenance pass.
async fn alter_topic_config(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    Path(topic): Path<String>,
    ApiJson(change): ApiJson<TopicConfigChange>,
) -> ApiResult<impl IntoResponse> {
    access
        .check(Operation::AlterConfigs, ResourceType::Topic, &topic)
        .await?;
    Ok(Json(state.admin.alter_topic_config(&topic, &change).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddPartitions {
    partitions: i64,
}

async fn add_partitions(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    Path(topic): Path<String>,
    ApiJson(body): ApiJson<AddPartitions>,
) -> ApiResult<impl IntoResponse> {
    access
        .check(Operation::Alter, ResourceType::Topic, &topic)
        .await?;
    Ok(Json(
        state.admin.add_partitions(&topic, body.partitions).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionFilter {
    topic: Option<String>,
}

async fn list_partitions(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    Query(filter): Query<PartitionFilter>,
) -> ApiResult<impl IntoResponse> {
    if let Some(topic) = &filter.topic {
        access
            .check(Operation::Describe, ResourceType::Topic, topic)
            .await?;
    }
    let partitions = state
        .admin
        .list_partitions(filter.topic.as_deref(), &state.brokers)
        .await?;
    Ok(Json(
        access
            .retain(partitions, Operation::Describe, ResourceType::Topic, |p| {
                p.topic.as_str()
            })
            .await?,
    ))
}

async fn list_groups(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
) -> ApiResult<impl IntoResponse> {
    let groups = state.admin.list_groups().await?;
    Ok(Json(
        access
            .retain(groups, Operation::Describe, ResourceType::Group, |g| {
                g.group.as_str()
            })
            .await?,
    ))
}

async fn describe_group(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    Path(group): Path<String>,
) -> ApiResult<impl IntoResponse> {
    access
        .check(Operation::Describe, ResourceType::Group, &group)
        .await?;
    Ok(Json(state.admin.describe_group(&group).await?))
}

async fn list_brokers(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
) -> ApiResult<impl IntoResponse> {
    access.check_cluster(Operation::Describe).await?;
    Ok(Json(state.admin.list_brokers().await?))
}

async fn drain(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    Path(broker): Path<String>,
) -> ApiResult<impl IntoResponse> {
    access.check_cluster(Operation::Alter).await?;
    Ok(Json(json!({ "moves": state.admin.drain(&broker).await? })))
}

async fn undrain(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    Path(broker): Path<String>,
) -> ApiResult<impl IntoResponse> {
    access.check_cluster(Operation::Alter).await?;
    Ok(Json(
        json!({ "moves": state.admin.undrain(&broker).await? }),
    ))
}

/// Either one partition to one broker, or `{"rebalance": true}`.
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum Reassignment {
    One {
        topic: String,
        partition: i64,
        broker: String,
    },
    Rebalance {
        rebalance: bool,
    },
}

async fn reassign(
    State(state): State<ApiState>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<Reassignment>,
) -> ApiResult<impl IntoResponse> {
    access.check_cluster(Operation::Alter).await?;
    let moves = match body {
        Reassignment::One {
            topic,
            partition,
            broker,
        } => vec![state.admin.reassign(&topic, partition, &broker).await?],
        Reassignment::Rebalance { rebalance: true } => state.admin.rebalance().await?,
        Reassignment::Rebalance { rebalance: false } => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                "`rebalance` must be true when given",
            ));
        }
    };
    Ok(Json(json!({ "moves": moves })))
}

#[cfg(test)]
mod tests {
    use strata_meta::MetaError;

    use super::*;

    #[test]
    fn an_error_from_below_answers_with_the_http_status_of_its_own_code() {
        for meta in [
            MetaError::Backend("unexpected".into()),
            MetaError::Unavailable {
                message: "no leader".into(),
            },
        ] {
            let code = meta.code();
            let response = ApiError::from(ControllerError::Meta(meta)).into_response();
            assert_eq!(response.status().as_u16(), code.http_status());
        }
    }
}

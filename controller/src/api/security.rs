//! The security routes of the admin API: who the caller is (a middleware in front of every
//! route but the probes, the metrics and the OpenAPI document), SASL users, and bearer tokens.
//!
//! Users and tokens are managed by principals with Alter on the cluster (listed with Describe)
//! when authentication is on; a principal may also make, list and revoke tokens of its own, so
//! a holder of a client certificate can get a token for a client that cannot present one.

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use strata_catalog::acls::{Access, Operation};
use strata_catalog::tokens::TokenRecord;
use strata_proto::ErrorCode;
use strata_tls::Peer;

use super::{ApiError, ApiJson, ApiResult, ApiState};

/// Routes anyone may call: kubelet probes, Prometheus, and the API's own description.
const OPEN_ROUTES: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/openapi.json"];

/// Finds out who calls every route but [`OPEN_ROUTES`], refusing callers the cluster does not
/// let in; the handlers find the principal, with the rules that judge it, as an
/// [`Extension<Access>`].
pub(super) async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    if OPEN_ROUTES.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|info| info.0.clone());
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
    let outcome = state
        .auth
        .authenticate(
            peer.as_ref().map(|p| p.addr),
            peer.as_ref().and_then(|p| p.principal.as_deref()),
            header.as_deref(),
        )
        .await;
    match outcome {
        Ok(principal) => {
            request
                .extensions_mut()
                .insert(Access::new(principal, state.authorizer.clone()));
            next.run(request).await
        }
        Err(e) => {
            let mut response = ApiError::from(e).into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// Whether `caller` may act on tokens of `principal`: its own, or any with Alter on the
/// cluster.
async fn may_manage_tokens_of(caller: &Access, principal: &str) -> ApiResult<()> {
    if caller.principal() == Some(principal) {
        return Ok(());
    }
    Ok(caller.check_cluster(Operation::Alter).await?)
}

fn token_view(token: &TokenRecord) -> serde_json::Value {
    json!({
        "id": token.id,
        "principal": token.principal,
        "description": token.description,
        "created_ms": token.created_ms,
        "expires_ms": token.expires_ms,
    })
}

/// Tokens: every one for a principal with Describe on the cluster (anyone when authentication
/// is off), else the caller's own.
pub(super) async fn list_tokens(
    State(state): State<ApiState>,
    Extension(caller): Extension<Access>,
) -> ApiResult<impl IntoResponse> {
    let all = caller
        .allows(
            Operation::Describe,
            strata_catalog::acls::ResourceType::Cluster,
            strata_catalog::acls::CLUSTER_NAME,
        )
        .await?;
    let tokens = state.admin.tokens().await?;
    Ok(Json(
        tokens
            .iter()
            .filter(|t| all || caller.principal() == Some(t.principal.as_str()))
            .map(token_view)
            .collect::<Vec<_>>(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    principal: String,
    #[serde(default)]
    description: String,
    /// Seconds until the token is refused; absent: until revoked.
    #[serde(default)]
    expires_in_secs: Option<u64>,
}

/// Makes a token; the answer is the only place its secret ever appears.
pub(super) async fn create_token(
    State(state): State<ApiState>,
    Extension(caller): Extension<Access>,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<impl IntoResponse> {
    may_manage_tokens_of(&caller, &body.principal).await?;
    let now = state.clock.unix_millis();
    let expires_ms = match body.expires_in_secs {
        Some(0) => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                "`expires_in_secs` must be at least 1; leave it out for a token that lasts until revoked",
            ));
        }
        Some(secs) => Some(
            now.saturating_add(
                i64::try_from(secs)
                    .unwrap_or(i64::MAX / 2)
                    .saturating_mul(1000),
            ),
        ),
        None => None,
    };
    let issued = state
        .admin
        .create_token(&body.principal, &body.description, now, expires_ms)
        .await?;
    let mut view = token_view(&issued.record);
    view["token"] = json!(issued.token);
    Ok((StatusCode::CREATED, Json(view)))
}

pub(super) async fn delete_token(
    State(state): State<ApiState>,
    Extension(caller): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let unknown = || ApiError::from(strata_catalog::CatalogError::UnknownToken(id.clone()));
    let token = state.admin.token(&id).await?.ok_or_else(unknown)?;
    may_manage_tokens_of(&caller, &token.principal).await?;
    if state.admin.delete_token(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown())
    }
}

/// A user as listed: its mechanisms, never its keys.
fn user_view(user: &strata_catalog::users::UserRecord) -> serde_json::Value {
    json!({
        "name": user.name,
        "mechanisms": user.credentials.iter().map(|c| json!({
            "mechanism": c.mechanism.name(), "iterations": c.iterations,
        })).collect::<Vec<_>>(),
    })
}

pub(super) async fn list_users(
    State(state): State<ApiState>,
    Extension(caller): Extension<Access>,
) -> ApiResult<impl IntoResponse> {
    caller.check_cluster(Operation::Describe).await?;
    let users = state.admin.users().await?;
    Ok(Json(users.iter().map(user_view).collect::<Vec<_>>()))
}

/// A user's password, turned into SCRAM credentials on arrival. No `Debug`: it would print
/// the password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserCredentials {
    password: String,
    #[serde(default)]
    mechanisms: Option<Vec<String>>,
    #[serde(default)]
    iterations: Option<u32>,
}

pub(super) async fn set_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Access>,
    Path(user): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    caller.check_cluster(Operation::Alter).await?;
    use strata_catalog::users::{ScramCredential, ScramMechanism};
    // Parsed here rather than by `ApiJson`: serde's messages quote a mistyped value, which
    // could be the password.
    let body: UserCredentials = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "malformed user body near line {} column {}: expected {{\"password\": \"...\", \"mechanisms\": [...], \"iterations\": n}}",
                e.line(),
                e.column()
            ),
        )
    })?;
    if body.password.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "password is empty",
        ));
    }
    let mechanisms = match &body.mechanisms {
        None => ScramMechanism::ALL.to_vec(),
        Some(names) => names
            .iter()
            .map(|n| {
                ScramMechanism::parse(n).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidArgument,
                        format!("unknown mechanism `{n}`; use SCRAM-SHA-256 or SCRAM-SHA-512"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let iterations = body
        .iterations
        .unwrap_or(strata_catalog::users::DEFAULT_ITERATIONS);
    for mechanism in mechanisms {
        // PBKDF2 is deliberately slow: off the runtime's threads.
        let password = body.password.clone();
        let credential = tokio::task::spawn_blocking(move || {
            ScramCredential::from_password(mechanism, &password, iterations)
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        state.admin.upsert_credential(&user, credential).await?;
    }
    let record = state.admin.user(&user).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Conflict,
            "the user was removed while it was being set",
        )
    })?;
    Ok(Json(user_view(&record)))
}

pub(super) async fn delete_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Access>,
    Path(user): Path<String>,
) -> ApiResult<impl IntoResponse> {
    caller.check_cluster(Operation::Alter).await?;
    if state.admin.delete_user(&user).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::UnknownUser,
            format!("user `{user}` does not exist; list users with GET /v1/users"),
        ))
    }
}

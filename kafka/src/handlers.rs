//! One handler per API. Each turns a decoded Kafka request into calls of the proxy's service
//! (the same calls gRPC clients make) and the answers into a Kafka response.

mod acls;
mod admin;
mod api_versions;
mod fetch;
mod groups;
mod metadata;
mod offsets;
mod produce;
mod topic_ids;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ProduceRequest, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::Encodable;
use strata_catalog::acls::{Access, Authorizer};
use strata_proto::ErrorCode;
use strata_proto::v1;
use strata_proxy::ProxyService;

use crate::cluster::Cluster;
use crate::error::{KafkaError, Result};
use crate::server::{self, ServerConfig};
use crate::versions::Supported;

pub(crate) use api_versions::unsupported_version;

/// What every handler can reach.
#[derive(Debug)]
pub(crate) struct Context {
    pub service: ProxyService,
    pub cluster: Cluster,
    pub config: ServerConfig,
    pub failed_logins: strata_catalog::auth::FailedLogins,
    /// The ACL rules, enforced when SASL is on: then every caller is someone.
    pub authorizer: Arc<Authorizer>,
}

impl Context {
    pub fn new(service: ProxyService, cluster: Cluster, config: ServerConfig) -> Self {
        let authorizer = Arc::new(Authorizer::new(
            service.admin().clone(),
            !config.sasl.is_empty(),
            config.super_users.clone(),
            service.clock().clone(),
        ));
        Self {
            service,
            cluster,
            config,
            failed_logins: Default::default(),
            authorizer,
        }
    }

    /// A request of `principal` (`None` before or without SASL), to be answered.
    pub fn call(&self, principal: Option<&str>) -> Call<'_> {
        Call {
            ctx: self,
            access: Access::new(principal.map(str::to_owned), self.authorizer.clone()),
        }
    }

    /// The name of the topic with Kafka topic id `id`, if one exists now.
    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<String> {
        let routes = self.service.routes();
        routes
            .topics()
            .into_iter()
            .map(|(name, _)| name)
            .find(|name| {
                topic_ids::topic_uuid(name, routes.topic_id(name).unwrap_or_default()) == id
            })
    }
}

/// One request being answered: what every handler can reach, and what the caller may do.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    ctx: &'a Context,
    pub access: Access,
}

impl std::ops::Deref for Call<'_> {
    type Target = Context;

    fn deref(&self) -> &Context {
        self.ctx
    }
}

impl Call<'_> {
    /// A request of the proxy's service on the caller's behalf: the service checks the
    /// caller's access as it would a gRPC client's.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.extensions_mut().insert(self.access.clone());
        request
    }
}

/// The answer of a service call, with a transport-level failure (which an in-process call only
/// returns for a request the service refuses outright) as a Strata error.
pub(crate) fn answer<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<T, v1::Error> {
    result.map(tonic::Response::into_inner).map_err(|status| {
        v1::Error::new(
            strata_proto::code_of_status(&status).unwrap_or(ErrorCode::Internal),
            status.message(),
        )
    })
}

/// Answers one request: the encoded response frame, or `None` when Kafka sends no response
/// (a produce with acks=0).
pub(crate) async fn handle(
    ctx: &Call<'_>,
    peer: SocketAddr,
    header: &RequestHeader,
    api: &'static Supported,
    body: RequestKind,
) -> Result<Option<Bytes>> {
    let version = header.request_api_version;
    let response = match body {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(&r)),
        RequestKind::Metadata(r) => {
            ResponseKind::Metadata(metadata::handle(ctx, r, version).await?)
        }
        RequestKind::Produce(r) => {
            let mut answers = produce_together(ctx, vec![(header.clone(), api, r)]).await;
            return answers.pop().unwrap_or(Ok(None));
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(ctx, r).await),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(offsets::list(ctx, r).await),
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offsets::for_leader_epoch(ctx, r).await)
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(produce::init_producer_id(ctx, r).await)
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(admin::create_topics(ctx, r).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(admin::delete_topics(ctx, r).await)
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(admin::create_partitions(ctx, r).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(admin::describe_configs(ctx, r).await)
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(admin::alter_configs(ctx, r).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(admin::incremental_alter_configs(ctx, r).await)
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(admin::describe_cluster(ctx, r).await)
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(ctx, r, version))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(groups::join(ctx, peer, header, r, version).await)
        }
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync(ctx, r, version).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(ctx, r).await),
        RequestKind::LeaveGroup(r) => {
            ResponseKind::LeaveGroup(groups::leave(ctx, r, version).await)
        }
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(groups::commit(ctx, r).await),
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(groups::fetch_offsets(ctx, r, version).await)
        }
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list(ctx, r, version).await),
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(groups::describe(ctx, r).await)
        }
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(groups::delete(ctx, r).await),
        RequestKind::DescribeUserScramCredentials(r) => {
            ResponseKind::DescribeUserScramCredentials(users::describe(ctx, r).await)
        }
        RequestKind::AlterUserScramCredentials(r) => {
            ResponseKind::AlterUserScramCredentials(users::alter(ctx, r).await)
        }
        RequestKind::DescribeAcls(r) => ResponseKind::DescribeAcls(acls::describe(ctx, r).await),
        RequestKind::CreateAcls(r) => ResponseKind::CreateAcls(acls::create(ctx, r).await),
        RequestKind::DeleteAcls(r) => ResponseKind::DeleteAcls(acls::delete(ctx, r).await),
        other => {
            // The table advertises an API no arm answers: a bug, not the client's fault.
            return Err(KafkaError::Encode {
                api: api.name,
                version,
                reason: format!("no handler for {:?}", std::mem::discriminant(&other)),
            });
        }
    };
    encode(api, header.correlation_id, version, &response).map(Some)
}

/// Answers Produce requests of one connection, in order, forwarded in one call of the service
/// ([`produce::forward`]); all must have the same acks. `None` for each acks=0 request.
pub(crate) async fn produce_together(
    ctx: &Call<'_>,
    requests: Vec<(RequestHeader, &'static Supported, ProduceRequest)>,
) -> Vec<Result<Option<Bytes>>> {
    let mut heads = Vec::with_capacity(requests.len());
    let mut prepared = Vec::with_capacity(requests.len());
    for (header, api, request) in requests {
        heads.push((header, api));
        prepared.push(produce::prepare(ctx, request).await);
    }
    produce::forward(ctx, &mut prepared).await;
    heads
        .into_iter()
        .zip(prepared)
        .map(|((header, api), prepared)| match prepared.response() {
            None => Ok(None),
            Some(response) => encode(
                api,
                header.correlation_id,
                header.request_api_version,
                &ResponseKind::Produce(response),
            )
            .map(Some),
        })
        .collect()
}

/// The response frame: length, header (at the API's header version), body.
pub(crate) fn encode(
    api: &'static Supported,
    correlation_id: i32,
    version: i16,
    response: &ResponseKind,
) -> Result<Bytes> {
    let encode_error = |reason: String| KafkaError::Encode {
        api: api.name,
        version,
        reason,
    };
    server::frame(|buf: &mut BytesMut| {
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(buf, api.api.response_header_version(version))
            .map_err(|e| encode_error(e.to_string()))?;
        response
            .encode(buf, version)
            .map_err(|e| encode_error(e.to_string()))
    })
}

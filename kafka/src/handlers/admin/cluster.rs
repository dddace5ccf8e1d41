//! DescribeCluster: the live proxies as brokers, as Metadata lists them.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use strata_proto::Coded;

use crate::cluster::host_port;
use crate::codes;
use crate::handlers::Call;
use strata_catalog::acls::Operation;

/// Brokers (as opposed to KRaft controllers, type 2): the only endpoints clients talk to.
const ENDPOINT_BROKERS: i8 = 1;

pub(in crate::handlers) async fn describe_cluster(
    ctx: &Call<'_>,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(ctx.cluster.cluster_id().to_owned()));
    if request.endpoint_type != ENDPOINT_BROKERS {
        return response
            .with_error_code(codes::UNSUPPORTED_ENDPOINT_TYPE)
            .with_error_message(Some(StrBytes::from_string(format!(
                "endpoint type {} is not served; proxies are brokers (endpoint type 1) and there are no separate controllers",
                request.endpoint_type
            ))))
            .with_controller_id(BrokerId(-1));
    }
    if let Err(e) = ctx.access.check_cluster(Operation::Describe).await {
        return response
            .with_error_code(codes::cluster_code(e.code()))
            .with_error_message(Some(StrBytes::from_string(e.to_string())))
            .with_controller_id(BrokerId(-1));
    }
    match ctx.cluster.nodes().await {
        Ok(nodes) => {
            let brokers = nodes
                .iter()
                .map(|node| {
                    let (host, port) = host_port(&node.kafka_addr);
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(node.node_id))
                        .with_host(StrBytes::from_string(host))
                        .with_port(port)
                        .with_rack(
                            (!node.rack.is_empty())
                                .then(|| StrBytes::from_string(node.rack.clone())),
                        )
                })
                .collect();
            // Any proxy can administer the cluster; the lowest id is a stable choice that
            // agrees with Metadata.
            let controller = nodes.iter().map(|n| n.node_id).min().unwrap_or(-1);
            response
                .with_controller_id(BrokerId(controller))
                .with_brokers(brokers)
        }
        Err(e) => response
            .with_error_code(codes::kafka_code(e.code()))
            .with_error_message(Some(StrBytes::from_string(e.to_string())))
            .with_controller_id(BrokerId(-1)),
    }
}

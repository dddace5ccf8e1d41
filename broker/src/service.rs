//! The gRPC `strata.v1.Broker` service.

use std::sync::Arc;

use futures::future::join_all;
use strata_proto::Coded;
use strata_proto::v1::{self, broker_server};
use tonic::{Request, Response, Status};

use crate::broker::Broker;
use crate::partition::{Ack, StoreTimes};

/// Serves produce and status requests for one broker.
#[derive(Debug, Clone)]
pub struct BrokerService {
    broker: Arc<Broker>,
}

impl BrokerService {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }

    pub fn into_server(self) -> broker_server::BrokerServer<Self> {
        broker_server::BrokerServer::new(self).max_decoding_message_size(64 << 20)
    }
}

fn ack_of(ack: i32) -> Result<Ack, Status> {
    match v1::Ack::try_from(ack) {
        Ok(v1::Ack::Durable) => Ok(Ack::Durable),
        Ok(v1::Ack::Buffered) => Ok(Ack::Buffered),
        Ok(v1::Ack::None) => Ok(Ack::None),
        Err(_) => Err(strata_proto::status(
            strata_proto::ErrorCode::InvalidArgument,
            format!("unknown ack mode {ack}; use ACK_DURABLE, ACK_BUFFERED or ACK_NONE"),
        )),
    }
}

#[tonic::async_trait]
impl broker_server::Broker for BrokerService {
    async fn produce(
        &self,
        request: Request<v1::ProduceRequest>,
    ) -> Result<Response<v1::ProduceResponse>, Status> {
        let request = request.into_inner();
        let ack = ack_of(request.ack)?;
        let partitions = join_all(request.partitions.into_iter().map(|p| async move {
            let epoch = (p.leader_epoch > 0).then_some(p.leader_epoch);
            let results = self
                .broker
                .produce_timed(&p.topic, p.partition, p.batches, ack, epoch)
                .await;
            let batches = results
                .into_iter()
                .map(|(r, times)| match r {
                    Ok(base) if ack != Ack::None => v1::BatchResult {
                        base_offset: base,
                        error: None,
                        store_times: times.map(store_times),
                    },
                    Ok(_) => v1::BatchResult {
                        base_offset: -1,
                        ..Default::default()
                    },
                    Err(e) => v1::BatchResult {
                        base_offset: -1,
                        error: Some(e.to_wire()),
                        store_times: None,
                    },
                })
                .collect();
            v1::PartitionResult {
                topic: p.topic,
                partition: p.partition,
                batches,
            }
        }))
        .await;
        Ok(Response::new(v1::ProduceResponse { partitions }))
    }

    async fn status(
        &self,
        _: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let partitions = self
            .broker
            .status()
            .iter()
            .map(|p| v1::PartitionStatus {
                topic: p.topic.clone(),
                partition: p.partition,
                epoch: p.epoch,
                state: p.state().to_string(),
                high_watermark: p.high_watermark(),
                buffered_bytes: p.buffered_bytes() as u64,
            })
            .collect();
        Ok(Response::new(v1::StatusResponse {
            broker_id: self.broker.id().to_owned(),
            partitions,
        }))
    }
}

fn store_times(t: StoreTimes) -> v1::StoreTimes {
    let micros = |d: std::time::Duration| d.as_micros().try_into().unwrap_or(u64::MAX);
    v1::StoreTimes {
        buffered_us: micros(t.buffered),
        put_us: micros(t.put),
        commit_us: micros(t.commit),
    }
}

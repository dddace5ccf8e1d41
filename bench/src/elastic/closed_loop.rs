//! One sender per partition, each waiting for its acknowledgement before the next record, so
//! an outage shows as one long wait per partition.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use strata_client::{Ack, Partitioner, Producer, ProducerRecord};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::load;

/// Acknowledgements of every sender: (partition, when, offset).
type Acks = Arc<Mutex<Vec<(u32, Instant, i64)>>>;

/// Failed sends and the first failure's message.
type Errors = Arc<Mutex<(u64, Option<String>)>>;

pub struct ClosedLoop {
    acks: Acks,
    errors: Errors,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    producer: Producer,
}

impl ClosedLoop {
    pub async fn start(
        server: &str,
        topic: &str,
        partitions: &[u32],
        size: usize,
    ) -> anyhow::Result<Self> {
        let producer = load::producer(
            server,
            Ack::Durable,
            Duration::ZERO,
            Partitioner::RoundRobin,
        )
        .await?;
        let acks = Acks::default();
        let errors = Errors::default();
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let value = load::template(size);
        for &p in partitions {
            let record = ProducerRecord::new(topic.to_owned(), value.clone()).with_partition(p);
            tasks.spawn(send_one_at_a_time(
                producer.clone(),
                p,
                record,
                acks.clone(),
                errors.clone(),
                cancel.clone(),
            ));
        }
        Ok(Self {
            acks,
            errors,
            cancel,
            tasks,
            producer,
        })
    }

    /// Waits for the first acknowledgement of `partition` at an offset ≥ `from` that arrived
    /// after `after`.
    pub async fn first_ack(
        &self,
        partition: u32,
        from: i64,
        after: Instant,
        limit: Duration,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = self.acked(partition, from, after) {
                return Ok(at);
            }
            if Instant::now() >= deadline {
                bail!(
                    "no acknowledgement of partition {partition} at offset ≥ {from} within {limit:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn acked(&self, partition: u32, from: i64, after: Instant) -> Option<Instant> {
        self.acks
            .lock()
            .expect("acks lock")
            .iter()
            .filter(|(p, at, o)| *p == partition && *o >= from && *at >= after)
            .map(|(_, at, _)| *at)
            .min()
    }

    /// Stops every sender; returns how many sends failed and the first failure.
    pub async fn stop(mut self) -> (u64, Option<String>) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
        let _ = self.producer.close().await;
        let errors = self.errors.lock().expect("errors lock");
        (errors.0, errors.1.clone())
    }
}

async fn send_one_at_a_time(
    producer: Producer,
    partition: u32,
    record: ProducerRecord,
    acks: Acks,
    errors: Errors,
    cancel: CancellationToken,
) {
    loop {
        let answer = tokio::select! {
            () = cancel.cancelled() => return,
            answer = producer.send(record.clone()) => answer,
        };
        match answer {
            Ok(meta) => {
                acks.lock()
                    .expect("acks lock")
                    .push((partition, Instant::now(), meta.offset))
            }
            Err(e) => {
                {
                    let mut errors = errors.lock().expect("errors lock");
                    errors.0 += 1;
                    errors.1.get_or_insert_with(|| e.to_string());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

//! The broker: the partitions it owns and the flusher that writes them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use strata_format::RecordBatch;
use strata_meta::MetaStore;
use strata_meta::schema::{self, Assignment, Keyspace};
use strata_storage::NodePool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::{BrokerError, Result};
use crate::flush::{FlushStats, InFlight};
use crate::partition::{Ack, Limits, Partition, PartitionState};

/// Settings of the broker role.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub id: String,
    pub limits: Limits,
    /// Least time between the starts of two flushes (unless `flush_bytes` are buffered); data
    /// reaching an idle broker is flushed at once.
    pub linger: Duration,
    /// Buffered bytes (all partitions) that start a flush at once.
    pub flush_bytes: usize,
}

impl BrokerConfig {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            limits: Limits::default(),
            linger: Duration::from_millis(5),
            flush_bytes: 4 << 20,
        }
    }
}

type Key = (String, u32);

/// One broker process's write path.
#[derive(Debug)]
pub struct Broker {
    pub(crate) id: String,
    pub(crate) meta: Arc<dyn MetaStore>,
    pub(crate) keys: Keyspace,
    pub(crate) pool: Arc<NodePool>,
    config: BrokerConfig,
    partitions: RwLock<HashMap<Key, Arc<Partition>>>,
    pub(crate) flush_wanted: Arc<Notify>,
    /// Asks the membership loop to read the assignments again: a partition still assigned
    /// here may have been fenced, or failed to open, and would otherwise wait for the next
    /// assignment change.
    pub(crate) reconcile_wanted: Notify,
    pub(crate) flush_lock: tokio::sync::Mutex<()>,
    pub(crate) retry: Mutex<Vec<InFlight>>,
    pub(crate) storage_stall: crate::stall::StorageStall,
    pub metrics: crate::metrics::BrokerMetrics,
    /// Registered and serving; false before registration and from the start of shutdown.
    pub ready: std::sync::atomic::AtomicBool,
}

impl Broker {
    pub fn new(
        config: BrokerConfig,
        meta: Arc<dyn MetaStore>,
        keys: Keyspace,
        pool: Arc<NodePool>,
    ) -> Arc<Self> {
        Arc::new(Self {
            id: config.id.clone(),
            meta,
            keys,
            pool,
            config,
            partitions: RwLock::default(),
            flush_wanted: Arc::new(Notify::new()),
            reconcile_wanted: Notify::new(),
            flush_lock: tokio::sync::Mutex::new(()),
            retry: Mutex::default(),
            storage_stall: crate::stall::StorageStall::default(),
            metrics: crate::metrics::BrokerMetrics::default(),
            ready: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partition map poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// The partition if this broker serves it.
    pub fn partition(&self, topic: &str, partition: u32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partition map poisoned")
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    /// Start → Recover → Write for a partition the assignment gives this broker.
    pub async fn open_partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>> {
        let key = self.keys.assignment(topic, partition);
        let kv = self
            .meta
            .get(&key)
            .await?
            .ok_or_else(|| BrokerError::NotLeader {
                topic: topic.into(),
                partition,
                reason: "the partition has no assignment".into(),
            })?;
        let assignment: Assignment = schema::decode(&key, &kv.value)?;
        // A fenced or closed incarnation at the same epoch is opened anew: the claim below
        // decides whether this broker may still write it.
        if let Some(existing) = self.partition(topic, partition)
            && existing.epoch == assignment.epoch
            && !matches!(
                existing.state(),
                PartitionState::Fenced | PartitionState::Closed
            )
        {
            return Ok(existing);
        }
        let opened = Arc::new(
            Partition::recover(
                self.meta.as_ref(),
                &self.keys,
                &self.id,
                topic,
                partition,
                &assignment,
                kv.mod_revision,
                self.config.limits,
                self.flush_wanted.clone(),
            )
            .await?,
        );
        let previous = self
            .partitions
            .write()
            .expect("partition map poisoned")
            .insert((topic.to_owned(), partition), opened.clone());
        if let Some(old) = previous {
            old.close();
        }
        Ok(opened)
    }

    /// Stops serving a partition; anything buffered is dropped (its producers retry elsewhere).
    pub fn release(&self, topic: &str, partition: u32) {
        if let Some(p) = self
            .partitions
            .write()
            .expect("partition map poisoned")
            .remove(&(topic.to_owned(), partition))
        {
            p.close();
        }
    }

    /// Validates raw batch bytes and appends them to a partition this broker serves.
    pub async fn produce(
        &self,
        topic: &str,
        partition: u32,
        batch: Bytes,
        ack: Ack,
    ) -> Result<i64> {
        self.produce_many(topic, partition, vec![batch], ack)
            .await
            .pop()
            .expect("one result per batch")
    }

    /// Appends several batches to one partition in order; with `Ack::Durable` it waits once,
    /// for the last of them. One result per batch: a bad batch fails alone.
    pub async fn produce_many(
        &self,
        topic: &str,
        partition: u32,
        batches: Vec<Bytes>,
        ack: Ack,
    ) -> Vec<Result<i64>> {
        self.produce_at_epoch(topic, partition, batches, ack, None)
            .await
    }

    /// Like [`produce_many`](Self::produce_many), refusing the batches when `leader_epoch` is
    /// given and is not the epoch this broker serves the partition at.
    pub async fn produce_at_epoch(
        &self,
        topic: &str,
        partition: u32,
        batches: Vec<Bytes>,
        ack: Ack,
        leader_epoch: Option<u64>,
    ) -> Vec<Result<i64>> {
        let served = self.partition(topic, partition);
        if let (Some(p), Some(requested)) = (&served, leader_epoch)
            && p.epoch != requested
        {
            let err = BrokerError::EpochMismatch {
                topic: topic.into(),
                partition,
                requested,
                current: p.epoch,
            };
            return batches.iter().map(|_| Err(err.clone())).collect();
        }
        let Some(p) = served else {
            let err = BrokerError::NotLeader {
                topic: topic.into(),
                partition,
                reason: "this broker does not own the partition".into(),
            };
            return batches.iter().map(|_| Err(err.clone())).collect();
        };
        let limit = self.config.limits.max_batch_bytes;
        let mut results = Vec::with_capacity(batches.len());
        let mut end = None;
        for bytes in batches {
            let outcome = async {
                if bytes.len() > limit {
                    return Err(BrokerError::BatchTooLarge {
                        size: bytes.len(),
                        limit,
                    });
                }
                let size = bytes.len() as u64;
                let batch = RecordBatch::parse(bytes)
                    .map_err(|e| BrokerError::CorruptBatch(e.to_string()))?;
                let enqueued = p.enqueue(batch).await?;
                self.metrics.produced_bytes.inc_by(size);
                Ok(enqueued)
            }
            .await;
            results.push(outcome.map(|(base, batch_end)| {
                end = end.max(Some(batch_end));
                base
            }));
        }
        for result in &results {
            match result {
                Ok(_) => {
                    self.metrics.produced_batches.inc();
                }
                Err(e) => {
                    let code = crate::metrics::CodeLabel {
                        code: e.code().as_str().to_owned(),
                    };
                    self.metrics.produce_errors.get_or_create(&code).inc();
                }
            }
        }
        if ack == Ack::Durable
            && let Some(end) = end
            && let Err(e) = p.wait_committed(end).await
        {
            for result in &mut results {
                if result.is_ok() {
                    *result = Err(e.clone());
                }
            }
        }
        results
    }

    /// What this broker serves, for the status RPC, metrics and logs.
    pub fn status(&self) -> Vec<Arc<Partition>> {
        let mut all = self.partitions();
        all.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        all
    }

    fn buffered_bytes(&self) -> usize {
        self.partitions().iter().map(|p| p.buffered_bytes()).sum()
    }

    /// Flushes on demand until cancelled. `linger` is the least time between the starts of two
    /// flushes (unless `flush_bytes` are waiting): data arriving at an idle broker is flushed
    /// at once, so a lone durable produce waits one PUT and one commit rather than a fixed
    /// linger on top, while a steady stream still gets at most one flush per linger.
    pub async fn run_flusher(&self, cancel: CancellationToken) {
        let mut last_start: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.flush_wanted.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if let Some(last) = last_start
                && self.buffered_bytes() < self.config.flush_bytes
            {
                tokio::time::sleep_until(last + self.config.linger).await;
            }
            last_start = Some(tokio::time::Instant::now());
            let stats: FlushStats = self.flush_once().await;
            if stats.retrying > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Graceful stop: refuse new writes, flush and commit what is buffered (bounded by
    /// `timeout`), then release every partition.
    pub async fn shutdown(&self, timeout: Duration) {
        self.ready.store(false, std::sync::atomic::Ordering::SeqCst);
        let partitions = self.partitions();
        partitions.iter().for_each(|p| p.begin_closing());
        let deadline = tokio::time::Instant::now() + timeout;
        while partitions.iter().any(|p| !p.is_drained()) && tokio::time::Instant::now() < deadline {
            let stats = self.flush_once().await;
            if stats.retrying > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        for p in partitions {
            self.release(&p.topic, p.partition);
        }
    }
}

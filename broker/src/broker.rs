//! The broker: the partitions it serves, the produce path into their buffers, and the two
//! workers that write and tend their logs (the [`Flusher`] and the [`Maintainer`]).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use strata_config::BrokerSection;
use strata_format::RecordBatch;
use strata_meta::MetaStore;
use strata_meta::schema::{self, Assignment, Keyspace};
use strata_proto::Coded;
use strata_storage::NodePool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::delays::{Budget, DelayWorker};
use crate::error::{BrokerError, Result};
use crate::flush::{FlushConfig, FlushStats, Flusher};
use crate::maintenance::{Maintainer, MaintenanceConfig, MaintenanceStats};
use crate::metrics::{BrokerMetrics, CodeLabel};
use crate::partition::{Ack, Limits, Partition, PartitionState, StoreTimes};
use crate::table::{LogAccess, PartitionTable};

/// Settings of the broker role.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub id: String,
    pub limits: Limits,
    pub flush: FlushConfig,
    pub maintenance: MaintenanceConfig,
    /// Bytes of pending delayed records' bodies held in memory.
    pub delay_memory_bytes: usize,
    /// When delayed records are due: the system clock, or a test's.
    pub clock: Arc<dyn strata_clock::Clock>,
}

impl BrokerConfig {
    /// The shipped `[broker]` settings.
    pub fn new(id: impl Into<String>) -> Self {
        Self::from_section(id, &strata_config::Config::shipped().broker)
    }

    pub fn from_section(id: impl Into<String>, s: &BrokerSection) -> Self {
        Self {
            id: id.into(),
            limits: Limits::from(s),
            flush: FlushConfig::from(s),
            maintenance: MaintenanceConfig::from(&s.maintenance),
            delay_memory_bytes: s.delay_memory_bytes,
            clock: Arc::new(strata_clock::SystemClock),
        }
    }
}

/// One broker process's write path.
#[derive(Debug)]
pub struct Broker {
    log: LogAccess,
    limits: Limits,
    partitions: Arc<PartitionTable>,
    flusher: Flusher,
    maintainer: Maintainer,
    delays: DelayWorker,
    /// Asks the membership loop to read the assignments again: a partition still assigned
    /// here may have been fenced, or failed to open, and would otherwise wait for the next
    /// assignment change.
    pub(crate) reconcile_wanted: Arc<Notify>,
    pub metrics: Arc<BrokerMetrics>,
    /// Registered and serving; false before registration and from the start of shutdown.
    pub ready: AtomicBool,
}

impl Broker {
    pub fn new(
        config: BrokerConfig,
        meta: Arc<dyn MetaStore>,
        keys: Keyspace,
        pool: Arc<NodePool>,
    ) -> Arc<Self> {
        let log = LogAccess {
            writer: config.id,
            meta,
            keys,
            pool,
        };
        let partitions = Arc::new(PartitionTable::default());
        let metrics = Arc::new(BrokerMetrics::default());
        let reconcile_wanted = Arc::new(Notify::new());
        Arc::new(Self {
            flusher: Flusher::new(
                log.clone(),
                partitions.clone(),
                metrics.clone(),
                config.flush,
                reconcile_wanted.clone(),
            ),
            maintainer: Maintainer::new(
                log.clone(),
                partitions.clone(),
                metrics.clone(),
                config.maintenance,
            ),
            delays: DelayWorker::new(
                log.clone(),
                partitions.clone(),
                Budget::shown_in(
                    config.delay_memory_bytes,
                    metrics.delays.body_bytes.clone(),
                    metrics.delays.pending.clone(),
                ),
                metrics.clone(),
                config.clock,
            ),
            log,
            limits: config.limits,
            partitions,
            reconcile_wanted,
            metrics,
            ready: AtomicBool::new(false),
        })
    }

    pub fn id(&self) -> &str {
        &self.log.writer
    }

    pub(crate) fn log(&self) -> &LogAccess {
        &self.log
    }

    pub(crate) fn flusher(&self) -> &Flusher {
        &self.flusher
    }

    pub(crate) fn maintainer(&self) -> &Maintainer {
        &self.maintainer
    }

    /// The schedulers of delayed messages.
    pub fn delays(&self) -> &DelayWorker {
        &self.delays
    }

    /// The partition if this broker serves it.
    pub fn partition(&self, topic: &str, partition: u32) -> Option<Arc<Partition>> {
        self.partitions.get(topic, partition)
    }

    /// Start → Recover → Write for a partition the assignment gives this broker.
    pub async fn open_partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>> {
        let p = self.start_partition(topic, partition).await?;
        self.recover_partition(&p).await?;
        Ok(p)
    }

    /// Start: serves the partition the assignment gives this broker, refusing writes until it
    /// is recovered, so its state shows from the moment the assignment is seen. Returns the
    /// incarnation already served when it is live at the assignment's epoch.
    pub(crate) async fn start_partition(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Arc<Partition>> {
        let key = self.log.keys.assignment(topic, partition);
        let kv = self
            .log
            .meta
            .get(&key)
            .await?
            .ok_or_else(|| BrokerError::NotLeader {
                topic: topic.into(),
                partition,
                reason: "the partition has no assignment".into(),
            })?;
        let assignment: Assignment = schema::decode(&key, &kv.value)?;
        if assignment.broker != self.log.writer {
            // Moved on since the caller looked: serving it, even refusing writes, would show
            // a partition here that the cluster has given to another broker.
            return Err(BrokerError::NotLeader {
                topic: topic.into(),
                partition,
                reason: format!("assigned to `{}`", assignment.broker),
            });
        }
        // A fenced or closed incarnation at the same epoch is opened anew: the claim decides
        // whether this broker may still write it.
        if let Some(existing) = self.partition(topic, partition)
            && existing.epoch == assignment.epoch
            && !matches!(
                existing.state(),
                PartitionState::Fenced | PartitionState::Closed
            )
        {
            return Ok(existing);
        }
        let started = Arc::new(Partition::start(
            topic,
            partition,
            &assignment,
            kv.mod_revision,
            self.limits,
            self.flusher.wanted(),
        ));
        if let Some(old) = self.partitions.insert(started.clone()) {
            old.close();
        }
        Ok(started)
    }

    /// Recover → Write for a partition in Start; anything else is left as it is. A partition
    /// that fails to recover is no longer served.
    pub(crate) async fn recover_partition(&self, p: &Arc<Partition>) -> Result<()> {
        if p.state() != PartitionState::Start {
            return Ok(());
        }
        let recovered = p
            .recover(self.log.meta.as_ref(), &self.log.keys, &self.log.writer)
            .await;
        match &recovered {
            Ok(()) => self.partitions.note_writable(),
            Err(_) => self.partitions.remove_incarnation(p),
        }
        recovered
    }

    /// Stops serving a partition; anything buffered is dropped (its producers retry elsewhere).
    pub fn release(&self, topic: &str, partition: u32) {
        if let Some(p) = self.partitions.remove(topic, partition) {
            p.close();
        }
    }

    pub(crate) fn release_all(&self) {
        for p in self.partitions.all() {
            self.release(&p.topic, p.partition);
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
        self.produce_timed(topic, partition, batches, ack, leader_epoch)
            .await
            .into_iter()
            .map(|(result, _)| result)
            .collect()
    }

    /// [`produce_at_epoch`](Self::produce_at_epoch) with, for each batch acknowledged
    /// durably, where it spent its time on this broker (for message traces).
    pub async fn produce_timed(
        &self,
        topic: &str,
        partition: u32,
        batches: Vec<Bytes>,
        ack: Ack,
        leader_epoch: Option<u64>,
    ) -> Vec<(Result<i64>, Option<StoreTimes>)> {
        let arrived = tokio::time::Instant::now();
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
            return batches.iter().map(|_| (Err(err.clone()), None)).collect();
        }
        let Some(p) = served else {
            let err = BrokerError::NotLeader {
                topic: topic.into(),
                partition,
                reason: "this broker does not own the partition".into(),
            };
            return batches.iter().map(|_| (Err(err.clone()), None)).collect();
        };
        let limit = self.limits.max_batch_bytes;
        let mut results = Vec::with_capacity(batches.len());
        let mut ends = Vec::with_capacity(batches.len());
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
                let batch = RecordBatch::parse(bytes).map_err(BrokerError::CorruptBatch)?;
                let enqueued = p.enqueue(batch).await?;
                self.metrics.produced_bytes.inc_by(size);
                Ok(enqueued)
            }
            .await;
            ends.push(outcome.as_ref().ok().map(|(_, batch_end)| *batch_end));
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
                    let code = CodeLabel {
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
            .into_iter()
            .zip(ends)
            .map(|(result, end)| {
                let times = end
                    .filter(|_| ack == Ack::Durable && result.is_ok())
                    .and_then(|end| p.store_times(arrived, end));
                (result, times)
            })
            .collect()
    }

    /// The `/metrics` page: the broker's metrics and its storage pool's.
    pub fn render_metrics(&self) -> String {
        self.render_metrics_with(None)
    }

    /// [`Self::render_metrics`] with the TLS listener's metrics (`strata_broker_tls_*`).
    pub fn render_metrics_with(&self, tls: Option<&strata_tls::ServerTls>) -> String {
        self.metrics.render(&self.status(), &self.log().pool, tls)
    }

    /// What this broker serves, for the status RPC, metrics and logs.
    pub fn status(&self) -> Vec<Arc<Partition>> {
        let mut all = self.partitions.all();
        all.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        all
    }

    /// Runs one flush cycle (see [`Flusher::flush_once`]).
    pub async fn flush_once(&self) -> FlushStats {
        self.flusher.flush_once().await
    }

    /// Flushes on demand until cancelled (see [`Flusher::run`]).
    pub async fn run_flusher(&self, cancel: CancellationToken) {
        self.flusher.run(cancel).await;
    }

    /// One maintenance pass (see [`Maintainer::maintain_once`]).
    pub async fn maintain_once(&self, gc_grace: Duration, sweep_orphans: bool) -> MaintenanceStats {
        self.maintainer.maintain_once(gc_grace, sweep_orphans).await
    }

    /// See [`Maintainer::sweep_deleted_topics`].
    pub async fn sweep_deleted_topics(&self, gc_grace: Duration) -> Result<usize> {
        self.maintainer.sweep_deleted_topics(gc_grace).await
    }

    /// Graceful stop: refuse new writes, flush and commit what is buffered (bounded by
    /// `timeout`), then release every partition.
    pub async fn shutdown(&self, timeout: Duration) {
        self.ready.store(false, std::sync::atomic::Ordering::SeqCst);
        let partitions = self.partitions.all();
        partitions.iter().for_each(|p| p.begin_closing());
        let deadline = tokio::time::Instant::now() + timeout;
        while partitions.iter().any(|p| !p.is_drained()) && tokio::time::Instant::now() < deadline {
            let stats = self.flusher.flush_once().await;
            if stats.retrying > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        self.release_all();
    }
}

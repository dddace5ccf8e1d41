//! Delayed messages on the broker: every partition it writes, of a topic that accepts
//! delays, gets a [`Scheduler`] that delivers the partition's delayed records when due.
//!
//! The delayed original is stored in the partition itself, where the proxy hides it from
//! consumers; the scheduler appends its copy (`strata_format::delay`). Both live in the
//! partition's log, so the partition's fencing covers delivery: only the current owner can
//! commit a copy, and a new owner finds every original without a copy by reading the log
//! from the saved low mark. A copy names its original, so nothing is delivered twice by
//! owners that follow each other, and the copy's commit is the delivered mark.

mod pending;
mod scheduler;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use strata_clock::Clock;
use strata_log::{CacheConfig, ReadCache};
use strata_meta::schema::{self, TopicConfig};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics::BrokerMetrics;
use crate::partition::{Partition, PartitionState};
use crate::table::{LogAccess, PartitionTable};
pub(crate) use pending::Budget;
use scheduler::{Scheduler, SchedulerConfig};

/// How often the broker looks for partitions that need a scheduler (new partitions, topics
/// that start accepting delays, schedulers that failed).
const PASS_EVERY: Duration = Duration::from_secs(1);
/// Segments the broker's schedulers keep for reading bodies back.
const READ_CACHE_BYTES: u64 = 32 << 20;
/// Segments the schedulers' sweeps read, kept apart from the read-backs' so a sweep's
/// sequential reads do not push theirs out; one for the broker, however many sweep at once.
const SWEEP_CACHE_BYTES: u64 = 32 << 20;

/// Runs the schedulers of a broker's partitions.
#[derive(Debug)]
pub struct DelayWorker {
    log: LogAccess,
    partitions: Arc<PartitionTable>,
    config: SchedulerConfig,
}

struct Running {
    partition: Arc<Partition>,
    cancel: CancellationToken,
}

impl DelayWorker {
    pub(crate) fn new(
        log: LogAccess,
        partitions: Arc<PartitionTable>,
        budget: Arc<Budget>,
        metrics: Arc<BrokerMetrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            log,
            partitions,
            config: SchedulerConfig {
                budget,
                read_cache: Arc::new(ReadCache::new(CacheConfig {
                    capacity_bytes: READ_CACHE_BYTES,
                    max_object_bytes: READ_CACHE_BYTES / 8,
                })),
                sweep_cache: Arc::new(ReadCache::new(CacheConfig {
                    capacity_bytes: SWEEP_CACHE_BYTES,
                    max_object_bytes: SWEEP_CACHE_BYTES / 8,
                })),
                metrics,
                clock,
            },
        }
    }

    /// Keeps one scheduler per written partition of a delay topic until `cancel`.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut tasks = JoinSet::new();
        let mut running: HashMap<(String, u32), Running> = HashMap::new();
        loop {
            while tasks.try_join_next().is_some() {}
            match self.delay_topics().await {
                Ok(topics) => self.reconcile(&topics, &mut running, &mut tasks, &cancel),
                Err(e) => {
                    tracing::warn!(error = %e, "reading topic settings for delayed messages failed; retrying");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                // A partition that became writable is served at once: its delayed records
                // wait for its scheduler.
                () = self.partitions.writable() => {}
                () = tokio::time::sleep(PASS_EVERY) => {}
            }
        }
        for r in running.values() {
            r.cancel.cancel();
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Ids of the topics whose logs may hold delayed records.
    async fn delay_topics(&self) -> crate::Result<HashMap<String, u64>> {
        let (kvs, _) = self.log.meta.range(&self.log.keys.topics()).await?;
        Ok(kvs
            .iter()
            .filter_map(|kv| {
                let name = self.log.keys.topic_name_of(&kv.key)?;
                let config = schema::decode::<TopicConfig>(&kv.key, &kv.value).ok()?;
                config.delay_filtering.then(|| (name.to_owned(), config.id))
            })
            .collect())
    }

    fn reconcile(
        &self,
        topics: &HashMap<String, u64>,
        running: &mut HashMap<(String, u32), Running>,
        tasks: &mut JoinSet<()>,
        cancel: &CancellationToken,
    ) {
        // Schedulers whose partition incarnation is gone or finished, or whose task ended.
        running.retain(|(topic, partition), r| {
            let current = self
                .partitions
                .get(topic, *partition)
                .is_some_and(|p| Arc::ptr_eq(&p, &r.partition));
            let keep =
                current && r.partition.state() == PartitionState::Write && !r.cancel.is_cancelled();
            if !keep {
                r.cancel.cancel();
            }
            keep
        });
        for p in self.partitions.all() {
            let wanted =
                p.state() == PartitionState::Write && topics.get(&p.topic) == Some(&p.topic_id);
            let key = (p.topic.clone(), p.partition);
            if !wanted || running.contains_key(&key) {
                continue;
            }
            let token = cancel.child_token();
            let scheduler = Scheduler::new(p.clone(), self.log.clone(), self.config.clone());
            let done = token.clone();
            tasks.spawn(async move {
                // However it ends (failed, panicked, or the partition stopped), the next pass
                // sees it cancelled and decides whether a new one is needed.
                let _ended = done.clone().drop_guard();
                scheduler.run(done).await;
            });
            running.insert(
                key,
                Running {
                    partition: p,
                    cancel: token,
                },
            );
        }
    }
}

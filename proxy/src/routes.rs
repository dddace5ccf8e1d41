//! The routing table: topics, assignments and broker addresses, kept current by watches.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::SelectAll;
use strata_meta::schema::{self, Assignment, BrokerInfo, Keyspace, TopicConfig};
use strata_meta::{MetaError, MetaStore};
use strata_proto::ErrorCode;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default, Clone)]
struct Table {
    topics: HashMap<String, u32>,
    assignments: HashMap<(String, u32), (String, u64)>,
    brokers: HashMap<String, String>,
}

/// Where each partition is served.
#[derive(Debug)]
pub struct Routes {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    table: RwLock<Table>,
    version: watch::Sender<u64>,
    /// Last reload caused by a lookup miss; misses reload at most every MISS_RELOAD_INTERVAL.
    last_miss_reload: tokio::sync::Mutex<Option<std::time::Instant>>,
}

const MISS_RELOAD_INTERVAL: Duration = Duration::from_millis(100);

/// The owner of a partition as the table knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub broker: String,
    pub addr: Option<String>,
    pub epoch: u64,
}

impl Routes {
    pub fn new(meta: Arc<dyn MetaStore>, keys: Keyspace) -> Arc<Self> {
        Arc::new(Self {
            meta,
            keys,
            table: RwLock::default(),
            version: watch::channel(0).0,
            last_miss_reload: tokio::sync::Mutex::default(),
        })
    }

    /// Re-reads the whole table.
    pub async fn reload(&self) -> Result<(), MetaError> {
        let mut table = Table::default();
        for kv in self.meta.range(&self.keys.topics()).await?.0 {
            if let (Some(name), Ok(config)) = (
                self.keys.topic_name_of(&kv.key),
                schema::decode::<TopicConfig>(&kv.key, &kv.value),
            ) {
                table.topics.insert(name.to_owned(), config.partitions);
            }
        }
        for kv in self.meta.range(&self.keys.assignments()).await?.0 {
            if let (Some(key), Ok(a)) = (
                self.keys.partition_of(&kv.key),
                schema::decode::<Assignment>(&kv.key, &kv.value),
            ) {
                table.assignments.insert(key, (a.broker, a.epoch));
            }
        }
        for kv in self.meta.range(&self.keys.brokers()).await?.0 {
            if let Ok(info) = schema::decode::<BrokerInfo>(&kv.key, &kv.value) {
                table.brokers.insert(info.id, info.addr);
            }
        }
        *self.table.write().expect("routes poisoned") = table;
        self.version.send_modify(|v| *v += 1);
        Ok(())
    }

    /// Follows topic, assignment and broker changes until cancelled.
    pub async fn follow(&self, cancel: CancellationToken) {
        loop {
            let mut watches = SelectAll::new();
            let mut ok = true;
            for prefix in [
                self.keys.topics(),
                self.keys.assignments(),
                self.keys.brokers(),
            ] {
                match self.meta.watch_prefix(&prefix, None).await {
                    Ok(w) => watches.push(w),
                    Err(_) => ok = false,
                }
            }
            if ok && self.reload().await.is_ok() {
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        event = watches.next() => match event {
                            Some(Ok(_)) => {
                                // Coalesce a burst of changes into one reload.
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                if self.reload().await.is_err() { break; }
                            }
                            _ => break,
                        },
                    }
                }
            }
            tracing::warn!("routing watch broke; reloading");
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
        }
    }

    /// Makes sure a topic the table does not know really is unknown: a topic created a moment
    /// ago may not have reached the table through the watch yet. Reloads at most every 100 ms,
    /// so requests for truly unknown topics cannot flood the metadata store.
    pub async fn refresh_if_unknown(&self, topic: &str) {
        if self
            .table
            .read()
            .expect("routes poisoned")
            .topics
            .contains_key(topic)
        {
            return;
        }
        let mut last = self.last_miss_reload.lock().await;
        if last.is_some_and(|t| t.elapsed() < MISS_RELOAD_INTERVAL) {
            return;
        }
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "reloading routes after a miss failed");
        }
        *last = Some(std::time::Instant::now());
    }

    /// The partition count of a topic, or why there is none.
    pub fn partitions(&self, topic: &str) -> Result<u32, (ErrorCode, String)> {
        let table = self.table.read().expect("routes poisoned");
        table.topics.get(topic).copied().ok_or_else(|| {
            (
                ErrorCode::UnknownTopic,
                format!(
                    "topic `{topic}` does not exist; create it with `strata topic create {topic}`"
                ),
            )
        })
    }

    /// The owner of a partition; `Ok(None)` while it has none.
    pub fn route(&self, topic: &str, partition: u32) -> Result<Option<Route>, (ErrorCode, String)> {
        let count = self.partitions(topic)?;
        if partition >= count {
            return Err((
                ErrorCode::UnknownPartition,
                format!("topic `{topic}` has {count} partitions; {partition} does not exist"),
            ));
        }
        let table = self.table.read().expect("routes poisoned");
        Ok(table
            .assignments
            .get(&(topic.to_owned(), partition))
            .map(|(broker, epoch)| Route {
                broker: broker.clone(),
                addr: table.brokers.get(broker).cloned(),
                epoch: *epoch,
            }))
    }

    /// Topics (sorted) with their partition count.
    pub fn topics(&self) -> Vec<(String, u32)> {
        let table = self.table.read().expect("routes poisoned");
        let mut all: Vec<(String, u32)> =
            table.topics.iter().map(|(t, n)| (t.clone(), *n)).collect();
        all.sort();
        all
    }

    /// Waits until the table changes or `timeout` passes.
    pub async fn changed(&self, timeout: Duration) {
        let mut rx = self.version.subscribe();
        let _ = tokio::time::timeout(timeout, rx.changed()).await;
    }
}

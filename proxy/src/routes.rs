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

/// What the table keeps of a topic.
#[derive(Debug, Clone)]
struct TopicRoute {
    partitions: u32,
    /// The incarnation.
    id: u64,
    /// On a topic that filters by lane, the lanes it declares.
    lanes: Option<Arc<[String]>>,
    /// The longest delay a record may ask for; 0: delayed records are refused.
    max_delay_ms: i64,
    /// Whether the topic has ever accepted delays, so its log may hold delayed records.
    delay_filtering: bool,
    /// Parts per million of the topic's messages whose path is traced; 0: none.
    trace_sample_ppm: u32,
}

#[derive(Debug, Default, Clone)]
struct Table {
    topics: HashMap<String, TopicRoute>,
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
    /// Held while a lookup miss reloads the table, so concurrent misses share one reload.
    miss_reload: tokio::sync::Mutex<()>,
}

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
            miss_reload: tokio::sync::Mutex::default(),
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
                table.topics.insert(
                    name.to_owned(),
                    TopicRoute {
                        partitions: config.partitions,
                        id: config.id,
                        lanes: config.lane_filtering.then(|| config.lanes.into()),
                        max_delay_ms: config.max_delay_ms,
                        delay_filtering: config.delay_filtering,
                        trace_sample_ppm: config.trace_sample_ppm,
                    },
                );
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
    /// ago may not have reached the table through the watch yet. One point read of the topic's
    /// key tells; only when it exists is the table reloaded (once for concurrent misses), so
    /// requests for a truly unknown topic cost one read each, never a reload.
    pub async fn refresh_if_unknown(&self, topic: &str) {
        if self.knows(topic) {
            return;
        }
        match self.meta.get(&self.keys.topic(topic)).await {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, topic, "checking an unknown topic failed");
                return;
            }
        }
        let _one_reload = self.miss_reload.lock().await;
        if self.knows(topic) {
            return;
        }
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "reloading routes after a miss failed");
        }
    }

    fn knows(&self, topic: &str) -> bool {
        self.table
            .read()
            .expect("routes poisoned")
            .topics
            .contains_key(topic)
    }

    /// The partition count of a topic, or why there is none.
    pub fn partitions(&self, topic: &str) -> Result<u32, (ErrorCode, String)> {
        let table = self.table.read().expect("routes poisoned");
        table.topics.get(topic).map(|t| t.partitions).ok_or_else(|| {
            (
                ErrorCode::UnknownTopic,
                format!(
                    "topic `{topic}` does not exist; create it with `strata topic create {topic}`"
                ),
            )
        })
    }

    /// The id of the topic's current incarnation.
    pub fn topic_id(&self, topic: &str) -> Option<u64> {
        let table = self.table.read().expect("routes poisoned");
        table.topics.get(topic).map(|t| t.id)
    }

    /// The lanes the topic declares (none for an unknown topic).
    pub fn lanes(&self, topic: &str) -> Vec<String> {
        self.declared_lanes(topic)
            .map(|lanes| lanes.to_vec())
            .unwrap_or_default()
    }

    /// On a topic that filters by lane (it declares lanes, or once did), the lanes it
    /// declares now, perhaps none; `None` for other topics and unknown ones.
    pub fn declared_lanes(&self, topic: &str) -> Option<Arc<[String]>> {
        let table = self.table.read().expect("routes poisoned");
        table.topics.get(topic).and_then(|t| t.lanes.clone())
    }

    /// The longest delay a record of the topic may ask for (0: delayed records are refused);
    /// `None` for an unknown topic.
    pub fn max_delay_ms(&self, topic: &str) -> Option<i64> {
        let table = self.table.read().expect("routes poisoned");
        table.topics.get(topic).map(|t| t.max_delay_ms)
    }

    /// Parts per million of the topic's messages whose path is traced (1_000_000: every
    /// message); 0 when tracing is off or the topic is unknown.
    pub fn trace_sample_ppm(&self, topic: &str) -> u32 {
        let table = self.table.read().expect("routes poisoned");
        table.topics.get(topic).map_or(0, |t| t.trace_sample_ppm)
    }

    /// Whether the topic's log may hold delayed records (it accepts delays, or once did), which
    /// consumers must not see before their time; `false` for an unknown topic.
    pub fn filters_delays(&self, topic: &str) -> bool {
        let table = self.table.read().expect("routes poisoned");
        table.topics.get(topic).is_some_and(|t| t.delay_filtering)
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
        let mut all: Vec<(String, u32)> = table
            .topics
            .iter()
            .map(|(t, r)| (t.clone(), r.partitions))
            .collect();
        all.sort();
        all
    }

    /// Returns once any of `partitions` (topic, partition, epoch the caller routed by) has an
    /// assignment at another epoch, or none. A call racing this to the old owner can be
    /// abandoned: the old owner's commits are fenced by the new assignment.
    pub async fn moved(&self, partitions: &[(String, u32, u64)]) {
        let mut rx = self.version.subscribe();
        loop {
            {
                let table = self.table.read().expect("routes poisoned");
                let moved = partitions.iter().any(|(topic, partition, epoch)| {
                    table
                        .assignments
                        .get(&(topic.clone(), *partition))
                        .is_none_or(|(_, now)| now != epoch)
                });
                if moved {
                    return;
                }
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Waits until the table changes or `timeout` passes.
    pub async fn changed(&self, timeout: Duration) {
        let mut rx = self.version.subscribe();
        let _ = tokio::time::timeout(timeout, rx.changed()).await;
    }
}

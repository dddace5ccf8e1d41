//! Wakes long-polling fetches when their partition's checkpoint moves, and fetches the
//! segments committed for partitions that have readers into the read cache as their records
//! appear, so a consumer at the tail finds the new data in memory when it wakes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use strata_log::{LogReader, SegmentRecord};
use strata_meta::schema::{self, Keyspace};
use strata_meta::{KeyValue, MetaStore, WatchEvent};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A partition is prefetched while a long poll on it started this recently.
const READ_RECENTLY: Duration = Duration::from_secs(30);
/// Prefetches in flight at most; a segment committed while they are all busy is fetched by
/// its first reader instead.
const MAX_PREFETCHES: usize = 16;

/// One notifier per partition, signalled on every change of its checkpoint.
#[derive(Debug)]
pub struct CheckpointWatch {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    waiters: Mutex<HashMap<(String, u32), Waiters>>,
    prefetch: Option<LogReader>,
}

/// The long polls of one partition.
#[derive(Debug)]
struct Waiters {
    notify: Arc<Notify>,
    /// When a long poll last started: its partition is prefetched while this is recent.
    last_poll: Instant,
}

impl CheckpointWatch {
    pub fn new(meta: Arc<dyn MetaStore>, keys: Keyspace) -> Arc<Self> {
        Arc::new(Self {
            meta,
            keys,
            waiters: Mutex::default(),
            prefetch: None,
        })
    }

    /// Also fetches new segments of partitions that have long-polled into `reader`'s cache.
    pub fn prefetching(meta: Arc<dyn MetaStore>, keys: Keyspace, reader: LogReader) -> Arc<Self> {
        Arc::new(Self {
            meta,
            keys,
            waiters: Mutex::default(),
            prefetch: Some(reader),
        })
    }

    /// A flush's new segment record of a partition someone reads: fetched into the cache.
    /// Compaction's records replace existing keys (its merges land on the key of their first
    /// segment) and are skipped: nobody is waiting at the tail for them.
    fn prefetch(&self, kv: &KeyValue, prefetches: &mut JoinSet<()>) {
        let Some(reader) = &self.prefetch else {
            return;
        };
        while prefetches.try_join_next().is_some() {}
        if kv.create_revision != kv.mod_revision || prefetches.len() >= MAX_PREFETCHES {
            return;
        }
        let Some((topic, partition)) = self.keys.partition_of_segment(&kv.key) else {
            return;
        };
        let read = self
            .waiters
            .lock()
            .expect("checkpoint waiters poisoned")
            .get(&(topic.to_owned(), partition))
            .is_some_and(|w| w.last_poll.elapsed() < READ_RECENTLY);
        if !read {
            return;
        }
        let Ok(record) = schema::decode::<SegmentRecord>(&kv.key, &kv.value) else {
            return;
        };
        let reader = reader.clone();
        prefetches.spawn(async move {
            if let Err(e) = reader.prefetch(&record).await {
                // The reader that asks for it next fetches it again and reports the error.
                tracing::debug!(path = %record.path, error = %e, "prefetch failed");
            }
        });
    }

    /// The notifier of a partition, for a long poll starting now.
    pub fn notifier(&self, topic: &str, partition: u32) -> Arc<Notify> {
        let mut waiters = self.waiters.lock().expect("checkpoint waiters poisoned");
        let waiters = waiters
            .entry((topic.to_owned(), partition))
            .or_insert_with(|| Waiters {
                notify: Arc::default(),
                last_poll: Instant::now(),
            });
        waiters.last_poll = Instant::now();
        waiters.notify.clone()
    }

    /// Follows every partition's checkpoint until cancelled.
    pub async fn follow(&self, cancel: CancellationToken) {
        let prefix = format!("{}/log/", self.keys.root());
        // Dropped with this call: a prefetch never outlives the watch that started it.
        let mut prefetches = JoinSet::new();
        loop {
            if let Ok(mut watch) = self.meta.watch_prefix(&prefix, None).await {
                loop {
                    let event = tokio::select! {
                        () = cancel.cancelled() => return,
                        event = watch.next() => event,
                    };
                    match event {
                        Some(Ok(WatchEvent::Put(kv))) => {
                            self.prefetch(&kv, &mut prefetches);
                            if let Some((topic, partition)) =
                                self.keys.partition_of_checkpoint(&kv.key)
                            {
                                let waiters =
                                    self.waiters.lock().expect("checkpoint waiters poisoned");
                                if let Some(w) = waiters.get(&(topic.to_owned(), partition)) {
                                    w.notify.notify_waiters();
                                }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
            // Wake everyone: they re-read, so nothing is missed while the watch is down.
            for w in self
                .waiters
                .lock()
                .expect("checkpoint waiters poisoned")
                .values()
            {
                w.notify.notify_waiters();
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
        }
    }
}

//! Wakes long-polling fetches when their partition's checkpoint moves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use strata_meta::schema::Keyspace;
use strata_meta::{MetaStore, WatchEvent};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// One notifier per partition, signalled on every change of its checkpoint.
#[derive(Debug)]
pub struct CheckpointWatch {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    waiters: Mutex<HashMap<(String, u32), Arc<Notify>>>,
}

impl CheckpointWatch {
    pub fn new(meta: Arc<dyn MetaStore>, keys: Keyspace) -> Arc<Self> {
        Arc::new(Self {
            meta,
            keys,
            waiters: Mutex::default(),
        })
    }

    /// The notifier of a partition.
    pub fn notifier(&self, topic: &str, partition: u32) -> Arc<Notify> {
        self.waiters
            .lock()
            .expect("checkpoint waiters poisoned")
            .entry((topic.to_owned(), partition))
            .or_default()
            .clone()
    }

    /// Follows every partition's checkpoint until cancelled.
    pub async fn follow(&self, cancel: CancellationToken) {
        let prefix = format!("{}/log/", self.keys.root());
        loop {
            if let Ok(mut watch) = self.meta.watch_prefix(&prefix, None).await {
                loop {
                    let event = tokio::select! {
                        () = cancel.cancelled() => return,
                        event = watch.next() => event,
                    };
                    match event {
                        Some(Ok(WatchEvent::Put(kv))) => {
                            if let Some((topic, partition)) =
                                self.keys.partition_of_checkpoint(&kv.key)
                            {
                                let waiters =
                                    self.waiters.lock().expect("checkpoint waiters poisoned");
                                if let Some(n) = waiters.get(&(topic.to_owned(), partition)) {
                                    n.notify_waiters();
                                }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
            // Wake everyone: they re-read, so nothing is missed while the watch is down.
            for n in self
                .waiters
                .lock()
                .expect("checkpoint waiters poisoned")
                .values()
            {
                n.notify_waiters();
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
        }
    }
}

//! Partition counts per topic, from the Metadata RPC, cached for `metadata_max_age`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use strata_proto::ErrorCode;
use strata_proto::v1;
use tokio::time::Instant;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::types::TopicPartition;

#[derive(Debug, Clone, Copy)]
struct Entry {
    partitions: u32,
    fetched: Instant,
    stale: bool,
}

/// The partition count of each topic the producer writes to.
#[derive(Debug)]
pub(crate) struct Metadata {
    connection: Connection,
    max_age: Duration,
    request_timeout: Duration,
    cache: Mutex<HashMap<String, Entry>>,
    /// The broker each partition of a topic was on at the last lookup, to put partitions of
    /// one broker into one request. Only an optimisation: a stale owner costs nothing but an
    /// extra hop at the proxy.
    owners: Mutex<HashMap<String, Arc<[String]>>>,
    /// The swimlanes each topic declared at the last lookup.
    lanes: Mutex<HashMap<String, Arc<[String]>>>,
    /// The longest delay each topic allowed at the last lookup (0: none).
    max_delays: Mutex<HashMap<String, i64>>,
    /// One lookup at a time, so a burst of sends to a new topic asks the proxy once.
    fetching: tokio::sync::Mutex<()>,
}

impl Metadata {
    pub(crate) fn new(
        connection: Connection,
        max_age: Duration,
        request_timeout: Duration,
    ) -> Self {
        Self {
            connection,
            max_age,
            request_timeout,
            cache: Mutex::default(),
            owners: Mutex::default(),
            lanes: Mutex::default(),
            max_delays: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, topic: &str) -> Option<Entry> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .copied()
    }

    fn fresh(&self, entry: &Entry) -> bool {
        !entry.stale && entry.fetched.elapsed() < self.max_age
    }

    /// The topic's partition count, from the cache while it is fresh.
    pub(crate) async fn partitions(&self, topic: &str) -> Result<u32> {
        let cached = self.cached(topic);
        if let Some(entry) = cached.filter(|e| self.fresh(e)) {
            return Ok(entry.partitions);
        }
        let _guard = match cached {
            // Someone is already refreshing: the old count is good enough meanwhile.
            Some(entry) => match self.fetching.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(entry.partitions),
            },
            None => self.fetching.lock().await,
        };
        if let Some(entry) = self.cached(topic).filter(|e| self.fresh(e)) {
            return Ok(entry.partitions);
        }
        match self.fetch(topic).await {
            Ok(partitions) => Ok(partitions),
            // A blip of the proxy should not fail sends to a topic we know.
            Err(e) if e.is_retriable() && cached.is_some() => {
                tracing::warn!(topic, error = %e, "metadata refresh failed; using the cached partition count");
                Ok(cached.map_or(0, |c| c.partitions))
            }
            Err(e) => Err(e),
        }
    }

    /// Asks the proxy now, whatever the cache holds.
    pub(crate) async fn refresh(&self, topic: &str) -> Result<u32> {
        let _guard = self.fetching.lock().await;
        self.fetch(topic).await
    }

    /// The broker `tp` was on at the last lookup (empty when unknown).
    pub(crate) fn owner(&self, tp: &TopicPartition) -> String {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tp.topic)
            .and_then(|o| o.get(tp.partition as usize).cloned())
            .unwrap_or_default()
    }

    /// Marks the topic's count as outdated (the server named a partition unknown).
    pub(crate) fn invalidate(&self, topic: &str) {
        if let Some(entry) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(topic)
        {
            entry.stale = true;
        }
    }

    /// The swimlanes `topic` declared at the last lookup; none before one.
    pub(crate) fn lanes(&self, topic: &str) -> Arc<[String]> {
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .cloned()
            .unwrap_or_else(|| Arc::from([]))
    }

    /// The longest delay a record of `topic` may ask for, in milliseconds, at the last lookup
    /// (0: the topic refuses delayed records); `None` before one.
    pub(crate) fn max_delay_ms(&self, topic: &str) -> Option<i64> {
        self.max_delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .copied()
    }

    /// Seeds the cache, for tests that run without a server.
    #[cfg(test)]
    pub(crate) fn insert(&self, topic: &str, partitions: u32) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                topic.to_owned(),
                Entry {
                    partitions,
                    fetched: Instant::now(),
                    stale: false,
                },
            );
    }

    async fn fetch(&self, topic: &str) -> Result<u32> {
        let request = v1::MetadataRequest {
            topics: vec![topic.to_owned()],
        };
        let answer = tokio::time::timeout(
            self.request_timeout,
            self.connection.grpc().metadata(request),
        )
        .await
        .map_err(|_| {
            Error::Timeout(
                self.request_timeout,
                format!(
                    "metadata of topic `{topic}` from {}",
                    self.connection.server()
                ),
            )
        })?
        .map_err(|status| self.connection.call_error(status))?
        .into_inner();
        let Some(found) = answer.topics.into_iter().find(|t| t.name == topic) else {
            return Err(Error::Server {
                code: ErrorCode::Internal,
                message: format!("the proxy's metadata answer does not mention topic `{topic}`"),
            });
        };
        if let Some(e) = &found.error {
            return Err(Error::from_wire(e));
        }
        let partitions = u32::try_from(found.partitions.len()).unwrap_or(u32::MAX);
        if partitions == 0 {
            return Err(Error::Server {
                code: ErrorCode::UnknownPartition,
                message: format!("topic `{topic}` has no partitions"),
            });
        }
        tracing::debug!(topic, partitions, "partition count fetched");
        let owners: Arc<[String]> = found.partitions.iter().map(|p| p.broker.clone()).collect();
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), found.lanes.into());
        self.max_delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), found.max_delay_ms);
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), owners);
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                topic.to_owned(),
                Entry {
                    partitions,
                    fetched: Instant::now(),
                    stale: false,
                },
            );
        Ok(partitions)
    }
}

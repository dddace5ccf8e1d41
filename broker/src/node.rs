//! The broker as a cluster member: it registers under a lease, follows the assignments that
//! name it (opening partitions through Start → Recover → Write and releasing the ones that
//! move away), and on shutdown flushes, commits and deregisters so its partitions move at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use strata_meta::schema::{self, Assignment, BrokerInfo};
use strata_meta::{LeaseKeeper, MetaError, WatchEvent, WatchStream};
use strata_proto::Coded;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::error::{BrokerError, Result};
use crate::partition::now_ms;

/// Membership settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address clients and proxies dial for this broker's gRPC service.
    pub advertised_addr: String,
    /// A broker that stops renewing its lease for this long is considered dead.
    pub lease_ttl: Duration,
    /// Upper bound on the flush at shutdown.
    pub shutdown_timeout: Duration,
    /// Segment writes failing or hanging for this long make the broker give its lease up, so
    /// its partitions move to brokers that can write; it registers again once a probe write
    /// succeeds. Longer than a storage request's timeout, so one slow node is not enough.
    pub storage_stall_limit: Duration,
    /// The availability zone registered with the broker, for the controller's spread.
    pub zone: Option<String>,
}

enum Exit {
    Cancelled,
    LeaseLost,
    StorageStalled,
    WatchBroken(MetaError),
    /// A partition was fenced or failed to open: read the assignments again.
    Reconcile,
}

impl Broker {
    /// Runs until `cancel`, then shuts down gracefully. Re-registers after losing its lease.
    pub async fn run_member(
        self: Arc<Self>,
        config: NodeConfig,
        cancel: CancellationToken,
    ) -> Result<()> {
        let flusher_cancel = cancel.child_token();
        let flusher = tokio::spawn({
            let (broker, token) = (self.clone(), flusher_cancel.clone());
            async move { broker.run_flusher(token).await }
        });
        let maintenance = tokio::spawn({
            let (broker, token) = (self.clone(), flusher_cancel.clone());
            async move { broker.maintainer().run(token).await }
        });
        let delays = tokio::spawn({
            let (broker, token) = (self.clone(), flusher_cancel.clone());
            async move { broker.delays().run(token).await }
        });
        let outcome = self.membership(&config, &cancel).await;
        // Stop the background tasks first: shutdown flushes on its own, to the end.
        flusher_cancel.cancel();
        let _ = flusher.await;
        let _ = maintenance.await;
        let _ = delays.await;
        outcome
    }

    async fn membership(&self, config: &NodeConfig, cancel: &CancellationToken) -> Result<()> {
        loop {
            let keeper = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                registered = self.register(config) => match registered {
                    Ok(keeper) => keeper,
                    Err(e) => {
                        tracing::warn!(error = %e, "broker registration failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            self.ready.store(true, std::sync::atomic::Ordering::SeqCst);
            loop {
                match self
                    .follow_assignments(&keeper, config.storage_stall_limit, cancel)
                    .await
                {
                    Ok(Exit::Cancelled) => {
                        tracing::info!(broker = %self.id(), "shutting down: flushing and committing partitions");
                        self.shutdown(config.shutdown_timeout).await;
                        if let Err(e) = keeper.shutdown().await {
                            tracing::warn!(error = %e, "revoking the broker lease failed; it expires on its own");
                        }
                        return Ok(());
                    }
                    Ok(Exit::LeaseLost) => {
                        self.ready.store(false, std::sync::atomic::Ordering::SeqCst);
                        tracing::warn!(broker = %self.id(), "broker lease lost: releasing every partition and registering again");
                        self.release_all();
                        break;
                    }
                    Ok(Exit::StorageStalled) => {
                        self.give_up_for_storage(keeper, cancel).await;
                        break;
                    }
                    Ok(Exit::WatchBroken(e)) => {
                        tracing::warn!(error = %e, "assignment watch broke; re-reading assignments");
                    }
                    Ok(Exit::Reconcile) => {
                        tracing::info!(
                            "a partition was fenced or failed to open; re-reading assignments"
                        );
                    }
                    Err(e) if e.is_retriable() => {
                        tracing::warn!(error = %e, "following assignments failed; re-reading them");
                    }
                    Err(e) => return Err(e),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Storage has been unwritable from here past the limit while etcd still answers: without
    /// this the broker would keep its lease, and its partitions stay unwritable for as long as
    /// the outage lasts. Leaving moves them to brokers that can write; nothing acknowledged
    /// is lost, since only committed data was ever acknowledged durably.
    async fn give_up_for_storage(&self, keeper: LeaseKeeper, cancel: &CancellationToken) {
        self.ready.store(false, std::sync::atomic::Ordering::SeqCst);
        let stalled = self.flusher().stall.stalled_for().unwrap_or_default();
        tracing::warn!(broker = %self.id(), stalled_s = stalled.as_secs_f64(), "segment writes are stuck: giving the lease up so the partitions move, and registering again once storage takes a write");
        self.metrics.storage_give_ups.inc();
        self.release_all();
        if let Err(e) = keeper.shutdown().await {
            tracing::warn!(error = %e, "revoking the broker lease failed; it expires on its own");
        }
        let probe = object_store::path::Path::from(format!(
            "{}/_probe/{}",
            self.log().keys.root().trim_start_matches('/'),
            self.id()
        ));
        loop {
            match self
                .log()
                .pool
                .put(&probe, bytes::Bytes::from_static(b"probe").into())
                .await
            {
                Ok(_) => break,
                Err(e) => tracing::info!(error = %e, "storage still unwritable from here"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        // The probe was written just now: storage takes writes again.
        self.flusher().stall.recovered();
        tracing::info!(broker = %self.id(), "storage writable again");
    }

    async fn register(&self, config: &NodeConfig) -> Result<LeaseKeeper> {
        let keeper = LeaseKeeper::start(self.log().meta.clone(), config.lease_ttl).await?;
        let info = BrokerInfo {
            id: self.id().to_owned(),
            addr: config.advertised_addr.clone(),
            started_ms: now_ms(),
            zone: config.zone.clone().unwrap_or_default(),
        };
        self.log()
            .meta
            .put(
                &self.log().keys.broker(self.id()),
                schema::encode(&info),
                Some(keeper.lease_id()),
            )
            .await?;
        tracing::info!(broker = %self.id(), addr = %config.advertised_addr, "broker registered");
        Ok(keeper)
    }

    /// Opens what is assigned here, releases what is not, then follows changes.
    async fn follow_assignments(
        &self,
        keeper: &LeaseKeeper,
        storage_stall_limit: Duration,
        cancel: &CancellationToken,
    ) -> Result<Exit> {
        let prefix = self.log().keys.assignments();
        let (kvs, revision) = self.log().meta.range(&prefix).await?;
        let mut mine: HashMap<(String, u32), u64> = HashMap::new();
        for kv in &kvs {
            if let Some((topic, partition)) = self.log().keys.partition_of(&kv.key) {
                let a: Assignment = schema::decode(&kv.key, &kv.value)?;
                if a.broker == self.id() {
                    mine.insert((topic, partition), a.epoch);
                }
            }
        }
        let open: HashSet<(String, u32)> = self
            .status()
            .iter()
            .map(|p| (p.topic.clone(), p.partition))
            .collect();
        for (topic, partition) in open.iter().filter(|k| !mine.contains_key(*k)) {
            self.release(topic, *partition);
        }
        // Every partition assigned here shows as Start at once; they recover one by one.
        let mut started = Vec::new();
        for (topic, partition) in mine.keys() {
            match self.start_partition(topic, *partition).await {
                Ok(p) => started.push(p),
                Err(e) => self.not_opened(topic, *partition, e),
            }
        }
        for p in started {
            if let Err(e) = self.recover_partition(&p).await {
                self.not_opened(&p.topic, p.partition, e);
            }
        }
        let mut watch: WatchStream = self
            .log()
            .meta
            .watch_prefix(&prefix, Some(revision + 1))
            .await?;
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => return Ok(Exit::Cancelled),
                () = keeper.lost() => return Ok(Exit::LeaseLost),
                () = self.flusher().stall.exceeds(storage_stall_limit) => return Ok(Exit::StorageStalled),
                () = self.reconcile_wanted.notified() => return Ok(Exit::Reconcile),
                event = watch.next() => event,
            };
            match event {
                Some(Ok(WatchEvent::Put(kv))) => {
                    let Some((topic, partition)) = self.log().keys.partition_of(&kv.key) else {
                        continue;
                    };
                    let a: Assignment = schema::decode(&kv.key, &kv.value)?;
                    if a.broker == self.id() {
                        self.open_logged(&topic, partition).await;
                    } else if self.partition(&topic, partition).is_some() {
                        tracing::info!(%topic, partition, to = %a.broker, epoch = a.epoch, "partition moved away");
                        self.release(&topic, partition);
                    }
                }
                Some(Ok(WatchEvent::Delete { key, .. })) => {
                    if let Some((topic, partition)) = self.log().keys.partition_of(&key) {
                        self.release(&topic, partition);
                    }
                }
                Some(Err(e)) => return Ok(Exit::WatchBroken(e)),
                None => {
                    return Ok(Exit::WatchBroken(MetaError::Unavailable {
                        message: "assignment watch ended".into(),
                    }));
                }
            }
        }
    }

    async fn open_logged(&self, topic: &str, partition: u32) {
        if let Err(e) = self.open_partition(topic, partition).await {
            self.not_opened(topic, partition, e);
        }
    }

    fn not_opened(&self, topic: &str, partition: u32, error: BrokerError) {
        match error {
            // The assignment moved on already; the next watch event says where.
            e @ (BrokerError::Fenced { .. } | BrokerError::NotLeader { .. }) => {
                tracing::info!(%topic, partition, error = %e, "partition not opened");
            }
            e => {
                tracing::warn!(%topic, partition, error = %e, "opening partition failed; will try again");
                self.reconcile_wanted.notify_one();
            }
        }
    }
}

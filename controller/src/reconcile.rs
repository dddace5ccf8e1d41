//! The active controller: win the election, then keep every partition assigned.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::SelectAll;
use futures::{FutureExt as _, StreamExt};
use strata_catalog::CatalogError;
use strata_catalog::state::{ClusterState, PlanMode};
use strata_config::{Config, ControllerSection};
use strata_meta::schema::Keyspace;
use strata_meta::{Election, Leadership, MetaError, MetaStore, WatchStream};
use strata_proto::Coded;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
pub use crate::liveness::ProbeConfig;
use crate::metrics::Metrics;

/// Settings of the controller role.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This controller's name, stored in the election key.
    pub id: String,
    /// Lease of the leadership: a dead controller is replaced within about this long.
    pub election_ttl: Duration,
    /// Full re-read of the state even without watch events, as a safety net.
    pub resync_interval: Duration,
    /// Probing brokers for a crash (refused connections) before their leases run out.
    pub probe: ProbeConfig,
}

impl From<&ControllerSection> for ControllerConfig {
    fn from(s: &ControllerSection) -> Self {
        Self {
            id: s
                .id
                .clone()
                .unwrap_or_else(|| format!("controller-{}", std::process::id())),
            // Zero would end the leadership before its first renewal, or spin the resync loop.
            election_ttl: Duration::from_secs(s.election_ttl_secs.max(1)),
            resync_interval: Duration::from_secs(s.resync_interval_secs.max(1)),
            probe: ProbeConfig::from(s),
        }
    }
}

/// The shipped `[controller]` settings.
impl Default for ControllerConfig {
    fn default() -> Self {
        Self::from(&Config::shipped().controller)
    }
}

/// One controller process. Several may run; one leads.
#[derive(Debug)]
pub struct Controller {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    config: ControllerConfig,
    metrics: Arc<Metrics>,
}

enum Wake {
    Cancelled,
    Lost,
    Changed,
    WatchBroken(MetaError),
}

impl Controller {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        keys: Keyspace,
        config: ControllerConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            meta,
            keys,
            config,
            metrics,
        }
    }

    /// Campaigns, leads while it can, campaigns again after losing; returns when `cancel` fires
    /// (resigning first, so a standby takes over at once).
    pub async fn run(&self, cancel: CancellationToken) -> Result<()> {
        let election = Election::new(
            self.meta.clone(),
            &self.keys.controller(),
            self.config.election_ttl,
        );
        loop {
            let leadership = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                won = election.campaign(self.config.id.clone()) => match won {
                    Ok(l) => l,
                    Err(e) if e.is_retriable() => {
                        tracing::warn!(error = %e, "controller campaign failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            tracing::info!(id = %self.config.id, term = leadership.revision(), "became the active controller");
            self.metrics.is_leader.set(1);
            let outcome = self.lead(&leadership, &cancel).await;
            self.metrics.is_leader.set(0);
            self.metrics.set_group_lags(Default::default());
            if cancel.is_cancelled() {
                if let Err(e) = leadership.resign().await {
                    tracing::warn!(error = %e, "resigning leadership failed; it ends with its lease");
                }
                return Ok(());
            }
            match outcome {
                Ok(()) => tracing::warn!(id = %self.config.id, "lost controller leadership"),
                Err(e) => {
                    tracing::warn!(id = %self.config.id, error = %e, "stepping down after an error")
                }
            }
            drop(leadership);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn watches(&self) -> Result<SelectAll<WatchStream>> {
        let mut all = SelectAll::new();
        for prefix in [self.keys.brokers(), self.keys.drains(), self.keys.topics()] {
            all.push(self.meta.watch_prefix(&prefix, None).await?);
        }
        Ok(all)
    }

    /// Leads until leadership is lost (Ok) or cancelled.
    async fn lead(&self, leadership: &Leadership, cancel: &CancellationToken) -> Result<()> {
        // Runs while this controller leads: the future is dropped with this call.
        let probing = crate::liveness::run(self.meta.clone(), self.keys.clone(), self.config.probe);
        tokio::pin!(probing);
        let lagging = crate::lag::run(self.meta.clone(), self.keys.clone(), self.metrics.clone());
        tokio::pin!(lagging);
        let fence = leadership.fence();
        let mut watches = self.watches().await?;
        let mut settled: Option<BTreeSet<String>> = None;
        loop {
            if leadership.is_lost() {
                return Ok(());
            }
            match self.reconcile(&mut settled, &fence).await {
                Ok(()) => {}
                Err(CatalogError::Conflict(_)) => continue, // re-read and try again
                Err(CatalogError::Meta(e)) if e.is_retriable() => {
                    tracing::warn!(error = %e, "metadata store unavailable during reconcile");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
            let wake = tokio::select! {
                () = &mut probing => Wake::Changed,
                () = &mut lagging => Wake::Changed,
                () = cancel.cancelled() => Wake::Cancelled,
                () = leadership.lost() => Wake::Lost,
                event = watches.next() => match event {
                    Some(Ok(_)) => Wake::Changed,
                    Some(Err(e)) => Wake::WatchBroken(e),
                    None => Wake::WatchBroken(MetaError::Unavailable { message: "watch ended".into() }),
                },
                () = tokio::time::sleep(self.config.resync_interval) => Wake::Changed,
            };
            match wake {
                Wake::Cancelled | Wake::Lost => return Ok(()),
                Wake::Changed => {
                    // Coalesce bursts (a topic with many partitions, a broker and its lease).
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    while let Some(Some(Ok(_))) = watches.next().now_or_never() {}
                }
                Wake::WatchBroken(e) => {
                    tracing::warn!(error = %e, "controller watch broke; re-reading state and watching again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    watches = self.watches().await?;
                }
            }
        }
    }

    /// One pass: read the state, plan, write. Membership changes (and the first pass of a term)
    /// rebalance fully; otherwise only partitions without a live owner are placed.
    async fn reconcile(
        &self,
        settled: &mut Option<BTreeSet<String>>,
        fence: &strata_meta::Compare,
    ) -> strata_catalog::Result<()> {
        self.metrics.reconciles.inc();
        let state = ClusterState::load(self.meta.as_ref(), &self.keys).await?;
        let eligible = state.eligible();
        let owners = state.owners();
        self.metrics.live_brokers.set(state.brokers.len() as i64);
        self.metrics.partitions.set(owners.len() as i64);
        let homeless = owners
            .values()
            .filter(|o| o.as_ref().is_none_or(|b| !eligible.contains(b)))
            .count();
        self.metrics.homeless_partitions.set(homeless as i64);
        if eligible.is_empty() {
            if homeless > 0 {
                tracing::warn!(
                    homeless,
                    "no live undrained broker: partitions stay unassigned"
                );
            }
            return Ok(());
        }
        let mode = if settled.as_ref() == Some(&eligible) {
            PlanMode::HomelessOnly
        } else {
            PlanMode::Rebalance
        };
        let moves = state.plan(mode);
        state
            .apply(self.meta.as_ref(), &self.keys, &moves, Some(fence))
            .await?;
        self.metrics.partition_moves.inc_by(moves.len() as u64);
        if !moves.is_empty() {
            tracing::info!(
                moves = moves.len(),
                ?mode,
                brokers = eligible.len(),
                "reconciled assignments"
            );
        }
        *settled = Some(eligible);
        Ok(())
    }
}

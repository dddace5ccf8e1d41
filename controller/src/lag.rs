//! Consumer groups' lag as metrics. The active controller reads every group's committed
//! positions and its partitions' high watermarks every few seconds, so an alert on a group
//! falling behind needs no exporter beside the cluster, and only one controller exports it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use strata_catalog::Admin;
use strata_catalog::groups::OffsetView;
use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;

use crate::metrics::{GroupLags, Metrics};

/// How often the lags are read again.
const EVERY: Duration = Duration::from_secs(10);
/// Most groups exported: each costs a few reads of the metadata store per pass.
const MAX_GROUPS: usize = 1_000;

/// Keeps `metrics`' group lags current; runs until dropped (with the leadership).
pub(crate) async fn run(meta: Arc<dyn MetaStore>, keys: Keyspace, metrics: Arc<Metrics>) {
    let admin = Admin::new(meta, keys);
    loop {
        match lags(&admin).await {
            Ok(lags) => metrics.set_group_lags(lags),
            Err(e) => {
                tracing::warn!(error = %e, "reading the consumer groups' lag failed; retried in 10 s")
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Each group's lag per topic, summed over the topic's partitions; for a broadcast group,
/// that of its member furthest behind.
async fn lags(admin: &Admin) -> strata_catalog::Result<GroupLags> {
    let groups = admin.list_groups().await?;
    if groups.len() > MAX_GROUPS {
        tracing::warn!(
            groups = groups.len(),
            exported = MAX_GROUPS,
            "more consumer groups than the lag metrics export; the rest are left out"
        );
    }
    let mut all = GroupLags::new();
    for summary in groups.iter().take(MAX_GROUPS) {
        let view = match admin.describe_group(&summary.group).await {
            Ok(view) => view,
            Err(e) => {
                // Deleted meanwhile, or one bad record: the other groups still count.
                tracing::debug!(group = %summary.group, error = %e, "group left out of the lag metrics");
                continue;
            }
        };
        let mut by_topic = by_topic(&view.offsets);
        for member in &view.broadcast_members {
            for (topic, lag) in self::by_topic(&member.offsets) {
                let worst = by_topic.entry(topic).or_default();
                *worst = (*worst).max(lag);
            }
        }
        for (topic, lag) in by_topic {
            all.insert((view.group.clone(), topic), lag);
        }
    }
    Ok(all)
}

fn by_topic(offsets: &[OffsetView]) -> BTreeMap<String, i64> {
    let mut sums = BTreeMap::new();
    for o in offsets {
        *sums.entry(o.topic.clone()).or_default() += o.lag;
    }
    sums
}

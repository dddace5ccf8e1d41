//! The metadata store's latency for a transaction shaped like one partition's commit.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::stats::Percentiles;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetaBaseline {
    pub url: String,
    /// A transaction putting two ~200-byte keys, the shape of one partition's commit.
    pub txn: Percentiles,
}

/// Commit-shaped transactions against the metadata store (keys under the cluster's
/// `bench-probe/`, deleted afterwards).
pub async fn meta(url: &str, cluster: &str) -> anyhow::Result<MetaBaseline> {
    use strata_meta::{Txn, TxnOp};
    let store = strata_meta::open(url)
        .await
        .with_context(|| format!("cannot open metadata store {url}"))?;
    let keys = strata_meta::schema::Keyspace::new(cluster)?;
    let prefix = format!("{}/bench-probe/{:08x}/", keys.root(), rand::random::<u32>());
    let value = Bytes::from(vec![b'x'; 200]);
    let mut took = Vec::with_capacity(64);
    for i in 0..64 {
        let txn = Txn::new().and_then([
            TxnOp::put(format!("{prefix}seg/{i:05}"), value.clone()),
            TxnOp::put(format!("{prefix}commit"), value.clone()),
        ]);
        let started = Instant::now();
        store.txn(txn).await?;
        took.push(started.elapsed());
    }
    store.delete_prefix(&prefix).await?;
    Ok(MetaBaseline {
        url: url.to_owned(),
        txn: Percentiles::from_durations(&took),
    })
}

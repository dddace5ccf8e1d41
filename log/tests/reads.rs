//! Reads racing commits, made deterministic by letting a commit land between two reads of
//! the metadata store.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strata_format::SegmentMeta;
use strata_log::{LogReader, SegmentRecord};
use strata_meta::intercept::{Hook, Intercepted};
use strata_meta::schema::{self, Checkpoint, Keyspace};
use strata_meta::{EmbeddedOptions, EmbeddedStore, KeyValue, MetaError, MetaStore, Revision};
use strata_storage::NodePool;
use strata_storage::pool::{NodeSpec, Placement, PoolConfig};

/// The first commit of partition `t/0` (offsets 0..500) lands right after the next read of its
/// segment list.
#[derive(Debug)]
struct FirstCommitAfterListing {
    keys: Keyspace,
    armed: AtomicBool,
}

#[async_trait::async_trait]
impl Hook for FirstCommitAfterListing {
    async fn range(
        &self,
        inner: &dyn MetaStore,
        prefix: &str,
    ) -> Result<(Vec<KeyValue>, Revision), MetaError> {
        let listed = inner.range(prefix).await?;
        if prefix == self.keys.segments("t", 0) && self.armed.swap(false, Ordering::SeqCst) {
            let record = SegmentRecord {
                path: "t/0/00000000000000000000.seg".into(),
                placement: Placement { nodes: Vec::new() },
                start: 0,
                shared: false,
                object_size: 0,
                meta: SegmentMeta {
                    base_offset: 0,
                    next_offset: 500,
                    min_timestamp: 1,
                    max_timestamp: 1,
                    size: 1_000,
                    footer_len: 40,
                    batch_count: 1,
                    record_count: 500,
                },
                epoch: 1,
                created_ms: 1,
            };
            let checkpoint = Checkpoint {
                epoch: 1,
                next_offset: 500,
                broker: "b1".into(),
                committed_ms: 1,
            };
            inner
                .put(&self.keys.segment("t", 0, 0), schema::encode(&record), None)
                .await?;
            inner
                .put(
                    &self.keys.checkpoint("t", 0),
                    schema::encode(&checkpoint),
                    None,
                )
                .await?;
        }
        Ok(listed)
    }
}

#[tokio::test]
async fn the_earliest_offset_never_skips_a_commit_that_lands_while_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
        .await
        .unwrap();
    let keys = Keyspace::new("reads").unwrap();
    let meta = Arc::new(Intercepted {
        inner: Arc::new(store),
        hook: FirstCommitAfterListing {
            keys: keys.clone(),
            armed: AtomicBool::new(true),
        },
    });
    let node: NodeSpec = "memory://reads".parse().unwrap();
    let pool = Arc::new(NodePool::open(&PoolConfig::new(vec![node], 1)).unwrap());
    let reader = LogReader::new(meta.clone(), keys, pool);

    let earliest = reader.log_start("t", 0).await.unwrap();
    assert!(
        !meta.hook.armed.load(Ordering::SeqCst),
        "the commit landed mid-read"
    );
    assert_eq!(
        earliest, 0,
        "a consumer from the beginning must not start past offset 0"
    );
    assert_eq!(reader.log_start("t", 0).await.unwrap(), 0);
    assert_eq!(reader.high_watermark("t", 0).await.unwrap(), 500);
}

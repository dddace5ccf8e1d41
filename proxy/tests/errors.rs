//! What the proxy answers when the layers below it fail: each error's own code, never a code
//! the proxy picked by hand.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use strata_catalog::Admin;
use strata_catalog::admin::NewTopic;
use strata_log::LogReader;
use strata_meta::schema::Keyspace;
use strata_meta::{EmbeddedOptions, EmbeddedStore, MetaStore};
use strata_proto::v1::strata_server::Strata;
use strata_proto::{ErrorCode, v1};
use strata_proxy::{CheckpointWatch, GroupCoordinator, ProxyMetrics, ProxyService, Routes};
use strata_storage::{NodePool, PoolConfig};
use tonic::Request;

/// A proxy over an embedded store holding topic `t` (one partition) whose checkpoint is not
/// JSON.
async fn proxy_over_corrupt_checkpoint(dir: &tempfile::TempDir) -> ProxyService {
    let keys = Keyspace::new("errors-test").unwrap();
    let meta: Arc<dyn MetaStore> = Arc::new(
        EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let admin = Admin::new(meta.clone(), keys.clone());
    admin
        .create_topic(NewTopic {
            name: "t".into(),
            partitions: 1,
            ..NewTopic::default()
        })
        .await
        .unwrap();
    meta.put(
        &keys.checkpoint("t", 0),
        Bytes::from_static(b"{not json"),
        None,
    )
    .await
    .unwrap();
    let routes = Routes::new(meta.clone(), keys.clone());
    routes.reload().await.unwrap();
    let node = "m=memory://errors-test".parse().unwrap();
    let pool = Arc::new(NodePool::open(&PoolConfig::new(vec![node], 1)).unwrap());
    let reader = LogReader::new(meta.clone(), keys.clone(), pool);
    let groups = GroupCoordinator::new(meta.clone(), keys.clone(), routes.clone(), reader.clone());
    ProxyService::new(
        routes,
        CheckpointWatch::new(meta, keys),
        reader,
        groups,
        admin,
        Arc::new(ProxyMetrics::default()),
    )
}

#[tokio::test]
async fn corrupt_metadata_on_the_read_path_is_internal_and_not_retriable() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy_over_corrupt_checkpoint(&dir).await;

    let fetched = proxy
        .fetch(Request::new(v1::FetchRequest {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            max_bytes: 1024,
            max_wait_ms: 0,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let listed = proxy
        .list_offsets(Request::new(v1::ListOffsetsRequest {
            topic: "t".into(),
            partition: 0,
            timestamp: -1,
        }))
        .await
        .unwrap()
        .into_inner();

    for error in [fetched.error.unwrap(), listed.error.unwrap()] {
        let code = error.error_code().unwrap();
        assert_eq!(code, ErrorCode::Internal, "{}", error.message);
        assert!(!code.is_retriable());
        assert!(
            error.message.contains("/log/t/0/commit"),
            "names the key: {}",
            error.message
        );
    }
}

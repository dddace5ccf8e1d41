//! The routing table finds a topic created a moment ago even before its watch delivers it.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strata_catalog::Admin;
use strata_catalog::admin::NewTopic;
use strata_meta::schema::Keyspace;
use strata_meta::{EmbeddedOptions, EmbeddedStore, MetaStore};
use strata_proto::ErrorCode;
use strata_proxy::Routes;

#[tokio::test]
async fn a_miss_finds_a_topic_created_after_the_last_reload() {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let keys = Keyspace::new("routes-test").unwrap();
    // No follower runs: only the miss path can learn about new topics.
    let routes = Routes::new(meta.clone(), keys.clone());
    routes.reload().await.unwrap();
    routes.refresh_if_unknown("a").await;
    assert_eq!(
        routes.partitions("a").unwrap_err().0,
        ErrorCode::UnknownTopic
    );

    let admin = Admin::new(meta, keys);
    for name in ["a", "b"] {
        admin
            .create_topic(NewTopic {
                name: name.into(),
                partitions: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        // Asked right after a miss of the same name, and right after creating it.
        routes.refresh_if_unknown(name).await;
        assert_eq!(routes.partitions(name).unwrap(), 3);
    }
    routes.refresh_if_unknown("never").await;
    let (code, message) = routes.partitions("never").unwrap_err();
    assert_eq!(code, ErrorCode::UnknownTopic);
    assert!(message.contains("strata topic create never"), "{message}");
}

//! The admin operations and the reconcile loop, in process, on both metadata backends:
//! the embedded store and a real etcd.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_controller::admin::NewTopic;
use strata_controller::metrics::Metrics;
use strata_controller::{Admin, Controller, ControllerConfig, ControllerError};
use strata_meta::schema::{self, BrokerInfo, Keyspace};
use strata_meta::{EmbeddedOptions, EmbeddedStore, MetaStore};
use strata_testkit::EtcdServer;
use tokio_util::sync::CancellationToken;

async fn owners(admin: &Admin, topic: &str) -> BTreeMap<u32, Option<String>> {
    admin
        .list_partitions(Some(topic))
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.partition, p.broker))
        .collect()
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scenario(meta: Arc<dyn MetaStore>) {
    let keys = Keyspace::new("admin-test").unwrap();
    let admin = Admin::new(meta.clone(), keys.clone());
    for id in ["b1", "b2", "b3"] {
        let info = BrokerInfo {
            id: id.into(),
            addr: format!("{id}:7071"),
            started_ms: 0,
        };
        meta.put(&keys.broker(id), schema::encode(&info), None)
            .await
            .unwrap();
    }
    let metrics = Arc::new(Metrics::default());
    let config = ControllerConfig {
        id: "c".into(),
        election_ttl: Duration::from_secs(2),
        resync_interval: Duration::from_secs(1),
        // The brokers here are registrations without processes: nothing to probe.
        probe: strata_controller::ProbeConfig {
            interval: Duration::ZERO,
            ..Default::default()
        },
    };
    let controller = Controller::new(meta.clone(), keys.clone(), config, metrics.clone());
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move { controller.run(cancel).await }
    });

    // Creation assigns every partition before it answers.
    let topic = admin
        .create_topic(NewTopic {
            name: "t".into(),
            partitions: 6,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(topic.config.partitions, 6);
    assert_eq!(topic.config.retention_ms, schema::DEFAULT_RETENTION_MS);
    let placed = owners(&admin, "t").await;
    assert!(placed.values().all(Option::is_some), "{placed:?}");
    assert!(matches!(
        admin
            .create_topic(NewTopic {
                name: "t".into(),
                partitions: 1,
                ..Default::default()
            })
            .await,
        Err(ControllerError::TopicExists(_))
    ));

    // Drain b1: its partitions move off at once and stay off.
    let moves = admin.drain("b1").await.unwrap();
    assert_eq!(
        moves.len(),
        placed
            .values()
            .filter(|b| b.as_deref() == Some("b1"))
            .count()
    );
    assert!(
        owners(&admin, "t")
            .await
            .values()
            .all(|b| b.as_deref() != Some("b1"))
    );
    let brokers = admin.list_brokers().await.unwrap();
    assert!(
        brokers
            .iter()
            .any(|b| b.id == "b1" && b.draining && b.partitions == 0)
    );
    // Even a rebalance and new partitions leave it empty.
    admin.rebalance().await.unwrap();
    admin.add_partitions("t", 9).await.unwrap();
    let after = owners(&admin, "t").await;
    assert_eq!(after.len(), 9);
    assert!(
        after
            .values()
            .all(|b| b.is_some() && b.as_deref() != Some("b1")),
        "{after:?}"
    );
    assert!(matches!(
        admin.reassign("t", 0, "b1").await,
        Err(ControllerError::BrokerDraining(_))
    ));

    // Undrain: b1 gets its share back.
    admin.undrain("b1").await.unwrap();
    let back = owners(&admin, "t").await;
    assert_eq!(
        back.values().filter(|b| b.as_deref() == Some("b1")).count(),
        3
    );

    // A new broker: the running controller gives it its share (9 over 4: two or three).
    let info = BrokerInfo {
        id: "b4".into(),
        addr: "b4:7071".into(),
        started_ms: 0,
    };
    meta.put(&keys.broker("b4"), schema::encode(&info), None)
        .await
        .unwrap();
    wait_for("b4 to get partitions", || async {
        owners(&admin, "t")
            .await
            .values()
            .filter(|b| b.as_deref() == Some("b4"))
            .count()
            >= 2
    })
    .await;
    assert!(metrics.render().contains("strata_controller_is_leader 1"));

    // Delete removes the topic and every key under it; recreating starts clean.
    admin.delete_topic("t").await.unwrap();
    assert!(
        meta.range(&keys.topic_assignments("t"))
            .await
            .unwrap()
            .0
            .is_empty()
    );
    assert!(matches!(
        admin.describe_topic("t").await,
        Err(ControllerError::UnknownTopic(_))
    ));
    let again = admin
        .create_topic(NewTopic {
            name: "t".into(),
            partitions: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_ne!(
        again.config.id, topic.config.id,
        "a new incarnation gets a new id"
    );
    assert_eq!(owners(&admin, "t").await.len(), 2);

    cancel.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_scenario_on_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
        .await
        .unwrap();
    scenario(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_scenario_on_etcd() {
    let etcd = EtcdServer::start().expect("real etcd must start");
    let meta = strata_meta::open(&etcd.endpoint().replace("http://", "etcd://"))
        .await
        .unwrap();
    scenario(meta).await;
}

//! The admin operations alone (no controller running), in process, on both metadata
//! backends: the embedded store and a real etcd.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use strata_catalog::admin::{
    MAX_DELAY_MS, NewTopic, TRACE_TOPIC, TRACE_TOPIC_PARTITIONS, TRACE_TOPIC_RETENTION_MS,
    TopicConfigChange,
};
use strata_catalog::{Admin, CatalogError, OwnerStates, ReportedStates, Unreported};
use strata_meta::MetaStore;
use strata_meta::schema::{self, BrokerInfo, Keyspace};

async fn owners(admin: &Admin, topic: &str) -> BTreeMap<u32, Option<String>> {
    admin
        .list_partitions(Some(topic), &Unreported)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.partition, p.broker))
        .collect()
}

/// Only `b1` answers, and it has started partition 0 of `t` and no other.
struct OnlyB1Answers;

impl OwnerStates for OnlyB1Answers {
    async fn report(&self, brokers: &BTreeMap<String, BrokerInfo>) -> ReportedStates {
        assert!(
            brokers.contains_key("b1"),
            "every registered broker is asked"
        );
        let started = HashMap::from([(("t".to_owned(), 0), "Write".to_owned())]);
        HashMap::from([("b1".to_owned(), started)])
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
            zone: String::new(),
        };
        meta.put(&keys.broker(id), schema::encode(&info), None)
            .await
            .unwrap();
    }
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
    for view in admin
        .list_partitions(Some("t"), &OnlyB1Answers)
        .await
        .unwrap()
    {
        let expected = match (view.broker.as_deref(), view.partition) {
            (Some("b1"), 0) => "Write",
            (Some("b1"), _) => "Start", // b1 answered but has not started it yet
            _ => "unknown",
        };
        assert_eq!(view.state, expected, "{view:?}");
    }
    assert!(matches!(
        admin
            .create_topic(NewTopic {
                name: "t".into(),
                partitions: 1,
                ..Default::default()
            })
            .await,
        Err(CatalogError::TopicExists(_))
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
        Err(CatalogError::BrokerDraining(_))
    ));

    // Undrain: b1 gets its share back.
    admin.undrain("b1").await.unwrap();
    let back = owners(&admin, "t").await;
    assert_eq!(
        back.values().filter(|b| b.as_deref() == Some("b1")).count(),
        3
    );

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
        admin.describe_topic("t", &Unreported).await,
        Err(CatalogError::UnknownTopic(_))
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
    alter_config(&admin, &meta, &keys).await;
    delays(&admin).await;
    traces(&admin).await;
}

/// Asserts `result` is an InvalidArgument refusal whose message holds `needle`.
fn refused<T: std::fmt::Debug>(result: Result<T, CatalogError>, needle: &str) {
    match result {
        Err(CatalogError::InvalidArgument(message)) => {
            assert!(message.contains(needle), "{message}");
        }
        other => panic!("expected a refusal naming `{needle}`, got {other:?}"),
    }
}

/// `max_delay_ms`: bounded, below retention, never with size-based retention, checked at
/// creation and after every change; the topic's delay filtering, once on, stays on.
async fn delays(admin: &Admin) {
    let new = |max_delay_ms: i64| NewTopic {
        name: "delayed".into(),
        partitions: 1,
        max_delay_ms: Some(max_delay_ms),
        ..Default::default()
    };
    for (bad, needle) in [
        (new(-1), "max_delay_ms must be between 0"),
        (new(MAX_DELAY_MS + 1), "max_delay_ms must be between 0"),
        (
            // The default retention is 7 days.
            new(schema::DEFAULT_RETENTION_MS),
            "raise retention_ms or lower max_delay_ms",
        ),
        (
            NewTopic {
                retention_ms: Some(60_000),
                ..new(60_000)
            },
            "could be deleted by retention before it is delivered",
        ),
        (
            NewTopic {
                retention_bytes: Some(1 << 30),
                ..new(1000)
            },
            "size-based retention",
        ),
    ] {
        refused(admin.validate_new_topic(&bad).await, needle);
        refused(admin.create_topic(bad).await, needle);
    }
    assert!(matches!(
        admin.topic("delayed").await,
        Err(CatalogError::UnknownTopic(_))
    ));

    // Without a delay a topic does not filter delays.
    let plain = admin
        .create_topic(NewTopic {
            name: "plain".into(),
            partitions: 1,
            retention_bytes: Some(1 << 30),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (plain.config.max_delay_ms, plain.config.delay_filtering),
        (0, false)
    );
    refused(
        admin
            .alter_topic_config(
                "plain",
                &TopicConfigChange {
                    max_delay_ms: Some(1000),
                    ..Default::default()
                },
            )
            .await,
        "accepts delays from its creation",
    );
    // Groups' retry and dead-letter topics are made by nacks only.
    for reserved in ["__retry.billing", "__dlq.billing"] {
        let new = NewTopic {
            name: reserved.into(),
            partitions: 1,
            ..Default::default()
        };
        refused(admin.validate_new_topic(&new).await, "reserved");
        refused(admin.create_topic(new.clone()).await, "reserved");
        admin.create_reserved_topic(new).await.unwrap();
        admin.delete_topic(reserved).await.unwrap();
    }

    let hour = 3600 * 1000;
    admin.validate_new_topic(&new(hour)).await.unwrap();
    let created = admin.create_topic(new(hour)).await.unwrap().config;
    assert_eq!(
        (created.max_delay_ms, created.delay_filtering),
        (hour, true)
    );
    let change = |change: TopicConfigChange| async move {
        admin.alter_topic_config("delayed", &change).await
    };
    // Retention cannot drop to the delay or below, nor become size-based.
    refused(
        change(TopicConfigChange {
            retention_ms: Some(hour),
            ..Default::default()
        })
        .await,
        "raise retention_ms or lower max_delay_ms",
    );
    refused(
        change(TopicConfigChange {
            retention_bytes: Some(1 << 30),
            ..Default::default()
        })
        .await,
        "size-based retention",
    );
    refused(
        change(TopicConfigChange {
            max_delay_ms: Some(MAX_DELAY_MS + 1),
            ..Default::default()
        })
        .await,
        "max_delay_ms must be between 0",
    );
    // Both at once are judged together.
    let longer = change(TopicConfigChange {
        retention_ms: Some(-1),
        max_delay_ms: Some(MAX_DELAY_MS),
        ..Default::default()
    })
    .await
    .unwrap()
    .config;
    assert_eq!(
        (longer.max_delay_ms, longer.retention_ms),
        (MAX_DELAY_MS, -1)
    );
    // Turned off, the topic still filters: its log may hold delayed records.
    let off = change(TopicConfigChange {
        max_delay_ms: Some(0),
        ..Default::default()
    })
    .await
    .unwrap()
    .config;
    assert_eq!((off.max_delay_ms, off.delay_filtering), (0, true));
    let sized = change(TopicConfigChange {
        retention_bytes: Some(1 << 30),
        ..Default::default()
    })
    .await
    .unwrap()
    .config;
    assert!(sized.delay_filtering, "the flag survives other changes");
    assert_eq!(admin.topic("delayed").await.unwrap().config, sized);
    admin.delete_topic("delayed").await.unwrap();
    admin.delete_topic("plain").await.unwrap();
}

/// `trace_sample_ppm`: at most a million parts per million, free to change at any time; a
/// topic that turns tracing on, at creation or later, brings the internal trace topic into
/// being.
async fn traces(admin: &Admin) {
    let trace_topic_exists = || async { admin.topic(TRACE_TOPIC).await.is_ok() };
    assert!(!trace_topic_exists().await, "no topic traces yet");
    let new = |ppm: u32| NewTopic {
        name: "traced".into(),
        partitions: 1,
        trace_sample_ppm: Some(ppm),
        ..Default::default()
    };
    for bad in [new(1_000_001), new(2_000_000)] {
        let needle = "trace_sample_ppm must be 0..=1000000 parts per million";
        refused(admin.validate_new_topic(&bad).await, needle);
        refused(admin.create_topic(bad).await, needle);
    }
    refused(
        admin.create_topic(new(2_000_000)).await,
        "(10000 = 1%, 0 = tracing off); got 2000000",
    );
    assert!(
        !trace_topic_exists().await,
        "a refused topic creates nothing"
    );
    // The trace topic's own events are not traced.
    refused(
        admin
            .create_topic(NewTopic {
                name: TRACE_TOPIC.into(),
                ..new(1)
            })
            .await,
        "cannot be traced",
    );

    // Created with tracing: the trace topic comes first.
    let traced = admin.create_topic(new(10_000)).await.unwrap().config;
    assert_eq!(traced.trace_sample_ppm, 10_000);
    assert_eq!(admin.topic("traced").await.unwrap().config, traced);
    let trace_topic = admin.topic(TRACE_TOPIC).await.unwrap().config;
    assert_eq!(
        (
            i64::from(trace_topic.partitions),
            trace_topic.retention_ms,
            trace_topic.trace_sample_ppm
        ),
        (TRACE_TOPIC_PARTITIONS, TRACE_TOPIC_RETENTION_MS, 0)
    );
    assert_eq!(
        (TRACE_TOPIC_PARTITIONS, TRACE_TOPIC_RETENTION_MS),
        (8, 3 * 24 * 3600 * 1000)
    );
    // A second traced topic finds it there.
    let second = admin
        .create_topic(NewTopic {
            name: "traced-too".into(),
            ..new(1_000_000)
        })
        .await
        .unwrap();
    assert_eq!(second.config.trace_sample_ppm, 1_000_000);
    assert_eq!(admin.topic(TRACE_TOPIC).await.unwrap().config, trace_topic);

    // Altered: set, refused out of range, cleared; other settings keep it.
    let change = |change: TopicConfigChange| async move {
        admin.alter_topic_config("traced", &change).await
    };
    let set = change(TopicConfigChange {
        trace_sample_ppm: Some(500),
        ..Default::default()
    })
    .await
    .unwrap()
    .config;
    assert_eq!(set.trace_sample_ppm, 500);
    refused(
        change(TopicConfigChange {
            trace_sample_ppm: Some(1_000_001),
            ..Default::default()
        })
        .await,
        "trace_sample_ppm must be 0..=1000000 parts per million",
    );
    let other = change(TopicConfigChange {
        retention_ms: Some(60_000),
        ..Default::default()
    })
    .await
    .unwrap()
    .config;
    assert_eq!(
        other.trace_sample_ppm, 500,
        "fields not named keep their values"
    );
    let cleared = change(TopicConfigChange {
        trace_sample_ppm: Some(0),
        ..Default::default()
    })
    .await
    .unwrap()
    .config;
    assert_eq!(cleared.trace_sample_ppm, 0);
    assert_eq!(admin.topic("traced").await.unwrap().config, cleared);

    // Turning tracing on later creates the trace topic too, if it has gone meanwhile.
    admin.delete_topic(TRACE_TOPIC).await.unwrap();
    refused(
        admin
            .alter_topic_config(
                "traced",
                &TopicConfigChange {
                    trace_sample_ppm: Some(u32::MAX),
                    ..Default::default()
                },
            )
            .await,
        "got 4294967295",
    );
    assert!(
        !trace_topic_exists().await,
        "a refused change creates nothing"
    );
    let again = change(TopicConfigChange {
        trace_sample_ppm: Some(10_000),
        ..Default::default()
    })
    .await
    .unwrap()
    .config;
    assert_eq!(again.trace_sample_ppm, 10_000);
    let recreated = admin.topic(TRACE_TOPIC).await.unwrap().config;
    assert_eq!(recreated.partitions, 8);
    assert_ne!(recreated.id, trace_topic.id, "a new incarnation");
    refused(
        admin
            .alter_topic_config(
                TRACE_TOPIC,
                &TopicConfigChange {
                    trace_sample_ppm: Some(1),
                    ..Default::default()
                },
            )
            .await,
        "cannot be traced",
    );
    for topic in ["traced", "traced-too", TRACE_TOPIC] {
        admin.delete_topic(topic).await.unwrap();
    }
}

/// Retention changes: a partial compare-and-swap update, refused with reasons, previewed
/// without writing.
async fn alter_config(admin: &Admin, meta: &Arc<dyn MetaStore>, keys: &Keyspace) {
    let before = admin.topic("t").await.unwrap().config;
    let change = TopicConfigChange {
        retention_ms: Some(60_000),
        ..Default::default()
    };
    let preview = admin.preview_topic_config("t", &change).await.unwrap();
    assert_eq!(preview.config.retention_ms, 60_000);
    assert_eq!(
        admin.topic("t").await.unwrap().config,
        before,
        "a preview writes nothing"
    );
    let after = admin.alter_topic_config("t", &change).await.unwrap();
    assert_eq!(after.config.retention_ms, 60_000);
    assert_eq!(
        after.config.retention_bytes, before.retention_bytes,
        "fields not named keep their values"
    );
    assert_eq!(after.config.id, before.id);
    assert_eq!(after.config.partitions, before.partitions);
    // What brokers read at their next maintenance pass.
    let stored: schema::TopicConfig = schema::decode(
        &keys.topic("t"),
        &meta.get(&keys.topic("t")).await.unwrap().unwrap().value,
    )
    .unwrap();
    assert_eq!(stored, after.config);

    // Lanes: a whole list, then additions (a lane already there is no change) and removals.
    let lanes = |change: TopicConfigChange| async move {
        admin
            .alter_topic_config("t", &change)
            .await
            .unwrap()
            .config
            .lanes
    };
    let set = TopicConfigChange {
        lanes: Some(vec!["test-alice".into()]),
        ..Default::default()
    };
    assert_eq!(lanes(set).await, ["test-alice"]);
    let add = TopicConfigChange {
        add_lanes: vec!["test-bob".into(), "test-alice".into()],
        ..Default::default()
    };
    assert_eq!(lanes(add).await, ["test-alice", "test-bob"]);
    let remove = TopicConfigChange {
        remove_lanes: vec!["test-alice".into(), "test-bob".into()],
        ..Default::default()
    };
    assert!(lanes(remove).await.is_empty());

    let both = TopicConfigChange {
        retention_bytes: Some(1 << 30),
        segment_bytes: Some(4096),
        ..Default::default()
    };
    let after = admin.alter_topic_config("t", &both).await.unwrap();
    assert_eq!(
        (
            after.config.retention_ms,
            after.config.retention_bytes,
            after.config.segment_bytes
        ),
        (60_000, 1 << 30, 4096)
    );

    for (bad, needle) in [
        (
            TopicConfigChange {
                retention_ms: Some(0),
                ..Default::default()
            },
            "retention_ms must be positive",
        ),
        (
            TopicConfigChange {
                retention_bytes: Some(-5),
                ..Default::default()
            },
            "retention_bytes must be positive",
        ),
        (
            TopicConfigChange {
                segment_bytes: Some(10),
                ..Default::default()
            },
            "segment_bytes must be at least",
        ),
        (TopicConfigChange::default(), "nothing to change"),
        (
            TopicConfigChange {
                remove_lanes: vec!["test-carol".into()],
                ..Default::default()
            },
            "lane `test-carol` is not a lane of this topic (it has no lanes)",
        ),
        (
            TopicConfigChange {
                lanes: Some(vec!["a b".into()]),
                ..Default::default()
            },
            "lane `a b` holds ` `",
        ),
        (
            TopicConfigChange {
                lanes: Some(vec!["x".into(), "x".into()]),
                ..Default::default()
            },
            "lane `x` is declared twice",
        ),
    ] {
        match admin.alter_topic_config("t", &bad).await {
            Err(CatalogError::InvalidArgument(message)) => {
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
    assert_eq!(
        admin.topic("t").await.unwrap().config,
        after.config,
        "refused changes write nothing"
    );
    assert!(matches!(
        admin.alter_topic_config("missing", &change).await,
        Err(CatalogError::UnknownTopic(_))
    ));
    assert!(matches!(
        admin.validate_add_partitions("t", 1).await,
        Err(CatalogError::InvalidArgument(_))
    ));
    admin.validate_add_partitions("t", 3).await.unwrap();
    assert_eq!(admin.topic("t").await.unwrap().config.partitions, 2);
    let exists = admin
        .validate_new_topic(&NewTopic {
            name: "t".into(),
            partitions: 1,
            ..Default::default()
        })
        .await;
    assert!(
        matches!(exists, Err(CatalogError::TopicExists(_))),
        "{exists:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_scenario_on_embedded_store() {
    let (_dir, meta) = strata_meta::testing::embedded().await;
    scenario(meta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_scenario_on_etcd() {
    let (_etcd, meta) = strata_meta::testing::etcd().await;
    scenario(meta).await;
}

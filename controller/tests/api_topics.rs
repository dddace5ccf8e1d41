//! The admin REST API's topic-settings route, served in process on the embedded store:
//! `PATCH /v1/topics/{topic}` changes only the fields it names, refuses bad values with the
//! API's error shape, and what it stores is what brokers read.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use strata_catalog::Admin;
use strata_catalog::admin::NewTopic;
use strata_controller::api::{ApiState, router};
use strata_controller::metrics::Metrics;
use strata_meta::schema::{self, Keyspace, TopicConfig};
use strata_meta::{Election, EmbeddedOptions, EmbeddedStore, MetaStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_changes_the_named_settings_only() {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> = Arc::new(
        EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let keys = Keyspace::new("api-test").unwrap();
    let admin = Admin::new(meta.clone(), keys.clone());
    let state = ApiState {
        admin: admin.clone(),
        meta: meta.clone(),
        metrics: Arc::new(Metrics::default()),
        election: Election::new(meta.clone(), &keys.controller(), Duration::from_secs(5)),
        brokers: Default::default(),
        auth: Arc::new(strata_catalog::auth::Authenticator::new(
            admin.clone(),
            false,
            Arc::new(strata_clock::SystemClock),
        )),
        authorizer: Arc::new(strata_catalog::acls::Authorizer::new(
            admin.clone(),
            false,
            Vec::new(),
            Arc::new(strata_clock::SystemClock),
        )),
        clock: Arc::new(strata_clock::SystemClock),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });
    admin
        .create_topic(NewTopic {
            name: "orders".into(),
            partitions: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/v1/topics/orders");

    let response = http
        .patch(&url)
        .json(&json!({ "retention_ms": 3_600_000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "orders");
    assert_eq!(body["retention_ms"], 3_600_000);
    assert_eq!(
        body["retention_bytes"], -1,
        "fields left out keep their values"
    );
    assert_eq!(body["partitions"], 2);

    // The topic view and the stored config (what brokers read) both show it.
    let view: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["retention_ms"], 3_600_000);
    let stored: TopicConfig = schema::decode(
        &keys.topic("orders"),
        &meta
            .get(&keys.topic("orders"))
            .await
            .unwrap()
            .unwrap()
            .value,
    )
    .unwrap();
    assert_eq!(stored.retention_ms, 3_600_000);
    assert_eq!(stored.segment_bytes, schema::DEFAULT_SEGMENT_BYTES);

    for (body, status, code, needle) in [
        (
            json!({ "retention_ms": 0 }),
            400,
            "INVALID_ARGUMENT",
            "retention_ms must be positive",
        ),
        (
            json!({ "segment_bytes": 12 }),
            400,
            "INVALID_ARGUMENT",
            "segment_bytes must be at least",
        ),
        (json!({}), 400, "INVALID_ARGUMENT", "nothing to change"),
        (
            json!({ "max_delay_ms": 3_600_000 }),
            400,
            "INVALID_ARGUMENT",
            "accepts delays from its creation",
        ),
        (
            json!({ "retention": 5 }),
            400,
            "INVALID_ARGUMENT",
            "malformed request body",
        ),
    ] {
        let response = http.patch(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let missing = http
        .patch(format!("http://{addr}/v1/topics/missing"))
        .json(&json!({ "retention_bytes": 1_000_000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["error"]["code"], "UNKNOWN_TOPIC");

    let view: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        view["retention_ms"], 3_600_000,
        "refused changes write nothing"
    );
    assert!(view.get("max_delay_ms").is_none(), "{view}");

    // A topic created with delays may have its maximum moved.
    admin
        .create_topic(strata_catalog::admin::NewTopic {
            name: "timers".into(),
            partitions: 1,
            max_delay_ms: Some(30_000),
            ..Default::default()
        })
        .await
        .unwrap();
    let delayed: Value = http
        .patch(format!("http://{addr}/v1/topics/timers"))
        .json(&json!({ "max_delay_ms": 60_000 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(delayed["max_delay_ms"], 60_000, "{delayed}");
    assert_eq!(delayed["delay_filtering"], true, "{delayed}");

    // Trace sampling changes freely: on (which creates the trace topic), refused out of
    // range, off again (and then absent from the view).
    let patch_trace = |ppm: Value| {
        http.patch(&url)
            .json(&json!({ "trace_sample_ppm": ppm }))
            .send()
    };
    let traced: Value = patch_trace(json!(10_000))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(traced["trace_sample_ppm"], 10_000, "{traced}");
    let trace_topic = admin.topic(strata_catalog::admin::TRACE_TOPIC).await;
    assert!(trace_topic.is_ok(), "{trace_topic:?}");
    let response = patch_trace(json!(2_000_000)).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("trace_sample_ppm must be 0..=1000000 parts per million")
            && message.contains("got 2000000"),
        "{message}"
    );
    let off: Value = patch_trace(json!(0)).await.unwrap().json().await.unwrap();
    assert!(off.get("trace_sample_ppm").is_none(), "{off}");
    server.abort();
}

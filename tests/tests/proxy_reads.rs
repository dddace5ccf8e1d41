//! The proxy's read path against a whole Strata in-process: a long-poll fetch is woken by the
//! partition's commit instead of waiting out `max_wait_ms`, and hot segments are served from
//! the proxy's cache even once their objects are gone from storage.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use strata_client::Admin;
use strata_integration_tests::InProcess;
use strata_proto::v1;
use strata_proto::v1::strata_client::StrataClient;

/// A whole Strata in-process with a one-partition topic, and a raw gRPC client of its proxy.
async fn serve(topic: &str) -> (InProcess, StrataClient<tonic::transport::Channel>) {
    let server = InProcess::start().await.unwrap();
    Admin::connect(&server.proxy)
        .await
        .unwrap()
        .create_topic(topic, 1)
        .await
        .unwrap();
    let client = StrataClient::connect(format!("http://{}", server.proxy))
        .await
        .unwrap();
    (server, client)
}

fn fetch(topic: &str, offset: i64, max_wait_ms: u32) -> v1::FetchRequest {
    v1::FetchRequest {
        topic: topic.into(),
        partition: 0,
        offset,
        max_bytes: 1 << 20,
        max_wait_ms,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_is_woken_by_the_commit() {
    let (server, mut client) = serve("poll").await;

    // Nothing to read: the fetch waits its whole max_wait and answers empty.
    let started = Instant::now();
    let empty = client
        .fetch(fetch("poll", 0, 300))
        .await
        .unwrap()
        .into_inner();
    assert!(empty.error.is_none(), "{:?}", empty.error);
    assert!(empty.batches.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "an empty fetch answered after {:?}, before its max_wait",
        started.elapsed()
    );

    // A fetch allowed to wait 20 s returns as soon as a record is committed.
    let waiting = {
        let mut client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = client
                .fetch(fetch("poll", 0, 20_000))
                .await
                .unwrap()
                .into_inner();
            (answer, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.produce("poll", 0, 0..1, None).await.unwrap();
    let (answer, waited) = waiting.await.unwrap();
    assert!(answer.error.is_none(), "{:?}", answer.error);
    assert_eq!(answer.high_watermark, 1);
    assert!(
        !answer.batches.is_empty(),
        "the woken fetch carries the record"
    );
    assert!(
        waited < Duration::from_secs(15),
        "the fetch was not woken by the commit: it waited {waited:?} of its 20 s"
    );
    server.stop().await.unwrap();
}

/// Files under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The value of one counter in a Prometheus text page.
fn counter(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in the metrics page:\n{page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_segments_are_served_from_the_proxy_cache() {
    let (server, mut client) = serve("hot").await;
    server.produce("hot", 0, 0..50, None).await.unwrap();
    let first = client.fetch(fetch("hot", 0, 0)).await.unwrap().into_inner();
    assert!(first.error.is_none(), "{:?}", first.error);
    assert!(!first.batches.is_empty());

    // Take the objects away from storage: only the proxy's copy can answer now.
    let objects = files(&server.data_dir().join("data"));
    assert!(!objects.is_empty(), "the segments are stored as files");
    for object in &objects {
        std::fs::remove_file(object).unwrap();
    }
    let second = client.fetch(fetch("hot", 0, 0)).await.unwrap().into_inner();
    assert!(second.error.is_none(), "{:?}", second.error);
    assert_eq!(
        second.batches, first.batches,
        "the same batches, from the cache"
    );

    let page = strata_integration_tests::cli::metrics(&server.proxy_http)
        .await
        .unwrap();
    assert!(
        counter(&page, "strata_proxy_cache_hits_total") >= 1.0,
        "{page}"
    );
    assert!(
        counter(&page, "strata_proxy_cache_misses_total") >= 1.0,
        "{page}"
    );
    server.stop().await.unwrap();
}

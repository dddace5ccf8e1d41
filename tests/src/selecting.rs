//! What the tests of consumers that select records (tags, property filters, lanes) share:
//! reading until the records expected came, and asking the proxy directly.

// Helpers of tests: a failure here fails the test that called them, with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use strata_client::{Connection, Consumer, ConsumerRecord, ErrorCode};
use strata_format::{Record, RecordBatch, decode_batch};
use strata_proto::v1;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(60);

/// Polls until `want` records came or 60 s passed, then 1.5 s more: anything that arrives
/// then is a record the consumer should not have been given.
pub async fn read_records(consumer: &mut Consumer, want: usize) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + WAIT;
    let mut all = Vec::new();
    while all.len() < want && Instant::now() < deadline {
        all.extend(consumer.poll(Duration::from_millis(300)).await.unwrap());
    }
    all.extend(consumer.poll(Duration::from_millis(1_500)).await.unwrap());
    all
}

/// The values [`read_records`] read, as text; each at most once.
pub async fn read_values(consumer: &mut Consumer, want: usize) -> BTreeSet<String> {
    let all = read_records(consumer, want).await;
    let values: BTreeSet<String> = all.iter().map(value).collect();
    assert_eq!(all.len(), values.len(), "no record twice");
    values
}

/// A record's value as text.
pub fn value(record: &ConsumerRecord) -> String {
    String::from_utf8(record.value.clone().unwrap_or_default().to_vec()).unwrap()
}

/// A fetch of partition 0 of `topic` from its start, without waiting.
pub fn fetch_from_start(topic: &str) -> v1::FetchRequest {
    v1::FetchRequest {
        topic: topic.into(),
        partition: 0,
        offset: 0,
        max_bytes: 1 << 20,
        max_wait_ms: 0,
        ..Default::default()
    }
}

/// Sends `request` straight to the proxy, as a client without the SDK's own checks would.
pub async fn raw_fetch(connection: &Connection, request: v1::FetchRequest) -> v1::FetchResponse {
    connection.grpc().fetch(request).await.unwrap().into_inner()
}

/// Sends `request` raw and checks that the proxy refuses it with `INVALID_ARGUMENT`, naming
/// each of `says`.
pub async fn assert_fetch_refused(
    connection: &Connection,
    request: v1::FetchRequest,
    says: &[&str],
) {
    let answer = raw_fetch(connection, request).await;
    let error = answer.error.expect("the fetch was refused");
    assert_eq!(error.error_code(), Some(ErrorCode::InvalidArgument));
    for needle in says {
        assert!(error.message.contains(needle), "{}", error.message);
    }
    assert!(answer.batches.is_empty());
}

/// `strata consume TOPIC ARGS --from-beginning --timeout-ms 3000 --server SERVER`: the lines
/// it printed.
pub async fn consume_with_cli(server: &str, topic: &str, args: &[&str]) -> String {
    let mut all = vec!["consume", topic];
    all.extend(args);
    all.extend([
        "--from-beginning",
        "--timeout-ms",
        "3000",
        "--server",
        server,
    ]);
    crate::cli::strata(&all, None, WAIT).await.unwrap()
}

/// `strata consume TOPIC ARGS --server SERVER`, which must fail: its error, with the causes.
pub async fn consume_refused_by_cli(server: &str, topic: &str, args: &[&str]) -> String {
    let mut all = vec!["consume", topic];
    all.extend(args);
    all.extend(["--server", server]);
    let refusal = crate::cli::strata(&all, None, WAIT).await.unwrap_err();
    format!("{refusal:#}")
}

/// The records the proxy sent for `request`, which must succeed: what it kept, before any
/// check of the SDK's.
pub async fn records_sent(connection: &Connection, request: v1::FetchRequest) -> Vec<Record> {
    let answer = raw_fetch(connection, request).await;
    assert!(answer.error.is_none(), "{:?}", answer.error);
    answer
        .batches
        .into_iter()
        .flat_map(|bytes| decode_batch(&RecordBatch::parse_sparse(bytes).unwrap()).unwrap())
        .collect()
}

//! The acknowledged-write checker: reads every partition from offset 0 to its high watermark
//! after the load stopped, and compares the log with the ledger of acknowledgements and with
//! what the group's consumers were handed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::bail;
use strata_client::{Admin, Offset, TopicPartition};
use tokio::time::Instant;

use super::workload::{Ledger, Load, MessageId, Outcome, decode_value};

/// What the checker found. `lost`, `duplicated`, `reordered`, `misplaced`, `foreign`,
/// `offset_gaps`, `group_missing` and `delivery_mismatches` must all be 0.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Messages handed to a producer.
    pub sent: u64,
    /// Acknowledged with an offset.
    pub acked: u64,
    /// Reported as failed to the producer (delivery timeout, ...).
    pub failed: u64,
    /// Records in the log.
    pub read: u64,
    /// Acknowledged but not in the log.
    pub lost: u64,
    /// The same message at two or more offsets (counted once per extra copy).
    pub duplicated: u64,
    /// A producer's messages out of its sending order within a partition.
    pub reordered: u64,
    /// Acknowledged at one (partition, offset) but found at another.
    pub misplaced: u64,
    /// Not acknowledged (failed) but in the log: allowed (the outcome was unknown).
    pub unacked_present: u64,
    /// Records that are not an intact message of this run.
    pub foreign: u64,
    /// Offsets missing below a partition's high watermark.
    pub offset_gaps: u64,
    /// Acknowledged messages the group's consumers were never handed.
    pub group_missing: u64,
    /// Offsets handed to group members more than once (at-least-once after a rebalance).
    pub redelivered: u64,
    /// A group member was handed a different message at an offset than the log holds there,
    /// or than another member got.
    pub delivery_mismatches: u64,
    /// Consumer poll errors (they retry).
    pub consumer_errors: u64,
    /// Longest time any partition went without an acknowledgement while producers ran.
    pub max_unwritable: Duration,
    pub max_unwritable_partition: u32,
}

impl Verdict {
    /// The counts that must be zero, with their names, for assertions and tables.
    pub fn violations(&self) -> Vec<(&'static str, u64)> {
        [
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("reordered", self.reordered),
            ("misplaced", self.misplaced),
            ("foreign", self.foreign),
            ("offset gaps", self.offset_gaps),
            ("group missing", self.group_missing),
            ("delivery mismatches", self.delivery_mismatches),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

/// The final read did not reach the end of some partitions: `(partition, next offset,
/// end)`.
#[derive(Debug, Clone)]
pub struct Stalled {
    pub topic: String,
    pub stuck: Vec<(u32, i64, i64)>,
    pub timeout: Duration,
}

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reading {} back did not finish within {:?}; stuck (partition, next offset, end): {:?}",
            self.topic, self.timeout, self.stuck
        )
    }
}

impl std::error::Error for Stalled {}

/// What the metadata and storage say about a stalled read, and what a raw fetch at the stuck
/// offset answers: for the failure message.
pub async fn diagnose_stall(
    stalled: &Stalled,
    proxy: &str,
    meta: &dyn strata_meta::MetaStore,
    keys: &strata_meta::schema::Keyspace,
    pool: &strata_storage::NodePool,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for &(partition, offset, end) in &stalled.stuck {
        let _ = writeln!(
            out,
            "partition {partition}: stuck at offset {offset} of {end}"
        );
        if let Ok(connection) = strata_client::Connection::connect(proxy).await {
            let answer = connection
                .grpc()
                .fetch(strata_proto::v1::FetchRequest {
                    topic: stalled.topic.clone(),
                    partition,
                    offset,
                    max_bytes: 64 << 10,
                    max_wait_ms: 0,
                    ..Default::default()
                })
                .await;
            let _ = match answer {
                Ok(r) => {
                    let r = r.into_inner();
                    writeln!(
                        out,
                        "  raw fetch at {offset}: {} batches, high watermark {}, log start {}, error {:?}",
                        r.batches.len(),
                        r.high_watermark,
                        r.log_start,
                        r.error
                    )
                }
                Err(status) => writeln!(out, "  raw fetch at {offset}: {status}"),
            };
        }
        let Ok((kvs, _)) = meta.range(&keys.segments(&stalled.topic, partition)).await else {
            let _ = writeln!(out, "  cannot list segment records");
            continue;
        };
        let mut previous_end = None;
        for kv in &kvs {
            let Ok(record) =
                strata_meta::schema::decode::<strata_log::SegmentRecord>(&kv.key, &kv.value)
            else {
                let _ = writeln!(out, "  undecodable segment record {}", kv.key);
                continue;
            };
            let (base, next) = (record.meta.base_offset, record.meta.next_offset);
            if let Some(previous) = previous_end
                && previous != base
            {
                let _ = writeln!(out, "  HOLE in the segment list: {previous}..{base}");
            }
            previous_end = Some(next);
            if base <= offset + 1 && offset < next + 1 {
                let _ = writeln!(
                    out,
                    "  segment {base}..{next} ({} bytes) at {} on {:?}",
                    record.meta.size, record.path, record.placement.nodes
                );
                for node in &record.placement.nodes {
                    let Some(store) = pool.store(node) else {
                        continue;
                    };
                    let head =
                        object_store::ObjectStoreExt::head(store.as_ref(), &record.object_path())
                            .await;
                    let _ = writeln!(
                        out,
                        "    on {node}: {}",
                        match head {
                            Ok(meta) => format!("present, {} bytes", meta.size),
                            Err(e) => format!("{e}"),
                        }
                    );
                }
            }
        }
    }
    out
}

/// Every record of every partition, read through a proxy's `Fetch` from offset 0 to the
/// high watermark (the public gRPC API, one partition at a time, so every error is seen
/// exactly where it happens): `partition → [(offset, message)]`.
pub async fn read_all(
    proxy: &str,
    topic: &str,
    partitions: u32,
    run: &str,
    value_bytes: usize,
    timeout: Duration,
) -> anyhow::Result<Log> {
    let connection = strata_client::Connection::connect(proxy).await?;
    let admin = Admin::new(connection.clone());
    let mut grpc = connection.grpc();
    let deadline = Instant::now() + timeout;
    let mut out: Log = BTreeMap::new();
    let mut stuck = Vec::new();
    for p in 0..partitions {
        let end = admin
            .list_offset(&TopicPartition::new(topic, p), Offset::Latest)
            .await?;
        let records = out.entry(p).or_default();
        let mut offset = 0;
        let mut errors = 0;
        while offset < end {
            if Instant::now() >= deadline {
                stuck.push((p, offset, end));
                break;
            }
            let answer = grpc
                .fetch(strata_proto::v1::FetchRequest {
                    topic: topic.to_owned(),
                    partition: p,
                    offset,
                    max_bytes: 1 << 20,
                    max_wait_ms: 0,
                    ..Default::default()
                })
                .await;
            let error = match answer {
                Ok(response) => {
                    let response = response.into_inner();
                    match response.error {
                        None if !response.batches.is_empty() => {
                            for bytes in response.batches {
                                let batch = strata_format::RecordBatch::parse(bytes)?;
                                for record in strata_format::decode_batch(&batch)? {
                                    if record.offset < offset || record.offset >= end {
                                        continue;
                                    }
                                    let id = record
                                        .value
                                        .as_deref()
                                        .and_then(|v| decode_value(run, v, value_bytes));
                                    records.push((record.offset, id));
                                }
                                offset = offset.max(batch.next_offset());
                            }
                            errors = 0;
                            continue;
                        }
                        None => format!("an empty answer below the high watermark ({end})"),
                        Some(e) => format!("{}: {}", e.code, e.message),
                    }
                }
                Err(status) => status.to_string(),
            };
            errors += 1;
            if errors > 50 {
                bail!("reading {topic}/{p} at offset {offset} failed 50 times; last: {error}");
            }
            tracing::warn!(partition = p, offset, error = %error, "reading the log back: a fetch failed; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if !stuck.is_empty() {
        return Err(Stalled {
            topic: topic.to_owned(),
            stuck,
            timeout,
        }
        .into());
    }
    Ok(out)
}

/// Reads the whole log and judges it against the ledger. Call after [`Load::stop`].
pub async fn check(load: &Load, proxy: &str) -> anyhow::Result<Verdict> {
    let config = &load.config;
    let log = read_all(
        proxy,
        &config.topic,
        config.partitions,
        &load.run,
        config.value_bytes,
        Duration::from_secs(180),
    )
    .await?;
    let ledger = load
        .ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let end = load.stopped_at.unwrap_or_else(Instant::now);
    judge(&ledger, &log, load.started, end)
}

/// The log as read back: `partition → [(offset, message)]` (`None`: not an intact message
/// of this run).
pub type Log = BTreeMap<u32, Vec<(i64, Option<MessageId>)>>;

/// Judges the log against the ledger; `from..to` is when the producers ran.
pub fn judge(ledger: &Ledger, log: &Log, from: Instant, to: Instant) -> anyhow::Result<Verdict> {
    let mut v = Verdict::default();
    let (acked, failed, pending) = ledger.counts();
    if pending > 0 {
        bail!("{pending} messages have no outcome; stop the load before checking");
    }
    v.acked = acked;
    v.failed = failed;
    v.sent = acked + failed;

    // Where each message is in the log.
    let mut found: HashMap<MessageId, Vec<(u32, i64)>> = HashMap::new();
    for (&partition, records) in log {
        let mut expected = 0;
        let mut last_seq: HashMap<u32, u64> = HashMap::new();
        for &(offset, id) in records {
            v.read += 1;
            if offset != expected {
                v.offset_gaps += u64::try_from(offset - expected).unwrap_or(1);
            }
            expected = offset + 1;
            let Some(id) = id else {
                v.foreign += 1;
                continue;
            };
            found.entry(id).or_default().push((partition, offset));
            if let Some(prev) = last_seq.insert(id.producer, id.seq)
                && prev >= id.seq
            {
                v.reordered += 1;
            }
            match ledger.delivered.get(&(partition, offset)) {
                Some(Some(got)) if *got != id => v.delivery_mismatches += 1,
                Some(None) => v.delivery_mismatches += 1,
                _ => {}
            }
        }
    }
    for places in found.values() {
        v.duplicated += places.len() as u64 - 1;
    }
    let delivered: std::collections::HashSet<MessageId> =
        ledger.delivered.values().flatten().copied().collect();
    for (producer, sent) in ledger.sent.iter().enumerate() {
        for (seq, s) in sent.iter().enumerate() {
            let id = MessageId {
                producer: producer as u32,
                seq: seq as u64,
            };
            let places = found.get(&id);
            match &s.outcome {
                Outcome::Acked { offset, .. } => {
                    match places {
                        None => v.lost += 1,
                        Some(places) if !places.contains(&(s.partition, *offset)) => {
                            v.misplaced += 1;
                        }
                        Some(_) => {}
                    }
                    if !delivered.contains(&id) {
                        v.group_missing += 1;
                    }
                }
                Outcome::Failed { .. } => {
                    if places.is_some() {
                        v.unacked_present += 1;
                    }
                }
                Outcome::Pending => {}
            }
        }
    }
    v.redelivered = ledger.redelivered;
    v.delivery_mismatches += ledger.delivery_mismatches;
    v.consumer_errors = ledger.consumer_errors.values().sum();
    let (gap, partition, _) = ledger.longest_gap(from, to);
    v.max_unwritable = gap;
    v.max_unwritable_partition = partition;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::workload::{Sent, encode_value};

    fn id(producer: u32, seq: u64) -> MessageId {
        MessageId { producer, seq }
    }

    /// Two producers, two partitions; every message acknowledged at the offset it was read
    /// at, and handed to the group.
    fn clean() -> (Ledger, Log, Instant) {
        let t0 = Instant::now();
        let mut ledger = Ledger {
            sent: vec![Vec::new(), Vec::new()],
            ..Ledger::default()
        };
        let mut log = Log::new();
        for seq in 0..10u64 {
            for producer in 0..2u32 {
                let partition = (seq % 2) as u32;
                let records = log.entry(partition).or_default();
                let offset = records.len() as i64;
                records.push((offset, Some(id(producer, seq))));
                ledger.sent[producer as usize].push(Sent {
                    partition,
                    sent: t0,
                    outcome: Outcome::Acked {
                        offset,
                        at: t0 + Duration::from_millis(seq * 10),
                    },
                });
                ledger
                    .delivered
                    .insert((partition, offset), Some(id(producer, seq)));
            }
        }
        (ledger, log, t0)
    }

    fn verdict(ledger: &Ledger, log: &Log, t0: Instant) -> Verdict {
        judge(ledger, log, t0, t0 + Duration::from_millis(100)).unwrap()
    }

    #[test]
    fn a_clean_run_has_no_violations() {
        let (ledger, log, t0) = clean();
        let v = verdict(&ledger, &log, t0);
        assert_eq!((v.sent, v.acked, v.read), (20, 20, 20));
        assert!(v.violations().is_empty(), "{v:?}");
        assert_eq!(v.max_unwritable, Duration::from_millis(20));
    }

    #[test]
    fn a_lost_message_is_counted() {
        let (ledger, mut log, t0) = clean();
        // The last record of partition 1 vanished (no gap: it was at the end).
        log.get_mut(&1).unwrap().pop();
        let v = verdict(&ledger, &log, t0);
        assert_eq!(v.lost, 1);
        assert_eq!(v.offset_gaps, 0);
    }

    #[test]
    fn a_duplicate_and_a_reordering_are_counted() {
        let (ledger, mut log, t0) = clean();
        let records = log.get_mut(&0).unwrap();
        let first = records[0].1;
        let next = records.len() as i64;
        records.push((next, first));
        let v = verdict(&ledger, &log, t0);
        assert_eq!(v.duplicated, 1);
        assert_eq!(v.reordered, 1, "producer 0's seq 0 after its seq 8");
    }

    #[test]
    fn misplaced_foreign_gaps_and_unacknowledged_are_counted() {
        let (mut ledger, mut log, t0) = clean();
        ledger.sent[0][0].outcome = Outcome::Acked { offset: 99, at: t0 };
        ledger.sent[1][2].outcome = Outcome::Failed {
            error: "timed out".into(),
        };
        let records = log.get_mut(&1).unwrap();
        records[3].1 = None;
        records.remove(5);
        let v = verdict(&ledger, &log, t0);
        assert_eq!(v.misplaced, 1);
        assert_eq!(v.unacked_present, 1);
        assert_eq!(v.foreign, 1);
        assert_eq!(v.offset_gaps, 1);
        assert_eq!(
            v.lost, 2,
            "the removed and the damaged records were acknowledged"
        );
    }

    #[test]
    fn what_the_group_missed_or_got_wrong_is_counted() {
        let (mut ledger, log, t0) = clean();
        ledger.delivered.remove(&(0, 3));
        ledger.delivered.insert((1, 2), Some(id(7, 7)));
        let v = verdict(&ledger, &log, t0);
        assert_eq!(
            v.group_missing, 2,
            "one never handed out, one handed out wrong"
        );
        assert_eq!(v.delivery_mismatches, 1);
    }

    #[test]
    fn pending_messages_refuse_a_verdict() {
        let (mut ledger, log, t0) = clean();
        ledger.sent[0][4].outcome = Outcome::Pending;
        assert!(judge(&ledger, &log, t0, t0).is_err());
    }

    #[test]
    fn the_longest_gap_skips_pauses_and_counts_a_stuck_partition() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let acked = |partition, at| Sent {
            partition,
            sent: t0,
            outcome: Outcome::Acked { offset: 0, at },
        };
        let mut ledger = Ledger {
            sent: vec![vec![
                acked(0, ms(0)),
                acked(0, ms(1_000)),
                acked(0, ms(1_100)),
                acked(1, ms(0)),
                acked(1, ms(200)),
            ]],
            ..Ledger::default()
        };
        ledger.pauses.push((ms(100), ms(900)));
        // Partition 1 has nothing after 200 ms: stuck until the end of the window, 1.3 s
        // less the 700 ms of pause in it.
        let (gap, partition, _) = ledger.longest_gap(ms(0), ms(1_500));
        assert_eq!((gap, partition), (Duration::from_millis(600), 1));
        // Partition 0's 1 s gap, minus the 800 ms pause, is 200 ms.
        let (gap, partition, _) = ledger.longest_gap(ms(0), ms(250));
        assert_eq!((gap, partition), (Duration::from_millis(200), 0));
    }

    #[test]
    fn values_round_trip_and_damage_is_detected() {
        let value = encode_value("abc123", id(1, 42), 64);
        assert_eq!(value.len(), 64);
        assert_eq!(decode_value("abc123", &value, 64), Some(id(1, 42)));
        assert_eq!(decode_value("other", &value, 64), None);
        let mut damaged = value.to_vec();
        damaged[40] ^= 1;
        assert_eq!(decode_value("abc123", &damaged, 64), None);
    }
}

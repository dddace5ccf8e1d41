//! The acknowledged-write checker: reads every partition from offset 0 to its high watermark
//! after the load stopped, and compares the log with the ledger of acknowledgements and with
//! what the group's consumers were handed.
//!
//! With delayed messages ([`super::workload::DelayedLoad`]) it first waits until the last one
//! is due, plus a settle time, and until every partition holds its copies (bounded). The
//! proxy hides delayed originals from every reader, so the log is read twice: straight from
//! storage ([`read_raw`], originals included: the log the checks run on) and through a proxy
//! ([`read_all`], what consumers can see), which must be the same records less the originals.
//! Originals count as any acknowledged message (lost, duplicated, reordered, ...); each must
//! have exactly one copy naming it, timestamped no earlier than its due time, and no group
//! member may have got the copy before that time, nor the original at all.
//!
//! Under a retry load ([`super::workload::RetryLoad`]) it also judges the group's nacks
//! ([`judge_retries`]): what the consumers recorded (nacks and the proxy's answers, records
//! back from the retry topic, processings) against the group's dead-letter topic, listed
//! through a proxy's `ListDeadLetters`. Every acknowledged message but the poison ones must be
//! processed; every poison one dead-lettered once, naming where the group read it, after
//! `max_retries` attempts, with the last error; no other message dead-lettered; every answered
//! retry back, not before its due time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{Context, bail};
use strata_client::{Admin, Offset, TopicPartition};
use strata_format::delay;
use strata_log::LogReader;
use tokio::time::Instant;

use super::workload::{
    Fate, Ledger, Load, MessageId, NackCall, Outcome, RetryLoad, decode_value, now_ms,
};

/// After the last delayed message is due, how long the checker waits before reading: the
/// owners' schedulers append copies within a flush or two of their time.
const DELAY_SETTLE: Duration = Duration::from_secs(2);
/// How long after that the checker keeps reading again while copies are missing.
const COPIES_WAIT: Duration = Duration::from_secs(30);
/// How far apart the proxies' clock (which sets a retry's due time) and this process's (which
/// notes when a retry came back) may be, in milliseconds: the same machine's clock in process
/// mode, read by different processes, and whole milliseconds on both sides.
pub const RETRY_CLOCK_SLACK_MS: i64 = 100;

/// What the checker found. `lost`, `duplicated`, `reordered`, `misplaced`, `foreign`,
/// `offset_gaps`, `group_missing`, `delivery_mismatches`, the `delay_*` counts but
/// `delayed`, and the retry counts of [`Verdict::violations`] must all be 0.
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
    /// Acknowledged delayed messages (each should have one copy).
    pub delayed: u64,
    /// Delivered copies read back (of acknowledged delayed messages or not).
    pub delay_copies: u64,
    /// Acknowledged delayed messages with no copy of the same message naming their offset.
    pub delay_lost: u64,
    /// Copies beyond the first of the same original (the design makes none: only the
    /// partition's owner appends a copy, and a new owner skips originals whose copy is in the
    /// log).
    pub delay_duplicated: u64,
    /// Copies timestamped before their original's due time, or first handed to a group member
    /// before it (wall clock, as the poll returned); originals handed to a group member at
    /// all; acknowledged delayed messages stored as ordinary (visible at once) records.
    pub delay_early: u64,
    /// Copies naming an offset that holds no delayed original of the same message.
    pub delay_stray: u64,
    /// Records a proxy's `Fetch` got wrong on a topic with delays, against the log in
    /// storage: a delayed original shown, another record hidden, or a record unlike the log's.
    pub delay_hiding: u64,
    /// The latest a group member got a copy after its due time (wall clock), and the copy's
    /// partition.
    pub delay_max_late: Duration,
    pub delay_max_late_partition: u32,
    /// Under a retry load: acknowledged messages failed once or twice, and always.
    pub transient: u64,
    pub poison: u64,
    /// Nacks answered (a retry record or a dead letter written), and nack calls that failed
    /// (tried again).
    pub retry_nacks: u64,
    pub retry_nack_errors: u64,
    /// Retry records that came back to the group (distinct copies).
    pub retry_returns: u64,
    /// Records in the group's dead-letter topic.
    pub dead_letters: u64,
    /// Answered retries (not dead-lettered) whose record never came back to the group.
    pub retry_lost: u64,
    /// Retries that came back before their due time less [`RETRY_CLOCK_SLACK_MS`], or whose
    /// due time the proxy set before the nack's start plus its backoff (less the slack); a
    /// retry whose nack had no answer, back before the first try's start plus the backoff.
    pub retry_early: u64,
    /// Records from the retry topic no nack explains: not an intact message of the run, or
    /// naming an origin other than where the group read the message, or the copy of a retry
    /// record no answered nack wrote (one nack's record written twice) unless a nack of the
    /// message at that attempt failed and was tried again.
    pub retry_stray: u64,
    /// Copies of one retry record beyond the first.
    pub retry_duplicated: u64,
    /// Acknowledged messages, poison ones aside, never processed.
    pub retry_unprocessed: u64,
    /// Acknowledged poison messages with no dead letter, or whose dead-lettering nack
    /// answered an offset that holds none of theirs.
    pub dead_letter_missing: u64,
    /// Dead letters of messages that are not poison.
    pub dead_lettered_wrongly: u64,
    /// Dead letters of one message beyond one (or beyond the nacks of its last attempt whose
    /// chain of retries every answered nack explains, when a redelivery made two).
    pub dead_letter_duplicated: u64,
    /// Dead letters with a wrong origin, attempt count or last error, or a damaged value.
    pub dead_letter_wrong: u64,
    /// The latest a retry came back after its due time.
    pub retry_max_late: Duration,
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
            ("delay lost", self.delay_lost),
            ("delay duplicated", self.delay_duplicated),
            ("delay early", self.delay_early),
            ("delay stray", self.delay_stray),
            ("delay hiding", self.delay_hiding),
            ("retry lost", self.retry_lost),
            ("retry early", self.retry_early),
            ("retry stray", self.retry_stray),
            ("retry duplicated", self.retry_duplicated),
            ("retry unprocessed", self.retry_unprocessed),
            ("dead letter missing", self.dead_letter_missing),
            ("dead lettered wrongly", self.dead_lettered_wrongly),
            ("dead letter duplicated", self.dead_letter_duplicated),
            ("dead letter wrong", self.dead_letter_wrong),
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
/// exactly where it happens). On a topic with delays the proxy leaves the delayed originals
/// out ([`read_raw`] has them).
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
                    // Records left out (delayed originals) move the read on too.
                    let past_filtered = response.next_offset > offset;
                    match response.error {
                        None if !response.batches.is_empty() || past_filtered => {
                            for bytes in response.batches {
                                // Batches the proxy left records out of have offset gaps
                                // (on a topic with delays); elsewhere a gap is an offset gap.
                                let batch = strata_format::RecordBatch::parse_sparse(bytes)?;
                                for record in strata_format::decode_batch(&batch)? {
                                    if record.offset < offset || record.offset >= end {
                                        continue;
                                    }
                                    records.push(Logged::of(&record, run, value_bytes));
                                }
                                offset = offset.max(batch.next_offset());
                            }
                            offset = offset.max(response.next_offset);
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

/// Every record of every partition, read straight from storage (the metadata store's segment
/// records and the objects they name, as brokers and proxies read them) from offset 0 to the
/// high watermark: the delayed originals included, which no proxy serves. The partitions are
/// read at the same time (a read is a GET per segment, and a cold one).
pub async fn read_raw(
    reader: &LogReader,
    topic: &str,
    partitions: u32,
    run: &str,
    value_bytes: usize,
    timeout: Duration,
) -> anyhow::Result<Log> {
    let deadline = Instant::now() + timeout;
    let reads =
        (0..partitions).map(|p| read_raw_partition(reader, topic, p, run, value_bytes, deadline));
    let mut out: Log = BTreeMap::new();
    let mut stuck = Vec::new();
    for (p, read) in (0..partitions).zip(futures::future::try_join_all(reads).await?) {
        match read {
            Ok(records) => {
                out.insert(p, records);
            }
            Err((offset, end)) => stuck.push((p, offset, end)),
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

/// One partition of [`read_raw`]: its records, or where the read was at `deadline` and the
/// end it was going to.
async fn read_raw_partition(
    reader: &LogReader,
    topic: &str,
    p: u32,
    run: &str,
    value_bytes: usize,
    deadline: Instant,
) -> anyhow::Result<Result<Vec<Logged>, (i64, i64)>> {
    let end = reader.high_watermark(topic, p).await?;
    let mut records = Vec::new();
    let mut offset = 0;
    let mut errors = 0;
    while offset < end {
        if Instant::now() >= deadline {
            return Ok(Err((offset, end)));
        }
        let error = match reader.read(topic, p, offset, 4 << 20).await {
            Ok(read) if !read.batches.is_empty() => {
                for batch in read.batches {
                    for record in strata_format::decode_batch(&batch)? {
                        if record.offset < offset || record.offset >= end {
                            continue;
                        }
                        records.push(Logged::of(&record, run, value_bytes));
                    }
                    offset = offset.max(batch.next_offset());
                }
                errors = 0;
                continue;
            }
            Ok(_) => format!("no batch below the high watermark ({end})"),
            Err(e) => e.to_string(),
        };
        errors += 1;
        if errors > 50 {
            bail!(
                "reading {topic}/{p} from storage at offset {offset} failed 50 times; last: {error}"
            );
        }
        tracing::warn!(partition = p, offset, error = %error, "reading the log from storage: a read failed; retrying");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Ok(records))
}

/// Reads the whole log and judges it against the ledger. Call after [`Load::stop`]. A load
/// with delayed messages needs `raw`, a reader of the log in storage (see the module's
/// documentation), and first waits for the copies.
pub async fn check(
    load: &Load,
    proxy: &str,
    raw: Option<&LogReader>,
) -> anyhow::Result<(Verdict, Evidence)> {
    let config = &load.config;
    let end = load.stopped_at.unwrap_or_else(Instant::now);
    let served = |timeout| {
        read_all(
            proxy,
            &config.topic,
            config.partitions,
            &load.run,
            config.value_bytes,
            timeout,
        )
    };
    let lock = || {
        load.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    let dead_letters = match &config.retries {
        Some(_) => read_dead_letters(proxy, &config.group, &load.run, config.value_bytes).await?,
        None => Vec::new(),
    };
    let judged = |log: Log| {
        let evidence = Evidence {
            ledger: lock().clone(),
            log,
            from: load.started,
            to: end,
            topic: config.topic.clone(),
            retries: config.retries.clone(),
            dead_letters: dead_letters.clone(),
        };
        Ok::<_, anyhow::Error>((evidence.judge()?, evidence))
    };
    if config.delays.is_none() {
        return judged(served(Duration::from_secs(180)).await?);
    }
    let reader =
        raw.context("a load with delayed messages is checked against the log in storage")?;
    let last_due = lock().last_due_ms();
    if let Some(last_due) = last_due {
        let wait = last_due + DELAY_SETTLE.as_millis() as i64 - now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }
    let deadline = Instant::now() + COPIES_WAIT;
    let log = loop {
        let started = Instant::now();
        let log = read_raw(
            reader,
            &config.topic,
            config.partitions,
            &load.run,
            config.value_bytes,
            Duration::from_secs(180),
        )
        .await?;
        tracing::info!(
            records = log.values().map(Vec::len).sum::<usize>(),
            seconds = started.elapsed().as_secs_f64(),
            "read the log back from storage"
        );
        let missing = copies_missing(&lock(), &log);
        if missing.is_empty() {
            break log;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                ?missing,
                "delayed messages still without a copy (partition, offset); judging"
            );
            break log;
        }
        tracing::info!(
            missing = missing.len(),
            "acknowledged delayed messages without a copy yet; reading again"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let started = Instant::now();
    let shown = served(Duration::from_secs(180)).await?;
    tracing::info!(
        records = shown.values().map(Vec::len).sum::<usize>(),
        seconds = started.elapsed().as_secs_f64(),
        "read the log back through a proxy"
    );
    let hiding = hiding_mismatches(&log, &shown);
    let (mut verdict, evidence) = judged(log)?;
    verdict.delay_hiding = hiding;
    Ok((verdict, evidence))
}

/// A record of the group's dead-letter topic, as `ListDeadLetters` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSeen {
    /// Its offset in the dead-letter topic.
    pub offset: i64,
    /// `None`: not an intact message of this run.
    pub id: Option<MessageId>,
    /// The topic, partition and offset it names as where it was first read.
    pub origin: (String, u32, i64),
    pub attempts: u32,
    pub last_error: String,
}

/// Every dead letter of `group`, listed through `proxy` (`ListDeadLetters`, a page at a time).
pub async fn read_dead_letters(
    proxy: &str,
    group: &str,
    run: &str,
    value_bytes: usize,
) -> anyhow::Result<Vec<DeadLetterSeen>> {
    let connection = strata_client::Connection::connect(proxy).await?;
    let mut out = Vec::new();
    let mut from = 0;
    let mut errors = 0;
    loop {
        let answer = connection
            .grpc()
            .list_dead_letters(strata_proto::v1::ListDeadLettersRequest {
                group: group.to_owned(),
                from_offset: from,
                max: 1_000,
            })
            .await;
        let error = match answer {
            Ok(answer) => {
                let answer = answer.into_inner();
                match answer.error {
                    None if answer.letters.is_empty() => return Ok(out),
                    None => {
                        from = answer.next_offset.max(from + 1);
                        out.extend(answer.letters.into_iter().map(|l| {
                            DeadLetterSeen {
                                offset: l.offset,
                                id: l
                                    .value
                                    .as_deref()
                                    .and_then(|v| decode_value(run, v, value_bytes)),
                                origin: (l.origin_topic, l.origin_partition, l.origin_offset),
                                attempts: l.attempts,
                                last_error: l.last_error,
                            }
                        }));
                        errors = 0;
                        continue;
                    }
                    Some(e) => format!("{}: {}", e.code, e.message),
                }
            }
            Err(status) => status.to_string(),
        };
        errors += 1;
        if errors > 50 {
            bail!("listing the dead letters of {group} from {from} failed 50 times; last: {error}");
        }
        tracing::warn!(group, from, error = %error, "listing dead letters failed; retrying");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the checker judged: the ledger and the log as read back, kept so a test can judge
/// them again with a fault injected (the checker's teeth).
#[derive(Debug, Clone)]
pub struct Evidence {
    pub ledger: Ledger,
    pub log: Log,
    /// When the producers ran.
    pub from: Instant,
    pub to: Instant,
    /// The load's topic.
    pub topic: String,
    /// Under a retry load: which messages the group failed, and the policy.
    pub retries: Option<RetryLoad>,
    /// The group's dead letters, read after the retries settled.
    pub dead_letters: Vec<DeadLetterSeen>,
}

impl Evidence {
    pub fn judge(&self) -> anyhow::Result<Verdict> {
        let mut v = judge(&self.ledger, &self.log, self.from, self.to)?;
        if let Some(retries) = &self.retries {
            judge_retries(
                &mut v,
                &self.ledger,
                retries,
                &self.topic,
                &self.dead_letters,
            );
        }
        Ok(v)
    }

    /// Injects a lost retry: the records that came back of one answered retry vanish from
    /// what the group got. One of a message nacked again at the next attempt, so the
    /// message's processing or dead letter stays. Returns the retry record's offset in the
    /// retry topic.
    pub fn drop_a_retry_return(&mut self) -> Option<i64> {
        let nacked: HashSet<(MessageId, u32)> = self
            .ledger
            .nacks
            .iter()
            .map(|n| (n.id, n.read_attempt))
            .collect();
        let of = self
            .answered_retries()
            .find_map(|(call, offset, attempt, _)| {
                nacked.contains(&(call.id, attempt)).then_some(offset)
            })?;
        self.ledger.returns.retain(|r| r.of != Some(of));
        Some(of)
    }

    /// Injects an early retry: every record that came back of one answered retry is noted as
    /// received a millisecond before its due time less the clock slack. Returns the retry
    /// record's offset in the retry topic.
    pub fn make_a_return_early(&mut self) -> Option<i64> {
        let (_, of, _, due) = self.answered_retries().next()?;
        for r in &mut self.ledger.returns {
            if r.of == Some(of) {
                r.received_ms = due - RETRY_CLOCK_SLACK_MS - 1;
            }
        }
        Some(of)
    }

    /// Injects a lost dead letter: the first of a poison message vanishes from the
    /// dead-letter topic. Returns its offset there.
    pub fn drop_a_dead_letter(&mut self) -> Option<i64> {
        let retries = self.retries.as_ref()?;
        let index = self
            .dead_letters
            .iter()
            .position(|l| l.id.is_some_and(|id| retries.fate(id) == Fate::Poison))?;
        Some(self.dead_letters.remove(index).offset)
    }

    /// Answered retries (not dead letters) of which the group got a record back of the same
    /// message: `(call, offset in the retry topic, attempt, due)`.
    fn answered_retries(&self) -> impl Iterator<Item = (&NackCall, i64, u32, i64)> {
        self.ledger
            .nacks
            .iter()
            .filter_map(|call| match &call.answer {
                Ok(a)
                    if !a.dead_lettered
                        && self
                            .ledger
                            .returns
                            .iter()
                            .any(|r| r.of == Some(a.offset) && r.id == Some(call.id)) =>
                {
                    Some((call, a.offset, a.attempt, a.due_ms))
                }
                _ => None,
            })
    }

    /// Copies of acknowledged delayed messages: `(partition, index in the log, due)`, the last
    /// record of a partition first.
    fn copies_of_acked(&self) -> Vec<(u32, usize, i64)> {
        let mut due: HashMap<(u32, i64), i64> = HashMap::new();
        for s in self.ledger.sent.iter().flatten() {
            if let (Outcome::Acked { offset, .. }, Some(d)) = (&s.outcome, s.due_ms) {
                due.insert((s.partition, *offset), d);
            }
        }
        let mut out: Vec<(u32, usize, i64)> = self
            .log
            .iter()
            .flat_map(|(&p, records)| {
                let due = &due;
                records
                    .iter()
                    .enumerate()
                    .filter_map(move |(i, r)| match r.delay {
                        Delay::Copy { of } => due.get(&(p, of)).map(|d| (p, i, *d)),
                        _ => None,
                    })
            })
            .collect();
        out.sort_by_key(|&(p, i, _)| (i + 1 != self.log[&p].len(), p, i));
        out
    }

    /// Injects a lost delivery: one copy of an acknowledged delayed message vanishes from
    /// the log (the last record of a partition when one is a copy, so no offset gap shows),
    /// and so from what the group got. Returns the copy's `(partition, offset)`.
    pub fn drop_a_copy(&mut self) -> Option<(u32, i64)> {
        let (partition, index, _) = *self.copies_of_acked().first()?;
        let copy = self.log.get_mut(&partition)?.remove(index);
        self.ledger.delivered.remove(&(partition, copy.offset));
        self.ledger
            .copies_received
            .remove(&(partition, copy.offset));
        Some((partition, copy.offset))
    }

    /// Injects an early delivery: one copy of an acknowledged delayed message is timestamped
    /// a millisecond before its due time. Returns the copy's `(partition, offset)`.
    pub fn make_a_copy_early(&mut self) -> Option<(u32, i64)> {
        let (partition, index, due) = *self.copies_of_acked().first()?;
        let copy = &mut self.log.get_mut(&partition)?[index];
        copy.timestamp = due - 1;
        Some((partition, copy.offset))
    }
}

/// Acknowledged delayed messages whose offset no copy in `log` names: `(partition, offset)`.
fn copies_missing(ledger: &Ledger, log: &Log) -> Vec<(u32, i64)> {
    let copied: HashSet<(u32, i64)> = log
        .iter()
        .flat_map(|(&p, records)| {
            records.iter().filter_map(move |r| match r.delay {
                Delay::Copy { of } => Some((p, of)),
                _ => None,
            })
        })
        .collect();
    ledger
        .sent
        .iter()
        .flatten()
        .filter(|s| s.due_ms.is_some())
        .filter_map(|s| match s.outcome {
            Outcome::Acked { offset, .. } => Some((s.partition, offset)),
            _ => None,
        })
        .filter(|place| !copied.contains(place))
        .collect()
}

/// Records a proxy served (`shown`) unlike the log in storage (`log`), below the end of what
/// was read from storage: every record but the delayed originals must be served, as stored,
/// and no original.
pub fn hiding_mismatches(log: &Log, shown: &Log) -> u64 {
    let mut wrong = 0;
    for (partition, records) in log {
        let end = records.last().map_or(0, |r| r.offset + 1);
        let served: HashMap<i64, &Logged> = shown
            .get(partition)
            .into_iter()
            .flatten()
            .filter(|r| r.offset < end)
            .map(|r| (r.offset, r))
            .collect();
        for r in records {
            match (r.delay, served.get(&r.offset)) {
                (Delay::Original { .. }, None) => {}
                (Delay::Original { .. }, Some(_)) | (_, None) => wrong += 1,
                (_, Some(s)) if **s != *r => wrong += 1,
                _ => {}
            }
        }
        let stored: HashSet<i64> = records.iter().map(|r| r.offset).collect();
        wrong += served.keys().filter(|o| !stored.contains(o)).count() as u64;
    }
    wrong
}

/// The log as read back: `partition → records` in offset order.
pub type Log = BTreeMap<u32, Vec<Logged>>;

/// One record of the log as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logged {
    pub offset: i64,
    /// `None`: not an intact message of this run.
    pub id: Option<MessageId>,
    /// The record's timestamp, Unix milliseconds.
    pub timestamp: i64,
    pub delay: Delay,
}

/// What a record is to delayed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// An ordinary record.
    None,
    /// A delayed original, due at this time (`None`: its delay header does not parse).
    Original { due_ms: Option<i64> },
    /// A delivered copy of the original at offset `of`.
    Copy { of: i64 },
}

impl Logged {
    /// An ordinary record.
    pub fn plain(offset: i64, id: Option<MessageId>) -> Self {
        Self {
            offset,
            id,
            timestamp: 0,
            delay: Delay::None,
        }
    }

    fn of(record: &strata_format::Record, run: &str, value_bytes: usize) -> Self {
        let id = record
            .value
            .as_deref()
            .and_then(|v| decode_value(run, v, value_bytes));
        let delay = if let Some(of) = delay::delayed_from(&record.headers) {
            Delay::Copy { of }
        } else if delay::is_delayed(&record.headers) {
            Delay::Original {
                due_ms: delay::due_time(record).ok().flatten(),
            }
        } else {
            Delay::None
        };
        Self {
            offset: record.offset,
            id,
            timestamp: record.timestamp,
            delay,
        }
    }
}

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

    // Where each message is in the log (its original if delayed; copies apart).
    let mut found: HashMap<MessageId, Vec<(u32, i64)>> = HashMap::new();
    // Delayed originals: `(partition, offset) → (message, due)`.
    let mut originals: HashMap<(u32, i64), (MessageId, Option<i64>)> = HashMap::new();
    // Copies by the original they name: `(partition, original's offset) → copies`.
    let mut copies: HashMap<(u32, i64), Vec<Logged>> = HashMap::new();
    for (&partition, records) in log {
        let mut expected = 0;
        let mut last_seq: HashMap<u32, u64> = HashMap::new();
        for record in records {
            let offset = record.offset;
            v.read += 1;
            if offset != expected {
                v.offset_gaps += u64::try_from(offset - expected).unwrap_or(1);
            }
            expected = offset + 1;
            let Some(id) = record.id else {
                v.foreign += 1;
                continue;
            };
            let delivered = ledger.delivered.get(&(partition, offset));
            match record.delay {
                Delay::Original { due_ms } => {
                    originals.insert((partition, offset), (id, due_ms));
                    // Consumers never see an original: one handed out was early.
                    if delivered.is_some() {
                        v.delay_early += 1;
                    }
                }
                Delay::Copy { .. } | Delay::None => {
                    match delivered {
                        Some(Some(got)) if *got != id => v.delivery_mismatches += 1,
                        Some(None) => v.delivery_mismatches += 1,
                        _ => {}
                    }
                    if let Delay::Copy { of } = record.delay {
                        v.delay_copies += 1;
                        copies.entry((partition, of)).or_default().push(*record);
                        // A copy is appended when due, after later messages: not in the
                        // producer's order, and not a second copy of the message.
                        continue;
                    }
                }
            }
            found.entry(id).or_default().push((partition, offset));
            if let Some(prev) = last_seq.insert(id.producer, id.seq)
                && prev >= id.seq
            {
                v.reordered += 1;
            }
        }
    }
    for places in found.values() {
        v.duplicated += places.len() as u64 - 1;
    }
    // When each acknowledged delayed message is due, as the producer asked.
    let mut asked: HashMap<(u32, i64), (MessageId, i64)> = HashMap::new();
    for (producer, sent) in ledger.sent.iter().enumerate() {
        for (seq, s) in sent.iter().enumerate() {
            if let (Outcome::Acked { offset, .. }, Some(due)) = (&s.outcome, s.due_ms) {
                let id = MessageId {
                    producer: producer as u32,
                    seq: seq as u64,
                };
                asked.insert((s.partition, *offset), (id, due));
            }
        }
    }
    let mut max_late = (0, 0);
    for (place, list) in &copies {
        let Some(&(original, header_due)) = originals.get(place) else {
            v.delay_stray += list.len() as u64;
            continue;
        };
        let (of_original, stray): (Vec<&Logged>, Vec<&Logged>) =
            list.iter().partition(|c| c.id == Some(original));
        v.delay_stray += stray.len() as u64;
        v.delay_duplicated += (of_original.len() as u64).saturating_sub(1);
        let due = asked
            .get(place)
            .filter(|(id, _)| *id == original)
            .map(|(_, due)| *due)
            .or(header_due);
        let Some(due) = due else {
            continue;
        };
        for copy in of_original {
            let received = ledger.copies_received.get(&(place.0, copy.offset)).copied();
            if copy.timestamp < due || received.is_some_and(|at| at < due) {
                v.delay_early += 1;
            }
            if let Some(at) = received {
                max_late = max_late.max((at - due, place.0));
            }
        }
    }
    v.delay_max_late = Duration::from_millis(u64::try_from(max_late.0).unwrap_or(0));
    v.delay_max_late_partition = max_late.1;
    let delivered: HashSet<MessageId> = ledger.delivered.values().flatten().copied().collect();
    for (producer, sent) in ledger.sent.iter().enumerate() {
        for (seq, s) in sent.iter().enumerate() {
            let id = MessageId {
                producer: producer as u32,
                seq: seq as u64,
            };
            let places = found.get(&id);
            match &s.outcome {
                Outcome::Acked { offset, .. } => {
                    let place = (s.partition, *offset);
                    match places {
                        None => v.lost += 1,
                        Some(places) if !places.contains(&place) => {
                            v.misplaced += 1;
                        }
                        Some(_) => {}
                    }
                    // A delayed message counts as delivered when its copy was: the copy has
                    // the same value.
                    if !delivered.contains(&id) {
                        v.group_missing += 1;
                    }
                    if s.due_ms.is_some() {
                        v.delayed += 1;
                        let copied = copies
                            .get(&place)
                            .is_some_and(|list| list.iter().any(|c| c.id == Some(id)));
                        if !copied {
                            v.delay_lost += 1;
                        }
                        // Stored as an ordinary record: visible at once.
                        if places.is_some_and(|p| p.contains(&place))
                            && !originals.contains_key(&place)
                        {
                            v.delay_early += 1;
                        }
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

/// Judges the group's nacks under `retries` (see the module's documentation and the retry
/// counts of [`Verdict`]); `letters` is the group's dead-letter topic.
pub fn judge_retries(
    v: &mut Verdict,
    ledger: &Ledger,
    retries: &RetryLoad,
    topic: &str,
    letters: &[DeadLetterSeen],
) {
    let slack = RETRY_CLOCK_SLACK_MS;
    let max_retries = retries.policy.max_retries;
    let backoff = |attempt: u32| {
        i64::try_from(retries.policy.backoff_for(attempt).as_millis()).unwrap_or(i64::MAX)
    };
    // Where the group read a message in the load's topic: what an origin must name.
    let read_at = |origin: &(String, u32, i64), id: MessageId| {
        origin.0 == topic && ledger.delivered.get(&(origin.1, origin.2)) == Some(&Some(id))
    };
    // Nack calls by message and attempt read; answered retries by their offset in the retry
    // topic; the offsets dead-lettering nacks answered, by message.
    let mut calls: HashMap<(MessageId, u32), Vec<&NackCall>> = HashMap::new();
    let mut retried: BTreeMap<i64, &NackCall> = BTreeMap::new();
    let mut dead_answers: HashMap<MessageId, Vec<i64>> = HashMap::new();
    for call in &ledger.nacks {
        calls
            .entry((call.id, call.read_attempt))
            .or_default()
            .push(call);
        match &call.answer {
            Err(_) => v.retry_nack_errors += 1,
            Ok(a) => {
                v.retry_nacks += 1;
                if a.dead_lettered {
                    dead_answers.entry(call.id).or_default().push(a.offset);
                } else {
                    retried.insert(a.offset, call);
                }
            }
        }
    }
    // What came back, by the retry record it copies: each copy's first receipt, and the
    // message and attempt.
    let mut back: HashMap<i64, (MessageId, u32, BTreeMap<i64, i64>)> = HashMap::new();
    let mut stray: HashSet<i64> = HashSet::new();
    for r in &ledger.returns {
        let explained = match (r.id, &r.origin, r.of) {
            (Some(id), Some(origin), Some(of)) if r.attempt >= 1 && read_at(origin, id) => {
                match retried.get(&of) {
                    Some(call) => {
                        call.id == id && call.answer.as_ref().is_ok_and(|a| a.attempt == r.attempt)
                    }
                    // From a nack with no answer: one of its calls failed.
                    None => calls
                        .get(&(id, r.attempt - 1))
                        .is_some_and(|c| c.iter().any(|c| c.answer.is_err())),
                }
                .then_some((id, of))
            }
            _ => None,
        };
        let Some((id, of)) = explained else {
            if stray.insert(r.offset) {
                tracing::warn!(return_ = ?r, "a record from the retry topic no answered nack wrote");
            }
            continue;
        };
        let (_, _, copies) = back
            .entry(of)
            .or_insert_with(|| (id, r.attempt, BTreeMap::new()));
        let first = copies.entry(r.offset).or_insert(r.received_ms);
        *first = (*first).min(r.received_ms);
    }
    v.retry_stray = stray.len() as u64;
    v.retry_returns = back.values().map(|(_, _, c)| c.len() as u64).sum();
    v.retry_duplicated = back
        .values()
        .map(|(_, _, c)| (c.len() as u64).saturating_sub(1))
        .sum();
    let first_back = |of: &i64| {
        back.get(of)
            .and_then(|(_, _, copies)| copies.values().min().copied())
    };
    let mut max_late = 0;
    for (of, call) in &retried {
        let Ok(answer) = &call.answer else {
            continue;
        };
        let due_too_soon = answer.due_ms + slack < call.started_ms + backoff(answer.attempt);
        match first_back(of) {
            None => {
                v.retry_lost += 1;
                tracing::warn!(id = ?call.id, attempt = answer.attempt, retry_offset = of, due_ms = answer.due_ms,
                    "an answered retry never came back to the group");
            }
            Some(at) => {
                if due_too_soon || at + slack < answer.due_ms {
                    v.retry_early += 1;
                    tracing::warn!(id = ?call.id, attempt = answer.attempt, retry_offset = of, due_ms = answer.due_ms,
                        started_ms = call.started_ms, back_ms = at, "a retry came back early");
                }
                max_late = max_late.max(at - answer.due_ms);
            }
        }
    }
    v.retry_max_late = Duration::from_millis(u64::try_from(max_late).unwrap_or(0));
    // Records of nacks with no answer: not back before the first try plus the backoff.
    for (of, (id, attempt, copies)) in &back {
        if retried.contains_key(of) {
            continue;
        }
        let earliest = calls
            .get(&(*id, attempt - 1))
            .into_iter()
            .flatten()
            .map(|c| c.started_ms)
            .min()
            .unwrap_or(i64::MIN)
            .saturating_add(backoff(*attempt));
        if copies.values().any(|at| at + slack < earliest) {
            v.retry_early += 1;
        }
    }

    // The dead-letter topic.
    let mut letters_of: HashMap<MessageId, Vec<&DeadLetterSeen>> = HashMap::new();
    for letter in letters {
        v.dead_letters += 1;
        let Some(id) = letter.id else {
            v.dead_letter_wrong += 1;
            continue;
        };
        if retries.fate(id) != Fate::Poison {
            v.dead_lettered_wrongly += 1;
            tracing::warn!(
                ?id,
                offset = letter.offset,
                "a message that is not poison was dead-lettered"
            );
            continue;
        }
        let right = read_at(&letter.origin, id)
            && letter.attempts == max_retries
            && letter.last_error == RetryLoad::error(id, max_retries);
        if !right {
            v.dead_letter_wrong += 1;
            tracing::warn!(
                ?letter,
                "a dead letter names the wrong origin, attempts or error"
            );
        }
        letters_of.entry(id).or_default().push(letter);
    }
    // A nack call is sound when the record it read reached the group through answered nacks
    // only: from the load's topic, or a copy of a retry record an answered nack wrote (or a
    // nack the member had to try again) whose own call was sound. A dead letter beyond one
    // is allowed only for sound calls of the last attempt (a member handed the same record
    // twice, at least once), not for a chain a stray retry record started.
    let copy_of: HashMap<i64, i64> = ledger
        .returns
        .iter()
        .filter_map(|r| r.of.map(|of| (r.offset, of)))
        .collect();
    let sound = |start: &NackCall| {
        let mut call = start;
        for _ in 0..=max_retries + 1 {
            if call.topic == topic {
                return true;
            }
            let Some(of) = copy_of.get(&call.offset) else {
                return false;
            };
            match retried.get(of) {
                Some(parent) => call = parent,
                None => {
                    return call.read_attempt > 0
                        && calls
                            .get(&(call.id, call.read_attempt - 1))
                            .is_some_and(|c| c.iter().any(|c| c.answer.is_err()));
                }
            }
        }
        false
    };
    let processed: HashSet<MessageId> = ledger.processed.iter().map(|p| p.id).collect();
    for (producer, sent) in ledger.sent.iter().enumerate() {
        for (seq, s) in sent.iter().enumerate() {
            if !matches!(s.outcome, Outcome::Acked { .. }) {
                continue;
            }
            let id = MessageId {
                producer: producer as u32,
                seq: seq as u64,
            };
            match retries.fate(id) {
                Fate::Poison => {
                    v.poison += 1;
                    let found = letters_of.get(&id).map_or(&[][..], Vec::as_slice);
                    let answered_found = dead_answers
                        .get(&id)
                        .into_iter()
                        .flatten()
                        .all(|at| found.iter().any(|l| l.offset == *at));
                    if found.is_empty() || !answered_found {
                        v.dead_letter_missing += 1;
                        tracing::warn!(?id, "a poison message has no dead letter");
                    }
                    let last_nacks = calls
                        .get(&(id, max_retries))
                        .into_iter()
                        .flatten()
                        .filter(|c| sound(c))
                        .count();
                    v.dead_letter_duplicated +=
                        (found.len() as u64).saturating_sub(last_nacks.max(1) as u64);
                }
                fate => {
                    if matches!(fate, Fate::Transient(_)) {
                        v.transient += 1;
                    }
                    if !processed.contains(&id) {
                        v.retry_unprocessed += 1;
                        tracing::warn!(?id, ?fate, "an acknowledged message was never processed");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::workload::{RetryReturn, Sent, encode_value};

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
                records.push(Logged::plain(offset, Some(id(producer, seq))));
                ledger.sent[producer as usize].push(Sent {
                    partition,
                    sent: t0,
                    outcome: Outcome::Acked {
                        offset,
                        at: t0 + Duration::from_millis(seq * 10),
                    },
                    due_ms: None,
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
        let first = records[0].id;
        let next = records.len() as i64;
        records.push(Logged::plain(next, first));
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
        records[3].id = None;
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

    /// [`clean`] with every third message delayed: each original at its offset, its copy
    /// appended when due at the end of its partition, and the group handed the copy (not the
    /// original) 5 ms after its due time.
    fn clean_delayed() -> Evidence {
        let (mut ledger, mut log, t0) = clean();
        let due_at = |seq: u64| 1_000_000 + seq as i64 * 100;
        for (producer, sent) in ledger.sent.iter_mut().enumerate() {
            for (seq, s) in sent.iter_mut().enumerate() {
                let seq = seq as u64;
                if !seq.is_multiple_of(3) {
                    continue;
                }
                let Outcome::Acked { offset, .. } = s.outcome else {
                    unreachable!()
                };
                let due = due_at(seq);
                s.due_ms = Some(due);
                let records = log.get_mut(&s.partition).unwrap();
                records[offset as usize].delay = Delay::Original { due_ms: Some(due) };
                ledger.delivered.remove(&(s.partition, offset));
                let at = records.len() as i64;
                records.push(Logged {
                    offset: at,
                    id: Some(id(producer as u32, seq)),
                    timestamp: due,
                    delay: Delay::Copy { of: offset },
                });
                ledger
                    .delivered
                    .insert((s.partition, at), Some(id(producer as u32, seq)));
                ledger.copies_received.insert((s.partition, at), due + 5);
            }
        }
        Evidence {
            ledger,
            log,
            from: t0,
            to: t0 + Duration::from_millis(100),
            topic: "t".into(),
            retries: None,
            dead_letters: Vec::new(),
        }
    }

    #[test]
    fn a_clean_delayed_run_has_no_violations() {
        let evidence = clean_delayed();
        let v = evidence.judge().unwrap();
        assert!(v.violations().is_empty(), "{v:?}");
        assert_eq!((v.acked, v.delayed, v.delay_copies), (20, 8, 8));
        assert_eq!(v.read, 28);
        assert_eq!(v.delay_max_late, Duration::from_millis(5));
    }

    #[test]
    fn a_lost_copy_is_counted() {
        let mut evidence = clean_delayed();
        let dropped = evidence.drop_a_copy().unwrap();
        let v = evidence.judge().unwrap();
        assert_eq!(v.delay_lost, 1, "{dropped:?}: {v:?}");
        assert_eq!(v.group_missing, 1, "the group never got it either");
        assert_eq!(
            (v.lost, v.offset_gaps),
            (0, 0),
            "the original is there, the copy was last"
        );
    }

    #[test]
    fn early_copies_and_originals_handed_out_are_counted() {
        let mut evidence = clean_delayed();
        let early = evidence.make_a_copy_early().unwrap();
        let v = evidence.judge().unwrap();
        assert_eq!(v.delay_early, 1, "{early:?}: {v:?}");
        assert_eq!(v.violations(), vec![("delay early", 1)]);

        // A copy in the log at its time, but handed to the group before it.
        let mut evidence = clean_delayed();
        let (&place, _) = evidence.ledger.copies_received.iter().next().unwrap();
        *evidence.ledger.copies_received.get_mut(&place).unwrap() -= 10;
        assert_eq!(evidence.judge().unwrap().delay_early, 1);

        // An original handed to the group at all.
        let mut evidence = clean_delayed();
        let original = evidence.log[&0]
            .iter()
            .find(|r| matches!(r.delay, Delay::Original { .. }))
            .copied()
            .unwrap();
        evidence
            .ledger
            .delivered
            .insert((0, original.offset), original.id);
        assert_eq!(evidence.judge().unwrap().delay_early, 1);

        // An acknowledged delayed message stored without its delay: visible at once, and
        // never copied.
        let mut evidence = clean_delayed();
        let records = evidence.log.get_mut(&1).unwrap();
        let original = records
            .iter_mut()
            .find(|r| matches!(r.delay, Delay::Original { .. }))
            .unwrap();
        original.delay = Delay::None;
        let v = evidence.judge().unwrap();
        assert_eq!((v.delay_early, v.delay_stray), (1, 1), "{v:?}");
    }

    #[test]
    fn duplicated_and_stray_copies_are_counted() {
        let mut evidence = clean_delayed();
        let records = evidence.log.get_mut(&0).unwrap();
        let copy = *records.last().unwrap();
        let next = copy.offset + 1;
        records.push(Logged {
            offset: next,
            ..copy
        });
        // A copy naming an ordinary record: offset 2 holds producer 0's seq 2, not delayed.
        records.push(Logged {
            offset: next + 1,
            id: records[2].id,
            timestamp: 0,
            delay: Delay::Copy { of: 2 },
        });
        let v = evidence.judge().unwrap();
        assert_eq!((v.delay_duplicated, v.delay_stray), (1, 1), "{v:?}");
        assert_eq!(v.duplicated, 0, "copies are not second copies of a message");
    }

    #[test]
    fn what_a_proxy_shows_must_be_the_log_less_the_originals() {
        let log = clean_delayed().log;
        let shown: Log = log
            .iter()
            .map(|(&p, records)| {
                let kept = records
                    .iter()
                    .filter(|r| !matches!(r.delay, Delay::Original { .. }))
                    .copied()
                    .collect();
                (p, kept)
            })
            .collect();
        assert_eq!(hiding_mismatches(&log, &shown), 0);
        let mut wrong = shown.clone();
        wrong.get_mut(&0).unwrap().remove(1); // an ordinary record hidden
        assert!(matches!(log[&1][2].delay, Delay::Original { .. }));
        wrong.get_mut(&1).unwrap().insert(2, log[&1][2]); // an original shown
        assert_eq!(hiding_mismatches(&log, &wrong), 2);
    }

    /// [`clean`] under a retry load: seq 3 poison, seq 0 and 6 failing once, seq 9 twice; each
    /// nack answered, each retry back 5 ms after its due time, each poison message
    /// dead-lettered once.
    fn clean_retried() -> Evidence {
        let (mut ledger, log, t0) = clean();
        let retries = RetryLoad {
            transient_every: 3,
            poison_every: 7,
            policy: strata_client::RetryPolicy {
                max_retries: 2,
                backoff: vec![Duration::from_secs(1), Duration::from_secs(2)],
            },
        };
        let mut dead_letters = Vec::new();
        let (mut retry_offset, mut copy_offset) = (0, 1_000);
        let places: Vec<((u32, i64), MessageId)> = ledger
            .delivered
            .iter()
            .map(|(place, id)| (*place, id.unwrap()))
            .collect();
        for ((partition, offset), id) in places {
            let origin = ("t".to_owned(), partition, offset);
            let mut now = 1_000_000 + id.seq as i64 * 10;
            let mut attempt = 0;
            let mut read_from = ("t", partition, offset);
            while retries.fails(id, attempt) {
                let dead = attempt + 1 > retries.policy.max_retries;
                let due = now + retries.policy.backoff_for(attempt + 1).as_millis() as i64;
                let answer = strata_client::Nacked {
                    topic: if dead { "__dlq.g" } else { "__retry.g" }.into(),
                    offset: if dead {
                        dead_letters.len() as i64
                    } else {
                        retry_offset
                    },
                    attempt: if dead { attempt } else { attempt + 1 },
                    dead_lettered: dead,
                    due_ms: if dead { 0 } else { due },
                };
                ledger.nacks.push(NackCall {
                    id,
                    topic: read_from.0.into(),
                    partition: read_from.1,
                    offset: read_from.2,
                    read_attempt: attempt,
                    error: RetryLoad::error(id, attempt),
                    started_ms: now,
                    answered_ms: now + 3,
                    answer: Ok(answer),
                });
                if dead {
                    dead_letters.push(DeadLetterSeen {
                        offset: dead_letters.len() as i64,
                        id: Some(id),
                        origin: origin.clone(),
                        attempts: attempt,
                        last_error: RetryLoad::error(id, attempt),
                    });
                    break;
                }
                attempt += 1;
                ledger.returns.push(RetryReturn {
                    id: Some(id),
                    offset: copy_offset,
                    of: Some(retry_offset),
                    attempt,
                    origin: Some(origin.clone()),
                    received_ms: due + 5,
                });
                read_from = ("__retry.g", 0, copy_offset);
                retry_offset += 1;
                copy_offset += 1;
                now = due + 5;
            }
            if !retries.fails(id, attempt) {
                ledger.processed.push(crate::harness::workload::Processed {
                    id,
                    attempt,
                    at_ms: now,
                });
            }
        }
        Evidence {
            ledger,
            log,
            from: t0,
            to: t0 + Duration::from_millis(100),
            topic: "t".into(),
            retries: Some(retries),
            dead_letters,
        }
    }

    #[test]
    fn a_clean_retried_run_has_no_violations() {
        let v = clean_retried().judge().unwrap();
        assert!(v.violations().is_empty(), "{v:?}");
        assert_eq!((v.poison, v.transient, v.dead_letters), (2, 6, 2), "{v:?}");
        // Poison: 3 nacks each; transient: 1 each, seq 9 twice.
        assert_eq!(
            (v.retry_nacks, v.retry_returns),
            (2 * 3 + 6 + 2, 2 * 2 + 6 + 2)
        );
        assert_eq!(v.retry_max_late, Duration::from_millis(5));
    }

    #[test]
    fn lost_and_early_retries_and_a_lost_dead_letter_are_counted() {
        let mut evidence = clean_retried();
        let dropped = evidence.drop_a_retry_return().unwrap();
        let early = evidence.make_a_return_early().unwrap();
        let letter = evidence.drop_a_dead_letter().unwrap();
        let v = evidence.judge().unwrap();
        assert_eq!(
            v.violations(),
            vec![
                ("retry lost", 1),
                ("retry early", 1),
                ("dead letter missing", 1)
            ],
            "{dropped} dropped, {early} early, letter {letter} dropped: {v:?}"
        );

        // A due time the proxy set short of the backoff.
        let mut evidence = clean_retried();
        let answer = evidence
            .ledger
            .nacks
            .iter_mut()
            .find_map(|n| n.answer.as_mut().ok().filter(|a| !a.dead_lettered))
            .unwrap();
        answer.due_ms -= 500;
        assert_eq!(evidence.judge().unwrap().retry_early, 1);
    }

    #[test]
    fn wrong_stray_duplicated_and_unprocessed_are_counted() {
        let mut evidence = clean_retried();
        // A transient message dead-lettered; a poison one's letter with the wrong attempts,
        // and again.
        let transient = evidence
            .ledger
            .processed
            .iter()
            .find(|p| p.attempt == 1)
            .unwrap()
            .id;
        let mut wrong = evidence.dead_letters[0].clone();
        wrong.attempts = 3;
        let mut wrongly = wrong.clone();
        wrongly.id = Some(transient);
        evidence.dead_letters.extend([wrong, wrongly]);
        // A return naming an origin where the group never read it; a processing forgotten.
        let mut stray = evidence.ledger.returns[0].clone();
        stray.origin = Some(("t".into(), 0, 999));
        stray.offset = 5_000;
        evidence.ledger.returns.push(stray);
        let gone = evidence
            .ledger
            .processed
            .iter()
            .position(|p| p.attempt == 0)
            .unwrap();
        evidence.ledger.processed.remove(gone);
        let v = evidence.judge().unwrap();
        assert_eq!(
            (
                v.dead_lettered_wrongly,
                v.dead_letter_wrong,
                v.dead_letter_duplicated
            ),
            (1, 1, 1),
            "{v:?}"
        );
        assert_eq!((v.retry_stray, v.retry_unprocessed), (1, 1), "{v:?}");
        assert_eq!(
            (v.retry_lost, v.retry_early, v.dead_letter_missing),
            (0, 0, 0)
        );
    }

    /// One nack's retry record written twice (the proxy's write tried again at a new owner
    /// after the old one stored it): its second copy comes back too, the member nacks both,
    /// and the poison message ends dead-lettered twice.
    #[test]
    fn a_retry_record_written_twice_is_counted_and_so_is_its_second_dead_letter() {
        let mut evidence = clean_retried();
        let retries = evidence.retries.clone().unwrap();
        let ledger = &mut evidence.ledger;
        let first = ledger
            .returns
            .iter()
            .find(|r| r.attempt == 1 && r.id.is_some_and(|id| retries.fate(id) == Fate::Poison))
            .cloned()
            .unwrap();
        let id = first.id.unwrap();
        let call = |read: i64, attempt: u32, answer: strata_client::Nacked| NackCall {
            id,
            topic: "__retry.g".into(),
            partition: 0,
            offset: read,
            read_attempt: attempt,
            error: RetryLoad::error(id, attempt),
            started_ms: first.received_ms,
            answered_ms: first.received_ms + 3,
            answer: Ok(answer),
        };
        // The copy of the unanswered second write (retry offset 8000), nacked again, back,
        // nacked a last time.
        ledger.returns.push(RetryReturn {
            offset: 9_000,
            of: Some(8_000),
            ..first.clone()
        });
        let due = first.received_ms + 2_000;
        ledger.nacks.push(call(
            9_000,
            1,
            strata_client::Nacked {
                topic: "__retry.g".into(),
                offset: 8_001,
                attempt: 2,
                dead_lettered: false,
                due_ms: due,
            },
        ));
        ledger.returns.push(RetryReturn {
            offset: 9_001,
            of: Some(8_001),
            attempt: 2,
            received_ms: due + 5,
            ..first.clone()
        });
        ledger.nacks.push(call(
            9_001,
            2,
            strata_client::Nacked {
                topic: "__dlq.g".into(),
                offset: 50,
                attempt: 2,
                dead_lettered: true,
                due_ms: 0,
            },
        ));
        let mut second = evidence
            .dead_letters
            .iter()
            .find(|l| l.id == Some(id))
            .cloned()
            .unwrap();
        second.offset = 50;
        evidence.dead_letters.push(second);
        let v = evidence.judge().unwrap();
        assert_eq!(
            v.violations(),
            vec![("retry stray", 1), ("dead letter duplicated", 1)],
            "{v:?}"
        );
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
            due_ms: None,
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

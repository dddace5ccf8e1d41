//! Elasticity: a partition move through the admin API, a broker killed with -9, and a rolling
//! restart of every broker, each under load.
//!
//! "First produce acknowledged by the new owner" is exact: the new owner's claim writes a
//! checkpoint with its epoch and the offset it continues from, N; the old owner can never
//! commit offset N or later (its commits compare the assignment), so the first acknowledgement
//! of an offset ≥ N is the new owner's. The bench reads the claim by replaying the partition's
//! commit key in the metadata store from a revision taken before the event.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use strata_client::{Ack, Partitioner, Producer, ProducerRecord};
use strata_meta::schema::{self, Checkpoint, Keyspace};
use strata_meta::{MetaStore, WatchEvent};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::admin::AdminApi;
use super::load::{self, AckLog};
use super::stats::{Percentiles, Progress, fmt_opt};

/// What the elasticity runs need besides the servers' addresses.
#[derive(Debug, Clone)]
pub struct ElasticSettings {
    pub server: String,
    pub admin: AdminApi,
    pub meta: Arc<dyn MetaStore>,
    pub keys: Keyspace,
    /// Storage node URL, to list a partition's objects before and after a move.
    pub storage_node: Option<String>,
    pub brokers_http: Vec<String>,
    pub kill_command: Option<String>,
    pub start_command: Option<String>,
    pub stop_command: Option<String>,
    pub trials: usize,
    pub rolling_rate: f64,
    pub size: usize,
    pub topic_prefix: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MoveResult {
    /// Request sent → first produce acknowledged by the new owner, per trial.
    pub move_ms: Vec<f64>,
    /// Request sent → the admin API answered (the assignment is written).
    pub api_ms: Vec<f64>,
    pub move_p50_ms: Option<f64>,
    pub move_max_ms: Option<f64>,
    /// The partition's objects before the quiet move.
    pub objects_before: u64,
    pub bytes_before: u64,
    /// Bytes of objects that appeared under the partition's prefix during a move with no
    /// produce running.
    pub bytes_copied: Option<u64>,
    /// Segment bytes all brokers wrote during that move (their /metrics).
    pub broker_segment_bytes_during_move: Option<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KillResult {
    /// kill -9 → the first produce acknowledged by a new owner, per partition of the killed
    /// broker, per trial; seconds.
    pub unwritable_s: Vec<Vec<f64>>,
    /// The worst partition of each trial.
    pub worst_s: Vec<f64>,
    pub worst_max_s: Option<f64>,
    pub lease_ttl_note: String,
    pub errors: u64,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RollingResult {
    pub brokers: Vec<String>,
    pub rate_msgs_per_s: f64,
    pub size: usize,
    pub before: Percentiles,
    pub during: Percentiles,
    pub after: Percentiles,
    pub during_secs: f64,
    /// Records whose delivery failed for good (what an application sees).
    pub errors_before: u64,
    pub errors_during: u64,
    pub errors_after: u64,
    pub first_error: Option<String>,
}

/// Runs a user-given shell command with `{broker}` replaced.
async fn hook(template: &Option<String>, what: &str, broker: &str) -> anyhow::Result<()> {
    let Some(template) = template else {
        bail!("--{what}-command is needed for this measurement");
    };
    let command = template.replace("{broker}", broker);
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("`{command}` did not finish in 60 s"))??;
    if !output.status.success() {
        bail!(
            "`{command}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Acknowledgements of closed-loop senders, one per partition: (partition, when, offset).
type Acks = Arc<Mutex<Vec<(u32, Instant, i64)>>>;

/// One sender per partition, each waiting for its acknowledgement before the next record, so
/// an outage shows as one long wait per partition.
struct ClosedLoop {
    acks: Acks,
    errors: Arc<Mutex<(u64, Option<String>)>>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    producer: Producer,
}

impl ClosedLoop {
    async fn start(
        server: &str,
        topic: &str,
        partitions: &[u32],
        size: usize,
    ) -> anyhow::Result<Self> {
        let producer = Producer::builder(server)
            .config(load::producer_config(
                Ack::Durable,
                Duration::ZERO,
                Partitioner::RoundRobin,
            ))
            .build()
            .await?;
        let acks: Acks = Arc::default();
        let errors: Arc<Mutex<(u64, Option<String>)>> = Arc::default();
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let value = load::template(size);
        for &p in partitions {
            let (producer, acks, errors, cancel, topic, value) = (
                producer.clone(),
                acks.clone(),
                errors.clone(),
                cancel.clone(),
                topic.to_owned(),
                value.clone(),
            );
            tasks.spawn(async move {
                loop {
                    let record =
                        ProducerRecord::new(topic.clone(), value.clone()).with_partition(p);
                    let answer = tokio::select! {
                        () = cancel.cancelled() => return,
                        answer = producer.send(record) => answer,
                    };
                    match answer {
                        Ok(meta) => {
                            acks.lock()
                                .expect("acks lock")
                                .push((p, Instant::now(), meta.offset))
                        }
                        Err(e) => {
                            {
                                let mut errors = errors.lock().expect("errors lock");
                                errors.0 += 1;
                                errors.1.get_or_insert_with(|| e.to_string());
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            });
        }
        Ok(Self {
            acks,
            errors,
            cancel,
            tasks,
            producer,
        })
    }

    /// The first acknowledgement of `partition` at an offset ≥ `from`, after `after`.
    fn first_ack(&self, partition: u32, from: i64, after: Instant) -> Option<Instant> {
        self.acks
            .lock()
            .expect("acks lock")
            .iter()
            .filter(|(p, at, o)| *p == partition && *o >= from && *at >= after)
            .map(|(_, at, _)| *at)
            .min()
    }

    async fn stop(mut self) -> (u64, Option<String>) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
        let _ = self.producer.close().await;
        let errors = self.errors.lock().expect("errors lock");
        (errors.0, errors.1.clone())
    }
}

/// The store's revision now.
async fn revision(meta: &dyn MetaStore, keys: &Keyspace) -> anyhow::Result<i64> {
    Ok(meta.range(&keys.controller()).await?.1)
}

/// Replays commit keys of `topic` from `from_revision` until each partition of `old_epochs`
/// shows a checkpoint with a newer epoch: the new owner's claim. Returns partition →
/// (epoch, the offset it continues from).
async fn claims(
    meta: &dyn MetaStore,
    keys: &Keyspace,
    topic: &str,
    old_epochs: &BTreeMap<u32, u64>,
    from_revision: i64,
    limit: Duration,
) -> anyhow::Result<HashMap<u32, (u64, i64)>> {
    let commit_keys: HashMap<String, u32> = old_epochs
        .keys()
        .map(|p| (keys.commit(topic, *p), *p))
        .collect();
    let mut found = HashMap::new();
    let mut watch = meta
        .watch_prefix(&keys.topic_log(topic), Some(from_revision + 1))
        .await?;
    let deadline = tokio::time::Instant::now() + limit;
    while found.len() < old_epochs.len() {
        let event = match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(Some(event)) => event?,
            Ok(None) => bail!("the metadata watch ended"),
            Err(_) => bail!(
                "only {} of {} partitions were claimed by a new owner within {limit:?}",
                found.len(),
                old_epochs.len()
            ),
        };
        let WatchEvent::Put(kv) = event else {
            continue;
        };
        let Some(&p) = commit_keys.get(&kv.key) else {
            continue;
        };
        let checkpoint: Checkpoint = schema::decode(&kv.key, &kv.value)?;
        if checkpoint.epoch > old_epochs[&p] && !found.contains_key(&p) {
            found.insert(p, (checkpoint.epoch, checkpoint.next_offset));
        }
    }
    Ok(found)
}

/// Waits until `partition` has an acknowledgement at an offset ≥ `from`.
async fn wait_ack(
    load: &ClosedLoop,
    partition: u32,
    from: i64,
    after: Instant,
    limit: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(at) = load.first_ack(partition, from, after) {
            return Ok(at);
        }
        if Instant::now() >= deadline {
            bail!(
                "no acknowledgement of partition {partition} at offset ≥ {from} within {limit:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn topic_objects(
    pool: &strata_storage::NodePool,
    keys: &Keyspace,
    topic: &str,
    topic_id: u64,
    partition: u32,
) -> anyhow::Result<HashMap<String, u64>> {
    let prefix = strata_log::partition_prefix(keys.root(), topic, topic_id, partition);
    let mut out = HashMap::new();
    for node in pool.node_ids() {
        let Some(store) = pool.store(&node) else {
            continue;
        };
        let mut listing = store.list(Some(&prefix));
        while let Some(object) = listing.next().await {
            let object = object?;
            out.insert(format!("{node}/{}", object.location), object.size);
        }
    }
    Ok(out)
}

/// Partition moves between brokers: one quiet (objects listed before and after), then
/// `trials` under a closed-loop load on the moved partition.
pub async fn partition_move(
    s: &ElasticSettings,
    progress: &mut Progress,
) -> anyhow::Result<MoveResult> {
    let brokers: Vec<String> = s.admin.brokers().await?.into_iter().map(|b| b.id).collect();
    if brokers.len() < 2 {
        bail!(
            "a partition move needs at least 2 brokers; {} registered",
            brokers.len()
        );
    }
    let topic = format!("{}-move-{:06x}", s.topic_prefix, rand::random::<u32>() >> 8);
    let topic_id = s.admin.create_topic(&topic, 2).await?;
    s.admin
        .wait_writable(&topic, Duration::from_secs(30))
        .await?;
    load::wait_known(&s.server, &topic).await?;
    let mut result = MoveResult::default();
    let p = 0u32;

    // Data to not copy: a few MB in the partition.
    progress.update(&format!("move: filling {topic}/{p}"));
    let producer = Producer::builder(&s.server)
        .config(load::producer_config(
            Ack::Durable,
            Duration::from_millis(5),
            Partitioner::RoundRobin,
        ))
        .build()
        .await?;
    let value = load::template(s.size);
    let mut acks = Vec::new();
    for _ in 0..(8_000_000 / s.size.max(1)) {
        acks.push(
            producer
                .enqueue(ProducerRecord::new(topic.clone(), value.clone()).with_partition(p))
                .await?,
        );
    }
    for ack in acks {
        ack.await?;
    }
    producer.close().await?;

    // The quiet move: list the partition's objects before and after.
    let pool = s
        .storage_node
        .as_deref()
        .map(super::baseline::open_pool)
        .transpose()?;
    let before = match &pool {
        Some(pool) => Some(topic_objects(pool, &s.keys, &topic, topic_id, p).await?),
        None => None,
    };
    let http = reqwest::Client::new();
    let scraped_before = load::scrape_brokers(&http, &s.brokers_http).await;
    let owner = current_owner(&s.admin, &topic, p).await?;
    let target = brokers
        .iter()
        .find(|b| **b != owner)
        .cloned()
        .unwrap_or_default();
    let moved = s.admin.reassign(&topic, p, &target).await?;
    wait_owner(
        &s.admin,
        &topic,
        p,
        &target,
        moved.epoch,
        Duration::from_secs(10),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let scraped_after = load::scrape_brokers(&http, &s.brokers_http).await;
    if let (Some(pool), Some(before)) = (&pool, &before) {
        let after = topic_objects(pool, &s.keys, &topic, topic_id, p).await?;
        result.objects_before = before.len() as u64;
        result.bytes_before = before.values().sum();
        result.bytes_copied = Some(
            after
                .iter()
                .filter(|(k, _)| !before.contains_key(*k))
                .map(|(_, v)| *v)
                .sum(),
        );
    }
    if let (Some(a), Some(b)) = (scraped_before, scraped_after) {
        result.broker_segment_bytes_during_move = Some((b[3] - a[3]).max(0.0) as u64);
    }

    // Timed moves under load, back and forth.
    let load = ClosedLoop::start(&s.server, &topic, &[p], s.size).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for trial in 0..s.trials {
        progress.update(&format!("move: trial {}/{}", trial + 1, s.trials));
        let owner = current_owner(&s.admin, &topic, p).await?;
        let target = brokers
            .iter()
            .find(|b| **b != owner)
            .cloned()
            .unwrap_or_default();
        let rev = revision(s.meta.as_ref(), &s.keys).await?;
        let old_epoch = s.admin.partitions(&topic).await?[p as usize].epoch;
        let sent = Instant::now();
        let moved = s.admin.reassign(&topic, p, &target).await?;
        let answered = Instant::now();
        let claimed = claims(
            s.meta.as_ref(),
            &s.keys,
            &topic,
            &BTreeMap::from([(p, old_epoch)]),
            rev,
            Duration::from_secs(10),
        )
        .await?;
        let (epoch, from) = claimed[&p];
        if epoch != moved.epoch {
            tracing::warn!(
                epoch,
                expected = moved.epoch,
                "claimed at another epoch than the move's"
            );
        }
        let first = wait_ack(&load, p, from, sent, Duration::from_secs(10)).await?;
        result.move_ms.push((first - sent).as_secs_f64() * 1e3);
        result.api_ms.push((answered - sent).as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (result.errors, result.first_error) = load.stop().await;
    let mut sorted = result.move_ms.clone();
    sorted.sort_by(f64::total_cmp);
    result.move_p50_ms = sorted.get(sorted.len() / 2).copied();
    result.move_max_ms = sorted.last().copied();
    progress.done(&format!(
        "move: request → first ack by the new owner p50 {} ms, max {} ms; bytes copied {}",
        fmt_opt(result.move_p50_ms, 1),
        fmt_opt(result.move_max_ms, 1),
        result.bytes_copied.map_or("-".into(), |b| b.to_string())
    ));
    let _ = s.admin.delete_topic(&topic).await;
    Ok(result)
}

async fn current_owner(admin: &AdminApi, topic: &str, p: u32) -> anyhow::Result<String> {
    admin
        .partitions(topic)
        .await?
        .into_iter()
        .find(|x| x.partition == p)
        .and_then(|x| x.broker)
        .with_context(|| format!("{topic}/{p} has no owner"))
}

async fn wait_owner(
    admin: &AdminApi,
    topic: &str,
    p: u32,
    broker: &str,
    epoch: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let parts = admin.partitions(topic).await?;
        if parts.iter().any(|x| {
            x.partition == p
                && x.broker.as_deref() == Some(broker)
                && x.epoch >= epoch
                && x.state == "Write"
        }) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{topic}/{p} is not writable at {broker} within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `n` brokers are registered and every partition of `topic` is spread evenly and
/// writable (after a restart the controller gives the returning broker its share back).
async fn wait_balanced(
    admin: &AdminApi,
    topic: &str,
    n: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let brokers = admin.brokers().await.unwrap_or_default();
        let parts = admin.partitions(topic).await.unwrap_or_default();
        let mut per: HashMap<String, usize> = HashMap::new();
        for p in &parts {
            if let Some(b) = &p.broker {
                *per.entry(b.clone()).or_default() += 1;
            }
        }
        let floor = parts.len() / n.max(1);
        let balanced = brokers.len() >= n
            && brokers
                .iter()
                .all(|b| per.get(&b.id).copied().unwrap_or(0) >= floor)
            && !parts.is_empty()
            && parts.iter().all(|p| p.state == "Write");
        if balanced {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{topic} not balanced over {n} brokers within {limit:?}: {per:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// kill -9 of the broker owning partition 0, with a closed-loop sender on every partition;
/// the killed broker is started again (and gets its share back) before the next trial.
pub async fn broker_kill(
    s: &ElasticSettings,
    progress: &mut Progress,
) -> anyhow::Result<KillResult> {
    let brokers = s.admin.brokers().await?;
    if brokers.len() < 2 {
        bail!(
            "a broker kill needs at least 2 brokers; {} registered",
            brokers.len()
        );
    }
    let n = brokers.len();
    let partitions = (n * 2) as u32;
    let topic = format!("{}-kill-{:06x}", s.topic_prefix, rand::random::<u32>() >> 8);
    s.admin.create_topic(&topic, partitions).await?;
    s.admin
        .wait_writable(&topic, Duration::from_secs(30))
        .await?;
    load::wait_known(&s.server, &topic).await?;
    let all: Vec<u32> = (0..partitions).collect();
    let mut result = KillResult {
        lease_ttl_note: "brokers run with the lease TTL the cluster was started with (scripts/bench.sh: --lease-ttl-secs 2)".into(),
        ..KillResult::default()
    };
    let load = ClosedLoop::start(&s.server, &topic, &all, s.size).await?;
    for trial in 0..s.trials {
        wait_balanced(&s.admin, &topic, n, Duration::from_secs(60)).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let parts = s.admin.partitions(&topic).await?;
        let victim = parts[0]
            .broker
            .clone()
            .context("partition 0 has no owner")?;
        let old: BTreeMap<u32, u64> = parts
            .iter()
            .filter(|p| p.broker.as_deref() == Some(victim.as_str()))
            .map(|p| (p.partition, p.epoch))
            .collect();
        progress.update(&format!(
            "kill: trial {}/{}: kill -9 {victim} ({} partitions)",
            trial + 1,
            s.trials,
            old.len()
        ));
        let rev = revision(s.meta.as_ref(), &s.keys).await?;
        let killed = Instant::now();
        hook(&s.kill_command, "kill", &victim).await?;
        let claimed = claims(
            s.meta.as_ref(),
            &s.keys,
            &topic,
            &old,
            rev,
            Duration::from_secs(30),
        )
        .await?;
        let mut per = Vec::new();
        for (p, (_, from)) in &claimed {
            let first = wait_ack(&load, *p, *from, killed, Duration::from_secs(30)).await?;
            per.push((first - killed).as_secs_f64());
        }
        per.sort_by(f64::total_cmp);
        result.worst_s.push(per.last().copied().unwrap_or(f64::NAN));
        progress.done(&format!(
            "kill: trial {}: {victim}'s {} partitions writable again after {} s (worst)",
            trial + 1,
            per.len(),
            fmt_opt(per.last().copied(), 2)
        ));
        result.unwritable_s.push(per);
        progress.update(&format!("kill: restarting {victim}"));
        hook(&s.start_command, "start", &victim).await?;
        s.admin.wait_for_brokers(n, Duration::from_secs(30)).await?;
    }
    wait_balanced(&s.admin, &topic, n, Duration::from_secs(60)).await?;
    (result.errors, result.first_error) = load.stop().await;
    result.worst_max_s = result.worst_s.iter().copied().max_by(f64::total_cmp);
    let _ = s.admin.delete_topic(&topic).await;
    Ok(result)
}

/// Every broker stopped (SIGTERM: flush, commit, leave) and started again, one after the
/// other, while a producer sends at a fixed rate; latency and failed records before, during
/// and after.
pub async fn rolling_restart(
    s: &ElasticSettings,
    progress: &mut Progress,
) -> anyhow::Result<RollingResult> {
    const BEFORE: Duration = Duration::from_secs(5);
    const AFTER: Duration = Duration::from_secs(3);
    let brokers: Vec<String> = s.admin.brokers().await?.into_iter().map(|b| b.id).collect();
    let n = brokers.len();
    if n < 2 {
        bail!("a rolling restart needs at least 2 brokers; {n} registered");
    }
    let partitions = (n * 4) as u32;
    let topic = format!(
        "{}-rolling-{:06x}",
        s.topic_prefix,
        rand::random::<u32>() >> 8
    );
    s.admin.create_topic(&topic, partitions).await?;
    s.admin
        .wait_writable(&topic, Duration::from_secs(30))
        .await?;
    load::wait_known(&s.server, &topic).await?;

    let producer = Producer::builder(&s.server)
        .config(load::producer_config(
            Ack::Durable,
            Duration::ZERO,
            Partitioner::RoundRobin,
        ))
        .build()
        .await?;
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let collector = tokio::spawn(load::collect(started, rx));
    let cancel = CancellationToken::new();
    let generator = {
        let (producer, cancel, topic, rate) = (
            producer.clone(),
            cancel.clone(),
            topic.clone(),
            s.rolling_rate,
        );
        let value = load::template(s.size);
        tokio::spawn(async move {
            let mut sent = 0u64;
            while !cancel.is_cancelled() {
                let due = started + Duration::from_secs_f64(sent as f64 / rate);
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                    continue;
                }
                let at = Instant::now();
                match producer
                    .enqueue(ProducerRecord::new(topic.clone(), value.clone()))
                    .await
                {
                    Ok(ack) => {
                        if tx.send((at, ack)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "enqueue failed during the rolling restart")
                    }
                }
                sent += 1;
            }
        })
    };
    progress.update("rolling restart: steady load before");
    tokio::time::sleep(BEFORE).await;
    let during_start = started.elapsed();
    for (i, broker) in brokers.iter().enumerate() {
        progress.update(&format!(
            "rolling restart: {}/{n}: stopping {broker}",
            i + 1
        ));
        hook(&s.stop_command, "stop", broker).await?;
        progress.update(&format!(
            "rolling restart: {}/{n}: starting {broker}",
            i + 1
        ));
        hook(&s.start_command, "start", broker).await?;
        s.admin.wait_for_brokers(n, Duration::from_secs(30)).await?;
        wait_balanced(&s.admin, &topic, n, Duration::from_secs(60)).await?;
    }
    let during_end = started.elapsed();
    progress.update("rolling restart: steady load after");
    tokio::time::sleep(AFTER).await;
    cancel.cancel();
    let _ = generator.await;
    let _ = tokio::time::timeout(Duration::from_secs(30), producer.flush()).await;
    let _ = producer.close().await;
    let log: AckLog = collector.await?;
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let (a, b) = (us(during_start), us(during_end));
    let phase = |lo: u64, hi: u64| {
        let mut lat: Vec<u32> = log
            .acks
            .iter()
            .filter(|(t, _, _)| *t >= lo && *t < hi)
            .map(|(_, l, _)| *l)
            .collect();
        Percentiles::from_us(&mut lat)
    };
    let errors = |lo: u64, hi: u64| {
        log.error_times
            .iter()
            .filter(|t| **t >= lo && **t < hi)
            .count() as u64
    };
    let result = RollingResult {
        brokers,
        rate_msgs_per_s: s.rolling_rate,
        size: s.size,
        before: phase(0, a),
        during: phase(a, b),
        after: phase(b, u64::MAX),
        during_secs: (during_end - during_start).as_secs_f64(),
        errors_before: errors(0, a),
        errors_during: errors(a, b),
        errors_after: errors(b, u64::MAX),
        first_error: log.first_error,
    };
    progress.done(&format!(
        "rolling restart of {n} brokers in {:.1} s: p99 {} ms before, {} ms during (max {} ms); {} records failed",
        result.during_secs,
        fmt_opt(result.before.p99_ms, 1),
        fmt_opt(result.during.p99_ms, 1),
        fmt_opt(result.during.max_ms, 1),
        log.errors
    ));
    let _ = s.admin.delete_topic(&topic).await;
    Ok(result)
}

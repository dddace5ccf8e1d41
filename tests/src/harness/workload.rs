//! The load a fault scenario runs under, and the ledger the checker judges it by.
//!
//! Producers (the SDK's `Producer`, idempotent, durable acks) send numbered messages, each
//! to an explicit partition, at a steady rate; every outcome — the acknowledged partition and
//! offset, or the error — goes into the [`Ledger`]. Consumers (the SDK's `Consumer`, all in
//! one group, each in its own task as a member must be) read the topic and commit as they go;
//! every delivery is recorded too.
//!
//! A message's value is `{run}:{producer}:{seq}:` padded with a filler derived from `seq` to
//! a fixed size, so the checker can tell whose it is, whether it is intact, and in which order
//! its producer sent it.
//!
//! With [`LoadConfig::delays`], a share of the messages is sent delayed (to a topic created
//! with a maximum delay): the ledger notes when each is due, and consumers, who see only the
//! delivered copies, note when they got each copy.
//!
//! With [`LoadConfig::retries`], the group's consumers fail some messages, chosen by message id
//! ([`RetryLoad::fate`]): they *nack* them (`Consumer::nack`, under the load's `RetryPolicy`)
//! and process them when they come back from the group's retry topic with enough attempts, or
//! never (poison: dead-lettered after the last retry). The ledger records every nack (when,
//! which attempt, what the proxy answered), every record that came back from the retry topic
//! (when, which attempt, the origin it names), and every processing, which counts as the
//! message's delivery.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use strata_client::{
    Ack, Consumer, ConsumerRecord, Nacked, Offset, Producer, ProducerRecord, RetryPolicy,
};
use strata_clock::Clock as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the load looks like.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub topic: String,
    pub partitions: u32,
    /// At least two: the checker also tells producers apart.
    pub producers: usize,
    /// Members of one consumer group, at least two.
    pub consumers: usize,
    /// Messages per second per producer.
    pub rate: u32,
    /// Bytes per message value.
    pub value_bytes: usize,
    pub group: String,
    /// What the producers wait for [`Ack::Durable`].
    pub acks: Ack,
    /// The producers' linger.
    pub linger: Duration,
    /// Send a share of the messages delayed; `None`: none (the topic takes no delays).
    pub delays: Option<DelayedLoad>,
    /// The group's consumers fail a share of the messages and nack them; `None`: they
    /// process everything at once.
    pub retries: Option<RetryLoad>,
}

/// Which messages the group's consumers fail, and the retry policy they nack them under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryLoad {
    /// Every message whose producer's sequence number is a multiple of this fails once or
    /// twice ([`Fate::Transient`]) and is processed when it comes back with that many
    /// attempts.
    pub transient_every: u64,
    /// Every message whose sequence number is `poison_every / 2` modulo this fails every time
    /// ([`Fate::Poison`]): it must end in the group's dead-letter topic. Takes precedence over
    /// transient.
    pub poison_every: u64,
    /// The consumers' policy: at most `max_retries` retries, after these backoffs.
    pub policy: RetryPolicy,
}

/// What the group's consumers do with a message under a [`RetryLoad`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Processed the first time.
    Fine,
    /// Fails this many times (1 or 2), then processed.
    Transient(u32),
    /// Fails every time: dead-lettered after `max_retries` retries.
    Poison,
}

impl RetryLoad {
    /// Every 7th message fails once or twice (alternately), every 41st always; at most 2
    /// retries, 1 s then 2 s apart: retries in flight all the time, chains that end within
    /// a short scenario.
    pub fn standard() -> Self {
        Self {
            transient_every: 7,
            poison_every: 41,
            policy: RetryPolicy {
                max_retries: 2,
                backoff: vec![Duration::from_secs(1), Duration::from_secs(2)],
            },
        }
    }

    pub fn fate(&self, id: MessageId) -> Fate {
        if id.seq % self.poison_every == self.poison_every / 2 {
            Fate::Poison
        } else if id.seq.is_multiple_of(self.transient_every) {
            let failures = 1 + (id.seq / self.transient_every) % 2;
            Fate::Transient(failures.min(u64::from(self.policy.max_retries)) as u32)
        } else {
            Fate::Fine
        }
    }

    /// Whether a consumer fails the message when it reads it with `attempt` failures before.
    pub fn fails(&self, id: MessageId, attempt: u32) -> bool {
        match self.fate(id) {
            Fate::Fine => false,
            Fate::Transient(failures) => attempt < failures,
            Fate::Poison => true,
        }
    }

    /// The error a consumer nacks with: a dead letter must carry the last one.
    pub fn error(id: MessageId, attempt: u32) -> String {
        format!(
            "checker: failing {}:{} at attempt {attempt}",
            id.producer, id.seq
        )
    }
}

/// Which messages of a load are delayed, and by how much.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelayedLoad {
    /// The share of messages sent delayed, 0 to 1, chosen at random.
    pub share: f64,
    /// Each delayed message asks for a delay drawn uniformly from `min..=max` (whole
    /// milliseconds), counted from the timestamp the producer sets on it.
    pub min: Duration,
    pub max: Duration,
}

impl DelayedLoad {
    /// A third of the messages, delayed 3 to 6 s: long enough to be pending through a fault,
    /// short enough for a short scenario.
    pub fn standard() -> Self {
        Self {
            share: 1.0 / 3.0,
            min: Duration::from_secs(3),
            max: Duration::from_secs(6),
        }
    }

    /// The topic's maximum delay: the longest asked for, with room for a slow send.
    pub fn max_delay(&self) -> Duration {
        self.max + Duration::from_secs(60)
    }

    /// A delay for the next message, or `None` to send it at once.
    fn draw(&self) -> Option<Duration> {
        if rand::random::<f64>() >= self.share {
            return None;
        }
        let (min, max) = (self.min.as_millis() as u64, self.max.as_millis() as u64);
        let span = max.saturating_sub(min);
        Some(Duration::from_millis(
            min + rand::random::<u64>() % (span + 1),
        ))
    }
}

/// Wall-clock milliseconds since the Unix epoch, the clock of record timestamps and due
/// times.
pub fn now_ms() -> i64 {
    strata_clock::SystemClock.unix_millis()
}

impl LoadConfig {
    /// Two producers at 150 messages/s each and two consumers on 6 partitions (two per
    /// broker of three), 256-byte values, durable acks.
    pub fn standard(topic: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            partitions: 6,
            producers: 2,
            consumers: 2,
            rate: 150,
            value_bytes: 256,
            group: format!("{topic}-readers"),
            acks: Ack::Durable,
            linger: Duration::from_millis(5),
            delays: None,
            retries: None,
        }
    }

    /// [`LoadConfig::standard`] with [`DelayedLoad::standard`]: a third of the messages
    /// delayed 3 to 6 s.
    pub fn delayed(topic: &str) -> Self {
        Self {
            delays: Some(DelayedLoad::standard()),
            ..Self::standard(topic)
        }
    }

    /// [`LoadConfig::standard`] with [`RetryLoad::standard`]: the group's consumers fail every
    /// 7th message once or twice and every 41st always.
    pub fn retried(topic: &str) -> Self {
        Self {
            retries: Some(RetryLoad::standard()),
            ..Self::standard(topic)
        }
    }
}

/// Which message: producer index and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    pub producer: u32,
    pub seq: u64,
}

/// Builds the value of a message.
pub fn encode_value(run: &str, id: MessageId, size: usize) -> Bytes {
    let mut value = format!("{run}:{}:{}:", id.producer, id.seq).into_bytes();
    let filler = b'a' + (id.seq % 26) as u8;
    if value.len() < size {
        value.resize(size, filler);
    }
    Bytes::from(value)
}

/// Parses a value; `None` when it is not one of this run's messages or is damaged.
pub fn decode_value(run: &str, value: &[u8], size: usize) -> Option<MessageId> {
    let text = std::str::from_utf8(value).ok()?;
    let mut fields = text.splitn(4, ':');
    if fields.next()? != run {
        return None;
    }
    let producer: u32 = fields.next()?.parse().ok()?;
    let seq: u64 = fields.next()?.parse().ok()?;
    let id = MessageId { producer, seq };
    (encode_value(run, id, size).as_ref() == value).then_some(id)
}

/// The outcome of one sent message.
#[derive(Debug, Clone)]
pub enum Outcome {
    Pending,
    Acked { offset: i64, at: Instant },
    Failed { error: String },
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub partition: u32,
    /// When it was handed to the producer.
    pub sent: Instant,
    pub outcome: Outcome,
    /// A delayed message: when it is due (its timestamp plus its delay, Unix milliseconds).
    pub due_ms: Option<i64>,
}

/// One nack a group member sent (one call: a call that failed is tried again, and each try
/// is recorded).
#[derive(Debug, Clone)]
pub struct NackCall {
    pub id: MessageId,
    /// Where the member read the record: the load's topic or the group's retry topic.
    pub topic: String,
    pub partition: u32,
    pub offset: i64,
    /// The record's attempt as read (`ConsumerRecord::attempt`): 0 from the load's topic.
    pub read_attempt: u32,
    /// The error sent.
    pub error: String,
    /// When the call was made and answered, Unix milliseconds (this process's clock).
    pub started_ms: i64,
    pub answered_ms: i64,
    /// What the proxy answered, or the error the call failed with.
    pub answer: Result<Nacked, String>,
}

/// A record a group member got from the group's retry topic.
#[derive(Debug, Clone)]
pub struct RetryReturn {
    /// `None`: not an intact message of this run.
    pub id: Option<MessageId>,
    /// Its offset in the retry topic (a delivered copy).
    pub offset: i64,
    /// The offset of the retry record it is the copy of (`strata-delayed-from`): the offset
    /// a nack answered.
    pub of: Option<i64>,
    /// `ConsumerRecord::attempt`.
    pub attempt: u32,
    /// `ConsumerRecord::origin`.
    pub origin: Option<(String, u32, i64)>,
    /// When the poll that returned it returned, Unix milliseconds.
    pub received_ms: i64,
}

/// A message a group member processed (did not fail) under a [`RetryLoad`].
#[derive(Debug, Clone, Copy)]
pub struct Processed {
    pub id: MessageId,
    /// The attempt it was processed at (0: the first read).
    pub attempt: u32,
    pub at_ms: i64,
}

/// One record as a consumer got it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub partition: u32,
    pub offset: i64,
    /// `None`: the value was not a message of this run.
    pub id: Option<MessageId>,
}

/// Everything sent and received.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// `[producer][seq]`.
    pub sent: Vec<Vec<Sent>>,
    /// First delivery of each `(partition, offset)` to any group member.
    pub delivered: HashMap<(u32, i64), Option<MessageId>>,
    /// Deliveries beyond the first of the same offset (at-least-once redelivery after a
    /// rebalance), and those whose value differed from the first delivery's.
    pub redelivered: u64,
    pub delivery_mismatches: u64,
    /// When a group member was first handed each delayed message's copy (a record naming its
    /// original, `strata_format::delay::delayed_from`), by the copy's `(partition, offset)`:
    /// Unix milliseconds, taken as the poll returned (so never before the proxy served it).
    pub copies_received: HashMap<(u32, i64), i64>,
    /// Consumer errors by message: failed polls, and commits that reached no proxy.
    pub consumer_errors: HashMap<String, u64>,
    /// Under a [`RetryLoad`]: every nack call, in the order answered.
    pub nacks: Vec<NackCall>,
    /// Under a [`RetryLoad`]: every record a group member got from the retry topic
    /// (redeliveries included).
    pub returns: Vec<RetryReturn>,
    /// Under a [`RetryLoad`]: every processing of a message.
    pub processed: Vec<Processed>,
    /// Pauses of the producers, excluded from gap measurements.
    pub pauses: Vec<(Instant, Instant)>,
}

impl Ledger {
    /// Acknowledged, failed and pending counts.
    pub fn counts(&self) -> (u64, u64, u64) {
        let (mut acked, mut failed, mut pending) = (0, 0, 0);
        for sent in self.sent.iter().flatten() {
            match sent.outcome {
                Outcome::Acked { .. } => acked += 1,
                Outcome::Failed { .. } => failed += 1,
                Outcome::Pending => pending += 1,
            }
        }
        (acked, failed, pending)
    }

    /// When the last acknowledged delayed message is due (Unix milliseconds); `None` when no
    /// delayed message was acknowledged.
    pub fn last_due_ms(&self) -> Option<i64> {
        self.sent
            .iter()
            .flatten()
            .filter(|s| matches!(s.outcome, Outcome::Acked { .. }))
            .filter_map(|s| s.due_ms)
            .max()
    }

    /// Delayed messages handed to a producer before `at` (an [`Instant`]) and due after
    /// `at_ms` (the same moment on the wall clock): pending at that moment, acknowledged or
    /// not yet.
    pub fn delayed_pending_at(&self, at: Instant, at_ms: i64) -> u64 {
        self.sent
            .iter()
            .flatten()
            .filter(|s| s.sent <= at && s.due_ms.is_some_and(|due| due > at_ms))
            .filter(|s| !matches!(s.outcome, Outcome::Failed { .. }))
            .count() as u64
    }

    /// Nacks answered before `at` (Unix milliseconds) whose record comes back after it:
    /// retries in flight at that moment.
    pub fn retries_pending_at(&self, at_ms: i64) -> u64 {
        self.nacks
            .iter()
            .filter(|n| n.answered_ms <= at_ms)
            .filter(|n| {
                n.answer
                    .as_ref()
                    .is_ok_and(|a| !a.dead_lettered && a.due_ms > at_ms)
            })
            .count() as u64
    }

    /// Acknowledged messages not settled yet under `retries`: poison ones without a dead
    /// letter, the others not processed.
    pub fn retries_unsettled(&self, retries: &RetryLoad) -> u64 {
        let processed: std::collections::HashSet<MessageId> =
            self.processed.iter().map(|p| p.id).collect();
        let dead: std::collections::HashSet<MessageId> = self
            .nacks
            .iter()
            .filter(|n| n.answer.as_ref().is_ok_and(|a| a.dead_lettered))
            .map(|n| n.id)
            .collect();
        let mut unsettled = 0;
        for (producer, sent) in self.sent.iter().enumerate() {
            for (seq, s) in sent.iter().enumerate() {
                if !matches!(s.outcome, Outcome::Acked { .. }) {
                    continue;
                }
                let id = MessageId {
                    producer: producer as u32,
                    seq: seq as u64,
                };
                let settled = match retries.fate(id) {
                    Fate::Poison => dead.contains(&id),
                    _ => processed.contains(&id),
                };
                if !settled {
                    unsettled += 1;
                }
            }
        }
        unsettled
    }

    /// Partitions that acknowledged a message sent after `since`: writable since then. (A
    /// message sent before a fault can still be acknowledged after it; that proves nothing.)
    pub fn writable_since(&self, since: Instant) -> std::collections::HashSet<u32> {
        self.sent
            .iter()
            .flatten()
            .filter(|s| s.sent > since && matches!(s.outcome, Outcome::Acked { .. }))
            .map(|s| s.partition)
            .collect()
    }

    /// The longest time a partition went without an acknowledgement, among the gaps that
    /// overlap `from..to`, pauses of the producers not counted: `(gap, partition, when the
    /// gap ended)`. A partition still without an acknowledgement at `to` counts up to `to`.
    pub fn longest_gap(&self, from: Instant, to: Instant) -> (Duration, u32, Instant) {
        let mut by_partition: HashMap<u32, Vec<Instant>> = HashMap::new();
        for sent in self.sent.iter().flatten() {
            if let Outcome::Acked { at, .. } = sent.outcome {
                by_partition.entry(sent.partition).or_default().push(at);
            }
        }
        let mut worst = (Duration::ZERO, 0, from);
        for (partition, mut times) in by_partition {
            times.sort_unstable();
            let after_last = times.last().map_or(to, |last| (*last).max(to));
            let ends = times
                .iter()
                .skip(1)
                .copied()
                .chain(std::iter::once(after_last));
            for (a, b) in times.iter().copied().zip(ends) {
                if b < from || a > to || b <= a {
                    continue;
                }
                let paused: Duration = self
                    .pauses
                    .iter()
                    .map(|&(s, e)| e.min(b).saturating_duration_since(s.max(a)))
                    .sum();
                let gap = (b - a).saturating_sub(paused);
                if gap > worst.0 {
                    worst = (gap, partition, b);
                }
            }
        }
        worst
    }
}

type Shared = Arc<Mutex<Ledger>>;

fn lock(ledger: &Shared) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Run,
    Pause,
    Stop,
}

/// Running producers and consumers.
#[derive(Debug)]
pub struct Load {
    pub config: LoadConfig,
    /// Tags this run's values.
    pub run: String,
    pub ledger: Shared,
    pub started: Instant,
    /// When the producers were told to stop.
    pub stopped_at: Option<Instant>,
    phase: watch::Sender<Phase>,
    idle: Arc<AtomicUsize>,
    producers: Vec<JoinHandle<()>>,
    consumers: Vec<JoinHandle<()>>,
    stop_consumers: CancellationToken,
    paused_at: Option<Instant>,
}

impl Load {
    /// Starts producers and consumers against `proxies` (spread over them); the topic must
    /// exist.
    pub async fn start(config: LoadConfig, proxies: &[String]) -> anyhow::Result<Self> {
        if proxies.is_empty() {
            bail!("no proxy to send to");
        }
        let run = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let ledger: Shared = Arc::new(Mutex::new(Ledger {
            sent: vec![Vec::new(); config.producers],
            ..Ledger::default()
        }));
        let (phase, _) = watch::channel(Phase::Run);
        let idle = Arc::new(AtomicUsize::new(0));
        let mut producers = Vec::new();
        // Every client knows every proxy and moves to the next when its own cannot be reached;
        // each starts at a random one.
        let all = proxies.join(",");
        for index in 0..config.producers {
            let server = &all;
            let producer = Producer::builder(server)
                .linger(config.linger)
                .acks(config.acks)
                .request_timeout(Duration::from_secs(30))
                .delivery_timeout(Duration::from_secs(120))
                .build()
                .await
                .with_context(|| format!("producer {index} cannot connect to {server}"))?;
            producers.push(tokio::spawn(produce(
                index as u32,
                producer,
                config.clone(),
                run.clone(),
                ledger.clone(),
                phase.subscribe(),
                idle.clone(),
            )));
        }
        let stop_consumers = CancellationToken::new();
        let mut consumers = Vec::new();
        for index in 0..config.consumers {
            let server = all.clone();
            consumers.push(tokio::spawn(consume(
                index,
                server,
                config.clone(),
                run.clone(),
                ledger.clone(),
                stop_consumers.clone(),
            )));
        }
        Ok(Self {
            config,
            run,
            ledger,
            started: Instant::now(),
            stopped_at: None,
            phase,
            idle,
            producers,
            consumers,
            stop_consumers,
            paused_at: None,
        })
    }

    /// Errors clients have seen so far: messages not delivered, failed polls, and commits
    /// that reached no proxy.
    pub fn client_errors(&self) -> u64 {
        let ledger = lock(&self.ledger);
        let (_, failed, _) = ledger.counts();
        failed + ledger.consumer_errors.values().sum::<u64>()
    }

    /// Waits until every partition has been acknowledged at least `acks` times since `since`.
    pub async fn wait_acks(
        &self,
        since: Instant,
        acks: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let behind: Vec<u32> = {
                let ledger = lock(&self.ledger);
                let mut counts: HashMap<u32, usize> = HashMap::new();
                for sent in ledger.sent.iter().flatten() {
                    if let Outcome::Acked { at, .. } = sent.outcome
                        && at >= since
                    {
                        *counts.entry(sent.partition).or_default() += 1;
                    }
                }
                (0..self.config.partitions)
                    .filter(|p| counts.get(p).copied().unwrap_or(0) < acks)
                    .collect()
            };
            if behind.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "partitions {behind:?} got fewer than {acks} acknowledgements within {timeout:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops sending and waits until every message sent has its outcome.
    pub async fn pause(&mut self) -> anyhow::Result<()> {
        self.phase.send_replace(Phase::Pause);
        self.paused_at = Some(Instant::now());
        self.settle(self.config.producers).await
    }

    /// Sends again after [`Load::pause`].
    pub fn resume(&mut self) {
        if let Some(at) = self.paused_at.take() {
            lock(&self.ledger).pauses.push((at, Instant::now()));
        }
        self.phase.send_replace(Phase::Run);
    }

    async fn settle(&self, idle_producers: usize) -> anyhow::Result<()> {
        // The SDK gives up on a message after its delivery timeout (120 s).
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            let (_, _, pending) = lock(&self.ledger).counts();
            if pending == 0 && self.idle.load(Ordering::SeqCst) >= idle_producers {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{pending} messages still had no outcome after 150 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the producers (every message gets its outcome), then waits until the consumers
    /// have been handed every acknowledged message and, under a [`RetryLoad`], have settled
    /// every one (processed it, or seen it dead-lettered) (or `catch_up` passes), then stops
    /// them. Returns how long the consumers took to catch up, `None` if they did not.
    pub async fn stop(&mut self, catch_up: Duration) -> anyhow::Result<Option<Duration>> {
        self.resume();
        self.stopped_at = Some(Instant::now());
        self.phase.send_replace(Phase::Stop);
        for task in self.producers.drain(..) {
            task.await.context("a producer task panicked")?;
        }
        self.settle(0).await?;
        let started = Instant::now();
        let deadline = started + catch_up;
        // Acknowledged messages that are not in the log (lost: the checker counts them) are
        // never handed out, and a lost retry never comes back; stop waiting once nothing new
        // arrived for 10 s (retries come back within their 2 s backoff).
        let mut last = (u64::MAX, Instant::now());
        let caught_up = loop {
            let undelivered = self.undelivered() + self.retries_unsettled();
            if undelivered == 0 {
                break Some(started.elapsed());
            }
            if undelivered != last.0 {
                last = (undelivered, Instant::now());
            }
            if Instant::now() >= deadline || last.1.elapsed() > Duration::from_secs(10) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        self.stop_consumers.cancel();
        for task in self.consumers.drain(..) {
            task.await.context("a consumer task panicked")?;
        }
        Ok(caught_up)
    }

    /// Under a [`RetryLoad`], acknowledged messages neither processed nor (poison)
    /// dead-lettered yet; 0 without one.
    pub fn retries_unsettled(&self) -> u64 {
        self.config
            .retries
            .as_ref()
            .map_or(0, |r| lock(&self.ledger).retries_unsettled(r))
    }

    /// Acknowledged messages no consumer of the group has been handed yet.
    pub fn undelivered(&self) -> u64 {
        let ledger = lock(&self.ledger);
        let mut delivered: std::collections::HashSet<MessageId> =
            std::collections::HashSet::with_capacity(ledger.delivered.len());
        delivered.extend(ledger.delivered.values().flatten().copied());
        let mut missing = 0;
        for (producer, sent) in ledger.sent.iter().enumerate() {
            for (seq, s) in sent.iter().enumerate() {
                if matches!(s.outcome, Outcome::Acked { .. })
                    && !delivered.contains(&MessageId {
                        producer: producer as u32,
                        seq: seq as u64,
                    })
                {
                    missing += 1;
                }
            }
        }
        missing
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.phase.send_replace(Phase::Stop);
        self.stop_consumers.cancel();
        for task in self.producers.iter().chain(&self.consumers) {
            task.abort();
        }
    }
}

async fn produce(
    index: u32,
    producer: Producer,
    config: LoadConfig,
    run: String,
    ledger: Shared,
    mut phase: watch::Receiver<Phase>,
    idle: Arc<AtomicUsize>,
) {
    const TICK: Duration = Duration::from_millis(20);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    let mut due = 0.0_f64;
    let mut last = Instant::now();
    loop {
        let now_phase = *phase.borrow_and_update();
        match now_phase {
            Phase::Run => {}
            Phase::Pause | Phase::Stop => {
                if let Err(e) = producer.flush().await {
                    tracing::warn!(producer = index, error = %e, "flush failed");
                }
                if now_phase == Phase::Stop {
                    break;
                }
                idle.fetch_add(1, Ordering::SeqCst);
                let _ = phase.wait_for(|p| *p != Phase::Pause).await;
                idle.fetch_sub(1, Ordering::SeqCst);
                last = Instant::now();
                continue;
            }
        }
        ticker.tick().await;
        let now = Instant::now();
        // A stall (a blocked enqueue) is not made up for with a burst afterwards.
        let elapsed = (now - last).min(TICK * 5);
        last = now;
        due += elapsed.as_secs_f64() * f64::from(config.rate);
        while due >= 1.0 {
            due -= 1.0;
            let id = MessageId {
                producer: index,
                seq,
            };
            let partition = (seq % u64::from(config.partitions)) as u32;
            seq += 1;
            let mut record = ProducerRecord::new(
                config.topic.clone(),
                encode_value(&run, id, config.value_bytes),
            )
            .with_partition(partition);
            let mut due_ms = None;
            if let Some(delay) = config.delays.as_ref().and_then(DelayedLoad::draw) {
                // The delay counts from the record's timestamp: set it, so the ledger knows
                // exactly when the message is due.
                let timestamp = now_ms();
                due_ms = Some(timestamp + delay.as_millis() as i64);
                record = record.with_timestamp(timestamp).with_delay(delay);
            }
            lock(&ledger).sent[index as usize].push(Sent {
                partition,
                sent: Instant::now(),
                outcome: Outcome::Pending,
                due_ms,
            });
            match producer.enqueue(record).await {
                Ok(ack) => {
                    let ledger = ledger.clone();
                    tokio::spawn(async move {
                        let outcome = match ack.await {
                            Ok(meta) => {
                                if meta.partition != partition {
                                    tracing::error!(
                                        ?id,
                                        partition,
                                        acked = meta.partition,
                                        "acknowledged on another partition"
                                    );
                                }
                                Outcome::Acked {
                                    offset: meta.offset,
                                    at: Instant::now(),
                                }
                            }
                            Err(e) => {
                                tracing::warn!(?id, error = %e, "message not delivered");
                                Outcome::Failed {
                                    error: e.to_string(),
                                }
                            }
                        };
                        lock(&ledger).sent[id.producer as usize][id.seq as usize].outcome = outcome;
                    });
                }
                Err(e) => {
                    tracing::warn!(?id, error = %e, "enqueue refused");
                    lock(&ledger).sent[index as usize][id.seq as usize].outcome = Outcome::Failed {
                        error: e.to_string(),
                    };
                }
            }
        }
    }
    if let Err(e) = producer.close().await {
        tracing::warn!(producer = index, error = %e, "close failed");
    }
}

async fn build_consumer(
    server: &str,
    config: &LoadConfig,
    index: usize,
) -> anyhow::Result<Consumer> {
    let mut builder = Consumer::builder(server)
        .group(config.group.clone())
        .client_id(format!("checker-{index}"))
        .auto_offset_reset(Offset::Earliest)
        .enable_auto_commit(false)
        .session_timeout(Duration::from_secs(6))
        .heartbeat_interval(Duration::from_secs(1))
        .rebalance_timeout(Duration::from_secs(20))
        .fetch_max_wait(Duration::from_millis(300));
    if let Some(retries) = &config.retries {
        // The subscription then includes the group's retry topic too.
        builder = builder.retries(retries.policy.clone());
    }
    let mut consumer = builder.build().await?;
    consumer.subscribe(&[config.topic.as_str()]).await?;
    Ok(consumer)
}

async fn consume(
    index: usize,
    server: String,
    config: LoadConfig,
    run: String,
    ledger: Shared,
    stop: CancellationToken,
) {
    let mut consumer: Option<Consumer> = None;
    let mut failures = 0u32;
    let mut last_commit = Instant::now();
    // Under a retry load: records this member failed and has not nacked yet, and since when.
    let mut failed: Vec<(ConsumerRecord, MessageId)> = Vec::new();
    let mut failed_since: Option<Instant> = None;
    while !stop.is_cancelled() {
        let Some(c) = consumer.as_mut() else {
            match build_consumer(&server, &config, index).await {
                Ok(c) => consumer = Some(c),
                Err(e) => {
                    tracing::warn!(consumer = index, error = %e, "cannot start the consumer; retrying");
                    *lock(&ledger)
                        .consumer_errors
                        .entry(format!("start: {e}"))
                        .or_default() += 1;
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
            continue;
        };
        let polled = tokio::select! {
            () = stop.cancelled() => break,
            polled = c.poll(Duration::from_millis(500)) => polled,
        };
        match polled {
            Ok(records) => {
                failures = 0;
                let handed = !records.is_empty();
                if handed {
                    let received_ms = now_ms();
                    let mut ledger = lock(&ledger);
                    for r in records {
                        let id = r
                            .value
                            .as_deref()
                            .and_then(|v| decode_value(&run, v, config.value_bytes));
                        if r.topic == config.topic {
                            record_delivery(&mut ledger, &r, id, received_ms);
                        } else {
                            // From the group's retry topic: a copy of a retry record.
                            ledger.returns.push(RetryReturn {
                                id,
                                offset: r.offset,
                                of: strata_format::delay::delayed_from(&r.headers),
                                attempt: r.attempt(),
                                origin: r.origin(),
                                received_ms,
                            });
                        }
                        if let (Some(retries), Some(id)) = (&config.retries, id) {
                            let attempt = r.attempt();
                            if retries.fails(id, attempt) {
                                failed.push((r, id));
                                failed_since.get_or_insert_with(Instant::now);
                            } else {
                                ledger.processed.push(Processed {
                                    id,
                                    attempt,
                                    at_ms: received_ms,
                                });
                            }
                        }
                    }
                }
                let commit_due = handed && last_commit.elapsed() >= Duration::from_millis(500);
                // Nacks go out together every NACK_BATCH, so that waiting for them holds up
                // the polls (and what waits in the SDK's queue of fetch answers) only now and
                // then; and always before a commit moves past their records.
                if failed_since.is_some_and(|at| at.elapsed() >= NACK_BATCH) || commit_due {
                    nack_all(c, &mut failed, &ledger).await;
                    failed_since = None;
                }
                if commit_due {
                    last_commit = Instant::now();
                    if let Err(e) = c.commit_sync().await {
                        // A refusal (a rebalance moved the partitions) is the group's normal
                        // life; a commit that reached no proxy, after the SDK's own retries,
                        // is an error a client saw.
                        if e.code().is_none() {
                            *lock(&ledger)
                                .consumer_errors
                                .entry(format!("commit: {}", short_error(&e.to_string())))
                                .or_default() += 1;
                        }
                        tracing::info!(consumer = index, error = %e, "commit failed (a rebalance or a fault); continuing");
                    }
                }
            }
            Err(e) => {
                failures += 1;
                *lock(&ledger)
                    .consumer_errors
                    .entry(short_error(&e.to_string()))
                    .or_default() += 1;
                tracing::info!(consumer = index, error = %e, "poll failed; continuing");
                if failures >= 20 {
                    tracing::warn!(
                        consumer = index,
                        "20 polls in a row failed; starting the consumer again"
                    );
                    nack_all(c, &mut failed, &ledger).await;
                    failed_since = None;
                    consumer = None;
                    failures = 0;
                }
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
    }
    if let Some(mut c) = consumer {
        let _ = tokio::time::timeout(NACK_PATIENCE, nack_all(&c, &mut failed, &ledger)).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), c.commit_sync()).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
    }
}

/// Notes a record of the load's topic a member was handed.
fn record_delivery(
    ledger: &mut Ledger,
    r: &ConsumerRecord,
    id: Option<MessageId>,
    received_ms: i64,
) {
    if strata_format::delay::delayed_from(&r.headers).is_some() {
        ledger
            .copies_received
            .entry((r.partition, r.offset))
            .or_insert(received_ms);
    }
    match ledger.delivered.get(&(r.partition, r.offset)) {
        None => {
            ledger.delivered.insert((r.partition, r.offset), id);
        }
        Some(first) => {
            let same = *first == id;
            ledger.redelivered += 1;
            if !same {
                ledger.delivery_mismatches += 1;
            }
        }
    }
}

/// How long a member collects the records it fails before it nacks them together (and at
/// most until its next commit).
const NACK_BATCH: Duration = Duration::from_millis(200);

/// Nacks every record of `failed` at once, each until stored ([`nack_until_stored`]).
async fn nack_all(c: &Consumer, failed: &mut Vec<(ConsumerRecord, MessageId)>, ledger: &Shared) {
    if failed.is_empty() {
        return;
    }
    let nacks = failed
        .iter()
        .map(|(r, id)| nack_until_stored(c, r, *id, ledger));
    futures::future::join_all(nacks).await;
    failed.clear();
}

/// How long a member keeps trying a nack that fails (the proxy itself waits up to 30 s for
/// the retry topic's partition to be writable) before it gives up and moves on: the checker
/// then finds the message unprocessed or not dead-lettered.
const NACK_PATIENCE: Duration = Duration::from_secs(60);

/// Nacks `record` (message `id`) with the error for its attempt until a nack is answered, or
/// [`NACK_PATIENCE`] passes; records every call.
async fn nack_until_stored(c: &Consumer, record: &ConsumerRecord, id: MessageId, ledger: &Shared) {
    let read_attempt = record.attempt();
    let error = RetryLoad::error(id, read_attempt);
    let deadline = Instant::now() + NACK_PATIENCE;
    loop {
        let started_ms = now_ms();
        let answer = c.nack(record, &error).await.map_err(|e| e.to_string());
        let answered_ms = now_ms();
        let failed = answer.as_ref().err().cloned();
        lock(ledger).nacks.push(NackCall {
            id,
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            read_attempt,
            error: error.clone(),
            started_ms,
            answered_ms,
            answer,
        });
        let Some(e) = failed else {
            return;
        };
        if Instant::now() >= deadline {
            tracing::warn!(?id, read_attempt, error = %e, "a nack kept failing; giving up on it");
            return;
        }
        tracing::info!(?id, read_attempt, error = %e, "a nack failed; trying again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first words of an error, so counts group by kind rather than by detail.
fn short_error(e: &str) -> String {
    e.chars().take(60).collect()
}

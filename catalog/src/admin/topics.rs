//! Topics: create, list, describe, grow, change retention, lanes, delays and trace sampling,
//! delete.

use std::time::Duration;
use strata_clock::{RandomSource, ThreadRandom};

use tokio::time::Instant;

use serde::{Deserialize, Serialize};
use strata_format::trace::TRACE_TOPIC;
use strata_meta::schema::{self, TopicConfig};
use strata_meta::{Compare, CompareOp, Txn, TxnOp};

use super::partitions::{OwnerStates, PartitionView};
use super::{Admin, now_ms};
use crate::error::{CatalogError, Result};
use crate::state::PlanMode;

/// Upper bound on partitions per topic: enough for any real topic, small enough that a typo
/// (an extra zero or three) does not create a million keys.
pub const MAX_PARTITIONS: u32 = 10_000;
/// Smallest segment size: below it compaction would keep rewriting tiny objects.
pub const MIN_SEGMENT_BYTES: u64 = 1024;
/// The longest delay a topic may allow its records (`max_delay_ms`): 30 days. Longer waits
/// belong in a scheduler, not in a log whose retention must outlast them.
pub const MAX_DELAY_MS: i64 = 30 * 24 * 3600 * 1000;
/// The highest `trace_sample_ppm`: parts per million, so every message is traced.
pub const MAX_TRACE_SAMPLE_PPM: u32 = 1_000_000;
/// Partitions of the internal trace topic ([`TRACE_TOPIC`]), which the first topic that turns
/// tracing on creates: trace events of every traced topic share it.
pub const TRACE_TOPIC_PARTITIONS: i64 = 8;
/// How long the trace topic keeps trace events: 3 days, enough to look into a recent
/// incident without paying to store every sampled path for long.
pub const TRACE_TOPIC_RETENTION_MS: i64 = 3 * 24 * 3600 * 1000;
/// How many times a settings change re-reads and retries after losing a compare-and-swap race
/// before it reports the conflict: another writer touching the same topic is rare, and the
/// change is a merge, so retrying on fresh data is safe.
const ALTER_ATTEMPTS: usize = 3;
/// How long topic creation waits for its partitions to get owners.
const ASSIGN_WAIT: Duration = Duration::from_secs(5);

/// Settings of a new topic; unset fields take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i64,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
    pub segment_bytes: Option<u64>,
    /// Swimlanes the topic carries besides the main lane; none by default.
    #[serde(default)]
    pub lanes: Option<Vec<String>>,
    /// The longest delay a record may ask for, up to [`MAX_DELAY_MS`]; 0 (the default)
    /// refuses delayed records.
    #[serde(default)]
    pub max_delay_ms: Option<i64>,
    /// Parts per million of the messages whose path is traced, up to
    /// [`MAX_TRACE_SAMPLE_PPM`]; 0 (the default) traces none.
    #[serde(default)]
    pub trace_sample_ppm: Option<u32>,
}

/// A change of a topic's settings: only the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfigChange {
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
    pub segment_bytes: Option<u64>,
    /// The whole list of lanes (empty: none).
    #[serde(default)]
    pub lanes: Option<Vec<String>>,
    /// Lanes to declare besides the current ones (after `lanes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_lanes: Vec<String>,
    /// Lanes to take away (after `add_lanes`); one that is not declared is an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_lanes: Vec<String>,
    /// The longest delay a record may ask for; 0 turns delays off (records already delayed
    /// are still delivered at their time).
    #[serde(default)]
    pub max_delay_ms: Option<i64>,
    /// Parts per million of the messages whose path is traced; 0 turns tracing off. May
    /// change at any time.
    #[serde(default)]
    pub trace_sample_ppm: Option<u32>,
}

impl TopicConfigChange {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// `config` with this change applied, or why a lane cannot be removed.
    fn apply(&self, mut config: TopicConfig) -> Result<TopicConfig> {
        if let Some(ms) = self.retention_ms {
            config.retention_ms = ms;
        }
        if let Some(bytes) = self.retention_bytes {
            config.retention_bytes = bytes;
        }
        if let Some(bytes) = self.segment_bytes {
            config.segment_bytes = bytes;
        }
        if let Some(lanes) = &self.lanes {
            config.lanes = lanes.clone();
        }
        for lane in &self.add_lanes {
            if !config.lanes.contains(lane) {
                config.lanes.push(lane.clone());
            }
        }
        for lane in &self.remove_lanes {
            let before = config.lanes.len();
            config.lanes.retain(|l| l != lane);
            if config.lanes.len() == before {
                return Err(CatalogError::InvalidArgument(format!(
                    "lane `{lane}` is not a lane of this topic (it has {})",
                    lanes_named(&config.lanes)
                )));
            }
        }
        if let Some(ms) = self.max_delay_ms {
            if ms > 0 && !config.delay_filtering {
                // Its log may hold records with delay headers that consumers have read as
                // they are: hiding and delivering them now would deliver them twice.
                return Err(CatalogError::InvalidArgument(
                    "a topic accepts delays from its creation (RocketMQ's DELAY topics), not from a later change: create a topic with max_delay_ms and move the delayed traffic there".into(),
                ));
            }
            config.max_delay_ms = ms;
        }
        if let Some(ppm) = self.trace_sample_ppm {
            config.trace_sample_ppm = ppm;
        }
        config.lane_filtering |= !config.lanes.is_empty();
        config.delay_filtering |= config.max_delay_ms > 0;
        Ok(config)
    }
}

/// `lanes` for a message: "lanes `a`, `b`" or "no lanes".
pub fn lanes_named(lanes: &[String]) -> String {
    if lanes.is_empty() {
        return "no lanes".into();
    }
    let quoted: Vec<String> = lanes.iter().map(|l| format!("`{l}`")).collect();
    format!("lanes {}", quoted.join(", "))
}

/// A topic as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicView {
    pub name: String,
    #[serde(flatten)]
    pub config: TopicConfig,
}

/// A topic with its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDescription {
    #[serde(flatten)]
    pub topic: TopicView,
    pub partitions_detail: Vec<PartitionView>,
}

impl Admin {
    /// The partition count as stored, or why `count` is refused.
    pub fn check_partitions(count: i64) -> Result<u32> {
        if !(1..=i64::from(MAX_PARTITIONS)).contains(&count) {
            return Err(CatalogError::InvalidArgument(format!(
                "partitions must be between 1 and {MAX_PARTITIONS}, got {count}"
            )));
        }
        Ok(count as u32)
    }

    /// Why these retention and segment settings are refused, if they are.
    pub fn check_settings(
        retention_ms: i64,
        retention_bytes: i64,
        segment_bytes: u64,
    ) -> Result<()> {
        for (name, value) in [
            ("retention_ms", retention_ms),
            ("retention_bytes", retention_bytes),
        ] {
            if value < -1 || value == 0 {
                return Err(CatalogError::InvalidArgument(format!(
                    "{name} must be positive, or -1 for no limit; got {value}"
                )));
            }
        }
        if segment_bytes < MIN_SEGMENT_BYTES {
            return Err(CatalogError::InvalidArgument(format!(
                "segment_bytes must be at least {MIN_SEGMENT_BYTES}, got {segment_bytes}"
            )));
        }
        Ok(())
    }

    /// Why these lanes are refused, if they are.
    pub fn check_lanes(lanes: &[String]) -> Result<()> {
        strata_format::lanes::check_lanes(lanes)
            .map_err(|e| CatalogError::InvalidArgument(e.to_string()))
    }

    /// Why a topic's `max_delay_ms` is refused with these retention settings, if it is: it
    /// must be between 0 and [`MAX_DELAY_MS`], and a delayed record must outlive its delay,
    /// so a delay topic needs a retention longer than the delay and no size-based retention.
    pub fn check_delay(max_delay_ms: i64, retention_ms: i64, retention_bytes: i64) -> Result<()> {
        if !(0..=MAX_DELAY_MS).contains(&max_delay_ms) {
            return Err(CatalogError::InvalidArgument(format!(
                "max_delay_ms must be between 0 (no delayed records) and {MAX_DELAY_MS} (30 days), got {max_delay_ms}"
            )));
        }
        if max_delay_ms == 0 {
            return Ok(());
        }
        if retention_ms > 0 && max_delay_ms >= retention_ms {
            return Err(CatalogError::InvalidArgument(format!(
                "max_delay_ms {max_delay_ms} is not below retention_ms {retention_ms}: a delayed record could be deleted by retention before it is delivered: raise retention_ms or lower max_delay_ms"
            )));
        }
        if retention_bytes > 0 {
            return Err(CatalogError::InvalidArgument(format!(
                "max_delay_ms {max_delay_ms} with retention_bytes {retention_bytes}: size-based retention could delete delayed records before they are delivered: set retention_bytes to -1 (no limit) or max_delay_ms to 0"
            )));
        }
        Ok(())
    }

    /// Why `topic`'s `trace_sample_ppm` is refused, if it is: it must be between 0 and
    /// [`MAX_TRACE_SAMPLE_PPM`], and the trace topic itself is never traced (its events would
    /// trace themselves).
    pub fn check_trace_sample(topic: &str, trace_sample_ppm: u32) -> Result<()> {
        if trace_sample_ppm > MAX_TRACE_SAMPLE_PPM {
            return Err(CatalogError::InvalidArgument(format!(
                "trace_sample_ppm must be 0..={MAX_TRACE_SAMPLE_PPM} parts per million (10000 = 1%, 0 = tracing off); got {trace_sample_ppm}"
            )));
        }
        if trace_sample_ppm > 0 && topic == TRACE_TOPIC {
            return Err(CatalogError::InvalidArgument(format!(
                "`{TRACE_TOPIC}` holds the trace events themselves and cannot be traced; set trace_sample_ppm to 0"
            )));
        }
        Ok(())
    }

    /// Creates the internal trace topic ([`TRACE_TOPIC`]) unless it exists, before a topic
    /// turns tracing on, so trace events always have somewhere to go.
    async fn ensure_trace_topic(&self) -> Result<()> {
        if self
            .meta
            .get(&self.keys.topic(TRACE_TOPIC))
            .await?
            .is_some()
        {
            return Ok(());
        }
        let new = NewTopic {
            name: TRACE_TOPIC.into(),
            partitions: TRACE_TOPIC_PARTITIONS,
            retention_ms: Some(TRACE_TOPIC_RETENTION_MS),
            ..NewTopic::default()
        };
        let config = Self::new_config(&new)?;
        match self.write_new_topic(new.name, config).await {
            // Another topic turning tracing on at the same time created it first.
            Ok(_) | Err(CatalogError::TopicExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Everything `create_topic` checks before writing, without writing: name, partition
    /// count, settings, and that no topic of that name exists.
    pub async fn validate_new_topic(&self, new: &NewTopic) -> Result<()> {
        schema::validate_name("topic", &new.name)?;
        Self::check_not_reserved(&new.name)?;
        Self::check_partitions(new.partitions)?;
        Self::check_settings(
            new.retention_ms.unwrap_or(schema::DEFAULT_RETENTION_MS),
            new.retention_bytes
                .unwrap_or(schema::DEFAULT_RETENTION_BYTES),
            new.segment_bytes.unwrap_or(schema::DEFAULT_SEGMENT_BYTES),
        )?;
        Self::check_lanes(new.lanes.as_deref().unwrap_or_default())?;
        Self::check_delay(
            new.max_delay_ms.unwrap_or(0),
            new.retention_ms.unwrap_or(schema::DEFAULT_RETENTION_MS),
            new.retention_bytes
                .unwrap_or(schema::DEFAULT_RETENTION_BYTES),
        )?;
        Self::check_trace_sample(&new.name, new.trace_sample_ppm.unwrap_or(0))?;
        if self.meta.get(&self.keys.topic(&new.name)).await?.is_some() {
            return Err(CatalogError::TopicExists(new.name.clone()));
        }
        Ok(())
    }

    /// Creates a topic; the names of groups' retry and dead-letter topics are refused.
    pub async fn create_topic(&self, new: NewTopic) -> Result<TopicView> {
        Self::check_not_reserved(&new.name)?;
        self.create_any_topic(new).await
    }

    /// Creates a group's retry or dead-letter topic (`strata_format::retry`), which only the
    /// proxy's nack path makes.
    pub async fn create_reserved_topic(&self, new: NewTopic) -> Result<TopicView> {
        if !strata_format::retry::is_reserved(&new.name) {
            return Err(CatalogError::InvalidArgument(format!(
                "`{}` is not a retry or dead-letter topic name",
                new.name
            )));
        }
        self.create_any_topic(new).await
    }

    /// Why `topic` may not be created by name: it is a group's retry or dead-letter topic.
    pub fn check_not_reserved(topic: &str) -> Result<()> {
        if strata_format::retry::is_reserved(topic) {
            return Err(CatalogError::InvalidArgument(format!(
                "topic names starting with `{}` or `{}` are reserved for consumer groups' retry and dead-letter topics, which the first nack creates; choose another name",
                strata_format::retry::RETRY_TOPIC_PREFIX,
                strata_format::retry::DEAD_LETTER_TOPIC_PREFIX
            )));
        }
        Ok(())
    }

    async fn create_any_topic(&self, new: NewTopic) -> Result<TopicView> {
        let config = Self::new_config(&new)?;
        if config.trace_sample_ppm > 0 {
            self.ensure_trace_topic().await?;
        }
        self.write_new_topic(new.name, config).await
    }

    /// The settings of `new` as stored, or why they are refused.
    fn new_config(new: &NewTopic) -> Result<TopicConfig> {
        schema::validate_name("topic", &new.name)?;
        let partitions = Self::check_partitions(new.partitions)?;
        let retention_ms = new.retention_ms.unwrap_or(schema::DEFAULT_RETENTION_MS);
        let retention_bytes = new
            .retention_bytes
            .unwrap_or(schema::DEFAULT_RETENTION_BYTES);
        let segment_bytes = new.segment_bytes.unwrap_or(schema::DEFAULT_SEGMENT_BYTES);
        Self::check_settings(retention_ms, retention_bytes, segment_bytes)?;
        let lanes = new.lanes.clone().unwrap_or_default();
        Self::check_lanes(&lanes)?;
        let max_delay_ms = new.max_delay_ms.unwrap_or(0);
        Self::check_delay(max_delay_ms, retention_ms, retention_bytes)?;
        let trace_sample_ppm = new.trace_sample_ppm.unwrap_or(0);
        Self::check_trace_sample(&new.name, trace_sample_ppm)?;
        Ok(TopicConfig {
            id: ThreadRandom.next_u64() >> 1,
            partitions,
            retention_ms,
            retention_bytes,
            segment_bytes,
            created_ms: now_ms(),
            lane_filtering: !lanes.is_empty(),
            max_delay_ms,
            delay_filtering: max_delay_ms > 0,
            trace_sample_ppm,
            lanes,
        })
    }

    /// Writes a new topic's `config` unless a topic of that name exists, and places its
    /// partitions.
    async fn write_new_topic(&self, name: String, config: TopicConfig) -> Result<TopicView> {
        let partitions = config.partitions;
        let key = self.keys.topic(&name);
        // Leftovers of an earlier topic of this name go in the same transaction.
        let txn = Txn::new().when([Compare::absent(key.clone())]).and_then([
            TxnOp::delete_prefix(self.keys.topic_assignments(&name)),
            TxnOp::delete_prefix(self.keys.topic_log(&name)),
            TxnOp::put(key, schema::encode(&config)),
        ]);
        if !self.meta.txn(txn).await?.succeeded {
            return Err(CatalogError::TopicExists(name));
        }
        tracing::info!(topic = %name, partitions, "topic created");
        self.place_homeless_and_wait(&name).await?;
        Ok(TopicView { name, config })
    }

    /// Assigns new partitions right away (the active controller would too, a moment later) so
    /// producers can start at once; waits a bounded time if a race makes that fail.
    async fn place_homeless_and_wait(&self, topic: &str) -> Result<()> {
        let deadline = Instant::now() + ASSIGN_WAIT;
        loop {
            let state = self.state().await?;
            if state.eligible().is_empty() {
                return Ok(()); // nothing to wait for: no broker can take partitions yet
            }
            let moves = state.plan(PlanMode::HomelessOnly);
            if moves.iter().all(|m| m.topic != topic) {
                return Ok(());
            }
            match state
                .apply(self.meta.as_ref(), &self.keys, &moves, None)
                .await
            {
                Ok(()) => return Ok(()),
                Err(CatalogError::Conflict(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub async fn list_topics(&self) -> Result<Vec<TopicView>> {
        let state = self.state().await?;
        Ok(state
            .topics
            .into_iter()
            .map(|(name, config)| TopicView { name, config })
            .collect())
    }

    /// The topic and its partitions, with each owner's state as `owners` report it.
    pub async fn describe_topic(
        &self,
        name: &str,
        owners: &impl OwnerStates,
    ) -> Result<TopicDescription> {
        let state = self.state().await?;
        let config = state
            .topics
            .get(name)
            .cloned()
            .ok_or_else(|| CatalogError::UnknownTopic(name.into()))?;
        let partitions_detail = self.partition_views(&state, Some(name), owners).await?;
        Ok(TopicDescription {
            topic: TopicView {
                name: name.into(),
                config,
            },
            partitions_detail,
        })
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        schema::validate_name("topic", name)?;
        let txn = Txn::new()
            .when([Compare::exists(self.keys.topic(name))])
            .and_then([
                TxnOp::delete(self.keys.topic(name)),
                TxnOp::delete_prefix(self.keys.topic_assignments(name)),
                TxnOp::delete_prefix(self.keys.topic_log(name)),
            ]);
        if !self.meta.txn(txn).await?.succeeded {
            return Err(CatalogError::UnknownTopic(name.into()));
        }
        tracing::info!(topic = %name, "topic deleted");
        Ok(())
    }

    /// One topic's settings, read from the store (not from a snapshot of the whole cluster).
    pub async fn topic(&self, name: &str) -> Result<TopicView> {
        let (_, config) = self.read_topic(name).await?;
        Ok(TopicView {
            name: name.into(),
            config,
        })
    }

    /// The topic's config and the revision it was read at, for a compare-and-swap.
    async fn read_topic(&self, name: &str) -> Result<(i64, TopicConfig)> {
        schema::validate_name("topic", name)?;
        let key = self.keys.topic(name);
        let kv = self
            .meta
            .get(&key)
            .await?
            .ok_or_else(|| CatalogError::UnknownTopic(name.into()))?;
        Ok((kv.mod_revision, schema::decode(&key, &kv.value)?))
    }

    /// The topic as `change` would leave it, or why the change is refused; writes nothing.
    pub async fn preview_topic_config(
        &self,
        name: &str,
        change: &TopicConfigChange,
    ) -> Result<TopicView> {
        let (_, config) = self.read_topic(name).await?;
        let config = Self::changed(name, config, change)?;
        Ok(TopicView {
            name: name.into(),
            config,
        })
    }

    fn changed(name: &str, config: TopicConfig, change: &TopicConfigChange) -> Result<TopicConfig> {
        if change.is_empty() {
            return Err(CatalogError::InvalidArgument(format!(
                "nothing to change for topic `{name}`: give retention_ms, retention_bytes, segment_bytes, lanes, max_delay_ms or trace_sample_ppm"
            )));
        }
        let config = change.apply(config)?;
        Self::check_settings(
            config.retention_ms,
            config.retention_bytes,
            config.segment_bytes,
        )?;
        Self::check_lanes(&config.lanes)?;
        Self::check_delay(
            config.max_delay_ms,
            config.retention_ms,
            config.retention_bytes,
        )?;
        Self::check_trace_sample(name, config.trace_sample_ppm)?;
        Ok(config)
    }

    /// Changes a topic's retention and segment settings. Brokers read a topic's settings at
    /// every maintenance pass, so the change takes effect within one pass. A change that
    /// leaves the topic traced first creates the trace topic if it is missing.
    pub async fn alter_topic_config(
        &self,
        name: &str,
        change: &TopicConfigChange,
    ) -> Result<TopicView> {
        for _ in 0..ALTER_ATTEMPTS {
            let (revision, current) = self.read_topic(name).await?;
            let config = Self::changed(name, current, change)?;
            if config.trace_sample_ppm > 0 {
                self.ensure_trace_topic().await?;
            }
            let key = self.keys.topic(name);
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    revision,
                )])
                .and_then([TxnOp::put(key, schema::encode(&config))]);
            if self.meta.txn(txn).await?.succeeded {
                tracing::info!(topic = %name, retention_ms = config.retention_ms,
                    retention_bytes = config.retention_bytes, segment_bytes = config.segment_bytes,
                    lanes = ?config.lanes, max_delay_ms = config.max_delay_ms,
                    trace_sample_ppm = config.trace_sample_ppm, "topic settings changed");
                return Ok(TopicView {
                    name: name.into(),
                    config,
                });
            }
        }
        Err(CatalogError::Conflict(format!(
            "topic `{name}` kept changing while its settings were being changed"
        )))
    }

    /// Why `add_partitions(name, total)` would be refused, if it would; writes nothing.
    pub async fn validate_add_partitions(&self, name: &str, total: i64) -> Result<()> {
        let total = Self::check_partitions(total)?;
        let (_, config) = self.read_topic(name).await?;
        Self::check_growth(name, &config, total)
    }

    fn check_growth(name: &str, config: &TopicConfig, total: u32) -> Result<()> {
        if total <= config.partitions {
            return Err(CatalogError::InvalidArgument(format!(
                "topic `{name}` already has {} partitions; the count can only grow",
                config.partitions
            )));
        }
        Ok(())
    }

    /// Raises a topic's partition count to `total` (partitions can never be removed: keys would
    /// map to different partitions).
    pub async fn add_partitions(&self, name: &str, total: i64) -> Result<TopicView> {
        let total = Self::check_partitions(total)?;
        let key = self.keys.topic(name);
        let kv = self
            .meta
            .get(&key)
            .await?
            .ok_or_else(|| CatalogError::UnknownTopic(name.into()))?;
        let mut config: TopicConfig = schema::decode(&key, &kv.value)?;
        Self::check_growth(name, &config, total)?;
        config.partitions = total;
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                kv.mod_revision,
            )])
            .and_then([TxnOp::put(key, schema::encode(&config))]);
        if !self.meta.txn(txn).await?.succeeded {
            return Err(CatalogError::Conflict(format!(
                "topic `{name}` changed meanwhile"
            )));
        }
        self.place_homeless_and_wait(name).await?;
        Ok(TopicView {
            name: name.into(),
            config,
        })
    }
}

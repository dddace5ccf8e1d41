//! `strata group reset-offsets`: Kafka's `kafka-consumer-groups --reset-offsets`. A dry run
//! that prints the plan unless `--execute`; refused while the group has live members, who
//! commit their own positions and would overwrite the reset.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::json;
use strata_client::{Admin, ErrorCode, Offset, TopicPartition};

use crate::cli::{Format, ResetOffsetsArgs};
use crate::commands::print_json;
use crate::report::{CliError, Failure};

/// Where the offsets go; exactly one is given (clap's `target` group).
#[derive(Debug, Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Time(i64),
    Shift(i64),
}

impl Target {
    fn of(args: &ResetOffsetsArgs) -> Target {
        if args.to_earliest {
            Target::Earliest
        } else if args.to_latest {
            Target::Latest
        } else if let Some(offset) = args.to_offset {
            Target::Offset(offset)
        } else if let Some(ms) = args.to_datetime {
            Target::Time(ms)
        } else {
            Target::Shift(args.shift_by.unwrap_or(0))
        }
    }
}

/// One partition's line of the plan.
struct Step {
    tp: TopicPartition,
    /// The committed offset now; `None` when the group never committed the partition.
    current: Option<i64>,
    new: i64,
}

pub(super) async fn run(args: ResetOffsetsArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.server.connect().await?);
    let group = args.group.as_str();
    let committed = committed_of_idle_group(&admin, group).await?;
    let target = Target::of(&args);
    let mut plan = Vec::new();
    for topic in &args.topics {
        let info = admin
            .describe_topic(topic)
            .await
            .with_context(|| format!("cannot reset offsets of `{topic}`"))?;
        for p in &info.partitions {
            let tp = TopicPartition::new(topic.clone(), p.partition);
            let current = committed.get(&tp).copied();
            let new = new_offset(&admin, &tp, current, target).await?;
            plan.push(Step { tp, current, new });
        }
    }
    print_plan(group, &plan, args.format.format, args.execute)?;
    if !args.execute {
        eprintln!(
            "dry run: nothing changed; pass --execute to commit these {} offsets",
            plan.len()
        );
        return Ok(());
    }
    let offsets: BTreeMap<TopicPartition, i64> =
        plan.iter().map(|s| (s.tp.clone(), s.new)).collect();
    admin
        .alter_group_offsets(group, &offsets)
        .await
        .with_context(|| format!("cannot commit the new offsets of group `{group}`"))?;
    eprintln!("committed {} offsets of group {group}", offsets.len());
    Ok(())
}

/// The group's committed offsets, or a refusal while it has members. A group that does not
/// exist yet has none: resetting creates its offsets, as in Kafka.
async fn committed_of_idle_group(
    admin: &Admin,
    group: &str,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let described = match admin.describe_group(group).await {
        Ok(described) => described,
        Err(e) if e.code() == Some(ErrorCode::UnknownGroup) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read group `{group}`")),
    };
    if !described.members.is_empty() {
        let error = CliError::new(
            Failure::Refused,
            format!(
                "group `{group}` has {} live member(s) (state {}); offsets can only be reset \
                 while it has none",
                described.members.len(),
                described.state
            ),
        )
        .with_hint(
            "stop its consumers (or wait for their sessions to end), then run this again; \
             `strata group describe` shows them",
        );
        return Err(error.into());
    }
    Ok(described
        .offsets
        .into_iter()
        .filter(|o| o.committed >= 0)
        .map(|o| (o.partition, o.committed))
        .collect())
}

/// The offset a partition goes to, kept within its log.
async fn new_offset(
    admin: &Admin,
    tp: &TopicPartition,
    current: Option<i64>,
    target: Target,
) -> anyhow::Result<i64> {
    let earliest = admin.list_offset(tp, Offset::Earliest).await?;
    let latest = admin.list_offset(tp, Offset::Latest).await?;
    Ok(match target {
        Target::Earliest => earliest,
        Target::Latest => latest,
        Target::Offset(offset) => offset.clamp(earliest, latest),
        // The first offset at or after the time; past the last message, the end.
        Target::Time(ms) => admin.list_offset(tp, Offset::Timestamp(ms)).await?,
        Target::Shift(by) => current
            .unwrap_or(earliest)
            .saturating_add(by)
            .clamp(earliest, latest),
    })
}

fn print_plan(group: &str, plan: &[Step], format: Format, executed: bool) -> anyhow::Result<()> {
    if format == Format::Json {
        let steps: Vec<_> = plan
            .iter()
            .map(|s| {
                json!({
                    "topic": s.tp.topic,
                    "partition": s.tp.partition,
                    "current": s.current,
                    "new": s.new,
                })
            })
            .collect();
        return print_json(&json!({ "group": group, "executed": executed, "offsets": steps }));
    }
    println!(
        "{:<24} {:>9} {:>14} {:>14}",
        "topic", "partition", "current offset", "new offset"
    );
    for s in plan {
        let current = s.current.map_or_else(|| "-".to_owned(), |c| c.to_string());
        println!(
            "{:<24} {:>9} {:>14} {:>14}",
            s.tp.topic, s.tp.partition, current, s.new
        );
    }
    Ok(())
}

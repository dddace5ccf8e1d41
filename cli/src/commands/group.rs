mod reset;

use std::collections::BTreeMap;

use serde_json::json;
use strata_client::{Admin, GroupDescription, PartitionLag};

use super::print_json;
use crate::cli::{Format, GroupCommand};

pub async fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List { server, format } => {
            let admin = Admin::new(server.connect().await?);
            let groups = admin.list_groups().await?;
            if format.format == Format::Json {
                let list: Vec<_> = groups
                    .iter()
                    .map(|g| {
                        json!({
                            "group": g.group,
                            "state": g.state,
                            "protocol_type": g.protocol_type,
                            "members": g.members,
                        })
                    })
                    .collect();
                return print_json(&list);
            }
            println!("{:<32} {:<20} {:>7}", "group", "state", "members");
            for g in &groups {
                println!("{:<32} {:<20} {:>7}", g.group, g.state, g.members);
            }
            eprintln!("{} groups", groups.len());
        }
        GroupCommand::Describe {
            group,
            server,
            format,
        } => {
            let admin = Admin::new(server.connect().await?);
            let g = admin.describe_group(&group).await?;
            if format.format == Format::Json {
                return print_json(&group_json(&g));
            }
            if !g.broadcast_members.is_empty() {
                print_broadcast(&g);
                return Ok(());
            }
            println!(
                "group {}: {}, generation {}, protocol {} ({}), {} members",
                g.group,
                g.state,
                g.generation,
                if g.protocol.is_empty() {
                    "-"
                } else {
                    &g.protocol
                },
                if g.protocol_type.is_empty() {
                    "-"
                } else {
                    &g.protocol_type
                },
                g.members.len()
            );
            for m in &g.members {
                let leader = if m.member_id == g.leader {
                    " (leader)"
                } else {
                    ""
                };
                let parts: Vec<String> = m.assignment.iter().map(ToString::to_string).collect();
                println!(
                    "member {}{leader} client {} host {} lane {}: {} partitions [{}]",
                    m.member_id,
                    m.client_id,
                    m.client_host,
                    lane_name(&m.lane),
                    m.assignment.len(),
                    parts.join(" ")
                );
            }
            println!(
                "{:<24} {:>9} {:>12} {:>14} {:>10}  {:<16} member",
                "topic", "partition", "committed", "high watermark", "lag", "lane"
            );
            let lanes: BTreeMap<&str, &str> = g
                .members
                .iter()
                .map(|m| (m.member_id.as_str(), lane_name(&m.lane)))
                .collect();
            let mut total = 0i64;
            let mut by_lane: BTreeMap<&str, i64> = BTreeMap::new();
            for o in &g.offsets {
                total += o.lag;
                let lane = o
                    .member_id
                    .as_deref()
                    .and_then(|m| lanes.get(m).copied())
                    .unwrap_or("-");
                *by_lane.entry(lane).or_default() += o.lag;
                println!(
                    "{:<24} {:>9} {:>12} {:>14} {:>10}  {:<16} {}",
                    o.partition.topic,
                    o.partition.partition,
                    o.committed,
                    o.high_watermark,
                    o.lag,
                    lane,
                    o.member_id.as_deref().unwrap_or("-")
                );
            }
            // Per lane only when a member serves one: a group without lanes reads as before.
            if g.members.iter().all(|m| m.lane.is_empty()) {
                println!("total lag {total}");
            } else {
                let per_lane: Vec<String> = by_lane
                    .iter()
                    .map(|(lane, lag)| format!("lane {lane}: {lag}"))
                    .collect();
                println!("total lag {total} ({})", per_lane.join(", "));
            }
        }
        GroupCommand::Delete { group, server } => {
            let admin = Admin::new(server.connect().await?);
            admin.delete_group(&group).await?;
            println!("deleted group {group}");
        }
        GroupCommand::ResetOffsets(args) => reset::run(args).await?,
    }
    Ok(())
}

/// A group's description as `--format json` prints it.
fn group_json(g: &GroupDescription) -> serde_json::Value {
    let members: Vec<_> = g
        .members
        .iter()
        .map(|m| {
            let assignment: Vec<_> = m
                .assignment
                .iter()
                .map(|tp| json!({ "topic": tp.topic, "partition": tp.partition }))
                .collect();
            json!({
                "member_id": m.member_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "lane": m.lane,
                "assignment": assignment,
            })
        })
        .collect();
    let lags = |offsets: &[PartitionLag]| -> Vec<serde_json::Value> {
        offsets
            .iter()
            .map(|o| {
                json!({
                    "topic": o.partition.topic,
                    "partition": o.partition.partition,
                    "committed": o.committed,
                    "high_watermark": o.high_watermark,
                    "lag": o.lag,
                    "member_id": o.member_id,
                })
            })
            .collect()
    };
    let offsets = lags(&g.offsets);
    let broadcast: Vec<_> = g
        .broadcast_members
        .iter()
        .map(|m| json!({ "member": m.member, "committed_ms": m.committed_ms, "offsets": lags(&m.offsets) }))
        .collect();
    json!({
        "group": g.group,
        "state": g.state,
        "generation": g.generation,
        "protocol_type": g.protocol_type,
        "protocol": g.protocol,
        "leader": g.leader,
        "members": members,
        "offsets": offsets,
        "broadcast_members": broadcast,
    })
}

/// A member's lane as printed: `(main)` for the main lane, which no lane can be named.
fn lane_name(lane: &str) -> &str {
    if lane.is_empty() {
        strata_format::lanes::MAIN_LANE
    } else {
        lane
    }
}

/// A broadcast group: each member with its own positions and lag.
fn print_broadcast(g: &GroupDescription) {
    println!(
        "group {}: {}, {} members, each reading every partition",
        g.group,
        g.state,
        g.broadcast_members.len()
    );
    println!(
        "{:<24} {:<24} {:>9} {:>12} {:>14} {:>10}",
        "member", "topic", "partition", "committed", "high watermark", "lag"
    );
    for m in &g.broadcast_members {
        for o in &m.offsets {
            println!(
                "{:<24} {:<24} {:>9} {:>12} {:>14} {:>10}",
                m.member,
                o.partition.topic,
                o.partition.partition,
                o.committed,
                o.high_watermark,
                o.lag
            );
        }
        let lag: i64 = m.offsets.iter().map(|o| o.lag).sum();
        println!("member {} lag {lag}", m.member);
    }
}

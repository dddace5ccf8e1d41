use strata_client::Admin;

use crate::cli::GroupCommand;

pub async fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List { server } => {
            let admin = Admin::connect(&server.server).await?;
            let groups = admin.list_groups().await?;
            println!("{:<32} {:<20} {:>7}", "group", "state", "members");
            for g in &groups {
                println!("{:<32} {:<20} {:>7}", g.group, g.state, g.members);
            }
            eprintln!("{} groups", groups.len());
        }
        GroupCommand::Describe { group, server } => {
            let admin = Admin::connect(&server.server).await?;
            let g = admin.describe_group(&group).await?;
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
                    "member {}{leader} client {} host {}: {} partitions [{}]",
                    m.member_id,
                    m.client_id,
                    m.client_host,
                    m.assignment.len(),
                    parts.join(" ")
                );
            }
            println!(
                "{:<24} {:>9} {:>12} {:>14} {:>10}  member",
                "topic", "partition", "committed", "high watermark", "lag"
            );
            let mut total = 0i64;
            for o in &g.offsets {
                total += o.lag;
                println!(
                    "{:<24} {:>9} {:>12} {:>14} {:>10}  {}",
                    o.partition.topic,
                    o.partition.partition,
                    o.committed,
                    o.high_watermark,
                    o.lag,
                    o.member_id.as_deref().unwrap_or("-")
                );
            }
            println!("total lag {total}");
        }
    }
    Ok(())
}

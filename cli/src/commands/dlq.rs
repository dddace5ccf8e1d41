//! `strata nack` and `strata dlq`: sending a record back for a retry, and a group's dead
//! letters — listed, shown whole, and replayed to where they came from.

use anyhow::Context as _;
use strata_client::Connection;
use strata_proto::v1;
use strata_proxy::http::dead_letter_json;

use super::print_json;
use crate::cli::{DlqCommand, Format, NackArgs, ServerArgs};

pub async fn nack(args: NackArgs) -> anyhow::Result<()> {
    let connection = args.server.connect().await?;
    let answer = connection
        .grpc()
        .nack(v1::NackRequest {
            group: args.group.clone(),
            topic: args.topic.clone(),
            partition: args.partition,
            offset: args.offset,
            error: args.error.clone(),
            delay_ms: args.delay.unwrap_or(0),
            max_retries: args.max_retries.unwrap_or(0),
        })
        .await?
        .into_inner();
    if let Some(e) = answer.error {
        anyhow::bail!(
            "nack of {}/{}@{} refused: {}",
            args.topic,
            args.partition,
            args.offset,
            e.message
        );
    }
    if answer.dead_lettered {
        println!(
            "dead-lettered to {}@{} after {} attempts",
            answer.topic, answer.offset, answer.attempt
        );
    } else {
        println!(
            "sent to {}@{} for attempt {}, due at {}",
            answer.topic,
            answer.offset,
            answer.attempt,
            humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_millis(answer.due_ms.max(0) as u64)
            )
        );
    }
    Ok(())
}

pub async fn run(command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List {
            group,
            max,
            server,
            format,
        } => {
            let letters = list(&server, &group, 0, max).await?;
            if format.format == Format::Json {
                let all: Vec<_> = letters.iter().map(dead_letter_json).collect();
                return print_json(&all);
            }
            println!(
                "{:>8}  {:<32} {:>8}  {:<40} value",
                "offset", "from", "attempts", "last error"
            );
            for l in &letters {
                println!(
                    "{:>8}  {:<32} {:>8}  {:<40} {}",
                    l.offset,
                    format!(
                        "{}/{}@{}",
                        l.origin_topic, l.origin_partition, l.origin_offset
                    ),
                    l.attempts,
                    cut(&l.last_error, 40),
                    cut(&lossy(l.value.as_deref()), 40)
                );
            }
            eprintln!("{} dead letters of group {group}", letters.len());
            Ok(())
        }
        DlqCommand::Show {
            group,
            offset,
            server,
        } => {
            let letters = list(&server, &group, offset, 1).await?;
            let letter = letters
                .iter()
                .find(|l| l.offset == offset)
                .with_context(|| format!("group {group} has no dead letter at offset {offset}"))?;
            print_json(&dead_letter_json(letter))
        }
        DlqCommand::Replay {
            group,
            offset,
            from,
            server,
        } => {
            let connection = server.connect().await?;
            let answer = connection
                .grpc()
                .replay_dead_letters(v1::ReplayDeadLettersRequest {
                    group: group.clone(),
                    offsets: offset.into_iter().collect(),
                    from_offset: from.unwrap_or(0),
                })
                .await?
                .into_inner();
            if let Some(e) = answer.error {
                anyhow::bail!("replaying dead letters of group {group}: {}", e.message);
            }
            for r in &answer.replayed {
                println!(
                    "replayed {} to {}/{}@{}",
                    r.dead_letter_offset, r.topic, r.partition, r.offset
                );
            }
            eprintln!("{} dead letters replayed", answer.replayed.len());
            Ok(())
        }
    }
}

/// Up to `max` dead letters of `group` from `from` on.
async fn list(
    server: &ServerArgs,
    group: &str,
    from: i64,
    max: usize,
) -> anyhow::Result<Vec<v1::DeadLetter>> {
    let connection: Connection = server.connect().await?;
    let answer = connection
        .grpc()
        .list_dead_letters(v1::ListDeadLettersRequest {
            group: group.to_owned(),
            from_offset: from,
            max: u32::try_from(max).unwrap_or(u32::MAX),
        })
        .await?
        .into_inner();
    if let Some(e) = answer.error {
        anyhow::bail!("listing dead letters of group {group}: {}", e.message);
    }
    Ok(answer.letters)
}

fn lossy(bytes: Option<&[u8]>) -> String {
    String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned()
}

fn cut(text: &str, chars: usize) -> String {
    let mut out: String = text.chars().take(chars).collect();
    if text.chars().count() > chars {
        out.pop();
        out.push('…');
    }
    out.replace(['\n', '\t'], " ")
}

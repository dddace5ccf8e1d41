//! Arguments of `strata nack` and `strata dlq`: consumer retries and dead letters.

use clap::{Args, Subcommand};

use super::{FormatArgs, ServerArgs, parse_duration_ms};

/// `strata nack`: send one record back for a retry, as a consumer's nack would.
#[derive(Debug, Args)]
pub struct NackArgs {
    /// The consumer group whose retry topic the record goes to.
    pub group: String,
    /// Where the record is: its topic (or the group's retry topic), partition and offset.
    pub topic: String,
    pub partition: u32,
    pub offset: i64,
    /// Why it failed; kept with the record (`strata-last-error`).
    #[arg(long, default_value = "nacked with strata nack")]
    pub error: String,
    /// Wait before it comes back (`30s`, `5m`; at most 2h); default: RocketMQ's schedule for
    /// its attempt.
    #[arg(long, value_parser = parse_duration_ms)]
    pub delay: Option<i64>,
    /// Attempts before it is dead-lettered instead (default 16).
    #[arg(long)]
    pub max_retries: Option<u32>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `strata dlq`: a group's dead letters.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List a group's dead letters: where each came from, its attempts and last error.
    List {
        group: String,
        /// At most this many, oldest first.
        #[arg(long, default_value_t = 1000)]
        max: usize,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Show one dead letter whole: headers, key and value.
    Show {
        group: String,
        /// Its offset in the dead-letter topic (`strata dlq list` shows it).
        offset: i64,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Send dead letters back to the topic and partition they came from, as their producer
    /// wrote them. Each replay sends again: replaying twice delivers twice.
    Replay {
        group: String,
        /// Only this dead letter; without it, every one from --from on.
        #[arg(long, conflicts_with = "from")]
        offset: Option<i64>,
        /// The first dead letter to replay (default: the oldest).
        #[arg(long)]
        from: Option<i64>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

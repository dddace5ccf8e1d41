//! Arguments of the user commands: topics, groups, brokers, produce, consume, reassign.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// The topic's name: letters, digits, `.`, `_` and `-`.
        name: String,
        /// How many partitions (more can be added later, never fewer).
        #[arg(long, default_value_t = 1)]
        partitions: i64,
        /// Keep data this long (ms); -1 forever. Default: 7 days.
        #[arg(long)]
        retention_ms: Option<i64>,
        /// Swimlanes the topic carries besides the main lane, comma-separated
        /// (`test-alice,test-bob`). Main-lane consumers never see their messages.
        #[arg(long, value_delimiter = ',', value_name = "LANE,...")]
        lanes: Vec<String>,
        /// Accept delayed messages, up to this delay (`90s`, `5m`, `2h`, `1d`, `250ms`, or
        /// milliseconds; at most 30 days, and shorter than the retention). Default: delayed
        /// messages are refused.
        #[arg(long = "max-delay", value_name = "DURATION", value_parser = parse_duration_ms)]
        max_delay_ms: Option<i64>,
        /// Trace the path of this share of the topic's messages: a percentage (`1%`,
        /// `0.5%`), a fraction (`0.01`), or `0`/`off`. Default: off. Trace events go to the
        /// internal topic `__strata_trace`.
        #[arg(long = "trace-sample", value_name = "RATE", value_parser = parse_trace_sample_ppm)]
        trace_sample_ppm: Option<u32>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List topics.
    List {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Show a topic's partitions: owner, epoch, state, high watermark.
    Describe {
        /// The topic.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Change a topic's retention, lanes, longest delay or trace sampling, or add partitions (a
    /// partition count never shrinks).
    #[command(group = clap::ArgGroup::new("change").required(true).multiple(true))]
    Alter {
        /// The topic.
        name: String,
        /// Keep data this long (ms); -1 forever. Brokers apply it at their next pass.
        #[arg(long, group = "change")]
        retention_ms: Option<i64>,
        /// The new total number of partitions, more than it has now.
        #[arg(long, group = "change")]
        partitions: Option<i64>,
        /// Declare a swimlane on the topic; repeat for several.
        #[arg(long = "add-lane", group = "change", value_name = "LANE")]
        add_lanes: Vec<String>,
        /// Take a swimlane away: its messages stay in the log, and no consumer can ask for
        /// them until it is declared again. Repeat for several.
        #[arg(long = "remove-lane", group = "change", value_name = "LANE")]
        remove_lanes: Vec<String>,
        /// The longest delay a message may ask for (`90s`, `5m`, `2h`, `1d`, `250ms`, or
        /// milliseconds); 0 refuses new delayed messages (those already waiting are still
        /// delivered).
        #[arg(long = "max-delay", group = "change", value_name = "DURATION", value_parser = parse_duration_ms)]
        max_delay_ms: Option<i64>,
        /// Trace the path of this share of the topic's messages from now on: a percentage
        /// (`1%`, `0.5%`), a fraction (`0.01`), or `0`/`off` to stop tracing.
        #[arg(long = "trace-sample", group = "change", value_name = "RATE", value_parser = parse_trace_sample_ppm)]
        trace_sample_ppm: Option<u32>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Delete a topic and its data.
    Delete {
        /// The topic.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// How a list or a description is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Columns for people.
    Text,
    /// JSON for programs: one document (for consume, one object per message and line).
    Json,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum BrokersCommand {
    /// List live brokers: address, partitions, draining or not.
    List {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Move every partition off a broker and keep new ones off it (before maintenance).
    Drain {
        /// The broker's id.
        broker: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Let a drained broker take partitions again.
    Undrain {
        /// The broker's id.
        broker: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a SASL user, or set a new password for one (kept as SCRAM keys, never as is). The
    /// password comes from --password-file, else the first line of standard input.
    Add {
        /// The user's name: letters, digits, `.`, `_`, `-` and `@`.
        name: String,
        /// A file whose first line is the password (a mounted Kubernetes Secret, say).
        #[arg(long)]
        password_file: Option<std::path::PathBuf>,
        /// SCRAM mechanisms to set (repeatable); default both SCRAM-SHA-256 and -512.
        #[arg(long = "mechanism")]
        mechanisms: Vec<String>,
        /// PBKDF2 iterations (4096 to 16384); default 8192.
        #[arg(long)]
        iterations: Option<u32>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List users and their mechanisms.
    List {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Remove a user and its credentials.
    Remove {
        /// The user's name.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a bearer token for a principal and print it: the only time it is shown.
    Create {
        /// Who the token's bearer is, `User:<name>`; your own principal, or any as a super user.
        #[arg(long)]
        principal: String,
        /// What the token is for (shown by `token list`).
        #[arg(long, default_value = "")]
        description: String,
        /// Refuse the token after this many seconds; default: until revoked.
        #[arg(long)]
        expires_in_secs: Option<u64>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List tokens (never their secrets): all for a super user, else your own.
    List {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Revoke a token; callers holding it are refused within 10 seconds.
    Revoke {
        /// The token's id: the 16 hex digits after `strata_`.
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Admin API address of any controller (`https://host:port` or `host:port`; with
    /// --tls-ca, https is assumed).
    #[arg(long, env = "STRATA_ADMIN", default_value = "127.0.0.1:7080")]
    pub admin: String,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Proxy addresses, comma-separated (any proxies of the cluster): the client starts at a
    /// random one and moves to the next when it cannot be reached.
    #[arg(long, env = "STRATA_SERVER", default_value = "127.0.0.1:7070")]
    pub server: String,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
}

/// TLS to the cluster (off unless --tls-ca is given) and credentials.
#[derive(Debug, Args)]
pub struct ClientTlsArgs {
    /// Bearer token (from `strata token create`), for clusters that authenticate callers.
    #[arg(
        long,
        env = "STRATA_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// File holding the bearer token (a Kubernetes Secret mount), instead of --token.
    #[arg(long, env = "STRATA_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// PEM CA bundle the servers' certificates chain to; turns TLS on.
    #[arg(long, env = "STRATA_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// PEM client certificate, for clusters that require one (mTLS); with --tls-key.
    #[arg(long, env = "STRATA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "STRATA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic to write to.
    pub topic: String,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Split each line at the first occurrence of this string into key and value; messages
    /// with the same key go to the same partition (Kafka's murmur2 partitioner).
    #[arg(long)]
    pub key_separator: Option<String>,

    /// Send every message to this partition.
    #[arg(long)]
    pub partition: Option<u32>,

    /// Spread messages without a key over partitions: `round-robin` (one each, in turn) or
    /// `sticky` (a batch to one partition, then the next).
    #[arg(long, default_value = "round-robin")]
    pub partitioner: String,

    /// When a message counts as sent: durable (stored and committed), buffered (in the
    /// broker's memory) or none.
    #[arg(long, default_value = "durable")]
    pub acks: String,

    /// Compression of record batches: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,

    /// Bytes per partition batch before it is sent without waiting for the linger.
    #[arg(long, default_value_t = 256 * 1024)]
    pub batch_bytes: usize,

    /// Milliseconds a batch waits for more messages.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,

    /// A header on every message, `name=value` (or `name` alone for a header without a
    /// value); repeat for several.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,

    /// A tag on every message, for consumers that read by tag (`strata consume --tags`);
    /// repeat for several. Sent in the `strata-tags` header.
    #[arg(long = "tag", value_name = "TAG", value_parser = parse_tag)]
    pub tags: Vec<String>,

    /// Put every message on this swimlane, which the topic must declare (`strata topic alter
    /// T --add-lane LANE`); only the lane's consumers receive them. Sent in the `strata-lane`
    /// header.
    #[arg(long, value_name = "LANE")]
    pub lane: Option<String>,

    /// Deliver every message this long after it is sent (`90s`, `5m`, `2h`, or
    /// milliseconds): stored now, seen by consumers only then. The topic must accept delays
    /// this long (`strata topic create T --max-delay 1h`). Sent in the `strata-delay-ms`
    /// header.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms, group = "delayed")]
    pub delay: Option<i64>,

    /// Deliver every message after RocketMQ delay level 1 to 18 (1s 5s 10s 30s 1m 2m 3m 4m
    /// 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h). Sent in the `strata-delay-level` header.
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(u8).range(1..=18), group = "delayed")]
    pub delay_level: Option<u8>,
}

fn parse_tag(tag: &str) -> Result<String, String> {
    strata_format::tags::check_tag(tag).map(|()| tag.to_owned())
}

fn parse_property_filter(condition: &str) -> Result<String, String> {
    strata_format::properties::PropertyFilter::parse(condition)
        .map(|_| condition.to_owned())
        .map_err(|e| e.to_string())
}

fn parse_tag_expression(expression: &str) -> Result<String, String> {
    strata_format::tags::TagFilter::parse(expression)
        .map(|_| expression.to_owned())
        .map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic to read.
    pub topic: String,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Read as a member of this consumer group: partitions are shared with the group's
    /// other members and positions are committed.
    #[arg(long)]
    pub group: Option<String>,

    /// Start at the oldest stored message instead of the end (with --group: only for
    /// partitions the group never committed).
    #[arg(long)]
    pub from_beginning: bool,

    /// Read only this partition (not with --group).
    #[arg(long, conflicts_with = "group")]
    pub partition: Option<u32>,

    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition")]
    pub offset: Option<i64>,

    /// Start at the first message with a timestamp at or after this time: RFC 3339
    /// (`2026-12-06T18:00:00Z`) or milliseconds since the Unix epoch. Not with --group (reset
    /// the group's offsets instead: `strata group reset-offsets --to-datetime`).
    #[arg(long, value_parser = parse_time, conflicts_with_all = ["group", "offset", "from_beginning"])]
    pub from_timestamp: Option<i64>,

    /// Read only the messages carrying one of these tags: `TagA || TagB`, or `*` for every
    /// message. The proxy leaves the others out; positions move past them all the same.
    #[arg(long, default_value = "*", value_parser = parse_tag_expression)]
    pub tags: String,

    /// Read only the messages whose headers satisfy a SQL-92 condition, as RocketMQ's
    /// property filters: `region = 'eu' AND amount > 100` (=, <>, <, <=, >, >=, BETWEEN, IN,
    /// IS [NOT] NULL, AND, OR, NOT). A message without a header the condition names is left
    /// out.
    #[arg(long, value_name = "CONDITION", value_parser = parse_property_filter)]
    pub filter: Option<String>,

    /// Read this swimlane of a topic that declares it, instead of the main lane (whose readers
    /// never see lane messages).
    #[arg(long, value_name = "LANE")]
    pub lane: Option<String>,

    /// With --lane: read the main lane's messages too.
    #[arg(long, requires = "lane")]
    pub with_main: bool,

    /// With --group: consume in broadcast mode as this member, reading every partition with
    /// positions of its own, which its next run under the same name starts from (RocketMQ's
    /// BROADCASTING). Every member of the group gets every message.
    #[arg(long, value_name = "MEMBER", requires = "group")]
    pub broadcast: Option<String>,

    /// With --group: also read the group's retry topic, where records its consumers nacked
    /// come back (`strata nack`).
    #[arg(long, requires = "group", conflicts_with = "broadcast")]
    pub retries: bool,

    /// Stop after this many messages.
    #[arg(long)]
    pub max_messages: Option<u64>,

    /// Stop when no message arrived for this long (ms). Without it, runs until the message
    /// count is reached or Ctrl-C.
    #[arg(long)]
    pub timeout_ms: Option<u64>,

    /// Print `partition<TAB>offset<TAB>` before each message.
    #[arg(long)]
    pub print_offsets: bool,

    /// Print `timestamp<TAB>` (ms since the Unix epoch, as the producer set it) before each
    /// message, after the offsets.
    #[arg(long)]
    pub print_timestamp: bool,

    /// Print `key<TAB>` before each message.
    #[arg(long)]
    pub print_key: bool,

    /// Print the headers as `name=value,name=value<TAB>` before each message, after the key
    /// (a header without a value prints as its name alone).
    #[arg(long)]
    pub print_headers: bool,

    /// With --group: the group drops this consumer after this long without a heartbeat.
    #[arg(long, default_value_t = 10_000)]
    pub session_timeout_ms: u64,

    /// With --group: commit positions this often.
    #[arg(long, default_value_t = 1_000)]
    pub commit_interval_ms: u64,

    /// `text`: the value per line, with the --print-* fields before it. `json`: one object
    /// per line with topic, partition, offset, timestamp, key, headers and value (strings
    /// when UTF-8, else `key_base64`/`value_base64`).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// A time as milliseconds since the Unix epoch, from RFC 3339 or from milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let time = humantime::parse_rfc3339_weak(text).map_err(|e| {
        format!("{e}: give RFC 3339 (2026-12-06T18:00:00Z) or milliseconds since the Unix epoch")
    })?;
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "the time is before 1970".to_owned())?;
    i64::try_from(since.as_millis()).map_err(|_| "the time is too far ahead".to_owned())
}

/// A duration as milliseconds: `90s`, `5m`, `2h`, `1d`, `250ms` (humantime units, combined as
/// `1h 30m`), or plain milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<u64>() {
        return i64::try_from(ms).map_err(|_| format!("`{text}` ms is too long"));
    }
    let duration = humantime::parse_duration(text).map_err(|e| {
        format!("`{text}`: {e}; give a duration such as 90s, 5m, 2h, 1d or 250ms, or milliseconds")
    })?;
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!("`{text}` is not a whole number of milliseconds"));
    }
    i64::try_from(duration.as_millis()).map_err(|_| format!("`{text}` is too long"))
}

/// A trace sample rate as parts per million: a percentage (`1%`, `0.5%`, `100%`), a fraction
/// of messages (`0.01` is 1%, `1` every message), or `0`/`off`.
pub fn parse_trace_sample_ppm(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let refused = |why: &str| {
        format!(
            "`{text}`{why}; give a percentage (1%, 0.5%), a fraction of the messages (0.01 for 1%), or 0 or off to turn tracing off"
        )
    };
    if text.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    let (number, percent) = match text.strip_suffix('%') {
        Some(number) => (number.trim_end(), true),
        None => (text, false),
    };
    let per_one = if percent { 100.0 } else { 1.0 };
    // Digits and one point only: f64's parser would also take `inf`, `NaN` and `1e-2`.
    if number.is_empty()
        || number.chars().filter(|c| *c == '.').count() > 1
        || !number.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return Err(refused(" is not a sample rate"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| refused(" is not a sample rate"))?;
    if value > per_one {
        return Err(refused(if percent {
            " is more than every message (at most 100%)"
        } else {
            " is more than every message (a fraction is at most 1; for a percentage add %)"
        }));
    }
    let ppm = (value / per_one * 1_000_000.0).round();
    if ppm < 1.0 && value > 0.0 {
        return Err(refused(
            " is below one message in a million, the finest rate (0.0001%)",
        ));
    }
    Ok(ppm as u32)
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups with their state and member count.
    List {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Show a group's members, their partitions, committed offsets and lag.
    Describe {
        /// The consumer group.
        group: String,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Delete a group's state and committed offsets; refused while it has live members.
    Delete {
        /// The consumer group.
        group: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Move a group's committed offsets (Kafka's kafka-consumer-groups --reset-offsets).
    /// Prints the plan and changes nothing unless --execute; refused while the group has live
    /// members.
    ResetOffsets(ResetOffsetsArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true))]
pub struct ResetOffsetsArgs {
    /// The consumer group.
    pub group: String,
    /// A topic whose partitions to reset (all of them); repeat for several.
    #[arg(long = "topic", required = true)]
    pub topics: Vec<String>,
    /// To the oldest stored message.
    #[arg(long, group = "target")]
    pub to_earliest: bool,
    /// To the end: only messages produced from now on are read.
    #[arg(long, group = "target")]
    pub to_latest: bool,
    /// To this offset in every partition (kept within each partition's log).
    #[arg(long, group = "target")]
    pub to_offset: Option<i64>,
    /// To the first message at or after this time: RFC 3339 or ms since the Unix epoch.
    #[arg(long, group = "target", value_parser = parse_time)]
    pub to_datetime: Option<i64>,
    /// By this many messages from the committed offset (negative: back), within the log.
    #[arg(long, group = "target", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets; without it, only print them.
    #[arg(long)]
    pub execute: bool,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct ReassignArgs {
    /// The topic of the partition to move.
    pub topic: String,
    /// The partition to move.
    pub partition: u32,
    /// The broker that takes it over.
    pub broker: String,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[cfg(test)]
mod tests {
    use super::{parse_duration_ms, parse_trace_sample_ppm};

    #[test]
    fn trace_samples_take_percentages_fractions_or_off() {
        for (text, ppm) in [
            ("1%", 10_000),
            ("0.5%", 5_000),
            ("100%", 1_000_000),
            ("0.0001%", 1),
            (" 2.5 % ", 25_000),
            ("0.01", 10_000),
            ("0.5", 500_000),
            ("1", 1_000_000),
            (".001", 1_000),
            ("0", 0),
            ("0%", 0),
            ("off", 0),
            ("OFF", 0),
        ] {
            assert_eq!(parse_trace_sample_ppm(text), Ok(ppm), "{text}");
        }
        for (bad, needle) in [
            ("", "is not a sample rate"),
            ("%", "is not a sample rate"),
            ("-1%", "is not a sample rate"),
            ("1e-2", "is not a sample rate"),
            ("NaN", "is not a sample rate"),
            ("1.2.3", "is not a sample rate"),
            ("half", "is not a sample rate"),
            ("5", "for a percentage add %"),
            ("101%", "at most 100%"),
            ("0.00001%", "below one message in a million"),
        ] {
            let refused = parse_trace_sample_ppm(bad).unwrap_err();
            assert!(refused.contains(needle), "{bad}: {refused}");
            assert!(
                refused.contains(&format!("`{}`", bad.trim())) && refused.contains("0.01 for 1%"),
                "{bad}: {refused}"
            );
        }
    }

    #[test]
    fn durations_take_units_or_milliseconds() {
        for (text, ms) in [
            ("90s", 90_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("250ms", 250),
            ("1h 30m", 5_400_000),
            ("1500", 1500),
            ("0", 0),
            (" 10s ", 10_000),
        ] {
            assert_eq!(parse_duration_ms(text), Ok(ms), "{text}");
        }
        for bad in ["", "-5", "5x", "ten seconds", "1.5", "10us"] {
            let refused = parse_duration_ms(bad).unwrap_err();
            assert!(refused.contains(bad.trim()), "{bad}: {refused}");
        }
    }
}

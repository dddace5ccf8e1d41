use std::time::Duration;

use tokio::time::Instant;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use strata_client::{Ack, Compression, Partitioner, Producer, ProducerConfig, ProducerRecord};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::ProduceArgs;
use crate::report::{CliError, Failure};

/// Acknowledgements awaited at once; more lines wait until some arrive.
const MAX_PENDING: usize = 100_000;

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let acks: Ack = args
        .acks
        .parse()
        .map_err(|e: String| anyhow!("--acks: {e}"))?;
    let compression: Compression = args
        .compression
        .parse()
        .map_err(|e: String| anyhow!("--compression: {e}"))?;
    let partitioner = match args.partitioner.as_str() {
        "round-robin" | "roundrobin" => Partitioner::RoundRobin,
        "sticky" | "default" => Partitioner::Default,
        other => anyhow::bail!("--partitioner {other}: use round-robin or sticky"),
    };
    let config = ProducerConfig {
        acks,
        compression,
        partitioner,
        batch_size: args.batch_bytes.max(1),
        linger: Duration::from_millis(args.linger_ms),
        ..ProducerConfig::default()
    };
    let mut headers = parse_headers(&args.headers)?;
    if !args.tags.is_empty() {
        let tags = strata_format::tags::tags_header(&args.tags)?;
        headers.push((strata_format::tags::TAGS_HEADER.to_owned(), Some(tags)));
    }
    if let Some(lane) = &args.lane {
        strata_format::lanes::check_lane(lane)?;
        headers.push((
            strata_format::lanes::LANE_HEADER.to_owned(),
            Some(lane.clone().into()),
        ));
    }
    let delay = [
        (strata_format::delay::DELAY_MS_HEADER, args.delay),
        (
            strata_format::delay::DELAY_LEVEL_HEADER,
            args.delay_level.map(i64::from),
        ),
    ];
    for (header, value) in delay {
        if let Some(value) = value {
            headers.push((header.to_owned(), Some(value.to_string().into())));
        }
    }
    let producer = Producer::builder(&args.server.server)
        .config(config)
        .connect_options(args.server.tls.sdk()?)
        .build()
        .await?;
    // Fail on an unknown topic before reading any input.
    producer
        .partitions(&args.topic)
        .await
        .with_context(|| format!("cannot produce to `{}`", args.topic))?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending = FuturesUnordered::new();
    let (mut messages, mut bytes, mut acked) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let mut last_progress = Instant::now();
    while let Some(line) = lines.next_line().await? {
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_owned())), Bytes::from(v.to_owned())),
                None => (None, Bytes::from(line)),
            },
            None => (None, Bytes::from(line)),
        };
        bytes += value.len() as u64;
        messages += 1;
        let mut record = ProducerRecord::new(args.topic.clone(), value);
        record.key = key;
        record.partition = args.partition;
        record.headers.clone_from(&headers);
        pending.push(producer.enqueue(record).await?);
        // Collect acknowledgements as they come, so an error stops the input early.
        while let Some(Some(done)) = futures::FutureExt::now_or_never(pending.next()) {
            done?;
            acked += 1;
        }
        while pending.len() >= MAX_PENDING {
            if let Some(done) = pending.next().await {
                done?;
                acked += 1;
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(2) {
            eprintln!("… {messages} messages read, {acked} acknowledged");
            last_progress = Instant::now();
        }
    }
    producer.flush().await?;
    while let Some(done) = pending.next().await {
        done?;
    }
    producer.close().await?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "sent {messages} messages ({:.2} MB) to {} in {secs:.2} s: {:.0} msg/s, {:.2} MB/s",
        bytes as f64 / 1e6,
        args.topic,
        messages as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}

/// `--header` values: `name=value`, or `name` alone for a header without a value (as
/// `strata consume --print-headers` prints them). The name may not be empty.
fn parse_headers(given: &[String]) -> anyhow::Result<Vec<(String, Option<Bytes>)>> {
    given
        .iter()
        .map(|header| {
            let (name, value) = match header.split_once('=') {
                Some((name, value)) => (name, Some(Bytes::from(value.to_owned()))),
                None => (header.as_str(), None),
            };
            if name.is_empty() {
                return Err(CliError::new(
                    Failure::Usage,
                    format!("--header {header:?}: the name before `=` is empty"),
                )
                .with_hint("write --header name=value")
                .into());
            }
            Ok((name.to_owned(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_as_consume_prints_them() {
        let parsed = parse_headers(&["trace=abc".into(), "flag".into(), "eq=a=b".into()]).unwrap();
        assert_eq!(
            parsed,
            vec![
                ("trace".to_owned(), Some(Bytes::from_static(b"abc"))),
                ("flag".to_owned(), None),
                ("eq".to_owned(), Some(Bytes::from_static(b"a=b"))),
            ]
        );
        let err = parse_headers(&["=v".into()]).unwrap_err();
        assert_eq!(crate::report::classify(&err).0, Failure::Usage);
    }
}

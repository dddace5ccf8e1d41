use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use anyhow::Context;
use strata_client::{Admin, Consumer, ConsumerConfig, ConsumerRecord, Offset, TopicPartition};

use crate::cli::{ConsumeArgs, Format};

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let connection = args.server.connect().await?;
    let reset = if args.from_beginning {
        Offset::Earliest
    } else {
        Offset::Latest
    };
    let config = ConsumerConfig {
        group: args.group.clone(),
        client_id: "strata-cli".into(),
        auto_offset_reset: reset,
        auto_commit_interval: Duration::from_millis(args.commit_interval_ms),
        session_timeout: Duration::from_millis(args.session_timeout_ms),
        heartbeat_interval: Duration::from_millis((args.session_timeout_ms / 3).max(100)),
        tags: args.tags.clone(),
        filter: args.filter.clone().unwrap_or_default(),
        lane: args.lane.clone().unwrap_or_default(),
        lane_with_main: args.with_main,
        broadcast: args.broadcast.clone(),
        retry: args.retries.then(strata_client::RetryPolicy::default),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(connection.clone(), config)?;
    // Fail on an unknown topic at once instead of waiting for data that cannot come.
    let topic = Admin::new(connection)
        .describe_topic(&args.topic)
        .await
        .with_context(|| format!("cannot consume `{}`", args.topic))?;
    match (&args.group, args.partition) {
        (Some(_), _) => consumer.subscribe(&[&args.topic]).await?,
        (None, Some(p)) => {
            let tp = TopicPartition::new(args.topic.clone(), p);
            consumer.assign(vec![tp.clone()]).await?;
            if let Some(offset) = args.offset {
                consumer.seek(&tp, Offset::At(offset)).await?;
            }
        }
        (None, None) => {
            let all = topic
                .partitions
                .iter()
                .map(|p| TopicPartition::new(args.topic.clone(), p.partition))
                .collect();
            consumer.assign(all).await?;
        }
    }
    if let Some(ms) = args.from_timestamp {
        for p in &topic.partitions {
            if args.partition.is_none_or(|only| only == p.partition) {
                let tp = TopicPartition::new(args.topic.clone(), p.partition);
                consumer.seek(&tp, Offset::Timestamp(ms)).await?;
            }
        }
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut messages, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    let mut last_message = Instant::now();
    let mut last_progress = Instant::now();
    let idle = args.timeout_ms.map(Duration::from_millis);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if let Some(max) = args.max_messages {
            if messages >= max {
                break;
            }
            // Never take more than we will print, so what we commit is what we printed.
            consumer.set_max_poll_records((max - messages).min(500) as usize);
        }
        if idle.is_some_and(|idle| last_message.elapsed() >= idle) {
            break;
        }
        let records = tokio::select! {
            records = consumer.poll(Duration::from_millis(200)) => records?,
            _ = &mut ctrl_c => break,
        };
        if !records.is_empty() {
            last_message = Instant::now();
        }
        for record in records {
            if args.format == Format::Json {
                bytes += record.value.as_ref().map_or(0, |v| v.len() as u64);
                messages += 1;
                serde_json::to_writer(&mut out, &record_json(&record))?;
                out.write_all(b"\n")?;
                continue;
            }
            if args.print_offsets {
                write!(out, "{}\t{}\t", record.partition, record.offset)?;
            }
            if args.print_timestamp {
                write!(out, "{}\t", record.timestamp)?;
            }
            if args.print_key {
                out.write_all(record.key.as_deref().unwrap_or_default())?;
                out.write_all(b"\t")?;
            }
            if args.print_headers {
                write_headers(&mut out, &record.headers)?;
                out.write_all(b"\t")?;
            }
            let value = record.value.unwrap_or_default();
            out.write_all(&value)?;
            out.write_all(b"\n")?;
            messages += 1;
            bytes += value.len() as u64;
        }
        out.flush()?;
        // Progress goes to stderr, so piping stdout gets the messages alone.
        if last_progress.elapsed() >= Duration::from_secs(2) {
            eprintln!("… {messages} messages received");
            last_progress = Instant::now();
        }
    }
    out.flush()?;
    if args.group.is_some() {
        consumer
            .commit_sync()
            .await
            .context("final commit failed")?;
    }
    consumer.close().await?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "received {messages} messages ({:.2} MB) from {} in {secs:.2} s: {:.0} msg/s, {:.2} MB/s",
        bytes as f64 / 1e6,
        args.topic,
        messages as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}

/// One message as `--format json` prints it: bytes as strings when they are UTF-8, else in
/// base64 under `key_base64` / `value_base64`, so no byte is lost or mangled.
fn record_json(record: &ConsumerRecord) -> serde_json::Value {
    let mut json = serde_json::json!({
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
    });
    put_bytes(&mut json, "key", record.key.as_deref());
    let headers: Vec<serde_json::Value> = record
        .headers
        .iter()
        .map(|(name, value)| {
            let mut header = serde_json::json!({ "name": name });
            put_bytes(&mut header, "value", value.as_deref());
            header
        })
        .collect();
    json["headers"] = headers.into();
    put_bytes(&mut json, "value", record.value.as_deref());
    json
}

fn put_bytes(json: &mut serde_json::Value, field: &str, bytes: Option<&[u8]>) {
    use base64::Engine as _;
    match bytes.map(std::str::from_utf8) {
        None => json[field] = serde_json::Value::Null,
        Some(Ok(text)) => json[field] = text.into(),
        Some(Err(_)) => {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(bytes.unwrap_or_default());
            json[format!("{field}_base64")] = encoded.into();
        }
    }
}

/// Headers as `name=value,name=value`, in the order the producer wrote them (kcat's `%h`).
fn write_headers(
    out: &mut impl Write,
    headers: &[(String, Option<bytes::Bytes>)],
) -> std::io::Result<()> {
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(name.as_bytes())?;
        if let Some(value) = value {
            out.write_all(b"=")?;
            out.write_all(value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_print_as_kcat_prints_them() {
        let mut out = Vec::new();
        let headers = vec![
            ("trace".to_owned(), Some(bytes::Bytes::from_static(b"abc"))),
            ("empty".to_owned(), None),
            ("n".to_owned(), Some(bytes::Bytes::from_static(b"1"))),
        ];
        write_headers(&mut out, &headers).unwrap();
        assert_eq!(out, b"trace=abc,empty,n=1");
        let mut none = Vec::new();
        write_headers(&mut none, &[]).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn json_keeps_text_as_text_and_other_bytes_in_base64() {
        let record = ConsumerRecord {
            topic: "t".into(),
            partition: 3,
            offset: 42,
            timestamp: 1_700_000_000_000,
            key: Some(bytes::Bytes::from_static(b"k1")),
            value: Some(bytes::Bytes::from_static(&[0xff, 0x00])),
            headers: vec![("h".to_owned(), Some(bytes::Bytes::from_static(b"v")))],
        };
        let json = record_json(&record);
        assert_eq!(
            json,
            serde_json::json!({
                "topic": "t", "partition": 3, "offset": 42, "timestamp": 1_700_000_000_000i64,
                "key": "k1", "headers": [{"name": "h", "value": "v"}], "value_base64": "/wA=",
            })
        );
    }
}

//! Producer tests that need no server: the proxy address refuses connections, so every
//! request fails with a retriable error and records stay buffered until they expire.

use std::time::Duration;

use super::*;

/// A port nothing listens on (the tcpmux port needs root to bind).
const NOWHERE: &str = "127.0.0.1:1";

fn producer(config: ProducerConfig) -> Producer {
    let connection = Connection::lazy(NOWHERE).expect("a valid address");
    let producer = Producer::new(connection, config);
    producer.inner.shared.metadata.insert("t", 4);
    producer
}

fn quick() -> ProducerConfig {
    ProducerConfig {
        linger: Duration::ZERO,
        request_timeout: Duration::from_millis(200),
        delivery_timeout: Duration::from_millis(600),
        retry_backoff: Duration::from_millis(20),
        retry_backoff_max: Duration::from_millis(50),
        max_block: Duration::from_millis(200),
        ..ProducerConfig::default()
    }
}

#[tokio::test]
async fn invalid_settings_are_reported_by_build_and_by_every_call() {
    let e = Producer::builder(NOWHERE)
        .delivery_timeout(Duration::from_secs(1))
        .build()
        .await
        .expect_err("delivery_timeout below request_timeout");
    assert!(
        matches!(e, Error::InvalidConfig(ref m) if m.contains("delivery_timeout")),
        "{e}"
    );

    let p = producer(ProducerConfig {
        max_request_size: 10,
        ..ProducerConfig::default()
    });
    let e = p
        .send(ProducerRecord::new("t", "v"))
        .await
        .expect_err("invalid");
    assert!(
        matches!(e, Error::InvalidConfig(ref m) if m.contains("max_request_size")),
        "{e}"
    );
    assert!(matches!(p.flush().await, Err(Error::InvalidConfig(_))));
}

#[tokio::test]
async fn a_record_larger_than_a_request_is_refused_before_sending() {
    let p = producer(quick());
    let e = p
        .enqueue(ProducerRecord::new("t", vec![0u8; 1 << 20]))
        .await
        .expect_err("too large");
    assert_eq!(e.code(), Some(ErrorCode::MessageTooLarge), "{e}");
    // Just under the limit is fine.
    let fits = (1 << 20) - BATCH_OVERHEAD - 36;
    let _ack = p
        .enqueue(ProducerRecord::new("t", vec![0u8; fits]))
        .await
        .expect("fits");
}

#[tokio::test]
async fn an_explicit_partition_out_of_range_is_refused() {
    let p = producer(quick());
    let e = p
        .enqueue(ProducerRecord::new("t", "v").with_partition(4))
        .await
        .expect_err("4 partitions: 0..=3");
    assert_eq!(e.code(), Some(ErrorCode::UnknownPartition), "{e}");
    assert!(e.to_string().contains("0..=3"), "{e}");
    let _ack = p
        .enqueue(ProducerRecord::new("t", "v").with_partition(3))
        .await
        .expect("in range");
}

#[tokio::test]
async fn the_buffer_bound_blocks_then_fails_and_expiry_frees_it() {
    let record = || ProducerRecord::new("t", vec![1u8; 1000]);
    // Room for four records (record_size is 1036 each) and a bit.
    let p = producer(ProducerConfig {
        buffer_memory: 4200,
        ..quick()
    });
    let mut acks = Vec::new();
    for _ in 0..4 {
        acks.push(p.enqueue(record()).await.expect("room"));
    }
    let started = Instant::now();
    let e = p.enqueue(record()).await.expect_err("buffer full");
    assert!(matches!(e, Error::BufferFull(4200)), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(190));
    // The buffered records cannot be delivered: they expire, which frees their memory.
    for ack in acks {
        let e = ack.await.expect_err("nowhere to deliver");
        assert!(matches!(e, Error::Timeout(..)), "{e}");
        assert!(
            e.to_string().contains("cannot reach"),
            "last error kept: {e}"
        );
    }
    let _ack = tokio::time::timeout(Duration::from_millis(50), p.enqueue(record()))
        .await
        .expect("room at once")
        .expect("accepted");
}

#[tokio::test]
async fn flush_waits_for_every_record_then_close_stops_all_handles() {
    let p = producer(ProducerConfig {
        linger: Duration::from_secs(1),
        delivery_timeout: Duration::from_millis(1500),
        ..quick()
    });
    let clone = p.clone();
    let mut acks = Vec::new();
    for i in 0..10 {
        acks.push(
            p.enqueue(ProducerRecord::new("t", format!("{i}")))
                .await
                .expect("buffered"),
        );
    }
    p.flush().await.expect("flushed");
    // Flush returned only once every record had its outcome (here: expiry).
    for ack in acks {
        let answer = futures::FutureExt::now_or_never(ack).expect("already answered");
        assert!(matches!(answer, Err(Error::Timeout(..))));
    }
    p.close().await.expect("closed");
    let e = clone
        .enqueue(ProducerRecord::new("t", "late"))
        .await
        .expect_err("closed");
    assert!(matches!(e, Error::Closed), "{e}");
    assert!(matches!(clone.flush().await, Err(Error::Closed)));
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_background_task() {
    let p = producer(ProducerConfig {
        delivery_timeout: Duration::from_secs(60),
        ..quick()
    });
    let ack = p
        .enqueue(ProducerRecord::new("t", "v"))
        .await
        .expect("buffered");
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(p);
    // The task held the buffer; only its end drops the record's sender.
    let answer = tokio::time::timeout(Duration::from_secs(2), ack)
        .await
        .expect("answered once the task is gone");
    assert!(matches!(answer, Err(Error::Closed)));
}

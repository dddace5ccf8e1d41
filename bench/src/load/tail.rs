//! A consumer tailing every partition of the topic under load, for produce → consume latency.

use std::ops::Range;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use strata_client::{Consumer, ConsumerConfig, Offset, TopicPartition};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::stamp::sent_at;
use crate::stats::micros;

#[derive(Debug)]
pub struct Tail {
    window: watch::Sender<Option<Range<Instant>>>,
    cancel: CancellationToken,
    task: JoinHandle<anyhow::Result<Vec<u32>>>,
}

impl Tail {
    /// Starts a consumer on every partition from the current end, and returns once its
    /// positions are set, so nothing produced afterwards is missed.
    pub async fn start(server: &str, topic: &str, partitions: u32) -> anyhow::Result<Self> {
        let connection = crate::credentials::connect(server).await?;
        let config = ConsumerConfig {
            client_id: "strata-bench".into(),
            auto_offset_reset: Offset::Latest,
            enable_auto_commit: false,
            max_poll_records: 10_000,
            fetch_max_wait: Duration::from_millis(500),
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::new(connection, config)?;
        let all = (0..partitions)
            .map(|p| TopicPartition::new(topic.to_owned(), p))
            .collect();
        consumer.assign(all).await?;
        let (window, window_rx) = watch::channel(None::<Range<Instant>>);
        let cancel = CancellationToken::new();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            // The first poll resolves every position to the current end.
            consumer.poll(Duration::from_millis(1)).await?;
            let _ = ready_tx.send(());
            let mut samples = Vec::new();
            loop {
                let records = tokio::select! {
                    () = stop.cancelled() => break,
                    records = consumer.poll(Duration::from_millis(100)) => records?,
                };
                let now = Instant::now();
                let Some(window) = window_rx.borrow().clone() else {
                    continue;
                };
                for record in records {
                    if let Some(sent) = record.value.as_deref().and_then(sent_at)
                        && window.contains(&sent)
                    {
                        samples.push(micros(now.saturating_duration_since(sent)));
                    }
                }
            }
            let _ = consumer.close().await;
            Ok(samples)
        });
        ready
            .await
            .context("the tailing consumer stopped before it was ready")?;
        Ok(Self {
            window,
            cancel,
            task,
        })
    }

    /// Only records sent within `window` count.
    pub fn measure(&self, window: Range<Instant>) {
        let _ = self.window.send(Some(window));
    }

    /// Produce → poll latencies, µs, of the records sent within the window.
    pub async fn stop(self) -> anyhow::Result<Vec<u32>> {
        self.cancel.cancel();
        self.task.await?
    }
}

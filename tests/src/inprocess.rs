//! A whole Strata in this process, on free loopback ports.

use std::net::SocketAddr;
use std::time::Duration;

use strata::cli::StandaloneArgs;
use strata_client::{Producer, ProducerRecord};
use strata_testkit::free_port;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A whole Strata in this process; stops (gracefully) when dropped or [`InProcess::stop`]ped.
#[derive(Debug)]
pub struct InProcess {
    /// The proxy's gRPC address, what SDK clients connect to.
    pub proxy: String,
    /// The admin REST API's address.
    pub admin: String,
    /// The proxy's HTTP address: `/metrics`, `/healthz`, `/readyz`.
    pub proxy_http: String,
    /// The Kafka wire-protocol address.
    pub kafka: String,
    cancel: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
    dir: tempfile::TempDir,
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

impl InProcess {
    /// Starts Strata with its data in a new temporary directory.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("strata-inproc-")
            .tempdir()?;
        let mut last = None;
        // A free port can be taken by someone else before we bind it; try a few times.
        for _ in 0..5 {
            let args = StandaloneArgs {
                data_dir: Some(dir.path().to_path_buf()),
                proxy_addr: Some(loopback()),
                proxy_http_addr: Some(loopback()),
                admin_addr: Some(loopback()),
                broker_addr: Some(loopback()),
                broker_http_addr: Some(loopback()),
                kafka: strata::cli::KafkaArgs {
                    kafka_addr: Some(loopback()),
                    ..Default::default()
                },
                ..StandaloneArgs::default()
            };
            let config = strata::config::resolve(None, &args)?;
            let cancel = CancellationToken::new();
            let mut tasks = JoinSet::new();
            match strata::commands::standalone::spawn(&mut tasks, &cancel, &config).await {
                Ok(()) => {
                    let server = Self {
                        proxy: config.proxy.listen.to_string(),
                        admin: config.controller.admin_addr.to_string(),
                        proxy_http: config.proxy.http_addr.to_string(),
                        kafka: config.proxy.kafka.listen.to_string(),
                        cancel,
                        tasks,
                        dir,
                    };
                    server.wait_until_writable().await?;
                    return Ok(server);
                }
                Err(e) => {
                    cancel.cancel();
                    while tasks.join_next().await.is_some() {}
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Waits until the broker has registered, so topics created next get an owner at once.
    async fn wait_until_writable(&self) -> anyhow::Result<()> {
        let url = format!("http://{}/v1/brokers", self.admin);
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(response) = http.get(&url).send().await
                && let Ok(brokers) = response.json::<serde_json::Value>().await
                && brokers.as_array().is_some_and(|b| !b.is_empty())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the in-process broker did not register within 10 s")
    }

    /// Sends `values`, each as its decimal string, to one partition through the SDK (durable
    /// acks) and waits for every acknowledgement. With `timestamp`, a record's timestamp is
    /// `timestamp + value`.
    pub async fn produce(
        &self,
        topic: &str,
        partition: u32,
        values: std::ops::Range<u32>,
        timestamp: Option<i64>,
    ) -> anyhow::Result<()> {
        let producer = Producer::builder(&self.proxy).build().await?;
        for v in values {
            let mut record = ProducerRecord::new(topic, v.to_string()).with_partition(partition);
            if let Some(ts) = timestamp {
                record = record.with_timestamp(ts + i64::from(v));
            }
            producer.enqueue(record).await?;
        }
        producer.flush().await?;
        producer.close().await?;
        Ok(())
    }

    /// Where data and metadata live.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops every role gracefully (flush, commit, leave) and reports the first failure.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.cancel.cancel();
        while let Some(done) = self.tasks.join_next().await {
            done??;
        }
        Ok(())
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

//! How stateless proxies look like a Kafka cluster.
//!
//! Kafka clients need brokers with node ids, a leader per partition and a coordinator per
//! group. Every proxy can serve every partition and every group (the data is in storage, the
//! group state in the metadata store), so:
//!
//! - each proxy registers `proxies/{id}` under a lease; the live ones are the brokers;
//! - a proxy id keeps the node id it got the first time (`kafka/nodes/{id}`), so a restarted
//!   proxy is the same node to clients;
//! - partition leadership is spread over the live proxies by a rule every proxy computes alike
//!   from the same list ([`leader_of`]); the proxy answering FindCoordinator names itself;
//! - producer ids come from one counter in the store, in blocks, so no two proxies hand out
//!   the same id.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use strata_clock::{Clock, SystemClock};
use strata_meta::schema::{self, Keyspace, ProxyInfo};
use strata_meta::{Compare, CompareOp, LeaseKeeper, MetaStore, Txn, TxnOp};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::error::Result;

/// Producer ids a proxy takes from the store at a time.
const PRODUCER_ID_BLOCK: i64 = 1000;
/// Producer ids below this are never handed out (0 would look like "no producer" to some tools).
const FIRST_PRODUCER_ID: i64 = 1000;
/// Wait before registering again after the lease was lost.
const REREGISTER_DELAY: Duration = Duration::from_secs(1);

/// Who this proxy is to Kafka clients.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The proxy's id (stable across restarts of the same proxy).
    pub proxy_id: String,
    /// `host:port` Kafka clients dial to reach this proxy.
    pub advertised_addr: String,
    /// Rack (availability zone); empty for none.
    pub rack: String,
    pub lease_ttl: Duration,
    /// The cluster id Metadata and DescribeCluster report.
    pub cluster_id: String,
}

/// This proxy's view of the Kafka cluster. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    me: ProxyInfo,
    cluster_id: String,
    lease_ttl: Duration,
    producer_ids: Mutex<Range<i64>>,
}

impl Cluster {
    /// Finds (or allocates) this proxy's node id. Registration itself is [`Cluster::run`].
    pub async fn new(
        meta: Arc<dyn MetaStore>,
        keys: Keyspace,
        config: ClusterConfig,
    ) -> Result<Self> {
        let node_id = node_id(meta.as_ref(), &keys, &config.proxy_id).await?;
        let me = ProxyInfo {
            id: config.proxy_id,
            node_id,
            kafka_addr: config.advertised_addr,
            rack: config.rack,
            started_ms: SystemClock.unix_millis(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                meta,
                keys,
                me,
                cluster_id: config.cluster_id,
                lease_ttl: config.lease_ttl,
                producer_ids: Mutex::new(0..0),
            }),
        })
    }

    /// This proxy as a node.
    pub fn me(&self) -> &ProxyInfo {
        &self.inner.me
    }

    pub fn cluster_id(&self) -> &str {
        &self.inner.cluster_id
    }

    /// Keeps this proxy registered until `cancel`; registers again after a lost lease.
    pub async fn run(&self, cancel: CancellationToken) {
        let inner = &self.inner;
        let key = inner.keys.proxy(&inner.me.id);
        loop {
            let registered = async {
                let keeper = LeaseKeeper::start(inner.meta.clone(), inner.lease_ttl).await?;
                inner
                    .meta
                    .put(&key, schema::encode(&inner.me), Some(keeper.lease_id()))
                    .await?;
                Ok::<_, strata_meta::MetaError>(keeper)
            }
            .await;
            match registered {
                Ok(keeper) => {
                    tracing::info!(proxy = %inner.me.id, node_id = inner.me.node_id, addr = %inner.me.kafka_addr, "proxy registered for Kafka clients");
                    tokio::select! {
                        () = cancel.cancelled() => {
                            if let Err(e) = keeper.shutdown().await {
                                tracing::warn!(error = %e, "could not revoke the proxy's lease; it ends with its TTL");
                            }
                            return;
                        }
                        () = keeper.lost() => tracing::warn!(proxy = %inner.me.id, "proxy lease lost; registering again"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot register the proxy; retrying"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(REREGISTER_DELAY) => {}
            }
        }
    }

    /// The live proxies, ordered by node id. This proxy is always among them: it is serving
    /// the request that asks, even while its lease is being renewed.
    pub async fn nodes(&self) -> Result<Vec<ProxyInfo>> {
        let inner = &self.inner;
        let (kvs, _) = inner.meta.range(&inner.keys.proxies()).await?;
        let mut nodes = Vec::with_capacity(kvs.len() + 1);
        for kv in kvs {
            nodes.push(schema::decode::<ProxyInfo>(&kv.key, &kv.value)?);
        }
        if !nodes.iter().any(|n| n.id == inner.me.id) {
            nodes.push(inner.me.clone());
        }
        nodes.sort_by_key(|n| n.node_id);
        nodes.dedup_by_key(|n| n.node_id);
        Ok(nodes)
    }

    /// A fresh producer id, unique in the cluster.
    pub async fn next_producer_id(&self) -> Result<i64> {
        let mut block = self.inner.producer_ids.lock().await;
        if block.is_empty() {
            *block = take_producer_ids(self.inner.meta.as_ref(), &self.inner.keys).await?;
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }
}

/// The node leading `partition` of `topic`: consecutive partitions on consecutive nodes,
/// starting from a node that depends on the topic, so small topics do not all start on the
/// first proxy. `nodes` must be ordered as [`Cluster::nodes`] orders it.
pub fn leader_of(nodes: &[ProxyInfo], topic: &str, partition: u32) -> i32 {
    if nodes.is_empty() {
        return -1;
    }
    let start = crc32c::crc32c(topic.as_bytes()) as usize;
    nodes[(start.wrapping_add(partition as usize)) % nodes.len()].node_id
}

/// Splits `host:port`; Kafka clients get the two apart.
pub fn host_port(addr: &str) -> (String, i32) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_matches(|c| c == '[' || c == ']').to_owned(),
            port.parse().unwrap_or(9092),
        ),
        None => (addr.to_owned(), 9092),
    }
}

async fn node_id(meta: &dyn MetaStore, keys: &Keyspace, proxy: &str) -> Result<i32> {
    let key = keys.kafka_node(proxy);
    // Bounded: each failed round means another proxy took a number at the same moment.
    for _ in 0..ROUNDS {
        if let Some(kv) = meta.get(&key).await? {
            return Ok(schema::decode(&kv.key, &kv.value)?);
        }
        let taken = take(
            meta,
            &keys.kafka_next_node(),
            1,
            1,
            [Compare::absent(key.clone())],
            |id| [TxnOp::put(key.clone(), schema::encode(&id))],
        )
        .await?;
        if let Some(id) = taken.and_then(|id| i32::try_from(id).ok()) {
            return Ok(id);
        }
    }
    Err(strata_meta::MetaError::Unavailable {
        message: format!(
            "could not allocate a Kafka node id for proxy {proxy}: the counter kept changing"
        ),
    }
    .into())
}

async fn take_producer_ids(meta: &dyn MetaStore, keys: &Keyspace) -> Result<Range<i64>> {
    let counter = keys.kafka_next_producer_id();
    for _ in 0..ROUNDS {
        let taken = take(
            meta,
            &counter,
            FIRST_PRODUCER_ID,
            PRODUCER_ID_BLOCK,
            [],
            |_| [],
        )
        .await?;
        if let Some(first) = taken {
            return Ok(first..first + PRODUCER_ID_BLOCK);
        }
    }
    Err(strata_meta::MetaError::Unavailable {
        message: "could not take producer ids: the counter kept changing".into(),
    }
    .into())
}

/// Rounds of compare-and-swap before giving up on a counter other proxies keep moving.
const ROUNDS: usize = 100;

/// One compare-and-swap round on the counter at `counter` (which starts at `start`): takes
/// `count` numbers and returns the first, with `also` checked and `writes(first)` written in
/// the same transaction; `None` when another writer moved the counter (or `also` failed).
async fn take<W: IntoIterator<Item = TxnOp>>(
    meta: &dyn MetaStore,
    counter: &str,
    start: i64,
    count: i64,
    also: impl IntoIterator<Item = Compare>,
    writes: impl FnOnce(i64) -> W,
) -> Result<Option<i64>> {
    let (first, unchanged) = match meta.get(counter).await? {
        Some(kv) => (
            schema::decode::<i64>(&kv.key, &kv.value)?,
            Compare::mod_revision(counter.to_owned(), CompareOp::Equal, kv.mod_revision),
        ),
        None => (start, Compare::absent(counter.to_owned())),
    };
    let txn = Txn::new()
        .when(std::iter::once(unchanged).chain(also))
        .and_then(
            std::iter::once(TxnOp::put(
                counter.to_owned(),
                schema::encode(&(first + count)),
            ))
            .chain(writes(first)),
        );
    Ok(meta.txn(txn).await?.succeeded.then_some(first))
}

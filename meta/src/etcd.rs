//! The etcd backend: every trait method is one etcd RPC (a watch also probes for compaction).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client as ec;
use futures::StreamExt;

use crate::txn::{validate_delete_prefix, validate_key};
use crate::{
    CompareOp, CompareTarget, DEFAULT_MAX_TXN_OPS, KeyValue, LeaseId, MetaError, MetaStore,
    Revision, Txn, TxnOp, TxnResult, WatchEvent, WatchStream, check_max_txn_ops, ttl_seconds,
};

/// Range answers can hold a whole partition's segment list; tonic's 4 MiB default is too small.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Connection settings for [`EtcdStore`].
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// How long to wait for a TCP connection to an endpoint.
    pub connect_timeout: Duration,
    /// The deadline of every unary request. The client's load balancer waits for a healthy
    /// endpoint rather than failing, so without this a call during an outage would hang.
    pub request_timeout: Duration,
    /// HTTP/2 ping interval; detects a dead peer under an idle watch.
    pub keep_alive_interval: Duration,
    /// How long a ping may go unanswered before the connection is dropped.
    pub keep_alive_timeout: Duration,
    /// etcd's `--max-txn-ops`: the most compares, or operations per branch, of one
    /// transaction. Raising it lets a flush commit many more partitions per transaction; it
    /// must not exceed the server's setting, which [`EtcdStore::connect`] checks.
    pub max_txn_ops: usize,
    /// Dial etcd over TLS with these trust anchors and client identity; `None`: plaintext.
    pub tls: Option<EtcdTls>,
}

/// etcd over TLS: tonic's client TLS settings (CA, optional client certificate).
pub type EtcdTls = ec::TlsOptions;

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            keep_alive_interval: Duration::from_secs(5),
            keep_alive_timeout: Duration::from_secs(5),
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            tls: None,
        }
    }
}

/// A [`MetaStore`] on an etcd cluster. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct EtcdStore {
    client: ec::Client,
    kv: ec::KvClient,
    endpoints: Vec<String>,
    options: EtcdOptions,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to `endpoints` (`http://host:port`) and checks that one of them answers.
    pub async fn connect(
        endpoints: &[String],
        options: EtcdOptions,
    ) -> Result<EtcdStore, MetaError> {
        check_max_txn_ops(options.max_txn_ops)?;
        let mut connect = ec::ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_keep_alive(options.keep_alive_interval, options.keep_alive_timeout);
        let mut endpoints = endpoints.to_vec();
        if let Some(tls) = &options.tls {
            connect = connect.with_tls(tls.clone());
            for endpoint in &mut endpoints {
                if let Some(host) = endpoint.strip_prefix("http://") {
                    *endpoint = format!("https://{host}");
                }
            }
        }
        let endpoints = endpoints.as_slice();
        let client = ec::Client::connect(endpoints, Some(connect))
            .await
            .map_err(|e| map_error(e, None))?;
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let store = EtcdStore {
            client,
            kv,
            endpoints: endpoints.to_vec(),
            options,
        };
        // The channel connects lazily; ask something now so a wrong address fails here, where
        // the operator reads the configuration, not on the first write.
        let mut maintenance = store.client.maintenance_client();
        store
            .call("status", None, maintenance.status())
            .await
            .map_err(|e| match e {
                MetaError::Unavailable { message } => MetaError::unavailable(format!(
                    "no etcd endpoint of {:?} answered: {message}",
                    store.endpoints
                )),
                other => other,
            })?;
        if store.options.max_txn_ops > DEFAULT_MAX_TXN_OPS {
            store.check_server_txn_limit().await?;
        }
        tracing::debug!(endpoints = ?store.endpoints, "connected to etcd");
        Ok(store)
    }

    /// Sends a read-only transaction of `max_txn_ops` reads, so a server started with a lower
    /// `--max-txn-ops` is found when the process starts, with the fix named, rather than by
    /// the first large flush commit.
    async fn check_server_txn_limit(&self) -> Result<(), MetaError> {
        let max = self.options.max_txn_ops;
        let reads: Vec<ec::TxnOp> = (0..max)
            .map(|i| ec::TxnOp::get(format!("/strata-txn-limit-probe/{i}"), None))
            .collect();
        let mut kv = self.kv.clone();
        match self
            .call("txn", None, kv.txn(ec::Txn::new().and_then(reads)))
            .await
        {
            Ok(_) => Ok(()),
            Err(MetaError::InvalidArgument(message)) if message.contains("too many operations") => {
                Err(MetaError::InvalidArgument(format!(
                    "etcd refused a transaction of {max} operations ({message}): start etcd with \
                     --max-txn-ops={max} or more, or set Strata's meta max_txn_ops \
                     (STRATA_META_MAX_TXN_OPS) to etcd's value"
                )))
            }
            Err(other) => Err(other),
        }
    }

    /// The underlying client, for operations the trait does not cover (compaction, status).
    pub fn client(&self) -> &ec::Client {
        &self.client
    }

    async fn call<T>(
        &self,
        what: &'static str,
        lease: Option<LeaseId>,
        request: impl Future<Output = Result<T, ec::Error>>,
    ) -> Result<T, MetaError> {
        match tokio::time::timeout(self.options.request_timeout, request).await {
            Ok(result) => result.map_err(|e| map_error(e, lease)),
            Err(_) => Err(MetaError::unavailable(format!(
                "etcd {what} timed out after {:?}",
                self.options.request_timeout
            ))),
        }
    }
}

#[async_trait]
impl MetaStore for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, MetaError> {
        validate_key(key)?;
        let mut kv = self.kv.clone();
        let mut resp = self.call("get", None, kv.get(key, None)).await?;
        resp.take_kvs()
            .into_iter()
            .next()
            .map(convert_kv)
            .transpose()
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), MetaError> {
        self.range_from(prefix, prefix).await
    }

    async fn range_from(
        &self,
        prefix: &str,
        from: &str,
    ) -> Result<(Vec<KeyValue>, Revision), MetaError> {
        let mut kv = self.kv.clone();
        // etcd refuses an empty key; "\0" is the smallest one.
        let start = match from.max(prefix) {
            "" => "\0",
            start => start,
        };
        let options = ec::GetOptions::new().with_range(prefix_end(prefix));
        let mut resp = self
            .call("range", None, kv.get(start, Some(options)))
            .await?;
        let revision = header_revision(resp.header())?;
        let kvs = resp
            .take_kvs()
            .into_iter()
            .map(convert_kv)
            .collect::<Result<_, _>>()?;
        Ok((kvs, revision))
    }

    async fn put(
        &self,
        key: &str,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> Result<Revision, MetaError> {
        validate_key(key)?;
        crate::txn::check_request_size(key.len() + value.len())?;
        let mut kv = self.kv.clone();
        let options = ec::PutOptions::new().with_lease(lease.unwrap_or(0));
        let resp = self
            .call("put", lease, kv.put(key, value.to_vec(), Some(options)))
            .await?;
        header_revision(resp.header())
    }

    async fn delete(&self, key: &str) -> Result<bool, MetaError> {
        validate_key(key)?;
        let mut kv = self.kv.clone();
        let resp = self.call("delete", None, kv.delete(key, None)).await?;
        Ok(resp.deleted() > 0)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, MetaError> {
        validate_delete_prefix(prefix)?;
        let mut kv = self.kv.clone();
        let options = ec::DeleteOptions::new().with_prefix();
        let resp = self
            .call("delete", None, kv.delete(prefix, Some(options)))
            .await?;
        Ok(u64::try_from(resp.deleted()).unwrap_or(0))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, MetaError> {
        txn.validate(self.options.max_txn_ops)?;
        let lease = txn
            .success
            .iter()
            .chain(&txn.failure)
            .find_map(|op| match op {
                TxnOp::Put { lease, .. } => *lease,
                _ => None,
            });
        let request = ec::Txn::new()
            .when(txn.compares.iter().map(convert_compare).collect::<Vec<_>>())
            .and_then(txn.success.iter().map(convert_op).collect::<Vec<_>>())
            .or_else(txn.failure.iter().map(convert_op).collect::<Vec<_>>());
        let mut kv = self.kv.clone();
        let resp = self.call("txn", lease, kv.txn(request)).await?;
        let mut gets = Vec::new();
        for op in resp.op_responses() {
            if let ec::TxnOpResponse::Get(mut get) = op {
                gets.push(
                    get.take_kvs()
                        .into_iter()
                        .next()
                        .map(convert_kv)
                        .transpose()?,
                );
            }
        }
        Ok(TxnResult {
            succeeded: resp.succeeded(),
            revision: header_revision(resp.header())?,
            gets,
        })
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, MetaError> {
        let secs = ttl_seconds(ttl)?;
        let mut leases = self.client.lease_client();
        let resp = self
            .call("lease grant", None, leases.grant(secs, None))
            .await?;
        if !resp.error().is_empty() {
            return Err(MetaError::Backend(format!(
                "etcd lease grant: {}",
                resp.error()
            )));
        }
        Ok(resp.id())
    }

    async fn keep_alive_once(&self, lease: LeaseId) -> Result<(), MetaError> {
        // etcd-client sends the first keep-alive itself and reports a TTL of 0 (lease gone) as
        // an error; the stream is dropped right after, which ends it on the server.
        let mut leases = self.client.lease_client();
        self.call("lease keep-alive", Some(lease), leases.keep_alive(lease))
            .await?;
        Ok(())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), MetaError> {
        let mut leases = self.client.lease_client();
        self.call("lease revoke", Some(lease), leases.revoke(lease))
            .await?;
        Ok(())
    }

    fn max_txn_ops(&self) -> usize {
        self.options.max_txn_ops
    }

    async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: Option<Revision>,
    ) -> Result<WatchStream, MetaError> {
        let mut options = ec::WatchOptions::new().with_prefix();
        if let Some(start) = start_revision {
            if start < 1 {
                return Err(MetaError::InvalidArgument(format!(
                    "watch start revision {start} is not positive"
                )));
            }
            options = options.with_start_revision(start);
        }
        let mut watches = self.client.watch_client();
        let mut stream = self
            .call("watch", None, watches.watch(prefix, Some(options)))
            .await?;
        let mut pending = VecDeque::new();
        // Wait for the server to register the watch, so every change after this call returns
        // is delivered.
        let created_revision = loop {
            let resp = self.next_message(&mut stream).await?;
            check_cancel(&resp, start_revision.unwrap_or(0))?;
            push_events(&resp, &mut pending)?;
            if resp.created() {
                break header_revision(resp.header())?;
            }
        };
        if let Some(start) = start_revision
            && start <= created_revision
        {
            self.check_history(prefix, start, &mut stream).await?;
        }
        let last_seen = start_revision.map_or(created_revision, |start| start - 1);
        Ok(watch_stream(stream, pending, last_seen))
    }
}

impl EtcdStore {
    async fn next_message(
        &self,
        stream: &mut ec::WatchStream,
    ) -> Result<ec::WatchResponse, MetaError> {
        self.call("watch", None, stream.message())
            .await?
            .ok_or_else(|| MetaError::unavailable("etcd closed the watch stream"))
    }

    /// etcd reports a compacted start revision asynchronously, after `created`. Ask a range at
    /// that revision (same rule: compacted iff below the compaction revision) so
    /// `watch_prefix` itself fails, as the embedded store does, then take the compaction
    /// revision from the watch's cancel message.
    async fn check_history(
        &self,
        prefix: &str,
        start: Revision,
        stream: &mut ec::WatchStream,
    ) -> Result<(), MetaError> {
        let mut kv = self.kv.clone();
        let options = ec::GetOptions::new()
            .with_prefix()
            .with_revision(start)
            .with_count_only();
        let probe =
            tokio::time::timeout(self.options.request_timeout, kv.get(prefix, Some(options)))
                .await
                .map_err(|_| MetaError::unavailable("etcd watch history probe timed out"))?;
        match probe {
            Ok(_) => Ok(()),
            Err(e) if is_compacted(&e) => loop {
                let resp = self.next_message(stream).await?;
                check_cancel(&resp, start)?;
            },
            Err(e) => Err(map_error(e, None)),
        }
    }
}

fn check_cancel(resp: &ec::WatchResponse, requested: Revision) -> Result<(), MetaError> {
    if resp.compact_revision() > 0 {
        return Err(MetaError::Compacted {
            requested,
            compacted: resp.compact_revision(),
        });
    }
    if resp.canceled() {
        return Err(MetaError::unavailable(format!(
            "etcd canceled the watch: {}",
            resp.cancel_reason()
        )));
    }
    Ok(())
}

fn push_events(
    resp: &ec::WatchResponse,
    pending: &mut VecDeque<WatchEvent>,
) -> Result<(), MetaError> {
    for event in resp.events() {
        let Some(kv) = event.kv() else { continue };
        pending.push_back(match event.event_type() {
            ec::EventType::Put => WatchEvent::Put(convert_kv(kv.clone())?),
            ec::EventType::Delete => WatchEvent::Delete {
                key: utf8_key(kv.key())?,
                mod_revision: kv.mod_revision(),
            },
        });
    }
    Ok(())
}

struct WatchState {
    stream: ec::WatchStream,
    pending: VecDeque<WatchEvent>,
    /// The revision of the last event handed out, so a compaction names what was lost.
    last_seen: Revision,
}

fn watch_stream(
    stream: ec::WatchStream,
    pending: VecDeque<WatchEvent>,
    last_seen: Revision,
) -> WatchStream {
    let state = WatchState {
        stream,
        pending,
        last_seen,
    };
    let events = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.pending.pop_front() {
                st.last_seen = event.revision();
                return Some((Ok(event), st));
            }
            let failure = match st.stream.message().await {
                Ok(Some(resp)) => {
                    match check_cancel(&resp, st.last_seen + 1)
                        .and_then(|()| push_events(&resp, &mut st.pending))
                    {
                        Ok(()) => continue,
                        Err(e) => e,
                    }
                }
                Ok(None) => MetaError::unavailable("etcd closed the watch stream"),
                Err(e) => map_error(e, None),
            };
            tracing::warn!(error = %failure, "etcd watch ended");
            return Some((Err(failure), st));
        }
    });
    WatchStream::new(events.boxed())
}

/// The first key after every key starting with `prefix` (etcd's `range_end` for a prefix;
/// `\0` means "no end" when the prefix is empty).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn header_revision(header: Option<&ec::ResponseHeader>) -> Result<Revision, MetaError> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| MetaError::Backend("etcd response without a header".into()))
}

fn utf8_key(key: &[u8]) -> Result<String, MetaError> {
    String::from_utf8(key.to_vec())
        .map_err(|_| MetaError::Backend(format!("etcd key {key:?} is not UTF-8")))
}

fn convert_kv(kv: ec::KeyValue) -> Result<KeyValue, MetaError> {
    let (create_revision, mod_revision, version, lease) = (
        kv.create_revision(),
        kv.mod_revision(),
        kv.version(),
        kv.lease(),
    );
    let (key, value) = kv.into_key_value();
    Ok(KeyValue {
        key: utf8_key(&key)?,
        value: Bytes::from(value),
        create_revision,
        mod_revision,
        version,
        lease: (lease != 0).then_some(lease),
    })
}

fn convert_compare(compare: &crate::Compare) -> ec::Compare {
    let op = match compare.op {
        CompareOp::Equal => ec::CompareOp::Equal,
        CompareOp::NotEqual => ec::CompareOp::NotEqual,
        CompareOp::Greater => ec::CompareOp::Greater,
        CompareOp::Less => ec::CompareOp::Less,
    };
    let key = compare.key.as_str();
    match &compare.target {
        CompareTarget::Value(v) => ec::Compare::value(key, op, v.to_vec()),
        CompareTarget::ModRevision(r) => ec::Compare::mod_revision(key, op, *r),
        CompareTarget::CreateRevision(r) => ec::Compare::create_revision(key, op, *r),
        CompareTarget::Version(v) => ec::Compare::version(key, op, *v),
    }
}

fn convert_op(op: &TxnOp) -> ec::TxnOp {
    match op {
        TxnOp::Put { key, value, lease } => ec::TxnOp::put(
            key.as_str(),
            value.to_vec(),
            Some(ec::PutOptions::new().with_lease(lease.unwrap_or(0))),
        ),
        TxnOp::Delete { key } => ec::TxnOp::delete(key.as_str(), None),
        TxnOp::DeletePrefix { prefix } => ec::TxnOp::delete(
            prefix.as_str(),
            Some(ec::DeleteOptions::new().with_prefix()),
        ),
        TxnOp::Get { key } => ec::TxnOp::get(key.as_str(), None),
    }
}

fn is_compacted(err: &ec::Error) -> bool {
    matches!(err, ec::Error::GRpcStatus(s)
        if s.code() == tonic::Code::OutOfRange && s.message().contains("compacted"))
}

/// Sorts etcd and transport failures into the trait's error kinds.
fn map_error(err: ec::Error, lease: Option<LeaseId>) -> MetaError {
    let lease_not_found = || MetaError::LeaseNotFound {
        lease: lease.unwrap_or(0),
    };
    match err {
        ec::Error::GRpcStatus(status) => {
            use tonic::Code;
            let message = status.message();
            match status.code() {
                Code::NotFound if message.contains("lease not found") => lease_not_found(),
                // etcd marks "no leader", "leader changed", "request timed out" and "too many
                // requests" this way; tonic reports refused and dropped connections as
                // Unavailable, Cancelled or (for h2 failures) Unknown.
                Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled => {
                    MetaError::unavailable(format!("etcd: {message}"))
                }
                Code::ResourceExhausted if message.contains("too many requests") => {
                    MetaError::unavailable(format!("etcd: {message}"))
                }
                Code::FailedPrecondition if message.contains("not leader") => {
                    MetaError::unavailable(format!("etcd: {message}"))
                }
                Code::Unknown | Code::Internal if looks_like_transport(message) => {
                    MetaError::unavailable(format!("etcd connection: {message}"))
                }
                Code::InvalidArgument => MetaError::InvalidArgument(format!("etcd: {message}")),
                code => MetaError::Backend(format!("etcd: {code:?}: {message}")),
            }
        }
        ec::Error::TransportError(e) => MetaError::unavailable(format!("etcd transport: {e}")),
        ec::Error::IoError(e) => MetaError::unavailable(format!("etcd io: {e}")),
        ec::Error::WatchError(e) => MetaError::unavailable(format!("etcd watch: {e}")),
        ec::Error::LeaseKeepAliveError(e) if e.contains("lease not found") => lease_not_found(),
        ec::Error::LeaseKeepAliveError(e) => {
            MetaError::unavailable(format!("etcd lease keep-alive: {e}"))
        }
        ec::Error::InvalidArgs(e) => MetaError::InvalidArgument(e),
        ec::Error::InvalidUri(e) => MetaError::InvalidArgument(format!("etcd endpoint: {e}")),
        other => MetaError::Backend(format!("etcd: {other}")),
    }
}

fn looks_like_transport(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "transport",
        "connection",
        "connect",
        "h2 protocol",
        "broken pipe",
        "reset",
        "eof",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

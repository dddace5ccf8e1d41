//! The process's TLS, loaded once at start and shared by its roles (all of them in
//! standalone): what its listeners serve, and how it dials brokers and etcd.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use strata_tls::{Alpn, ClientTls, HttpListener, Incoming, ServerTls};

use crate::config::Config;

#[derive(Debug, Clone, Default)]
pub struct ProcessTls {
    /// Served by every listener; `None`: plaintext.
    pub server: Option<Arc<ServerTls>>,
    /// How brokers are dialled: the cluster's CA and the process's own pair.
    pub dial: Option<ClientTls>,
    /// The health and metrics endpoints are served over TLS too.
    http: bool,
}

impl ProcessTls {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let server =
            ServerTls::from_config(&config.tls).context("[tls] settings are not usable")?;
        let dial = ClientTls::for_cluster(&config.tls).context("[tls] settings are not usable")?;
        if server.is_some() {
            tracing::info!(client_auth = ?config.tls.client_auth, http = config.tls.http, "TLS on every listener");
        }
        Ok(Self {
            server,
            dial,
            http: config.tls.http,
        })
    }

    /// Listens on `addr` for a listener of `kind`; `flag` names the setting to change when the
    /// address is taken.
    pub async fn bind(
        &self,
        addr: SocketAddr,
        kind: Alpn,
        what: &str,
        flag: &str,
    ) -> anyhow::Result<Incoming> {
        listen(addr, self.server.clone(), kind, what, flag).await
    }

    /// [`Self::bind`] for an HTTP endpoint, which is plaintext unless `[tls] http`, since
    /// kubelet probes and Prometheus scrape it.
    pub async fn bind_health(
        &self,
        addr: SocketAddr,
        what: &str,
        flag: &str,
    ) -> anyhow::Result<HttpListener> {
        let tls = if self.http { self.server.clone() } else { None };
        Ok(HttpListener(listen(addr, tls, Alpn::Http, what, flag).await?))
    }
}

async fn listen(
    addr: SocketAddr,
    tls: Option<Arc<ServerTls>>,
    kind: Alpn,
    what: &str,
    flag: &str,
) -> anyhow::Result<Incoming> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}; pass {flag}"))?;
    Ok(Incoming::new(listener, tls, kind))
}

/// etcd's TLS from `[meta] ca`, `cert` and `key`; `None` without a CA.
pub fn etcd(config: &Config) -> anyhow::Result<Option<strata_meta::EtcdTls>> {
    let meta = &config.meta;
    let Some(ca) = &meta.ca else {
        anyhow::ensure!(
            meta.cert.is_none() && meta.key.is_none(),
            "[meta] cert and key need [meta] ca (--meta-ca): the CA etcd's certificate chains to"
        );
        return Ok(None);
    };
    let tls = ClientTls::from_files(ca, meta.cert.as_deref(), meta.key.as_deref())
        .context("[meta] TLS settings are not usable")?;
    Ok(Some(tls.tonic()))
}

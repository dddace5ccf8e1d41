//! The process's TLS, loaded once at start and shared by its roles (all of them in
//! standalone): what its listeners serve, and how it dials brokers and etcd.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use strata_tls::{Alpn, ClientTls, HttpListener, Incoming, ServerTls};

use crate::config::Config;
use strata_config::ClientAuth;

#[derive(Debug, Clone, Default)]
pub struct ProcessTls {
    /// Served by every listener; `None`: plaintext.
    pub server: Option<Arc<ServerTls>>,
    /// How brokers are dialled: the cluster's CA and the process's own pair.
    pub dial: Option<ClientTls>,
    /// The health and metrics endpoints are served over TLS too.
    http: bool,
    /// With `[security] authenticate`: the only principals a broker admits.
    pub cluster_principals: Option<Vec<String>>,
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
            cluster_principals: cluster_principals(config)?,
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
        Ok(HttpListener(
            listen(addr, tls, Alpn::Http, what, flag).await?,
        ))
    }
}

/// Whom brokers admit when `[security] authenticate` is on: `cluster_principals`, else the
/// principal of the process's own certificate. Authentication stands on TLS with client
/// certificates requested, since that is how brokers know the cluster's processes.
fn cluster_principals(config: &Config) -> anyhow::Result<Option<Vec<String>>> {
    let security = &config.security;
    if !security.authenticate {
        return Ok(None);
    }
    let Some(cert) = &config.tls.cert else {
        anyhow::bail!(
            "[security] authenticate needs TLS: set [tls] cert, key and ca (--tls-cert, --tls-key, --tls-ca), since tokens must not travel in the clear and brokers know the cluster's processes by their certificates"
        );
    };
    anyhow::ensure!(
        config.tls.client_auth != ClientAuth::None,
        "[security] authenticate needs client certificates requested: set [tls] client_auth to \"optional\" (tokens or certificates) or \"required\" (--tls-client-auth)"
    );
    if !security.cluster_principals.is_empty() {
        for principal in &security.cluster_principals {
            strata_catalog::tokens::validate_principal(principal)
                .context("[security] cluster_principals")?;
        }
        return Ok(Some(security.cluster_principals.clone()));
    }
    let own = strata_tls::certificate_principal(cert, config.tls.principal)
        .context("[tls] cert")?
        .with_context(|| {
            format!(
                "[security] cluster_principals is empty and [tls] cert {} names no principal under [tls] principal = {:?}; list the cluster's principals",
                cert.display(),
                config.tls.principal
            )
        })?;
    Ok(Some(vec![own]))
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

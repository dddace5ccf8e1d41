//! The server side: a process's certificate, reloaded when its files change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use strata_config::{ClientAuth, PrincipalRule, TlsSection};

use crate::incoming::Alpn;
use crate::{TlsError, provider};

/// How often, at most, the files are looked at for a change: a rotation shows within this.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Counters of one process's TLS listeners, on its `/metrics` page as `strata_<role>_tls_*`.
#[derive(Debug, Default)]
pub struct TlsMetrics {
    pub reloads: Counter,
    pub reload_failures: Counter,
    pub handshake_failures: Counter,
    /// When the certificate in use expires, in seconds since the Unix epoch.
    pub cert_not_after: Gauge,
}

impl TlsMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tls_reloads",
            "Certificate sets loaded after their files changed",
            self.reloads.clone(),
        );
        registry.register(
            "tls_reload_failures",
            "Changed certificate files that did not load (the previous set stays in use)",
            self.reload_failures.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "Connections closed because their TLS handshake failed or timed out",
            self.handshake_failures.clone(),
        );
        registry.register(
            "tls_cert_not_after_seconds",
            "Expiry of the certificate in use, in seconds since the Unix epoch",
            self.cert_not_after.clone(),
        );
    }
}

/// The process's TLS settings, as rustls configs per listener kind, kept current with the
/// files they came from.
#[derive(Debug)]
pub struct ServerTls {
    files: Files,
    check_every: Duration,
    state: Mutex<State>,
    metrics: TlsMetrics,
    principal: PrincipalRule,
}

#[derive(Debug, Clone)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    ca: Option<PathBuf>,
    client_auth: ClientAuth,
}

impl Files {
    fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![self.cert.as_path(), self.key.as_path()];
        paths.extend(self.ca.as_deref());
        paths
    }
}

/// A file's modification time and length: a change of either means it was rewritten.
type Stamp = Option<(SystemTime, u64)>;

#[derive(Debug)]
struct State {
    configs: Configs,
    stamps: Vec<Stamp>,
    checked: Instant,
}

#[derive(Debug, Clone)]
struct Configs {
    grpc: Arc<rustls::ServerConfig>,
    http: Arc<rustls::ServerConfig>,
    bare: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// The process's TLS, or `None` when `[tls]` names no certificate. Every file must load
    /// now: a process never starts with TLS it cannot serve.
    pub fn from_config(section: &TlsSection) -> Result<Option<Arc<Self>>, TlsError> {
        if !section.enabled() {
            if section.client_auth != ClientAuth::None {
                return Err(TlsError::Incomplete(
                    "client_auth asks for client certificates, but TLS is off: set [tls] cert and key (--tls-cert, --tls-key)".into(),
                ));
            }
            return Ok(None);
        }
        let (Some(cert), Some(key)) = (&section.cert, &section.key) else {
            return Err(TlsError::Incomplete(
                "[tls] needs both cert and key (--tls-cert, --tls-key)".into(),
            ));
        };
        if section.client_auth != ClientAuth::None && section.ca.is_none() {
            return Err(TlsError::Incomplete(
                "client_auth asks for client certificates; set [tls] ca (--tls-ca) to the CA they must chain to".into(),
            ));
        }
        let files = Files {
            cert: cert.clone(),
            key: key.clone(),
            ca: section.ca.clone(),
            client_auth: section.client_auth,
        };
        let metrics = TlsMetrics::default();
        let stamps = stamps(&files);
        let (configs, not_after) = load(&files)?;
        metrics.cert_not_after.set(not_after);
        Ok(Some(Arc::new(Self {
            files,
            check_every: CHECK_EVERY,
            state: Mutex::new(State {
                configs,
                stamps,
                checked: Instant::now(),
            }),
            metrics,
            principal: section.principal,
        })))
    }

    /// Looks at the files on every call (tests, which rewrite them and connect at once).
    pub fn checking_always(mut self: Arc<Self>) -> Arc<Self> {
        if let Some(this) = Arc::get_mut(&mut self) {
            this.check_every = Duration::ZERO;
        }
        self
    }

    /// Which name of a client certificate is the principal.
    pub fn principal_rule(&self) -> PrincipalRule {
        self.principal
    }

    pub fn metrics(&self) -> &TlsMetrics {
        &self.metrics
    }

    /// The config a new connection of a listener of `kind` is served with, reloading it
    /// first when the files changed since the last look.
    pub fn config(&self, kind: Alpn) -> Arc<rustls::ServerConfig> {
        let mut state = self.state.lock().expect("TLS state poisoned");
        if state.checked.elapsed() >= self.check_every {
            state.checked = Instant::now();
            let now = stamps(&self.files);
            if now != state.stamps {
                state.stamps = now;
                match load(&self.files) {
                    Ok((configs, not_after)) => {
                        state.configs = configs;
                        self.metrics.reloads.inc();
                        self.metrics.cert_not_after.set(not_after);
                        tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                    }
                    Err(e) => {
                        self.metrics.reload_failures.inc();
                        tracing::warn!(error = %e, "changed TLS files do not load; the previous certificate stays in use");
                    }
                }
            }
        }
        let configs = &state.configs;
        match kind {
            Alpn::Grpc => configs.grpc.clone(),
            Alpn::Http => configs.http.clone(),
            Alpn::None => configs.bare.clone(),
        }
    }
}

fn stamps(files: &Files) -> Vec<Stamp> {
    files
        .paths()
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

fn load(files: &Files) -> Result<(Configs, i64), TlsError> {
    let chain = read_certs("certificate", &files.cert)?;
    let key = read_key(&files.key)?;
    let not_after = crate::principal::not_after(&chain[0]).unwrap_or(0);
    let verifier = client_verifier(files)?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Pair {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Pair {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    // Our suite order, not the client's: clients list AES-256 first, and what a server
    // encrypts is every byte it serves.
    let mut config = config;
    config.ignore_client_order = true;
    let with_alpn = |protocols: &[&[u8]]| {
        let mut c = config.clone();
        c.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Arc::new(c)
    };
    let configs = Configs {
        grpc: with_alpn(&[b"h2"]),
        http: with_alpn(&[b"h2", b"http/1.1"]),
        bare: Arc::new(config),
    };
    Ok((configs, not_after))
}

fn client_verifier(files: &Files) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let Some(ca) = files
        .ca
        .as_ref()
        .filter(|_| files.client_auth != ClientAuth::None)
    else {
        return Ok(WebPkiClientVerifier::no_client_auth());
    };
    let roots = roots(ca)?;
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
    let builder = match files.client_auth {
        ClientAuth::Optional => builder.allow_unauthenticated(),
        ClientAuth::Required | ClientAuth::None => builder,
    };
    builder.build().map_err(|e| TlsError::ClientCa {
        path: ca.clone(),
        reason: e.to_string(),
    })
}

/// The certificates of the PEM bundle at `path`, as trust anchors.
pub(crate) fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("CA bundle", path)? {
        roots.add(cert).map_err(|e| TlsError::ClientCa {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

pub(crate) fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certs(what, path, &read(what, path)?)
}

/// The certificates in `bytes`, read from `path` (named in errors).
pub(crate) fn parse_certs(
    what: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    use rustls_pki_types::pem::PemObject as _;
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_owned(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    parse_key(path, &read("private key", path)?)
}

/// The private key in `bytes`, read from `path` (named in errors).
pub(crate) fn parse_key(path: &Path, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    use rustls_pki_types::pem::{Error, PemObject as _};
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| match e {
        Error::NoItemsFound => TlsError::Empty {
            what: "private key",
            path: path.to_owned(),
            expected: "PRIVATE KEY",
        },
        // The key's bytes never reach an error message.
        _ => TlsError::Pem {
            what: "private key",
            path: path.to_owned(),
            reason: "not a readable PEM private key (PKCS#8, PKCS#1 or SEC1)".into(),
        },
    })
}

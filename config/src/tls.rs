//! `[tls]`: one certificate for every listener of a process, and the cluster's CA.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[tls]`: off while `cert` and `key` are unset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain every listener of this process presents.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM bundle of the cluster's CA: trusted when this process dials other Strata servers,
    /// and what client certificates must chain to when `client_auth` asks for them.
    pub ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
    pub principal: PrincipalRule,
    /// Serve the health and metrics endpoints over TLS too.
    pub http: bool,
}

impl TlsSection {
    /// TLS is on when the process has a certificate to present.
    pub fn enabled(&self) -> bool {
        self.cert.is_some() || self.key.is_some()
    }
}

/// Whether listeners ask clients for a certificate (mTLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Never asked for.
    None,
    /// Checked against `ca` when offered; a client without one is anonymous.
    Optional,
    /// A client without a certificate that chains to `ca` is refused during the handshake.
    Required,
}

/// Which name of a client certificate becomes the principal `User:<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalRule {
    /// The subject's common name.
    Cn,
    /// The first DNS name, else e-mail address, else URI of the subject alternative names.
    San,
}

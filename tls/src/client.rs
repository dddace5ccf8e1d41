//! The client side: what a Strata server trusts and presents when it dials another.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use strata_config::TlsSection;

use crate::TlsError;
use crate::server::{parse_certs, parse_key, read};

/// Trust anchors and an optional client identity, as PEM, checked when built.
#[derive(Clone)]
pub struct ClientTls {
    ca: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// Never prints the key.
impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_bytes", &self.ca.len())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

impl ClientTls {
    /// Trusts the CA bundle at `ca`; presents `cert` and `key` when both are given.
    pub fn from_files(
        ca: &Path,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let ca_pem = read("CA bundle", ca)?;
        parse_certs("CA bundle", ca, &ca_pem)?;
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => {
                let (_, chain_pem, key_pem) = identity(cert, key)?;
                Some((chain_pem, key_pem))
            }
            (None, None) => None,
            _ => {
                return Err(TlsError::Incomplete(
                    "a client certificate needs both --tls-cert and --tls-key".into(),
                ));
            }
        };
        Ok(Self {
            ca: ca_pem,
            identity,
        })
    }

    /// How a server of the cluster dials brokers: over TLS when it has TLS itself, trusting
    /// `[tls] ca` (else the last certificate of its own chain, its issuer's root when the
    /// file carries it or itself when self-signed) and presenting its own pair, so brokers
    /// that require client certificates admit it.
    pub fn for_cluster(section: &TlsSection) -> Result<Option<Self>, TlsError> {
        let (Some(cert), Some(key)) = (&section.cert, &section.key) else {
            return Ok(None);
        };
        if let Some(ca) = &section.ca {
            return Self::from_files(ca, Some(cert), Some(key)).map(Some);
        }
        let (chain, chain_pem, key_pem) = identity(cert, key)?;
        let last = chain.last().expect("parse_certs returns at least one");
        Ok(Some(Self {
            ca: pem("CERTIFICATE", last.as_ref()).into_bytes(),
            identity: Some((chain_pem, key_pem)),
        }))
    }

    /// The PEM trust anchors.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca
    }

    /// The PEM certificate chain and key presented, if any.
    pub fn identity_pem(&self) -> Option<(&[u8], &[u8])> {
        self.identity
            .as_ref()
            .map(|(c, k)| (c.as_slice(), k.as_slice()))
    }

    /// A rustls client config with these anchors and identity.
    pub fn rustls(&self) -> Result<std::sync::Arc<rustls::ClientConfig>, TlsError> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &'static str, e: &dyn std::fmt::Display| TlsError::Pem {
            what,
            path: "(in memory)".into(),
            reason: e.to_string(),
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca) {
            let cert = cert.map_err(|e| bad("CA bundle", &e))?;
            roots.add(cert).map_err(|e| bad("CA bundle", &e))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("CA bundle", &e))?
            .with_root_certificates(roots);
        let config = match &self.identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad("certificate", &e))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|_| bad("private key", &"not a readable PEM private key"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad("certificate", &e))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(std::sync::Arc::new(config))
    }

    /// A gRPC endpoint for the Strata server at `addr` (`host:port`): `https://` with this
    /// trust and identity, or `http://` without TLS.
    pub fn endpoint(
        addr: &str,
        tls: Option<&Self>,
    ) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
        match tls {
            Some(tls) => tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
                .tls_config(tls.tonic()),
            None => tonic::transport::Endpoint::from_shared(format!("http://{addr}")),
        }
    }

    /// For a tonic channel to an `https://` endpoint.
    pub fn tonic(&self) -> tonic::transport::ClientTlsConfig {
        let config = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca));
        match &self.identity {
            Some((cert, key)) => config.identity(tonic::transport::Identity::from_pem(cert, key)),
            None => config,
        }
    }
}

/// A certificate chain, parsed and as PEM, and its PEM key.
type Identity = (Vec<CertificateDer<'static>>, Vec<u8>, Vec<u8>);

/// The chain at `cert` (parsed, and as PEM) and the PEM key at `key`, each read once and
/// checked.
fn identity(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let chain_pem = read("certificate", cert)?;
    let chain = parse_certs("certificate", cert, &chain_pem)?;
    let key_pem = read("private key", key)?;
    parse_key(key, &key_pem)?;
    Ok((chain, chain_pem, key_pem))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

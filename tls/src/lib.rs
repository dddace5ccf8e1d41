//! TLS for every Strata listener and client.
//!
//! One [`ServerTls`] per process serves all of its listeners: it re-reads the certificate,
//! key and CA files within a second of a change, so a rotation needs no restart, and keeps
//! the last good set when a new one does not load. [`Incoming`] turns a TCP listener into a
//! stream of connections, TLS or not, whose handshakes run beside each other so a slow client
//! holds up no other; tonic serves it through `serve_with_incoming`, axum through
//! [`HttpListener`], and the Kafka listener reads it directly. A client certificate, when the
//! listener asks for one, names the connection's principal ([`Peer::principal`]).
//!
//! rustls runs on aws-lc-rs, the provider object_store's HTTP client already links.

mod admit;
mod client;
mod error;
mod incoming;
mod principal;
mod server;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

pub use admit::AdmitOnly;
pub use client::ClientTls;
pub use error::TlsError;
pub use incoming::{Alpn, Conn, HttpListener, Incoming, Peer};
pub use server::{ServerTls, TlsMetrics};

/// The principal the first certificate of the PEM chain at `path` names under `rule`: who a
/// process is to the servers it dials with that certificate.
pub fn certificate_principal(
    path: &std::path::Path,
    rule: strata_config::PrincipalRule,
) -> Result<Option<String>, TlsError> {
    let chain = server::read_certs("certificate", path)?;
    Ok(chain
        .first()
        .and_then(|leaf| principal::principal(leaf, rule)))
}

/// The crypto provider every config of this crate is built with; chosen explicitly, since a
/// process that links both aws-lc-rs and ring has no default. AES-128-GCM comes first: on
/// CPUs with AES instructions it is the cheapest suite (10 rounds to AES-256's 14), and a
/// broker's or proxy's TLS cost is almost all bulk encryption of record batches.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| !is_aes_128_gcm(suite.suite()));
    Arc::new(provider)
}

fn is_aes_128_gcm(suite: rustls::CipherSuite) -> bool {
    matches!(
        suite,
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
            | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn aes_128_gcm_is_preferred_and_nothing_is_dropped() {
        let provider = super::provider();
        let default = rustls::crypto::aws_lc_rs::default_provider();
        assert_eq!(
            provider.cipher_suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        assert_eq!(provider.cipher_suites.len(), default.cipher_suites.len());
    }
}

//! TLS to the proxies: the CA to trust and, for mTLS, the client's certificate.

use std::path::Path;

use crate::error::{Error, Result};

/// What a [`Connection`](crate::Connection) trusts and presents over TLS. With it, addresses
/// without a scheme are dialled as `https://`.
///
/// ```no_run
/// # async fn example() -> strata_client::Result<()> {
/// use strata_client::{Connection, Tls};
/// let tls = Tls::from_files("ca.crt", Some(("client.crt", "client.key")))?;
/// let connection = Connection::connect_with_tls("proxy.strata.svc:7070", Some(tls)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Tls {
    ca: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// Never prints the key.
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("client_certificate", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Trusts the PEM CA bundle `ca`; presents the PEM certificate and key `identity` when
    /// given (mTLS).
    pub fn from_pem(ca: Vec<u8>, identity: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        Self { ca, identity }
    }

    /// [`Tls::from_pem`] with the PEM read from files.
    pub fn from_files(
        ca: impl AsRef<Path>,
        identity: Option<(impl AsRef<Path>, impl AsRef<Path>)>,
    ) -> Result<Self> {
        let read = |what: &str, path: &Path| {
            let bytes = std::fs::read(path).map_err(|e| {
                Error::InvalidConfig(format!("cannot read the {what} {}: {e}", path.display()))
            })?;
            if !bytes.starts_with(b"-----BEGIN")
                && !String::from_utf8_lossy(&bytes).contains("-----BEGIN")
            {
                return Err(Error::InvalidConfig(format!(
                    "the {what} {} is not PEM (-----BEGIN ...-----)",
                    path.display()
                )));
            }
            Ok(bytes)
        };
        let ca = read("CA bundle", ca.as_ref())?;
        let identity = match identity {
            Some((cert, key)) => Some((
                read("client certificate", cert.as_ref())?,
                read("client key", key.as_ref())?,
            )),
            None => None,
        };
        Ok(Self { ca, identity })
    }

    pub(crate) fn tonic(&self) -> tonic::transport::ClientTlsConfig {
        let config = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca));
        match &self.identity {
            Some((cert, key)) => config.identity(tonic::transport::Identity::from_pem(cert, key)),
            None => config,
        }
    }
}

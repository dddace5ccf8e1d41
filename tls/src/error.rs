use std::path::PathBuf;

/// What stops a TLS setting from being used; each names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {} holds no PEM {expected}; give a PEM file (-----BEGIN {expected}-----)", path.display())]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{what} {} is not valid PEM: {reason}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("the certificate {} and the key {} do not make a usable pair: {source}", cert.display(), key.display())]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("the CA {} cannot verify client certificates: {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },
    #[error("incomplete TLS settings: {0}")]
    Incomplete(String),
}

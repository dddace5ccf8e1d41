//! The proxy's errors, each with the wire code clients see.

use strata_log::LogError;
use strata_meta::MetaError;
use strata_meta::schema::BadValue;
use strata_proto::{Coded, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request was refused for a reason the client can act on; `code` says which.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    #[error("metadata store: {0}")]
    Meta(#[from] MetaError),
    #[error(transparent)]
    BadValue(#[from] BadValue),
    #[error("reading the log: {0}")]
    Log(#[from] LogError),
    #[error(transparent)]
    Catalog(#[from] strata_catalog::CatalogError),
}

impl ProxyError {
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }
}

impl Coded for ProxyError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Refused { code, .. } => *code,
            Self::Meta(e) => e.code(),
            Self::BadValue(e) => e.code(),
            Self::Log(e) => e.code(),
            Self::Catalog(e) => e.code(),
        }
    }
}

impl From<(ErrorCode, String)> for ProxyError {
    fn from((code, message): (ErrorCode, String)) -> Self {
        Self::Refused { code, message }
    }
}

pub type Result<T, E = ProxyError> = std::result::Result<T, E>;

//! The proxy's errors, each with the wire code clients see.

use strata_log::LogError;
use strata_meta::MetaError;
use strata_meta::schema::BadValue;
use strata_proto::{ErrorCode, v1};

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

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Refused { code, .. } => *code,
            Self::Meta(MetaError::InvalidArgument(_)) => ErrorCode::InvalidArgument,
            Self::Meta(_) => ErrorCode::Unavailable,
            Self::BadValue(_) => ErrorCode::Internal,
            Self::Log(LogError::OffsetOutOfRange { .. }) => ErrorCode::OffsetOutOfRange,
            Self::Log(_) => ErrorCode::Unavailable,
            Self::Catalog(e) => e.code(),
        }
    }

    pub fn to_wire(&self) -> v1::Error {
        v1::Error::new(self.code(), self.to_string())
    }
}

impl From<(ErrorCode, String)> for ProxyError {
    fn from((code, message): (ErrorCode, String)) -> Self {
        Self::Refused { code, message }
    }
}

pub type Result<T, E = ProxyError> = std::result::Result<T, E>;

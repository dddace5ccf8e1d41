//! The SDK's one error type.

use strata_proto::ErrorCode;

/// Everything a Strata client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the request; `code` says why (see [`ErrorCode`]).
    #[error("{code}: {message}")]
    Server {
        /// The stable wire code clients match on.
        code: ErrorCode,
        /// What went wrong and what to do, in words.
        message: String,
    },
    /// The server could not be reached or the call broke off.
    #[error("cannot reach {server}: {message}; is a proxy (or `strata standalone`) running there?")]
    Connect {
        /// The address dialled.
        server: String,
        /// Why it failed.
        message: String,
    },
    /// A gRPC call failed below Strata's own error codes.
    #[error("gRPC call failed: {0}")]
    Transport(#[from] tonic::Status),
    /// A setting or argument is not valid; the message names it.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The operation did not finish in time.
    #[error("timed out after {0:?}: {1}")]
    Timeout(std::time::Duration, String),
    /// The producer's buffer stayed full for longer than `max_block`.
    #[error("the producer's buffer ({0} bytes) stayed full; slow down or raise buffer_memory")]
    BufferFull(usize),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// A record batch could not be encoded or decoded.
    #[error("record batch: {0}")]
    Codec(#[from] strata_storage::StorageError),
}

impl Error {
    /// Builds a server error from its wire form.
    pub fn from_wire(e: &strata_proto::v1::Error) -> Self {
        Self::Server {
            code: e.error_code().unwrap_or(ErrorCode::Internal),
            message: e.message.clone(),
        }
    }

    /// The server's error code, if the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again (after a pause) can succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Server { code, .. } => code.is_retriable(),
            Self::Connect { .. } | Self::Timeout(..) => true,
            Self::Transport(status) => matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::Unknown
                    | tonic::Code::Cancelled
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Aborted
                    | tonic::Code::ResourceExhausted
            ),
            _ => false,
        }
    }
}

/// Result with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns an optional wire error into a `Result`.
pub(crate) fn check(error: Option<strata_proto::v1::Error>) -> Result<()> {
    match error {
        Some(e) => Err(Error::from_wire(&e)),
        None => Ok(()),
    }
}

//! The SDK's one error type.

use strata_proto::ErrorCode;

/// Everything a Strata client call can fail with.
///
/// ```no_run
/// # async fn example(admin: &strata_client::Admin) {
/// use strata_client::{Error, ErrorCode};
/// match admin.describe_topic("missing").await {
///     Err(Error::Server { code: ErrorCode::UnknownTopic, .. }) => println!("create it first"),
///     Err(e) if e.is_retriable() => println!("try again: {e}"),
///     Err(e) => println!("failed: {e}"),
///     Ok(topic) => println!("{} partitions", topic.partitions.len()),
/// }
/// # }
/// ```
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
    Codec(#[from] strata_format::FormatError),
}

impl Error {
    /// Builds a server error from its wire form.
    ///
    /// ```
    /// use strata_client::{Error, ErrorCode};
    /// let wire = strata_proto::v1::Error {
    ///     code: "UNKNOWN_TOPIC".into(),
    ///     message: "topic `t` does not exist".into(),
    /// };
    /// assert_eq!(Error::from_wire(&wire).code(), Some(ErrorCode::UnknownTopic));
    /// ```
    pub fn from_wire(e: &strata_proto::v1::Error) -> Self {
        Self::Server {
            code: e.error_code().unwrap_or(ErrorCode::Internal),
            message: e.message.clone(),
        }
    }

    /// The server's error code, if the server answered with one.
    ///
    /// ```
    /// let e = strata_client::Error::InvalidConfig("linger".into());
    /// assert_eq!(e.code(), None);
    /// ```
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again (after a pause) can succeed.
    ///
    /// ```
    /// use strata_client::Error;
    /// assert!(Error::Timeout(std::time::Duration::from_secs(1), "fetch".into()).is_retriable());
    /// assert!(!Error::InvalidConfig("max_poll_records must be at least 1".into()).is_retriable());
    /// ```
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

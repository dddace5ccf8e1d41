//! Why a connection or a request failed before a handler could answer it.

use strata_proto::{Coded, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error(
        "request of {size} bytes is over the limit of {limit} bytes; raise --kafka-max-request-bytes or send smaller batches"
    )]
    FrameTooLarge { size: usize, limit: usize },
    #[error(
        "request frame has a negative length ({0}); the peer does not speak the Kafka protocol"
    )]
    NegativeLength(i32),
    #[error("request is shorter than its header ({0} bytes)")]
    Truncated(usize),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("cannot decode {api} v{version}: {reason}")]
    Decode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    #[error("cannot encode the {api} v{version} response: {reason}")]
    Encode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    #[cfg(feature = "server")]
    #[error("metadata store: {0}")]
    Meta(#[from] strata_meta::MetaError),
    #[cfg(feature = "server")]
    #[error(transparent)]
    BadValue(#[from] strata_meta::schema::BadValue),
    #[error(
        "{api} before SASL authentication: this listener requires SASL; set security.protocol=SASL_PLAINTEXT (or SASL_SSL) and a mechanism it offers"
    )]
    Unauthenticated { api: &'static str },
    #[error("SASL authentication failed: {0}")]
    AuthenticationFailed(String),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
}

impl Coded for KafkaError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::FrameTooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::NegativeLength(_)
            | Self::Truncated(_)
            | Self::UnknownApi(_)
            | Self::Decode { .. } => ErrorCode::InvalidArgument,
            Self::Encode { .. } => ErrorCode::Internal,
            Self::Unauthenticated { .. } | Self::AuthenticationFailed(_) => {
                ErrorCode::Unauthenticated
            }
            #[cfg(feature = "server")]
            Self::Meta(e) => e.code(),
            #[cfg(feature = "server")]
            Self::BadValue(e) => e.code(),
            Self::Io(_) => ErrorCode::Unavailable,
        }
    }
}

pub type Result<T, E = KafkaError> = std::result::Result<T, E>;

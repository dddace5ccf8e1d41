use strata_proto::{Coded, ErrorCode};

/// What a SASL message or credential can be wrong with.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    /// A client's message does not follow its mechanism.
    #[error("malformed {mechanism} message: {reason}")]
    Malformed {
        mechanism: &'static str,
        reason: String,
    },
    /// A credential a login could not use safely.
    #[error("{0}")]
    InvalidCredential(String),
}

impl Coded for SaslError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }
}

pub type Result<T, E = SaslError> = std::result::Result<T, E>;

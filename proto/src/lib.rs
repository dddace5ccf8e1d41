//! Strata's wire contracts: the gRPC services (package `strata.v1`, compiled from the `.proto`
//! files beside this crate) and the error codes every API speaks.
//!
//! The gRPC code is the default feature `grpc`. Without it the crate is the error codes, the
//! [`Coded`] trait and the consumer protocol, with no tonic, prost or tokio: what the sans-io
//! format crate and the other bottom crates need to give their errors codes.

#[cfg(feature = "grpc")]
pub mod codec;
mod coded;
pub mod consumer_protocol;
mod error_code;

pub use coded::Coded;
pub use error_code::ErrorCode;

/// Generated code of package `strata.v1`.
#[cfg(feature = "grpc")]
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod v1 {
    tonic::include_proto!("strata.v1");
}

#[cfg(feature = "grpc")]
impl v1::Error {
    /// The wire form of an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_owned(),
            message: message.into(),
        }
    }

    /// The code, if this build knows it.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.code.parse().ok()
    }
}

/// The gRPC metadata key that carries a failed call's [`ErrorCode`].
#[cfg(feature = "grpc")]
pub const ERROR_CODE_METADATA: &str = "strata-error-code";

/// Maps an error code to a gRPC status, with the code in the `strata-error-code` metadata.
/// For requests refused by the server's own checks; errors of a [`Coded`] type use
/// [`Coded::to_status`].
#[cfg(feature = "grpc")]
pub fn status(code: ErrorCode, message: impl Into<String>) -> tonic::Status {
    let mut status = tonic::Status::new(tonic::Code::from_i32(code.grpc_code()), message);
    status.metadata_mut().insert(
        ERROR_CODE_METADATA,
        tonic::metadata::MetadataValue::from_static(code.as_str()),
    );
    status
}

/// The Strata code a failed call carries, if the server sent one this build knows.
#[cfg(feature = "grpc")]
pub fn code_of_status(status: &tonic::Status) -> Option<ErrorCode> {
    status
        .metadata()
        .get(ERROR_CODE_METADATA)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[cfg(all(test, feature = "grpc"))]
mod tests {
    use super::*;

    struct Lost;

    impl std::fmt::Display for Lost {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the partition moved; refresh routing and retry")
        }
    }

    impl Coded for Lost {
        fn code(&self) -> ErrorCode {
            ErrorCode::NotLeader
        }
    }

    #[test]
    fn a_coded_errors_status_carries_its_code() {
        let status = Lost.to_status();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), Lost.to_string());
        assert_eq!(
            status.metadata().get(ERROR_CODE_METADATA).unwrap(),
            "NOT_LEADER"
        );
        assert_eq!(code_of_status(&status), Some(ErrorCode::NotLeader));
        assert_eq!(
            code_of_status(&tonic::Status::unavailable("connection refused")),
            None
        );
    }

    #[test]
    fn a_coded_errors_wire_form_keeps_code_and_message() {
        let wire = Lost.to_wire();
        assert_eq!(wire.error_code(), Some(ErrorCode::NotLeader));
        assert_eq!(wire.message, Lost.to_string());
        assert!(Lost.is_retriable());
    }
}

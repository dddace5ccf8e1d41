//! Strata's wire contracts: the gRPC services (package `strata.v1`, compiled from the `.proto`
//! files beside this crate) and the error codes every API speaks.

pub mod consumer_protocol;
mod error_code;

pub use error_code::ErrorCode;

/// Generated code of package `strata.v1`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod v1 {
    tonic::include_proto!("strata.v1");
}

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

/// Maps an error code to a gRPC status, with the code in the `strata-error-code` metadata.
pub fn status(code: ErrorCode, message: impl Into<String>) -> tonic::Status {
    let mut status = tonic::Status::new(tonic::Code::from_i32(code.grpc_code()), message);
    if let Ok(value) = code.as_str().parse() {
        status.metadata_mut().insert("strata-error-code", value);
    }
    status
}

//! Errors that know their wire code.

use std::fmt;

use crate::ErrorCode;

/// An error that knows its wire code, so every API answers it the same way.
///
/// Each error type implements this once, in its own crate; an error that wraps another
/// delegates to the wrapped one's code instead of mapping it again. Retriability, the wire form
/// and the gRPC status all follow from the code.
pub trait Coded: fmt::Display {
    fn code(&self) -> ErrorCode;

    /// Whether the same request can succeed later.
    fn is_retriable(&self) -> bool {
        self.code().is_retriable()
    }

    /// The error as an answer's `error` field.
    #[cfg(feature = "grpc")]
    fn to_wire(&self) -> crate::v1::Error {
        crate::v1::Error::new(self.code(), self.to_string())
    }

    /// The error as a failed call, with its code in the `strata-error-code` metadata.
    #[cfg(feature = "grpc")]
    fn to_status(&self) -> tonic::Status {
        crate::status(self.code(), self.to_string())
    }
}

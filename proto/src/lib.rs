//! Strata's wire contracts: the error codes every API speaks. The gRPC services (`.proto`
//! files, package `strata.v1`) join this crate with the broker and the proxy.

mod error_code;

pub use error_code::ErrorCode;

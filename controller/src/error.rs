use strata_catalog::CatalogError;
use strata_meta::MetaError;
use strata_proto::{Coded, ErrorCode};

/// Everything the controller and its admin API can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// An admin operation or an assignment change refused or failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The election or the watches failed.
    #[error("metadata store: {0}")]
    Meta(#[from] MetaError),
}

impl Coded for ControllerError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Catalog(e) => e.code(),
            Self::Meta(e) => e.code(),
        }
    }
}

pub type Result<T, E = ControllerError> = std::result::Result<T, E>;

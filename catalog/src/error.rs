use strata_meta::MetaError;
use strata_meta::schema::{BadValue, InvalidName};
use strata_proto::{Coded, ErrorCode};

/// Everything a catalog operation can refuse or fail at. The messages name the admin REST
/// routes that help, and the proxy passes them on to SDK users unchanged.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error("topic `{0}` does not exist; list topics with GET /v1/topics")]
    UnknownTopic(String),
    #[error("topic `{0}` already exists")]
    TopicExists(String),
    #[error("topic `{topic}` has {count} partitions; partition {partition} does not exist")]
    UnknownPartition {
        topic: String,
        partition: u32,
        count: u32,
    },
    #[error(
        "broker `{0}` is not registered (never started, or its lease expired); list brokers with GET /v1/brokers"
    )]
    UnknownBroker(String),
    #[error(
        "broker `{0}` is draining and takes no partitions; undrain it first (DELETE /v1/brokers/{0}/drain)"
    )]
    BrokerDraining(String),
    #[error("no broker can take partitions: {0}")]
    NoBrokers(String),
    #[error(
        "consumer group `{0}` does not exist (no member ever joined it or committed); list groups with GET /v1/groups"
    )]
    UnknownGroup(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("token `{0}` does not exist (never made, or revoked); list tokens with GET /v1/tokens")]
    UnknownToken(String),
    #[error("a concurrent change won the race ({0}); read the current state and retry")]
    Conflict(String),
    #[error(transparent)]
    BadValue(#[from] BadValue),
    #[error(transparent)]
    Sasl(#[from] strata_sasl::SaslError),
    #[error("metadata store: {0}")]
    Meta(#[from] MetaError),
}

impl Coded for CatalogError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::InvalidName(e) => e.code(),
            Self::UnknownTopic(_) => ErrorCode::UnknownTopic,
            Self::TopicExists(_) => ErrorCode::TopicExists,
            Self::UnknownPartition { .. } => ErrorCode::UnknownPartition,
            Self::UnknownBroker(_) => ErrorCode::UnknownBroker,
            Self::UnknownGroup(_) => ErrorCode::UnknownGroup,
            Self::BrokerDraining(_) | Self::NoBrokers(_) => ErrorCode::BrokerUnavailable,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Self::UnknownToken(_) => ErrorCode::UnknownToken,
            Self::BadValue(e) => e.code(),
            Self::Sasl(e) => e.code(),
            Self::Meta(e) => e.code(),
        }
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

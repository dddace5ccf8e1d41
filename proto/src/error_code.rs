use std::fmt;
use std::str::FromStr;

/// One error code for every Strata API. The REST API returns it as `error.code`, gRPC as the
/// `strata-error-code` metadata beside the mapped status. Codes are stable: clients match on
/// them, so never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or a value is out of range.
    InvalidArgument,
    /// The topic does not exist.
    UnknownTopic,
    /// The partition does not exist in the topic.
    UnknownPartition,
    /// The broker is not registered (or its lease expired).
    UnknownBroker,
    /// The consumer group does not exist.
    UnknownGroup,
    /// The topic already exists.
    TopicExists,
    /// The target broker cannot take partitions (dead or draining).
    BrokerUnavailable,
    /// This broker does not (or no longer) own the partition; refresh routing and retry.
    NotLeader,
    /// The writer's epoch is stale: it was fenced by a newer owner.
    Fenced,
    /// A concurrent change won; re-read and retry.
    Conflict,
    /// The offset is outside the partition's log.
    OffsetOutOfRange,
    /// The record batch is corrupt (bad CRC, lengths, magic).
    CorruptMessage,
    /// The record batch exceeds the configured limit.
    MessageTooLarge,
    /// Buffers are full; retry after a short wait.
    Throttled,
    /// A dependency (metadata store, storage) is unavailable; retry.
    Unavailable,
    /// A bug or an unexpected condition; the message says what happened.
    Internal,
    /// No such route or resource.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The group does not know this member (it left, or its session expired); join again.
    UnknownMember,
    /// The member's generation is not the group's; join again.
    IllegalGeneration,
    /// The group is rebalancing; join again to get the new assignment.
    RebalanceInProgress,
    /// The partition is not assigned to the member that tried to commit it.
    PartitionNotAssigned,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 22] = [
        Self::InvalidArgument,
        Self::UnknownTopic,
        Self::UnknownPartition,
        Self::UnknownBroker,
        Self::UnknownGroup,
        Self::TopicExists,
        Self::BrokerUnavailable,
        Self::NotLeader,
        Self::Fenced,
        Self::Conflict,
        Self::OffsetOutOfRange,
        Self::CorruptMessage,
        Self::MessageTooLarge,
        Self::Throttled,
        Self::Unavailable,
        Self::Internal,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::UnknownMember,
        Self::IllegalGeneration,
        Self::RebalanceInProgress,
        Self::PartitionNotAssigned,
    ];

    /// The stable wire name, e.g. `UNKNOWN_TOPIC`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::UnknownTopic => "UNKNOWN_TOPIC",
            Self::UnknownPartition => "UNKNOWN_PARTITION",
            Self::UnknownBroker => "UNKNOWN_BROKER",
            Self::UnknownGroup => "UNKNOWN_GROUP",
            Self::TopicExists => "TOPIC_EXISTS",
            Self::BrokerUnavailable => "BROKER_UNAVAILABLE",
            Self::NotLeader => "NOT_LEADER",
            Self::Fenced => "FENCED",
            Self::Conflict => "CONFLICT",
            Self::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            Self::CorruptMessage => "CORRUPT_MESSAGE",
            Self::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Self::Throttled => "THROTTLED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::UnknownMember => "UNKNOWN_MEMBER",
            Self::IllegalGeneration => "ILLEGAL_GENERATION",
            Self::RebalanceInProgress => "REBALANCE_IN_PROGRESS",
            Self::PartitionNotAssigned => "PARTITION_NOT_ASSIGNED",
        }
    }

    /// The HTTP status the REST API answers with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidArgument | Self::CorruptMessage => 400,
            Self::UnknownTopic
            | Self::UnknownPartition
            | Self::UnknownBroker
            | Self::UnknownGroup
            | Self::NotFound => 404,
            Self::TopicExists
            | Self::Conflict
            | Self::Fenced
            | Self::UnknownMember
            | Self::IllegalGeneration
            | Self::RebalanceInProgress
            | Self::PartitionNotAssigned => 409,
            Self::MethodNotAllowed => 405,
            Self::MessageTooLarge => 413,
            Self::OffsetOutOfRange | Self::BrokerUnavailable => 422,
            Self::Throttled => 429,
            Self::Internal => 500,
            Self::NotLeader | Self::Unavailable => 503,
        }
    }

    /// The gRPC status code number (`tonic::Code` as i32) the gRPC APIs answer with.
    pub fn grpc_code(self) -> i32 {
        // Numbers from the gRPC spec: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 6 ALREADY_EXISTS,
        // 8 RESOURCE_EXHAUSTED, 9 FAILED_PRECONDITION, 10 ABORTED, 11 OUT_OF_RANGE,
        // 12 UNIMPLEMENTED, 13 INTERNAL, 14 UNAVAILABLE.
        match self {
            Self::InvalidArgument | Self::CorruptMessage => 3,
            Self::UnknownTopic
            | Self::UnknownPartition
            | Self::UnknownBroker
            | Self::UnknownGroup
            | Self::NotFound => 5,
            Self::TopicExists => 6,
            Self::MessageTooLarge | Self::Throttled => 8,
            Self::BrokerUnavailable
            | Self::Fenced
            | Self::UnknownMember
            | Self::IllegalGeneration
            | Self::RebalanceInProgress
            | Self::PartitionNotAssigned => 9,
            Self::Conflict => 10,
            Self::OffsetOutOfRange => 11,
            Self::MethodNotAllowed => 12,
            Self::Internal => 13,
            Self::NotLeader | Self::Unavailable => 14,
        }
    }

    /// Whether a client should retry the same request (after refreshing routing).
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            Self::NotLeader | Self::Conflict | Self::Throttled | Self::Unavailable
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown error code `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), code);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn client_errors_are_4xx_and_retriable_ones_are_not() {
        for code in ErrorCode::ALL {
            let status = code.http_status();
            assert!((400..600).contains(&status));
            if code.is_retriable() {
                assert!(
                    matches!(status, 409 | 429 | 503),
                    "{code} retriable but {status}"
                );
            }
        }
        assert_eq!(ErrorCode::UnknownTopic.http_status(), 404);
        assert_eq!(ErrorCode::NotLeader.grpc_code(), 14);
    }
}

//! Kafka error codes, and the one Kafka code for each Strata code.
//!
//! Retriable Strata codes map to codes Kafka clients retry on their own (after refreshing
//! metadata), so a partition moving between brokers costs a Kafka producer latency, not errors,
//! as it does a gRPC one.

use strata_proto::ErrorCode;
use strata_proto::v1;

pub const NONE: i16 = 0;
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const INVALID_GROUP_ID: i16 = 24;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_CONFIG: i16 = 40;
pub const INVALID_REQUEST: i16 = 42;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const ILLEGAL_SASL_STATE: i16 = 34;
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
pub const RESOURCE_NOT_FOUND: i16 = 91;
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
pub const NON_EMPTY_GROUP: i16 = 68;
pub const GROUP_ID_NOT_FOUND: i16 = 69;
pub const UNKNOWN_TOPIC_ID: i16 = 100;
pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 119;

/// The Kafka code for a Strata code, in a data-path context (produce, fetch, offsets).
pub fn kafka_code(code: ErrorCode) -> i16 {
    match code {
        ErrorCode::InvalidArgument => INVALID_REQUEST,
        ErrorCode::UnknownTopic | ErrorCode::UnknownPartition => UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode::UnknownGroup => GROUP_ID_NOT_FOUND,
        ErrorCode::UnknownUser | ErrorCode::UnknownToken => RESOURCE_NOT_FOUND,
        ErrorCode::GroupNotEmpty => NON_EMPTY_GROUP,
        ErrorCode::TopicExists => TOPIC_ALREADY_EXISTS,
        // The partition has no live owner yet: retriable, as it is for gRPC clients.
        ErrorCode::BrokerUnavailable | ErrorCode::Unavailable | ErrorCode::Conflict => {
            LEADER_NOT_AVAILABLE
        }
        ErrorCode::NotLeader => NOT_LEADER_OR_FOLLOWER,
        ErrorCode::Fenced => INVALID_PRODUCER_EPOCH,
        ErrorCode::OffsetOutOfRange => OFFSET_OUT_OF_RANGE,
        ErrorCode::CorruptMessage => CORRUPT_MESSAGE,
        ErrorCode::MessageTooLarge => MESSAGE_TOO_LARGE,
        // Buffers full: Kafka producers retry a timed-out request without giving up.
        ErrorCode::Throttled => REQUEST_TIMED_OUT,
        ErrorCode::UnknownMember => UNKNOWN_MEMBER_ID,
        ErrorCode::IllegalGeneration => ILLEGAL_GENERATION,
        // Kafka does not check who commits; a commit by a member that no longer holds the
        // partition only happens across a rebalance, which the client recovers from by rejoining.
        ErrorCode::RebalanceInProgress | ErrorCode::PartitionNotAssigned => REBALANCE_IN_PROGRESS,
        ErrorCode::OutOfOrderSequence => OUT_OF_ORDER_SEQUENCE_NUMBER,
        ErrorCode::Unauthenticated => SASL_AUTHENTICATION_FAILED,
        // An ACL refusal in a data-path or topic call: the topic is what the caller lacks.
        // Group and cluster calls say so themselves ([`group_code`], CLUSTER_AUTHORIZATION_FAILED).
        ErrorCode::PermissionDenied => TOPIC_AUTHORIZATION_FAILED,
        ErrorCode::Internal
        | ErrorCode::NotFound
        | ErrorCode::MethodNotAllowed
        | ErrorCode::UnknownBroker => UNKNOWN_SERVER_ERROR,
    }
}

/// The Kafka code for a Strata code in a call about the cluster (users, ACLs, cluster and broker
/// settings, producer ids): there an ACL refusal is about the cluster.
pub fn cluster_code(code: ErrorCode) -> i16 {
    match code {
        ErrorCode::PermissionDenied => CLUSTER_AUTHORIZATION_FAILED,
        other => kafka_code(other),
    }
}

/// The Kafka code and message of an optional Strata error (an unparsable code is a server error).
pub fn of(error: Option<&v1::Error>) -> (i16, Option<String>) {
    match error {
        None => (NONE, None),
        Some(e) => (
            e.error_code().map_or(UNKNOWN_SERVER_ERROR, kafka_code),
            Some(e.message.clone()),
        ),
    }
}

/// In group calls an unavailable store means "coordinator not available": clients retry it.
pub fn group_code(error: Option<&v1::Error>) -> i16 {
    match error.and_then(v1::Error::error_code) {
        None if error.is_none() => NONE,
        Some(ErrorCode::Unavailable | ErrorCode::Conflict) => COORDINATOR_NOT_AVAILABLE,
        Some(ErrorCode::InvalidArgument) => INVALID_GROUP_ID,
        Some(ErrorCode::PermissionDenied) => GROUP_AUTHORIZATION_FAILED,
        Some(code) => kafka_code(code),
        None => UNKNOWN_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_retriable_strata_code_maps_to_a_code_kafka_clients_retry() {
        // Kafka's retriable codes among those used here.
        let kafka_retriable = [
            LEADER_NOT_AVAILABLE,
            NOT_LEADER_OR_FOLLOWER,
            REQUEST_TIMED_OUT,
        ];
        for code in ErrorCode::ALL.iter().filter(|c| c.is_retriable()) {
            assert!(
                kafka_retriable.contains(&kafka_code(*code)),
                "{code} maps to {}",
                kafka_code(*code)
            );
        }
    }
}

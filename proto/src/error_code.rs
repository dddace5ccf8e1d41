//! The wire error codes: every table about them comes from one row per code.

use std::fmt;
use std::str::FromStr;

/// Declares [`ErrorCode`] and every table about it from one row per code, so a new code is one
/// line and no table can miss it.
macro_rules! error_codes {
    ($(
        $(#[doc = $doc:literal])+
        $code:ident: $name:literal, http $http:literal, grpc $grpc:ident, retriable $retriable:literal;
    )+) => {
        /// One error code for every Strata API. The REST API returns it as `error.code`, gRPC as
        /// the `strata-error-code` metadata beside the mapped status. Codes are stable: clients
        /// match on them, so never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])+ $code,)+
        }

        impl ErrorCode {
            pub const ALL: [ErrorCode; [$(Self::$code),+].len()] = [$(Self::$code),+];

            /// The stable wire name, e.g. `UNKNOWN_TOPIC`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$code => $name,)+
                }
            }

            /// The HTTP status the REST API answers with.
            pub fn http_status(self) -> u16 {
                match self {
                    $(Self::$code => $http,)+
                }
            }

            fn grpc(self) -> Grpc {
                match self {
                    $(Self::$code => Grpc::$grpc,)+
                }
            }

            /// Whether a client should retry the same request (after refreshing routing).
            pub fn is_retriable(self) -> bool {
                match self {
                    $(Self::$code => $retriable,)+
                }
            }

            /// What the code means and what to do about it, in words.
            pub fn doc(self) -> &'static str {
                match self {
                    $(Self::$code => concat!($($doc),+).trim_ascii(),)+
                }
            }
        }
    };
}

error_codes! {
    /// The request is malformed or a value is out of range.
    InvalidArgument: "INVALID_ARGUMENT", http 400, grpc InvalidArgument, retriable false;
    /// The topic does not exist.
    UnknownTopic: "UNKNOWN_TOPIC", http 404, grpc NotFound, retriable false;
    /// The partition does not exist in the topic.
    UnknownPartition: "UNKNOWN_PARTITION", http 404, grpc NotFound, retriable false;
    /// The broker is not registered (or its lease expired).
    UnknownBroker: "UNKNOWN_BROKER", http 404, grpc NotFound, retriable false;
    /// The consumer group does not exist.
    UnknownGroup: "UNKNOWN_GROUP", http 404, grpc NotFound, retriable false;
    /// The SASL user does not exist.
    UnknownUser: "UNKNOWN_USER", http 404, grpc NotFound, retriable false;
    /// No bearer token has this id (never made, or revoked).
    UnknownToken: "UNKNOWN_TOKEN", http 404, grpc NotFound, retriable false;
    /// The consumer group has live members; stop its consumers (or wait for their sessions to
    /// end) first.
    GroupNotEmpty: "GROUP_NOT_EMPTY", http 409, grpc FailedPrecondition, retriable false;
    /// The topic already exists.
    TopicExists: "TOPIC_EXISTS", http 409, grpc AlreadyExists, retriable false;
    /// The target broker cannot take partitions (dead or draining).
    BrokerUnavailable: "BROKER_UNAVAILABLE", http 422, grpc FailedPrecondition, retriable false;
    /// This broker does not (or no longer) own the partition; refresh routing and retry.
    NotLeader: "NOT_LEADER", http 503, grpc Unavailable, retriable true;
    /// The writer's epoch is stale: it was fenced by a newer owner.
    Fenced: "FENCED", http 409, grpc FailedPrecondition, retriable false;
    /// A concurrent change won; re-read and retry.
    Conflict: "CONFLICT", http 409, grpc Aborted, retriable true;
    /// The offset is outside the partition's log.
    OffsetOutOfRange: "OFFSET_OUT_OF_RANGE", http 422, grpc OutOfRange, retriable false;
    /// The record batch is corrupt (bad CRC, lengths, magic).
    CorruptMessage: "CORRUPT_MESSAGE", http 400, grpc InvalidArgument, retriable false;
    /// The record batch exceeds the configured limit.
    MessageTooLarge: "MESSAGE_TOO_LARGE", http 413, grpc ResourceExhausted, retriable false;
    /// Buffers are full; retry after a short wait.
    Throttled: "THROTTLED", http 429, grpc ResourceExhausted, retriable true;
    /// A dependency (metadata store, storage) is unavailable; retry.
    Unavailable: "UNAVAILABLE", http 503, grpc Unavailable, retriable true;
    /// The caller did not prove who it is (no credentials, or wrong ones).
    Unauthenticated: "UNAUTHENTICATED", http 401, grpc Unauthenticated, retriable false;
    /// The caller is known but may not do this; the message names what it lacks.
    PermissionDenied: "PERMISSION_DENIED", http 403, grpc PermissionDenied, retriable false;
    /// A bug or an unexpected condition; the message says what happened.
    Internal: "INTERNAL", http 500, grpc Internal, retriable false;
    /// No such route or resource.
    NotFound: "NOT_FOUND", http 404, grpc NotFound, retriable false;
    /// The route exists but not with this method.
    MethodNotAllowed: "METHOD_NOT_ALLOWED", http 405, grpc Unimplemented, retriable false;
    /// The group does not know this member (it left, or its session expired); join again.
    UnknownMember: "UNKNOWN_MEMBER", http 409, grpc FailedPrecondition, retriable false;
    /// The member's generation is not the group's; join again.
    IllegalGeneration: "ILLEGAL_GENERATION", http 409, grpc FailedPrecondition, retriable false;
    /// The group is rebalancing; join again to get the new assignment.
    RebalanceInProgress: "REBALANCE_IN_PROGRESS", http 409, grpc FailedPrecondition, retriable false;
    /// The partition is not assigned to the member that tried to commit it.
    PartitionNotAssigned: "PARTITION_NOT_ASSIGNED", http 409, grpc FailedPrecondition, retriable false;
    /// An idempotent producer's batch skips or repeats sequence numbers the partition does not
    /// remember; restart the producer (a new session starts its sequences afresh).
    OutOfOrderSequence: "OUT_OF_ORDER_SEQUENCE", http 409, grpc FailedPrecondition, retriable false;
}

/// The gRPC status codes the table uses, numbered as in the gRPC spec: `tonic::Code` without
/// tonic, which the sans-io crates that read this table must not link.
#[derive(Debug, Clone, Copy)]
enum Grpc {
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
    PermissionDenied = 7,
}

impl ErrorCode {
    /// The gRPC status code number (`tonic::Code` as i32) the gRPC APIs answer with.
    pub fn grpc_code(self) -> i32 {
        self.grpc() as i32
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

    #[test]
    fn wire_names_are_the_variant_names_in_screaming_snake_case() {
        for code in ErrorCode::ALL {
            let mut expected = String::new();
            for (i, c) in format!("{code:?}").char_indices() {
                if c.is_ascii_uppercase() && i > 0 {
                    expected.push('_');
                }
                expected.push(c.to_ascii_uppercase());
            }
            assert_eq!(code.as_str(), expected);
        }
    }

    #[test]
    fn every_code_says_what_it_means() {
        for code in ErrorCode::ALL {
            let doc = code.doc();
            assert!(
                doc.ends_with('.') && !doc.starts_with(' '),
                "{code}: {doc:?}"
            );
        }
    }

    #[cfg(feature = "grpc")]
    #[test]
    fn grpc_numbers_are_tonics() {
        for code in ErrorCode::ALL {
            let tonic = tonic::Code::from_i32(code.grpc_code());
            assert_eq!(format!("{tonic:?}"), format!("{:?}", code.grpc()), "{code}");
        }
    }
}

//! How a failed command reaches the person who ran it: `error: ...`, its causes, a hint where
//! there is one, and an exit code a script can test. A backtrace only with `--debug` (or
//! `STRATA_LOG` at debug or trace): many Rust users keep `RUST_BACKTRACE` set, and thirty
//! frames under a refused topic name hide the one line that matters.

use std::process::ExitCode;

use strata_proto::{Coded, ErrorCode};

/// The exit codes, as `strata --help` lists them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  usage error (bad flags or settings), or a failure not listed below
  2  not found (topic, partition, group, broker)
  3  unavailable: a server could not be reached, or did not answer in time
  4  refused by the server: invalid request, conflict, or not allowed";

/// What kind of failure a command ended with; the discriminant is the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Usage = 1,
    NotFound = 2,
    Unavailable = 3,
    Refused = 4,
}

impl Failure {
    /// The kind of failure a server's error code means to the person who sent the request.
    pub fn of_code(code: ErrorCode) -> Failure {
        use ErrorCode as C;
        match code {
            C::UnknownTopic
            | C::UnknownPartition
            | C::UnknownBroker
            | C::UnknownGroup
            | C::UnknownUser
            | C::UnknownToken
            | C::NotFound => Failure::NotFound,
            C::Unavailable | C::NotLeader | C::Throttled => Failure::Unavailable,
            C::Internal => Failure::Usage,
            C::InvalidArgument
            | C::TopicExists
            | C::BrokerUnavailable
            | C::Fenced
            | C::Conflict
            | C::OffsetOutOfRange
            | C::CorruptMessage
            | C::MessageTooLarge
            | C::MethodNotAllowed
            | C::GroupNotEmpty
            | C::UnknownMember
            | C::IllegalGeneration
            | C::RebalanceInProgress
            | C::PartitionNotAssigned
            | C::OutOfOrderSequence
            | C::Unauthenticated
            | C::PermissionDenied => Failure::Refused,
        }
    }

    fn of_grpc(code: tonic::Code) -> Option<Failure> {
        use tonic::Code as G;
        match code {
            G::NotFound => Some(Failure::NotFound),
            G::Unavailable | G::DeadlineExceeded | G::Cancelled => Some(Failure::Unavailable),
            G::InvalidArgument
            | G::AlreadyExists
            | G::FailedPrecondition
            | G::OutOfRange
            | G::PermissionDenied
            | G::Unauthenticated
            | G::ResourceExhausted
            | G::Aborted => Some(Failure::Refused),
            _ => None,
        }
    }
}

/// An error the CLI classified itself, with a hint for the person reading it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub failure: Failure,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(failure: Failure, message: impl Into<String>) -> Self {
        Self {
            failure,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// What to check when a server cannot be reached: a TLS mismatch looks like a broken
/// connection from either side.
pub const TLS_HINT: &str = "a cluster with TLS needs --tls-ca, and --tls-cert with --tls-key when it requires client certificates; without TLS, leave them out";

/// The kind of failure and the hint of an error, from the first cause that says.
pub fn classify(err: &anyhow::Error) -> (Failure, Option<String>) {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return (e.failure, e.hint.clone());
        }
        if let Some(e) = cause.downcast_ref::<strata_client::Error>() {
            use strata_client::Error as E;
            let failure = match e {
                E::Server { code, .. } => Some(Failure::of_code(*code)),
                E::Connect { .. } | E::Timeout(..) => Some(Failure::Unavailable),
                E::Transport(status) => Failure::of_grpc(status.code()),
                E::InvalidConfig(_) => Some(Failure::Usage),
                _ => None,
            };
            if let Some(failure) = failure {
                let hint = matches!(e, E::Connect { .. }).then(|| TLS_HINT.to_owned());
                return (failure, hint);
            }
        }
        if let Some(e) = cause.downcast_ref::<strata_meta::MetaError>() {
            return (Failure::of_code(e.code()), None);
        }
        if let Some(e) = cause.downcast_ref::<reqwest::Error>()
            && (e.is_connect() || e.is_timeout())
        {
            return (Failure::Unavailable, None);
        }
    }
    (Failure::Usage, None)
}

/// Whether the person asked for the full error, backtrace included.
pub fn debug_wanted(flag: bool) -> bool {
    flag || std::env::var("STRATA_LOG")
        .is_ok_and(|filter| filter.contains("debug") || filter.contains("trace"))
}

/// Prints a failed command's error to standard error and returns its exit code.
pub fn report(err: &anyhow::Error, debug: bool) -> ExitCode {
    let (failure, hint) = classify(err);
    if debug {
        eprintln!("error: {err:?}");
    } else {
        eprintln!("error: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
    }
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(failure as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_code_has_a_kind_and_the_common_ones_are_as_documented() {
        for code in ErrorCode::ALL {
            let _ = Failure::of_code(code);
        }
        assert_eq!(Failure::of_code(ErrorCode::UnknownTopic), Failure::NotFound);
        assert_eq!(
            Failure::of_code(ErrorCode::Unavailable),
            Failure::Unavailable
        );
        assert_eq!(
            Failure::of_code(ErrorCode::InvalidArgument),
            Failure::Refused
        );
        assert_eq!(Failure::of_code(ErrorCode::TopicExists), Failure::Refused);
    }

    #[test]
    fn the_innermost_classified_cause_is_not_needed_the_first_one_decides() {
        let err = anyhow::Error::new(strata_client::Error::Server {
            code: ErrorCode::UnknownGroup,
            message: "no group g".into(),
        })
        .context("cannot describe group g");
        assert_eq!(classify(&err).0, Failure::NotFound);
        let err =
            anyhow::Error::new(CliError::new(Failure::Unavailable, "x").with_hint("start it"))
                .context("outer");
        assert_eq!(
            classify(&err),
            (Failure::Unavailable, Some("start it".into()))
        );
        assert_eq!(classify(&anyhow::anyhow!("plain")).0, Failure::Usage);
    }
}

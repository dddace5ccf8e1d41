//! What a person sees when a command fails: `error: ...`, a hint where there is one, no
//! backtrace even with `RUST_BACKTRACE=1` set, and the exit codes `strata --help` documents.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Standalone, run_cli_code};

/// No backtrace, and short: the message, its causes and a hint.
fn assert_readable(err: &str) {
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.to_lowercase().contains("backtrace") && !err.contains("at /"),
        "no backtrace without --debug: {err}"
    );
    assert!(err.lines().count() <= 6, "a few lines, not a trace: {err}");
}

#[test]
fn failed_commands_print_one_error_a_hint_and_a_documented_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let standalone = Standalone::start("errors", &dir.path().join("data"));
    let env = [
        ("STRATA_SERVER", standalone.proxy.as_str()),
        ("STRATA_ADMIN", standalone.admin.as_str()),
        ("RUST_BACKTRACE", "1"),
    ];

    // Refused by the server (4): a topic name Kafka would refuse too.
    let (code, _, err) = run_cli_code(
        &["topic", "create", "bad name!", "--partitions", "1"],
        &env,
        None,
    );
    assert_eq!(code, Some(4), "{err}");
    assert_readable(&err);
    assert!(err.contains("INVALID_ARGUMENT"), "{err}");

    // Not found (2), with the command that lists what exists.
    let (code, _, err) = run_cli_code(&["topic", "describe", "missing"], &env, None);
    assert_eq!(code, Some(2), "{err}");
    assert_readable(&err);
    assert!(
        err.contains("UNKNOWN_TOPIC") && err.contains("hint: `strata topic list`"),
        "{err}"
    );

    // Unavailable (3): nothing listens on port 1, for the admin API or the proxy.
    let unreachable = [
        ("STRATA_SERVER", "127.0.0.1:1"),
        ("STRATA_ADMIN", "127.0.0.1:1"),
        ("RUST_BACKTRACE", "1"),
    ];
    let (code, _, err) = run_cli_code(&["topic", "list"], &unreachable, None);
    assert_eq!(code, Some(3), "{err}");
    assert_readable(&err);
    assert!(err.contains("hint: is a controller"), "{err}");
    let (code, _, err) = run_cli_code(&["produce", "t"], &unreachable, Some("x\n".into()));
    assert_eq!(code, Some(3), "{err}");
    assert_readable(&err);
    assert!(err.contains("cannot reach 127.0.0.1:1"), "{err}");

    // Usage (1): clap's own message and usage line.
    let (code, _, err) = run_cli_code(&["topic", "create"], &env, None);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("Usage:"),
        "{err}"
    );
    let (code, out, _) = run_cli_code(&["--help"], &env, None);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("Exit codes:") && out.contains("3  unavailable"),
        "{out}"
    );

    // --debug asks for everything, backtrace included.
    let (code, _, err) = run_cli_code(&["--debug", "topic", "list"], &unreachable, None);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("backtrace"),
        "--debug prints the backtrace: {err}"
    );
}

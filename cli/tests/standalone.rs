//! `strata standalone` as a new user meets it: create a topic, pipe 100,000 lines into
//! `strata produce`, read them back with `strata consume`, restart, read them again.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use strata_testkit::{ChildGuard, free_port, wait_for_tcp};

const LINES: usize = 100_000;
const PARTITIONS: usize = 4;
/// `strata produce` sends runs of this many lines (its default batch) to one partition each,
/// round robin, so line n lands on partition ((n - 1) / 1000) % 4.
const RUN: usize = 1000;

struct Standalone {
    dir: std::path::PathBuf,
    proxy: String,
    admin: String,
    ports: [u16; 4],
}

impl Standalone {
    fn start(&self, log: &str) -> ChildGuard {
        let [proxy, admin, broker, http] = self.ports;
        let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
        command
            .arg("standalone")
            .arg("--data-dir")
            .arg(&self.dir)
            .args([
                "--proxy-addr",
                &format!("127.0.0.1:{proxy}"),
                "--admin-addr",
                &format!("127.0.0.1:{admin}"),
            ])
            .args([
                "--broker-addr",
                &format!("127.0.0.1:{broker}"),
                "--broker-http-addr",
                &format!("127.0.0.1:{http}"),
            ]);
        let process =
            ChildGuard::spawn("standalone", command, self.dir.with_extension(log)).unwrap();
        for port in self.ports {
            wait_for_tcp(
                format!("127.0.0.1:{port}").parse().unwrap(),
                Duration::from_secs(30),
            )
            .unwrap_or_else(|e| panic!("standalone did not start: {e}\n{}", process.log_tail(30)));
        }
        process
    }

    fn strata(&self, args: &[&str], stdin: Option<String>) -> (bool, String, String) {
        common::run_cli(
            args,
            &[
                ("STRATA_SERVER", &self.proxy),
                ("STRATA_ADMIN", &self.admin),
            ],
            stdin,
        )
    }

    fn consume_all(&self) -> Vec<usize> {
        let (ok, out, err) = self.strata(
            &[
                "consume",
                "t",
                "--from-beginning",
                "--max-messages",
                &LINES.to_string(),
                "--timeout-ms",
                "20000",
            ],
            None,
        );
        assert!(ok, "consume failed: {err}");
        assert!(
            err.contains(&format!("received {LINES} messages")),
            "summary: {err}"
        );
        out.lines().map(|l| l.parse().unwrap()).collect()
    }
}

/// Exactly the lines 1..=LINES, each partition's lines in the order they were sent.
fn check(values: &[usize]) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=LINES).collect::<Vec<_>>(),
        "exactly the lines sent, each once"
    );
    for p in 0..PARTITIONS {
        let mine: Vec<usize> = values
            .iter()
            .copied()
            .filter(|n| (n - 1) / RUN % PARTITIONS == p)
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "partition {p} keeps its order"
        );
    }
}

#[test]
fn a_new_user_produces_and_consumes_through_standalone_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let standalone = Standalone {
        dir: dir.path().join("data"),
        proxy: format!("127.0.0.1:{}", ports[0]),
        admin: format!("127.0.0.1:{}", ports[1]),
        ports,
    };
    let mut first = standalone.start("log1");
    let (ok, out, err) = standalone.strata(&["topic", "create", "t", "--partitions", "4"], None);
    assert!(
        ok && out.contains("created topic t with 4 partitions"),
        "{out}{err}"
    );

    let input: String = (1..=LINES).map(|n| format!("{n}\n")).collect();
    let (ok, _, err) = standalone.strata(&["produce", "t"], Some(input));
    assert!(ok, "produce failed: {err}");
    assert!(
        err.contains(&format!("sent {LINES} messages")) && err.contains("MB/s"),
        "summary: {err}"
    );
    check(&standalone.consume_all());

    let (ok, out, _) = standalone.strata(&["topic", "describe", "t"], None);
    assert!(
        ok && out.matches("Write").count() == PARTITIONS
            && out.matches("25000").count() == PARTITIONS,
        "{out}"
    );

    // Unknown topics are typed errors, and the servers keep serving.
    let (ok, _, err) = standalone.strata(&["consume", "nope", "--max-messages", "1"], None);
    assert!(!ok && err.contains("UNKNOWN_TOPIC"), "{err}");
    let (ok, _, err) = standalone.strata(&["produce", "nope"], Some("x\n".into()));
    assert!(!ok && err.contains("UNKNOWN_TOPIC"), "{err}");

    // Stop (SIGTERM: flush, commit, leave) and start again on the same directory.
    let pid = first.pid().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    for _ in 0..100 {
        if first.ensure_running().is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    first.kill();
    let _second = standalone.start("log2");
    check(&standalone.consume_all());
}

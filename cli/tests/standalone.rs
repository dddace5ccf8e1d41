//! `strata standalone` as a new user meets it: create a topic, pipe 100,000 lines into
//! `strata produce`, read them back with `strata consume`, restart, read them again.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Standalone;

const LINES: usize = 100_000;
const PARTITIONS: usize = 4;

trait ConsumeAll {
    fn consume_all(&self) -> Vec<(usize, usize)>;
}

impl ConsumeAll for Standalone {
    fn consume_all(&self) -> Vec<(usize, usize)> {
        let (ok, out, err) = self.strata(
            &[
                "consume",
                "t",
                "--from-beginning",
                "--max-messages",
                &LINES.to_string(),
                "--timeout-ms",
                "20000",
                "--print-offsets",
            ],
            None,
        );
        assert!(ok, "consume failed: {err}");
        assert!(
            err.contains(&format!("received {LINES} messages")),
            "summary: {err}"
        );
        out.lines()
            .map(|l| {
                let mut fields = l.split('\t');
                let partition = fields.next().unwrap().parse().unwrap();
                let _offset = fields.next().unwrap();
                (partition, fields.next().unwrap().parse().unwrap())
            })
            .collect()
    }
}

/// Exactly the lines 1..=LINES, each partition's lines in the order they were sent.
fn check(read: &[(usize, usize)]) {
    let values: Vec<usize> = read.iter().map(|(_, v)| *v).collect();
    let mut sorted = values.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=LINES).collect::<Vec<_>>(),
        "exactly the lines sent, each once"
    );
    for p in 0..PARTITIONS {
        let mine: Vec<usize> = read
            .iter()
            .filter(|(partition, _)| *partition == p)
            .map(|(_, v)| *v)
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
    let mut standalone = Standalone::start("standalone", &dir.path().join("data"));
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
    standalone.server.signal("TERM").unwrap();
    standalone.server.wait_exit(Duration::from_secs(10));
    standalone.server.kill();
    standalone.server.start().unwrap();
    check(&standalone.consume_all());
}

//! The commands operators of Kafka use every day, against a process cluster (etcd, a
//! controller, two brokers, a proxy): topic alter, brokers list/drain/undrain, produce with
//! headers, consume as JSON and from a timestamp, and a group's offsets reset (refused while the
//! group has a live member; to a time for an idle group, whose next consumer starts exactly
//! there) and deleted.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Cluster, run_cli_code};
use serde_json::Value;
use strata_testkit::ChildGuard;

struct Cli {
    env: Vec<(String, String)>,
}

impl Cli {
    /// Runs `strata args`; returns its exit code, stdout and stderr.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (code, out, err) = run_cli_code(args, &env, stdin.map(str::to_owned));
        (code.expect("exited, not killed"), out, err)
    }

    /// Runs a command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, None);
        assert_eq!(code, 0, "strata {args:?}: {out}{err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut with = args.to_vec();
        with.extend(["--format", "json"]);
        let out = self.ok(&with);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Sends lines to partition 0 with two headers.
    fn produce(&self, lines: &str) {
        let args = [
            "produce",
            "t",
            "--partition",
            "0",
            "--header",
            "trace=abc",
            "--header",
            "flag",
        ];
        let (code, out, err) = self.run(&args, Some(lines));
        assert_eq!(code, 0, "{out}{err}");
    }

    /// The committed offset of `group` on t/0 (-1 when none).
    fn committed(&self, group: &str) -> i64 {
        let g = self.json(&["group", "describe", group]);
        g["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["topic"] == "t" && o["partition"] == 0)
            .map_or(-1, |o| o["committed"].as_i64().unwrap())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_alter_topics_drain_brokers_and_reset_group_offsets() {
    let cluster = Cluster::start("operator").await;
    let controller = cluster.controller("c1");
    let _brokers = [cluster.broker("b1"), cluster.broker("b2")];
    let proxy = cluster.proxy("p1");
    cluster.wait_for_brokers(2).await;
    let cli = Cli {
        env: vec![
            ("STRATA_ADMIN".into(), controller.addr().to_string()),
            ("STRATA_SERVER".into(), proxy.addr().to_string()),
        ],
    };

    // Topics: more partitions and a new retention.
    cli.ok(&["topic", "create", "t", "--partitions", "2"]);
    let out = cli.ok(&[
        "topic",
        "alter",
        "t",
        "--partitions",
        "3",
        "--retention-ms",
        "3600000",
    ]);
    assert!(out.contains("3 partitions"), "{out}");
    let topic = cli.json(&["topic", "describe", "t"]);
    assert_eq!(topic["partitions"], 3, "{topic}");
    assert_eq!(topic["retention_ms"], 3_600_000, "{topic}");
    let (code, _, err) = cli.run(&["topic", "alter", "t"], None);
    assert_eq!(code, 1, "alter without a change is a usage error: {err}");

    // Brokers: list, drain (its partitions move off and it stays off), undrain.
    let brokers = cli.json(&["brokers", "list"]);
    assert_eq!(brokers.as_array().unwrap().len(), 2, "{brokers}");
    let out = cli.ok(&["brokers", "drain", "b1"]);
    assert!(out.starts_with("drained b1"), "{out}");
    let b1 = |cli: &Cli| {
        let list = cli.json(&["brokers", "list"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == "b1")
            .cloned()
            .unwrap()
    };
    let drained = b1(&cli);
    assert_eq!(
        (
            drained["draining"].as_bool(),
            drained["partitions"].as_u64()
        ),
        (Some(true), Some(0))
    );
    assert!(cli.ok(&["brokers", "list"]).contains("draining"));
    cli.ok(&["brokers", "undrain", "b1"]);
    assert_eq!(b1(&cli)["draining"].as_bool(), Some(false));
    let (code, _, err) = cli.run(&["brokers", "drain", "nobody"], None);
    assert_eq!(code, 2, "an unknown broker is not found: {err}");

    // Produce with headers, in two rounds either side of a time.
    cli.produce("1\n2\n3\n4\n5\n");
    std::thread::sleep(Duration::from_millis(50));
    let between = now_ms();
    std::thread::sleep(Duration::from_millis(50));
    cli.produce("6\n7\n8\n9\n10\n");

    // Consume as JSON: every field, headers in order.
    let out = cli.ok(&[
        "consume",
        "t",
        "--partition",
        "0",
        "--from-beginning",
        "--max-messages",
        "10",
        "--timeout-ms",
        "10000",
        "--format",
        "json",
    ]);
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 10, "{out}");
    let first = &records[0];
    assert_eq!(
        (&first["topic"], &first["partition"], &first["offset"]),
        (&"t".into(), &0.into(), &0.into())
    );
    assert_eq!(first["value"], "1");
    assert_eq!(first["key"], Value::Null);
    assert_eq!(
        first["headers"],
        serde_json::json!([{"name": "trace", "value": "abc"}, {"name": "flag", "value": null}])
    );
    assert!(first["timestamp"].as_i64().unwrap() < between);

    // Consume from a timestamp: exactly the second round.
    let out = cli.ok(&[
        "consume",
        "t",
        "--partition",
        "0",
        "--from-timestamp",
        &between.to_string(),
        "--max-messages",
        "5",
        "--timeout-ms",
        "10000",
        "--print-offsets",
    ]);
    assert!(
        out.starts_with("0\t5\t6\n"),
        "starts at the first message after the time: {out}"
    );

    // A group with a live member: reset and delete are refused, nothing changes.
    let mut live = Command::new(env!("CARGO_BIN_EXE_strata"));
    live.args([
        "consume",
        "t",
        "--group",
        "live",
        "--from-beginning",
        "--server",
    ])
    .arg(proxy.addr().to_string())
    .args(["--commit-interval-ms", "200"]);
    let dir = tempfile::tempdir().unwrap();
    let mut member = ChildGuard::spawn("live-member", live, dir.path().join("live.log")).unwrap();
    wait_until("the live group is stable and committed", || {
        let (code, out, _) = cli.run(&["group", "describe", "live"], None);
        code == 0 && out.contains(": Stable,") && cli.committed("live") == 10
    });
    let (code, _, err) = cli.run(
        &[
            "group",
            "reset-offsets",
            "live",
            "--topic",
            "t",
            "--to-earliest",
            "--execute",
        ],
        None,
    );
    assert_eq!(code, 4, "refused while a member lives: {err}");
    assert!(
        err.contains("1 live member") && err.contains("hint:"),
        "{err}"
    );
    assert_eq!(
        cli.committed("live"),
        10,
        "the refused reset changed nothing"
    );
    let (code, _, err) = cli.run(&["group", "delete", "live"], None);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("GROUP_NOT_EMPTY"), "{err}");
    member.kill();

    // An idle group: read everything, then reset to the time between the rounds.
    cli.ok(&[
        "consume",
        "t",
        "--group",
        "idle",
        "--from-beginning",
        "--max-messages",
        "10",
        "--timeout-ms",
        "10000",
    ]);
    assert_eq!(cli.committed("idle"), 10);
    let dry = cli.json(&[
        "group",
        "reset-offsets",
        "idle",
        "--topic",
        "t",
        "--to-datetime",
        &between.to_string(),
    ]);
    let p0 = &dry["offsets"].as_array().unwrap()[0];
    assert_eq!(
        (&p0["partition"], &p0["current"], &p0["new"]),
        (&0.into(), &10.into(), &5.into()),
        "{dry}"
    );
    assert_eq!(dry["executed"], false);
    assert_eq!(cli.committed("idle"), 10, "a dry run changes nothing");
    let rfc3339 =
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(between as u64))
            .to_string();
    let (code, out, err) = cli.run(
        &[
            "group",
            "reset-offsets",
            "idle",
            "--topic",
            "t",
            "--to-datetime",
            &rfc3339,
            "--execute",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("committed 3 offsets of group idle"), "{err}");
    assert_eq!(cli.committed("idle"), 5);
    let out = cli.ok(&[
        "consume",
        "t",
        "--group",
        "idle",
        "--max-messages",
        "1",
        "--timeout-ms",
        "10000",
        "--print-offsets",
    ]);
    assert_eq!(
        out, "0\t5\t6\n",
        "the group's next consumer starts exactly at the time"
    );

    // Shift back by two, from what the consumer just committed (6).
    let shift = |by: &str| {
        let args = [
            "group",
            "reset-offsets",
            "idle",
            "--topic",
            "t",
            "--shift-by",
            by,
        ];
        cli.json(&args)["offsets"][0]["new"].clone()
    };
    assert_eq!(shift("-2"), 4);
    let dry = shift("-100");
    assert_eq!(dry, 0, "kept within the log");

    // Deleted: gone, and deleting again is not found.
    assert_eq!(cli.ok(&["group", "delete", "idle"]), "deleted group idle\n");
    let (code, _, err) = cli.run(&["group", "describe", "idle"], None);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = cli.run(&["group", "delete", "idle"], None);
    assert_eq!(code, 2);
}

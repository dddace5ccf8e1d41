//! Consumer groups as users run them: three `strata consume --group` processes share a
//! 12-partition topic 4/4/4; one is killed with -9 and the other two take its partitions
//! within its session timeout; together they print every produced line (no committed message
//! is skipped), each partition in order.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Standalone;
use strata_testkit::ChildGuard;

const PARTITIONS: usize = 12;
const LINES: usize = 12_000;
const SESSION_MS: u64 = 3_000;

struct Consumer {
    process: ChildGuard,
    out: PathBuf,
}

fn start_consumer(standalone: &Standalone, dir: &Path, name: &str) -> Consumer {
    let out = dir.join(format!("{name}.out"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .args([
            "consume",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--print-offsets",
        ])
        .args(["--session-timeout-ms", &SESSION_MS.to_string()])
        .args(["--commit-interval-ms", "300", "--server", &standalone.proxy]);
    let process =
        ChildGuard::spawn_with_stdout(name, command, dir.join(format!("{name}.log")), &out)
            .unwrap();
    Consumer { process, out }
}

/// Members of group `g` with their partition counts, when it is Stable.
fn stable_members(standalone: &Standalone) -> Option<Vec<usize>> {
    let (ok, out, _) = standalone.strata(&["group", "describe", "g"], None);
    if !ok || !out.contains(": Stable,") {
        return None;
    }
    let mut counts: Vec<usize> = out
        .lines()
        .filter(|l| l.starts_with("member "))
        .map(|l| {
            let (_, rest) = l.split_once(": ").unwrap();
            rest.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    counts.sort_unstable();
    Some(counts)
}

fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return (v, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `(partition, offset, value)` of every line a consumer printed.
fn printed(path: &Path) -> Vec<(usize, i64, usize)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            // A consumer killed mid-write may leave a partial last line.
            Some((
                f.first()?.parse().ok()?,
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
            ))
        })
        .collect()
}

#[test]
fn three_consumers_split_a_topic_and_survive_one_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut standalone = Standalone::start("groups", &dir.path().join("data"));
    let (ok, out, err) = standalone.strata(&["topic", "create", "t", "--partitions", "12"], None);
    assert!(ok, "{out}{err}");

    let mut consumers: Vec<Consumer> = (1..=3)
        .map(|i| start_consumer(&standalone, dir.path(), &format!("c{i}")))
        .collect();
    let (split, took) = wait_for("a 4/4/4 split", Duration::from_secs(30), || {
        stable_members(&standalone).filter(|c| c.len() == 3)
    });
    assert_eq!(
        split,
        vec![4, 4, 4],
        "three members split 12 partitions evenly"
    );
    eprintln!("group stable with 3 members after {took:?}");

    // Produce in the background, in chunks, so the kill lands mid-stream.
    let proxy = standalone.proxy.clone();
    let producer = std::thread::spawn(move || {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["produce", "t", "--server", &proxy])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for chunk in (1..=LINES).collect::<Vec<_>>().chunks(200) {
            let text: String = chunk.iter().map(|n| format!("{n}\n")).collect();
            stdin.write_all(text.as_bytes()).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stderr).unwrap(),
        )
    });

    std::thread::sleep(Duration::from_millis(1500));
    consumers[2].process.kill();
    let killed = Instant::now();
    let (split, _) = wait_for(
        "the survivors to take over",
        Duration::from_secs(30),
        || stable_members(&standalone).filter(|c| c.len() == 2),
    );
    let takeover = killed.elapsed();
    assert_eq!(
        split,
        vec![6, 6],
        "the two survivors split all 12 partitions"
    );
    eprintln!(
        "survivors own every partition {takeover:?} after the kill (session {SESSION_MS} ms)"
    );
    assert!(
        takeover <= Duration::from_millis(SESSION_MS + 3_000),
        "takeover took {takeover:?}"
    );

    let (ok, err) = producer.join().unwrap();
    assert!(
        ok && err.contains(&format!("sent {LINES} messages")),
        "{err}"
    );
    // The survivors catch up: nothing left to read.
    wait_for("lag 0", Duration::from_secs(30), || {
        let (ok, out, _) = standalone.strata(&["group", "describe", "g"], None);
        (ok && out.contains("total lag 0\n")).then_some(())
    });
    for c in &mut consumers[..2] {
        c.process.signal("INT").unwrap();
        let status = c.process.wait_exit(Duration::from_secs(15));
        assert!(
            status.is_some_and(|s| s.success()),
            "consumer exits cleanly: {status:?}"
        );
    }

    // Every line was printed by someone; each consumer saw each partition in order.
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    for c in &consumers {
        let lines = printed(&c.out);
        let mut last: BTreeMap<usize, i64> = BTreeMap::new();
        for (partition, offset, value) in lines {
            assert!(partition < PARTITIONS);
            let previous = last.insert(partition, offset);
            assert!(
                previous.is_none_or(|p| p < offset),
                "partition {partition} in order"
            );
            if !seen.insert(value) {
                duplicates += 1;
            }
        }
    }
    let missing: Vec<usize> = (1..=LINES).filter(|n| !seen.contains(n)).take(10).collect();
    assert!(missing.is_empty(), "lines nobody printed: {missing:?}…");
    eprintln!(
        "{LINES} lines printed, {duplicates} printed twice (read again after the kill, before the last commit)"
    );

    // Committed offsets survive a restart of the server: the group still has no lag.
    standalone.server.signal("TERM").unwrap();
    assert!(
        standalone
            .server
            .wait_exit(Duration::from_secs(30))
            .is_some(),
        "standalone stops on SIGTERM"
    );
    standalone.server.start().unwrap();
    let (ok, out, err) = standalone.strata(&["group", "describe", "g"], None);
    assert!(ok && out.contains("total lag 0\n"), "{out}{err}");
    let committed: i64 = out
        .lines()
        .filter(|l| l.starts_with("t "))
        .map(|l| l.split_whitespace().nth(2).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(
        committed, LINES as i64,
        "every partition's commit survived: {out}"
    );

    // The admin REST API shows the same group.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let (status, group) = runtime.block_on(common::call(
        &http,
        reqwest::Method::GET,
        format!("http://{}/v1/groups/g", standalone.admin),
        None,
    ));
    assert_eq!(status, 200, "{group}");
    let offsets = group["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), PARTITIONS);
    assert!(offsets.iter().all(|o| o["lag"] == 0), "{group}");
    let (status, listed) = runtime.block_on(common::call(
        &http,
        reqwest::Method::GET,
        format!("http://{}/v1/groups", standalone.admin),
        None,
    ));
    assert_eq!(status, 200);
    assert_eq!(listed[0]["group"], "g", "{listed}");
}

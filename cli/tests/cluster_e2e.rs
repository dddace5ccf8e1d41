//! The user flow on a real cluster — etcd, 1 controller, 3 brokers, 2 proxies as processes —
//! with a broker killed and restarted while a producer and two consumers (one plain, one in a
//! group) run: all three report zero errors and every line arrives once, in order per
//! partition.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Cluster, run_cli};

/// The same input as the standalone user flow (`seq 1 100000`).
const LINES: usize = 100_000;
/// Lines are fed to the producer in chunks with pauses, so producing spans the broker's
/// restart (50 chunks, about 3 s).
const CHUNK: usize = 2_000;
const CHUNK_PAUSE: Duration = Duration::from_millis(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_is_invisible_to_clients() {
    let cluster = Cluster::start("e2e").await;
    let controller = cluster.controller("c1");
    let mut brokers: Vec<_> = (1..=3).map(|i| cluster.broker(&format!("b{i}"))).collect();
    let proxies = [cluster.proxy("p1"), cluster.proxy("p2")];
    cluster.wait_for_brokers(3).await;
    let admin = controller.addr().to_string();
    let (ok, out, err) = run_cli(
        &[
            "topic",
            "create",
            "t",
            "--partitions",
            "4",
            "--admin",
            &admin,
        ],
        &[],
        None,
    );
    assert!(ok, "{out}{err}");

    // Both consumers read while the producer writes and while the broker restarts: a plain
    // consumer of every partition through proxy 2, and a group member through proxy 1.
    let p1 = proxies[0].addr().to_string();
    let p2 = proxies[1].addr().to_string();
    let lines = LINES.to_string();
    let plain = background_cli(&[
        "consume",
        "t",
        "--server",
        &p2,
        "--from-beginning",
        "--max-messages",
        &lines,
        "--timeout-ms",
        "30000",
        "--print-offsets",
    ]);
    let grouped = background_cli(&[
        "consume",
        "t",
        "--group",
        "e2e",
        "--from-beginning",
        "--server",
        &p1,
        "--max-messages",
        &lines,
        "--timeout-ms",
        "30000",
    ]);

    // Produce through proxy 1: fed in chunks with pauses, so producing spans the restart.
    let input: String = (1..=LINES).map(|n| format!("{n}\n")).collect();
    let producer = {
        let args = ["produce", "t", "--server", &p1].map(String::from);
        let binary = env!("CARGO_BIN_EXE_strata");
        std::thread::spawn(move || {
            let mut child = std::process::Command::new(binary)
                .args(&args)
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            for chunk in input.lines().collect::<Vec<_>>().chunks(CHUNK) {
                stdin
                    .write_all((chunk.join("\n") + "\n").as_bytes())
                    .unwrap();
                stdin.flush().unwrap();
                std::thread::sleep(CHUNK_PAUSE);
            }
            drop(stdin);
            let output = child.wait_with_output().unwrap();
            (
                output.status.success(),
                String::from_utf8(output.stderr).unwrap(),
            )
        })
    };
    // Mid-produce, b2 dies hard and comes back on the same address.
    tokio::time::sleep(Duration::from_millis(700)).await;
    brokers[1].kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    brokers[1].start().unwrap();
    let (ok, err) = tokio::task::spawn_blocking(move || producer.join().unwrap())
        .await
        .unwrap();
    assert!(ok, "the producer reports an error: {err}");
    assert!(err.contains(&format!("sent {LINES} messages")), "{err}");
    eprintln!("{}", err.lines().last().unwrap_or_default());

    let (ok, out, err) = tokio::task::spawn_blocking(move || plain.join().unwrap())
        .await
        .unwrap();
    assert!(ok, "the consumer reports an error: {err}");
    assert!(err.contains(&format!("received {LINES} messages")), "{err}");
    let read: Vec<(usize, usize)> = out
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            (fields[0].parse().unwrap(), fields[2].parse().unwrap())
        })
        .collect();
    let mut values: Vec<usize> = read.iter().map(|(_, v)| *v).collect();
    values.sort_unstable();
    assert_eq!(
        values,
        (1..=LINES).collect::<Vec<_>>(),
        "every line exactly once"
    );
    for p in 0..4 {
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

    // The group member read the same, and its commits are there for `group describe` through
    // the other proxy: group state lives in etcd, not in a proxy.
    let (ok, out, err) = tokio::task::spawn_blocking(move || grouped.join().unwrap())
        .await
        .unwrap();
    assert!(ok, "the group consumer reports an error: {err}");
    let mut grouped: Vec<usize> = out.lines().map(|l| l.parse().unwrap()).collect();
    grouped.sort_unstable();
    assert_eq!(grouped, (1..=LINES).collect::<Vec<_>>());
    let (ok, out, err) = run_cli(&["group", "describe", "e2e", "--server", &p2], &[], None);
    assert!(ok && out.contains("total lag 0"), "{out}{err}");
}

/// Runs the CLI on a thread; join it for (success, stdout, stderr).
fn background_cli(args: &[&str]) -> std::thread::JoinHandle<(bool, String, String)> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&args, &[], None)
    })
}

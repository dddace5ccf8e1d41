//! Settings as the user sees them: layering, each flag on its setting, standalone.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use clap::Parser;

use super::*;
use crate::cli::{Cli, Command};

fn user_file(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("strata.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The settings `strata {args}` would run with.
fn resolved(args: &[&str]) -> Config {
    let cli = Cli::try_parse_from(std::iter::once("strata").chain(args.iter().copied())).unwrap();
    let file = cli.config.as_deref();
    match &cli.command {
        Command::Controller(flags) => resolve(file, flags),
        Command::Broker(flags) => resolve(file, flags),
        Command::Proxy(flags) => resolve(file, flags),
        Command::Standalone(flags) => resolve(file, flags),
        other => panic!("not a server role: {other:?}"),
    }
    .unwrap()
}

#[test]
fn unknown_settings_are_refused_with_the_files_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = user_file(&dir, "[controller]\nadmin_adr = \"x\"\n");
    let err = format!("{:#}", load(Some(&path)).unwrap_err());
    assert!(
        err.contains("admin_adr")
            && err.contains(&path.display().to_string())
            && err.contains("config/strata.toml"),
        "{err}"
    );
}

#[test]
fn without_a_file_the_defaults_apply() {
    assert_eq!(&resolved(&["proxy"]), Config::shipped());
}

#[test]
fn flags_win_over_the_file_and_the_file_over_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = user_file(
        &dir,
        "[broker]\nlinger_ms = 50\nmax_batch_bytes = 2048\n[broker.maintenance]\ngc_grace_ms = 5\n",
    );
    let config = resolved(&[
        "--config",
        path.to_str().unwrap(),
        "broker",
        "--linger-ms",
        "7",
        "--maintenance-interval-ms",
        "100",
    ]);
    let mut expected = Config::shipped().clone();
    expected.broker.linger_ms = 7;
    expected.broker.max_batch_bytes = 2048;
    expected.broker.maintenance.gc_grace_ms = 5;
    expected.broker.maintenance.interval_ms = 100;
    assert_eq!(config, expected);
}

#[test]
fn every_broker_flag_sets_its_setting() {
    let config = resolved(&[
        "broker",
        "--cluster=c",
        "--meta=etcd://m:2379",
        "--storage-node=file:///d",
        "--storage-replicas=2",
        "--no-fsync",
        "--storage-request-timeout-ms=3000",
        "--id=b7",
        "--listen=127.0.0.1:1",
        "--http-addr=127.0.0.1:2",
        "--advertised-addr=b7:1",
        "--lease-ttl-secs=11",
        "--shutdown-timeout-secs=12",
        "--linger-ms=13",
        "--flush-bytes=14",
        "--max-batch-bytes=15",
        "--max-buffer-bytes=16",
        "--buffer-wait-ms=17",
        "--delay-memory-bytes=117",
        "--maintenance-interval-ms=18",
        "--gc-grace-ms=19",
        "--orphan-sweep-every=20",
        "--compaction-memory-bytes=21",
    ]);
    assert_eq!(
        (config.cluster.as_str(), config.meta.url.as_str()),
        ("c", "etcd://m:2379")
    );
    assert_eq!(
        config.storage,
        StorageSection {
            nodes: Some(vec!["file:///d".into()]),
            replicas: 2,
            fsync: false,
            request_timeout_ms: 3000,
            ..Config::shipped().storage.clone()
        }
    );
    assert_eq!(
        config.broker,
        BrokerSection {
            id: Some("b7".into()),
            listen: "127.0.0.1:1".parse().unwrap(),
            http_addr: "127.0.0.1:2".parse().unwrap(),
            advertised_addr: Some("b7:1".into()),
            lease_ttl_secs: 11,
            shutdown_timeout_secs: 12,
            linger_ms: 13,
            flush_bytes: 14,
            max_batch_bytes: 15,
            max_buffer_bytes: 16,
            buffer_wait_ms: 17,
            delay_memory_bytes: 117,
            maintenance: MaintenanceSection {
                interval_ms: 18,
                gc_grace_ms: 19,
                orphan_sweep_every: 20,
                compaction_memory_bytes: 21,
            },
        }
    );
}

#[test]
fn every_controller_and_proxy_flag_sets_its_setting() {
    let controller = resolved(&[
        "controller",
        "--admin-addr=127.0.0.1:1",
        "--id=c1",
        "--election-ttl-secs=3",
        "--broker-probe-ms=4",
    ])
    .controller;
    assert_eq!(
        controller,
        ControllerSection {
            admin_addr: "127.0.0.1:1".parse().unwrap(),
            id: Some("c1".into()),
            election_ttl_secs: 3,
            broker_probe_ms: 4,
            ..Config::shipped().controller.clone()
        }
    );
    let proxy = resolved(&[
        "proxy",
        "--listen=127.0.0.1:1",
        "--http-addr=127.0.0.1:2",
        "--cache-bytes=3",
    ])
    .proxy;
    assert_eq!(
        proxy,
        ProxySection {
            listen: "127.0.0.1:1".parse().unwrap(),
            http_addr: "127.0.0.1:2".parse().unwrap(),
            cache_bytes: 3,
            ..Config::shipped().proxy.clone()
        }
    );
}

#[test]
fn standalone_serves_on_the_roles_ports_with_everything_in_its_data_dir() {
    let config = resolved(&["standalone"]);
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(config.proxy.listen, addr("127.0.0.1:7070"));
    assert_eq!(config.broker.listen, addr("127.0.0.1:7071"));
    assert_eq!(config.broker.http_addr, addr("127.0.0.1:7072"));
    assert_eq!(config.proxy.http_addr, addr("127.0.0.1:7073"));
    assert_eq!(config.controller.admin_addr, addr("127.0.0.1:7080"));
    let dir = std::env::current_dir().unwrap().join("strata-data");
    assert_eq!(config.standalone.data_dir, dir);
    assert_eq!(
        config.meta.url,
        format!("embedded://{}", dir.join("meta").display())
    );
    assert_eq!(
        config.storage.nodes,
        Some(vec![format!("local=file://{}", dir.join("data").display())])
    );
}

#[test]
fn standalone_takes_the_role_settings_of_the_file_but_keeps_its_own_storage() {
    let dir = tempfile::tempdir().unwrap();
    let path = user_file(
        &dir,
        "[meta]\nurl = \"etcd://elsewhere:2379\"\n[storage]\nnodes = [\"s3://b\"]\nreplicas = 3\n\
         [broker]\nlinger_ms = 9\n[broker.maintenance]\ninterval_ms = 10\n\
         [proxy]\nlisten = \"127.0.0.1:9070\"\n",
    );
    let data = dir.path().join("data");
    let config = resolved(&[
        "--config",
        path.to_str().unwrap(),
        "standalone",
        "--data-dir",
        data.to_str().unwrap(),
        "--admin-addr=127.0.0.1:9080",
    ]);
    assert_eq!(config.broker.linger_ms, 9);
    assert_eq!(config.broker.maintenance.interval_ms, 10);
    assert_eq!(config.proxy.listen, "127.0.0.1:9070".parse().unwrap());
    assert_eq!(
        config.controller.admin_addr,
        "127.0.0.1:9080".parse().unwrap()
    );
    assert!(
        config.meta.url.starts_with("embedded://"),
        "{}",
        config.meta.url
    );
    assert_eq!(config.storage.replicas, 1);
    assert_eq!(
        config.storage.nodes,
        Some(vec![format!(
            "local=file://{}",
            data.join("data").display()
        )])
    );
}

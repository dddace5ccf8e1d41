//! The workspace's crate graph keeps its shape: every dependency points down a layer, no role
//! crate depends on another, and the SDK stays free of the storage stack. Read from
//! `cargo metadata`, so a Cargo.toml change that breaks a rule fails here, naming the arrow.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// Layer of every workspace crate; a crate may depend only on crates of a lower layer.
/// Within the bottom layers the order is the data's: clock, settings and the wire codes below
/// all (every error type has a wire code), format below storage.
const LAYERS: &[(&str, u32)] = &[
    ("strata-clock", 0),
    ("strata-config", 0),
    ("strata-proto", 0),
    ("strata-testkit", 0),
    ("strata-format", 1),
    // TLS for every listener and client: above the settings it reads, below every crate
    // that serves or dials.
    ("strata-tls", 1),
    // SASL's mechanisms without I/O: below the catalog that stores the credentials.
    ("strata-sasl", 1),
    ("strata-storage", 2),
    ("strata-meta", 2),
    ("strata-log", 3),
    ("strata-catalog", 3),
    ("strata-broker", 4),
    ("strata-controller", 4),
    ("strata-proxy", 4),
    ("strata-client", 4),
    ("strata-kafka", 5),
    ("strata-bench", 5),
    ("strata", 6),
    ("strata-integration-tests", 7),
];

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args([
        "metadata",
        "--format-version",
        "1",
        "--offline",
        "--no-deps",
    ]);
    let output = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn layer(name: &str) -> u32 {
    LAYERS
        .iter()
        .find(|(crate_name, _)| *crate_name == name)
        .unwrap_or_else(|| panic!("workspace crate {name} has no layer: add it to LAYERS"))
        .1
}

/// `(crate, dependency, kind)` for every dependency between workspace crates; kind is
/// `normal`, `dev` or `build`.
fn workspace_arrows() -> Vec<(String, String, String)> {
    let meta = metadata();
    let members: BTreeSet<&str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let mut arrows = Vec::new();
    for package in meta["packages"].as_array().unwrap() {
        for dep in package["dependencies"].as_array().unwrap() {
            let name = dep["name"].as_str().unwrap();
            if members.contains(name) {
                let kind = dep["kind"].as_str().unwrap_or("normal");
                arrows.push((
                    package["name"].as_str().unwrap().to_owned(),
                    name.to_owned(),
                    kind.to_owned(),
                ));
            }
        }
    }
    arrows
}

#[test]
fn every_dependency_points_down_a_layer_and_no_role_depends_on_another() {
    let arrows = workspace_arrows();
    assert!(arrows.len() > 20, "read the workspace: {arrows:?}");
    let mut wrong = Vec::new();
    for (from, to, kind) in &arrows {
        // A crate's tests may use its own library; test helpers sit at the bottom.
        if from == to || to == "strata-testkit" {
            continue;
        }
        if layer(to) >= layer(from) {
            wrong.push(format!(
                "{from} (layer {}) -> {to} (layer {}) [{kind}]",
                layer(from),
                layer(to)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows that do not point down:\n{}",
        wrong.join("\n")
    );
}

/// The crates `root` links on this platform, following normal dependencies only.
fn normal_closure(root: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-f",
            "{p}",
            "-p",
            root,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_sdk_links_neither_the_storage_stack_nor_the_server_crates() {
    let linked = normal_closure("strata-client");
    assert!(linked.contains("strata-format"), "{linked:?}");
    for forbidden in [
        "object_store",
        "reqwest",
        "strata-storage",
        "strata-meta",
        "etcd-client",
    ] {
        assert!(
            !linked.contains(forbidden),
            "strata-client links {forbidden}"
        );
    }
}

#[test]
fn the_proxy_does_not_link_the_controller_or_the_broker() {
    let linked = normal_closure("strata-proxy");
    assert!(linked.contains("strata-catalog"), "{linked:?}");
    for forbidden in ["strata-controller", "strata-broker"] {
        assert!(
            !linked.contains(forbidden),
            "strata-proxy links {forbidden}"
        );
    }
}

#[test]
fn the_format_crate_links_no_grpc_and_no_async_runtime() {
    let linked = normal_closure("strata-format");
    assert!(linked.contains("strata-proto"), "{linked:?}");
    for forbidden in ["tonic", "prost", "tokio"] {
        assert!(
            !linked.contains(forbidden),
            "strata-format links {forbidden}"
        );
    }
}

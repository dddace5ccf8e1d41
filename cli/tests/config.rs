//! The settings the binary runs with, as `--print-config` shows them: defaults, then the
//! `--config` file, then environment variables, then flags.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use strata_config::Config;

/// `strata {args}` with only `env` in its environment (none of the tester's STRATA_...).
fn printed(args: &[&str], env: &[(&str, &str)]) -> Config {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "strata {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    toml::from_str(&stdout).unwrap()
}

#[test]
fn the_environment_wins_over_the_file_and_a_flag_over_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strata.toml");
    std::fs::write(
        &file,
        "[broker]\nlinger_ms = 50\nshutdown_timeout_secs = 40\n\
         [broker.maintenance]\ngc_grace_ms = 7000\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let env = [
        ("STRATA_CONFIG", file),
        ("STRATA_LINGER_MS", "9"),
        ("STRATA_GC_GRACE_MS", "8000"),
    ];

    let config = printed(&["broker", "--print-config"], &env);
    assert_eq!(config.broker.linger_ms, 9, "environment over file");
    assert_eq!(config.broker.maintenance.gc_grace_ms, 8000);
    assert_eq!(config.broker.shutdown_timeout_secs, 40, "file over default");

    let config = printed(&["broker", "--print-config", "--linger-ms", "3"], &env);
    assert_eq!(config.broker.linger_ms, 3, "flag over environment");
}

#[test]
fn without_settings_every_role_runs_with_the_shipped_defaults() {
    for role in ["controller", "broker", "proxy"] {
        assert_eq!(
            &printed(&[role, "--print-config"], &[]),
            Config::shipped(),
            "{role}"
        );
    }
}

#[test]
fn an_unknown_setting_stops_the_role_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strata.toml");
    std::fs::write(&file, "[broker.maintenance]\ninterval_secs = 5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["broker", "--print-config", "--config"])
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&file.display().to_string()) && stderr.contains("interval_secs"),
        "{stderr}"
    );
}

//! The shipped file is complete and valid, and a user's file changes only what it names.

#![allow(clippy::unwrap_used)]

use super::*;

fn table(text: &str) -> toml::Table {
    text.parse().unwrap()
}

/// `strata.toml` with its commented-out examples (`# key = value`) turned into settings.
fn with_examples() -> String {
    SHIPPED
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if is_setting(rest) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_setting(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(key, _)| {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    })
}

/// No serde defaults and no unknown fields: the file alone deserializing proves it sets
/// every setting that has a default and nothing else.
#[test]
fn the_shipped_file_sets_every_setting_and_only_known_ones() {
    let config: Config = toml::from_str(SHIPPED).unwrap();
    assert_eq!(&config, Config::shipped());
    assert_eq!(
        Config::with_overrides(toml::Table::new()).unwrap(),
        config,
        "no user file: exactly the defaults"
    );
}

#[test]
fn the_shipped_file_shows_an_example_of_every_optional_setting() {
    let config: Config = toml::from_str(&with_examples()).unwrap();
    assert!(config.controller.id.is_some());
    assert!(config.broker.id.is_some());
    assert!(config.broker.advertised_addr.is_some());
    assert!(config.storage.nodes.is_some());
    assert!(config.tls.enabled() && config.tls.ca.is_some());
    assert!(config.meta.ca.is_some() && config.meta.cert.is_some() && config.meta.key.is_some());
}

#[test]
fn a_users_file_changes_only_what_it_sets() {
    let config = Config::with_overrides(table(
        r#"
        [broker]
        linger_ms = 50
        [broker.maintenance]
        interval_ms = 1234
        [storage]
        nodes = ["s3://bucket"]
        "#,
    ))
    .unwrap();
    let mut expected = Config::shipped().clone();
    expected.broker.linger_ms = 50;
    expected.broker.maintenance.interval_ms = 1234;
    expected.storage.nodes = Some(vec!["s3://bucket".into()]);
    assert_eq!(config, expected);
}

#[test]
fn unknown_settings_are_refused_at_every_level() {
    for (text, key) in [
        ("clustr = \"x\"", "clustr"),
        ("[brokr]\nid = \"b\"", "brokr"),
        ("[broker]\nlingr_ms = 1", "lingr_ms"),
        ("[broker.maintenance]\ninterval = 1", "broker.maintenance"),
    ] {
        let err = Config::with_overrides(table(text)).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn a_setting_of_the_wrong_type_is_refused() {
    let err = Config::with_overrides(table("[broker]\nlinger_ms = \"5ms\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("broker.linger_ms"), "{err}");
}

#[test]
fn printed_settings_read_back_as_themselves() {
    for config in [
        Config::shipped().clone(),
        toml::from_str(&with_examples()).unwrap(),
    ] {
        let printed = config.to_toml();
        assert_eq!(
            toml::from_str::<Config>(&printed).unwrap(),
            config,
            "{printed}"
        );
    }
}

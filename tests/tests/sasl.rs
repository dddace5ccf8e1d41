//! SASL on the Kafka listener of a real `strata standalone`: users made with `strata user add`
//! log in with SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN from kcat (librdkafka) and kafka-python;
//! a wrong password, an unknown user or no SASL at all is refused, counted and logged without
//! the password; a super user manages users through Kafka's AlterUserScramCredentials and
//! DescribeUserScramCredentials (confluent-kafka's AdminClient), another user may not; a
//! removed user can no longer log in.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::Value;
use strata_integration_tests::harness;
use strata_integration_tests::kafka_clients::KafkaClients;
use strata_integration_tests::secured::{SecuredStandalone, Security};

const MINUTE: Duration = Duration::from_secs(60);
const ALICE_PASSWORD: &str = "alice-Pa55word";
const ADMIN_PASSWORD: &str = "admin-Pa55word";

fn s(v: impl ToString) -> String {
    v.to_string()
}

#[tokio::test]
async fn kafka_clients_log_in_with_scram_and_plain_and_strangers_are_refused() {
    harness::init_tracing();
    let Some(clients) = KafkaClients::find("sasl") else {
        return;
    };
    let standalone = SecuredStandalone::start(
        "sasl",
        Security {
            sasl_mechanisms: Some("SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"),
            super_users: Some("User:admin"),
            ..Security::default()
        },
    )
    .unwrap();
    // Plaintext: kcat logs in with SASL_PLAINTEXT.
    let sasl = |mechanism, user, password| standalone.kcat_sasl(mechanism, user, password);
    let logs = &standalone.logs;
    let admin = standalone.admin_addr();
    let kafka = standalone.kafka_addr();
    let strata = |args: &[&str], stdin: Option<&str>| {
        let clients = &clients;
        let args: Vec<String> = args.iter().map(s).collect();
        let stdin = stdin.map(|t| t.as_bytes().to_vec());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            clients.strata(&args, stdin.as_deref(), MINUTE).await
        }
    };
    let kcat = |args: Vec<String>, stdin: Option<String>| {
        let clients = &clients;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            clients
                .kcat(&args, stdin.as_deref().map(str::as_bytes), MINUTE)
                .await
        }
    };

    // Users: from standard input and from a file (a mounted Secret).
    strata(
        &["user", "add", "alice", "--admin", &admin],
        Some(&format!("{ALICE_PASSWORD}\n")),
    )
    .await
    .unwrap();
    let secret = logs.join("admin-password");
    std::fs::write(&secret, format!("{ADMIN_PASSWORD}\n")).unwrap();
    strata(
        &[
            "user",
            "add",
            "admin",
            "--admin",
            &admin,
            "--password-file",
            &s(secret.display()),
        ],
        None,
    )
    .await
    .unwrap();
    let listed: Value = serde_json::from_str(
        &strata(
            &["user", "list", "--admin", &admin, "--format", "json"],
            None,
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice"], "{listed}");
    assert_eq!(
        listed[1]["mechanisms"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    assert!(
        !listed.to_string().contains("key"),
        "keys never leave: {listed}"
    );
    strata(
        &[
            "topic",
            "create",
            "guarded",
            "--partitions",
            "2",
            "--admin",
            &admin,
        ],
        None,
    )
    .await
    .unwrap();

    // With SASL on, the Kafka listener enforces ACLs: alice may write and read `guarded`.
    strata(
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--operation",
            "Read",
            "--topic",
            "guarded",
            "--admin",
            &admin,
        ],
        None,
    )
    .await
    .unwrap();

    // kcat: produce with SCRAM-SHA-256, read back with SCRAM-SHA-512, list with PLAIN.
    let mut produce = vec![s("-b"), kafka.clone(), s("-t"), s("guarded"), s("-P")];
    produce.extend(sasl("SCRAM-SHA-256", "alice", ALICE_PASSWORD));
    let records: String = (0..20).map(|i| format!("scram-{i}\n")).collect();
    kcat(produce, Some(records)).await.unwrap();
    let mut consume = vec![
        s("-b"),
        kafka.clone(),
        s("-t"),
        s("guarded"),
        s("-C"),
        s("-e"),
        s("-q"),
        s("-o"),
        s("beginning"),
    ];
    consume.extend(sasl("SCRAM-SHA-512", "alice", ALICE_PASSWORD));
    let read = kcat(consume, None).await.unwrap();
    assert_eq!(read.lines().count(), 20, "{read}");
    let mut list = vec![s("-b"), kafka.clone(), s("-L"), s("-m"), s("10")];
    list.extend(sasl("PLAIN", "alice", ALICE_PASSWORD));
    let metadata = kcat(list, None).await.unwrap();
    assert!(metadata.contains("guarded"), "{metadata}");

    // kafka-python (its own SCRAM implementation) reads everything back.
    let summary = clients
        .python_json(
            "kafka_python_consume.py",
            &[
                s("--bootstrap"),
                kafka.clone(),
                s("--topic"),
                s("guarded"),
                s("--expect"),
                s(20),
                s("--sasl-mechanism"),
                s("SCRAM-SHA-256"),
                s("--sasl-user"),
                s("alice"),
                s("--sasl-password"),
                s(ALICE_PASSWORD),
            ],
            MINUTE,
        )
        .await
        .unwrap();
    assert_eq!(summary["count"], 20, "{summary}");

    // Refused: a wrong password (SCRAM and PLAIN), an unknown user, no SASL at all.
    for args in [
        sasl("SCRAM-SHA-256", "alice", "wrong"),
        sasl("PLAIN", "alice", "wrong"),
        sasl("SCRAM-SHA-512", "mallory", ALICE_PASSWORD),
        Vec::new(),
    ] {
        let mut list = vec![s("-b"), kafka.clone(), s("-L"), s("-m"), s("5")];
        list.extend(args.clone());
        assert!(kcat(list, None).await.is_err(), "got in with {args:?}");
    }

    // A super user manages users over Kafka; alice may not.
    let manage = |user: &str, password: &str, new_user: &str| {
        let args = [
            "--bootstrap",
            &kafka,
            "--user",
            user,
            "--password",
            password,
            "--new-user",
            new_user,
            "--new-password",
            "bob-Pa55word",
        ]
        .map(s)
        .to_vec();
        let clients = &clients;
        async move {
            clients
                .python_json("scram_users.py", &args, MINUTE)
                .await
                .unwrap()
        }
    };
    let by_admin = manage("admin", ADMIN_PASSWORD, "bob").await;
    assert_eq!(by_admin["altered"], true, "{by_admin}");
    assert_eq!(
        by_admin["described"][0]["mechanism"], "SCRAM_SHA_256",
        "{by_admin}"
    );
    assert_eq!(by_admin["described"][0]["iterations"], 4096, "{by_admin}");
    let mut as_bob = vec![s("-b"), kafka.clone(), s("-L"), s("-m"), s("10")];
    as_bob.extend(sasl("SCRAM-SHA-256", "bob", "bob-Pa55word"));
    kcat(as_bob.clone(), None).await.unwrap();
    let by_alice = manage("alice", ALICE_PASSWORD, "eve").await;
    assert_eq!(by_alice["altered"], false, "{by_alice}");
    assert!(
        by_alice["alter_error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("authoriz"),
        "{by_alice}"
    );

    // Failures are counted, and logged with the user and the peer, never the password.
    let metrics = strata_integration_tests::cli::metrics(standalone.listener("--proxy-http-addr"))
        .await
        .unwrap();
    let failures: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("strata_proxy_kafka_sasl_failures_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(failures >= 3.0, "failed logins not counted:\n{metrics}");
    let log = std::fs::read_to_string(standalone.server.log_path()).unwrap();
    let logged = log
        .lines()
        .filter(|l| l.contains("failed to authenticate"))
        .count();
    assert!(
        log.contains("failed to authenticate") && log.contains("user=\"alice\""),
        "failures are logged with the user: {log}"
    );
    // Every failure came from 127.0.0.1: past five a minute, a peer's failures are counted
    // but not logged (and answered after a longer pause).
    assert!(
        logged <= 5 && failures > logged as f64,
        "{logged} failures logged of {failures}"
    );
    for secret in [ALICE_PASSWORD, ADMIN_PASSWORD, "bob-Pa55word"] {
        assert!(!log.contains(secret), "a password reached the log");
    }

    // A removed user is out.
    strata(&["user", "remove", "bob", "--admin", &admin], None)
        .await
        .unwrap();
    assert!(
        kcat(as_bob, None).await.is_err(),
        "a removed user still logs in"
    );
}

//! ACLs on a real `strata standalone` with everything on: TLS, `--authenticate` for gRPC and
//! REST, SASL SCRAM-SHA-512 for Kafka clients. A super user (by client certificate) grants
//! rules with `strata acl add`; then
//! - alice (Write and Read on `orders`, Read on group `readers`) produces with kcat and
//!   confluent-kafka over SASL_SSL, consumes with kcat and as a confluent-kafka group member,
//!   and Metadata shows her `orders` but not `payroll`;
//! - a wrong password is refused with SASL_AUTHENTICATION_FAILED;
//! - bob (Read on `orders` only) gets TOPIC_AUTHORIZATION_FAILED when he produces and
//!   GROUP_AUTHORIZATION_FAILED when he joins `readers`;
//! - alice's SDK token works for `orders` and gets PERMISSION_DENIED for `payroll`;
//! - alice's reassignment over REST is refused with 403 and a JSON error; granted Alter on the
//!   cluster, the same request moves the partition;
//! - a rule removed stops applying within the rules cache's lifetime.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::Value;
use strata_client::{Error, ErrorCode, Producer, ProducerRecord, Tls, Token};
use strata_integration_tests::harness;
use strata_integration_tests::kafka_clients::KafkaClients;
use strata_integration_tests::secured::{SecuredStandalone, Security, cli};

const MINUTE: Duration = Duration::from_secs(60);
const ALICE_PASSWORD: &str = "alice-Pa55word";
const BOB_PASSWORD: &str = "bob-Pa55word";

fn s(v: impl ToString) -> String {
    v.to_string()
}

#[tokio::test]
async fn acl_rules_decide_for_kafka_clients_the_sdk_and_the_admin_api() {
    harness::init_tracing();
    let Some(clients) = KafkaClients::find("authorization") else {
        return;
    };
    let standalone = SecuredStandalone::start(
        "authorization",
        Security {
            tls_client_auth: Some("optional"),
            authenticate: true,
            sasl_mechanisms: Some("SCRAM-SHA-512"),
            super_users: Some("User:root"),
        },
    )
    .unwrap();
    let ca_path = s(standalone.ca_path().display());
    let admin = standalone.admin_addr();
    let grpc = standalone.grpc_addr();
    let kafka = standalone.kafka_addr();
    let as_root = standalone.cert_flags(&standalone.client_cert("root"));
    let root_cli = |args: Vec<String>, stdin: Option<String>| {
        let as_root = as_root.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&args, &as_root, stdin.as_deref()).await
        }
    };
    let admin_flag = || [s("--admin"), admin.clone()];

    // The super user sets the stage: two users, two topics, alice's and bob's rules.
    for (user, password) in [("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)] {
        let mut args = vec![s("user"), s("add"), s(user)];
        args.extend(admin_flag());
        root_cli(args, Some(format!("{password}\n"))).await.unwrap();
    }
    for topic in ["orders", "payroll"] {
        let mut args = vec![s("topic"), s("create"), s(topic), s("--partitions"), s(2)];
        args.extend(admin_flag());
        root_cli(args, None).await.unwrap();
    }
    let grant = |rule: &[&str]| {
        let mut args = vec![s("acl"), s("add")];
        args.extend(rule.iter().map(s));
        args.extend(admin_flag());
        root_cli(args, None)
    };
    grant(&[
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--operation",
        "Read",
        "--topic",
        "orders",
    ])
    .await
    .unwrap();
    grant(&[
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--group",
        "readers",
    ])
    .await
    .unwrap();
    grant(&[
        "--allow-principal",
        "User:bob",
        "--operation",
        "Read",
        "--topic",
        "orders",
    ])
    .await
    .unwrap();

    let sasl_ssl =
        |user: &str, password: &str| standalone.kcat_sasl("SCRAM-SHA-512", user, password);
    let kcat = |mut args: Vec<String>, login: Vec<String>, stdin: Option<String>| {
        let clients = &clients;
        args.extend(login);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            clients
                .kcat(&args, stdin.as_deref().map(str::as_bytes), MINUTE)
                .await
        }
    };
    let python = |script: &'static str, mut args: Vec<String>, user: &str, password: &str| {
        let clients = &clients;
        args.extend(
            [
                "--ssl-ca",
                &ca_path,
                "--sasl-mechanism",
                "SCRAM-SHA-512",
                "--sasl-user",
                user,
                "--sasl-password",
                password,
            ]
            .map(s),
        );
        async move { clients.python_json(script, &args, MINUTE).await.unwrap() }
    };

    // Alice, over SASL_SSL: kcat produces keyed records, confluent-kafka produces more.
    let records: String = (0..20).map(|i| format!("kcat-k{i}:kcat-v{i}\n")).collect();
    let produce = ["-b", &kafka, "-t", "orders", "-P", "-K", ":"]
        .map(s)
        .to_vec();
    kcat(produce, sasl_ssl("alice", ALICE_PASSWORD), Some(records))
        .await
        .unwrap();
    let produced = python(
        "confluent_produce.py",
        [
            "--bootstrap",
            &kafka,
            "--topic",
            "orders",
            "--count",
            "20",
            "--prefix",
            "py",
        ]
        .map(s)
        .to_vec(),
        "alice",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(produced["acked"], 20, "{produced}");

    // She reads them back with kcat, and as a member of `readers` with confluent-kafka.
    let consume = [
        "-b",
        &kafka,
        "-t",
        "orders",
        "-C",
        "-e",
        "-q",
        "-o",
        "beginning",
    ]
    .map(s)
    .to_vec();
    let read = kcat(consume, sasl_ssl("alice", ALICE_PASSWORD), None)
        .await
        .unwrap();
    assert_eq!(read.lines().count(), 40, "{read}");
    let grouped = python(
        "confluent_consume.py",
        [
            "--bootstrap",
            &kafka,
            "--topic",
            "orders",
            "--group",
            "readers",
            "--expect",
            "40",
            "--timeout",
            "60",
        ]
        .map(s)
        .to_vec(),
        "alice",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(grouped["distinct"], 40, "{grouped}");

    // Metadata lists what she may describe, and nothing else.
    let list = ["-b", &kafka, "-L", "-m", "10"].map(s).to_vec();
    let metadata = kcat(list.clone(), sasl_ssl("alice", ALICE_PASSWORD), None)
        .await
        .unwrap();
    assert!(metadata.contains("\"orders\""), "{metadata}");
    assert!(!metadata.contains("payroll"), "{metadata}");

    // A wrong password: SASL_AUTHENTICATION_FAILED, which librdkafka reports in words.
    let refused = kcat(list.clone(), sasl_ssl("alice", "wrong"), None)
        .await
        .unwrap_err();
    assert!(
        format!("{refused:#}").contains("Authentication failed"),
        "{refused:#}"
    );

    // Bob may read `orders` but not write it, and may not join `readers`.
    let denied = python(
        "confluent_produce.py",
        [
            "--bootstrap",
            &kafka,
            "--topic",
            "orders",
            "--count",
            "5",
            "--prefix",
            "bob",
            "--no-idempotence",
            "--timeout",
            "30",
        ]
        .map(s)
        .to_vec(),
        "bob",
        BOB_PASSWORD,
    )
    .await;
    assert_eq!(denied["acked"], 0, "{denied}");
    assert!(
        denied["errors"].get("TOPIC_AUTHORIZATION_FAILED").is_some(),
        "{denied}"
    );
    let outsider = python(
        "confluent_consume.py",
        [
            "--bootstrap",
            &kafka,
            "--topic",
            "orders",
            "--group",
            "readers",
            "--timeout",
            "20",
            "--idle",
            "10",
        ]
        .map(s)
        .to_vec(),
        "bob",
        BOB_PASSWORD,
    )
    .await;
    assert_eq!(outsider["count"], 0, "{outsider}");
    assert!(
        outsider["errors"]
            .get("GROUP_AUTHORIZATION_FAILED")
            .is_some(),
        "{outsider}"
    );

    // gRPC: a token for alice works where her rules allow, PERMISSION_DENIED elsewhere.
    let mut args = vec![s("token"), s("create"), s("--principal"), s("User:alice")];
    args.extend(admin_flag());
    let token = root_cli(args, None).await.unwrap().trim().to_owned();
    let producer = Producer::builder(&grpc)
        .tls(Tls::from_files(&ca_path, None::<(&str, &str)>).unwrap())
        .token(Token::new(&token).unwrap())
        .build()
        .await
        .unwrap();
    producer
        .send(ProducerRecord::new("orders", "from the sdk"))
        .await
        .unwrap();
    match producer
        .send(ProducerRecord::new("payroll", "not hers"))
        .await
    {
        Err(Error::Server { code, message }) => {
            assert_eq!(code, ErrorCode::PermissionDenied, "{message}");
            assert!(message.contains("payroll"), "{message}");
        }
        other => panic!("expected PERMISSION_DENIED, got {other:?}"),
    }

    // REST: her reassignment is refused with 403 and a JSON error, until she may Alter the
    // cluster.
    let reassign = || {
        let (ca_path, admin, token) = (ca_path.clone(), admin.clone(), token.clone());
        async move {
            let pem = std::fs::read(&ca_path).unwrap();
            let client = reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
                .build()
                .unwrap();
            let response = client
                .post(format!("https://{admin}/v1/reassignments"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "rebalance": true }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    };
    let (status, body) = reassign().await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "PERMISSION_DENIED", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("Alter"),
        "{body}"
    );
    grant(&[
        "--allow-principal",
        "User:alice",
        "--operation",
        "Alter",
        "--cluster",
    ])
    .await
    .unwrap();
    let (status, body) = eventually_allowed(reassign).await;
    assert_eq!(status, 200, "{body}");

    // A rule removed stops applying: without Write, her next produce is refused.
    let mut args = [
        "acl",
        "remove",
        "--principal",
        "User:alice",
        "--topic",
        "orders",
        "--operation",
        "Write",
    ]
    .map(s)
    .to_vec();
    args.extend(admin_flag());
    let removed = root_cli(args, None).await.unwrap();
    assert!(removed.contains("orders"), "{removed}");
    let revoked_at = tokio::time::Instant::now();
    loop {
        match producer
            .send(ProducerRecord::new("orders", "after revocation"))
            .await
        {
            Err(Error::Server { code, .. }) => {
                assert_eq!(code, ErrorCode::PermissionDenied);
                break;
            }
            other => {
                other.unwrap();
                assert!(
                    revoked_at.elapsed() < Duration::from_secs(20),
                    "a removed rule still applies after 20 s"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The first answer other than 403 within 20 s (a new rule reaches every process within the
/// rules cache's lifetime).
async fn eventually_allowed<F, Fut>(call: F) -> (u16, Value)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let start = tokio::time::Instant::now();
    loop {
        let (status, body) = call().await;
        if status != 403 || start.elapsed() > Duration::from_secs(20) {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

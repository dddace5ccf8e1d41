//! Authentication of the gRPC and REST APIs on a real `strata standalone` with
//! `--authenticate`, TLS and client certificates optional:
//! - callers without credentials, or with a made-up token, are refused (UNAUTHENTICATED) by the
//!   admin API, the proxy's gRPC (CLI and SDK) alike, while the probes stay open;
//! - a super user (by client certificate) makes a token for alice; alice's token works for the
//!   CLI over REST and gRPC and for the SDK, within the ACL rules the super user gave her;
//!   alice may manage her own tokens, not others' or users (PERMISSION_DENIED);
//! - a revoked token is refused within the cache's lifetime, and the other token still works;
//! - the broker admits only the cluster's own certificate: alice's certificate, from the same
//!   CA, is refused, and so is a caller without one;
//! - no secret reaches the server's log;
//! - `--authenticate` without TLS does not start.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use strata_client::{ErrorCode, Producer, ProducerRecord, Tls, Token};
use strata_integration_tests::cli::strata;
use strata_integration_tests::harness;
use strata_integration_tests::secured::{SecuredStandalone, Security, cli};
use strata_tls::ClientTls;

const MINUTE: Duration = Duration::from_secs(60);

fn s(v: impl ToString) -> String {
    v.to_string()
}

fn refused_with(result: anyhow::Result<String>, code: &str) -> String {
    match result {
        Ok(out) => panic!("expected {code}, got success: {out}"),
        Err(e) => {
            let text = format!("{e:#}");
            assert!(text.contains(code), "expected {code}: {text}");
            text
        }
    }
}

#[tokio::test]
async fn tokens_and_certificates_authenticate_grpc_and_rest_callers() {
    harness::init_tracing();
    let standalone = SecuredStandalone::start(
        "tokens",
        Security {
            tls_client_auth: Some("optional"),
            authenticate: true,
            super_users: Some("User:root"),
            ..Security::default()
        },
    )
    .unwrap();
    // The cluster's certificate names User:strata, the brokers' only admitted caller.
    let server = &standalone.tls().server_cert;
    let alice_cert = standalone.client_cert("alice");
    let ca_path = standalone.ca_path();
    let admin = standalone.admin_addr();
    let grpc = standalone.grpc_addr();
    let broker = standalone.listener("--broker-addr");
    let tls_only = standalone.tls_flags();
    let as_root = standalone.cert_flags(&standalone.client_cert("root"));
    let with_token = |token: &str| standalone.token_flags(token);

    // No credentials: refused by the admin API and the proxy, with the way in named.
    let text = refused_with(
        cli(&["topic", "list", "--admin", &admin], &tls_only, None).await,
        "UNAUTHENTICATED",
    );
    assert!(text.contains("--token"), "{text}");
    refused_with(
        cli(&["group", "list", "--server", &grpc], &tls_only, None).await,
        "UNAUTHENTICATED",
    );
    let made_up = with_token("strata_0123456789abcdef_notarealsecret");
    refused_with(
        cli(&["topic", "list", "--admin", &admin], &made_up, None).await,
        "UNAUTHENTICATED",
    );

    // The super user, by certificate, makes alice a token; alice works with it.
    let token = cli(
        &[
            "token",
            "create",
            "--principal",
            "User:alice",
            "--description",
            "ci",
            "--admin",
            &admin,
        ],
        &as_root,
        None,
    )
    .await
    .unwrap()
    .trim()
    .to_owned();
    assert!(token.starts_with("strata_"), "{token}");
    let alice = with_token(&token);
    // Authentication on means ACLs on: alice gets everything on `orders`, nothing else.
    cli(
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "All",
            "--topic",
            "orders",
            "--admin",
            &admin,
        ],
        &as_root,
        None,
    )
    .await
    .unwrap();
    cli(
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "2",
            "--admin",
            &admin,
        ],
        &alice,
        None,
    )
    .await
    .unwrap();
    let lines: String = (0..50).map(|i| format!("order-{i}\n")).collect();
    cli(
        &["produce", "orders", "--server", &grpc],
        &alice,
        Some(&lines),
    )
    .await
    .unwrap();
    let consumed = cli(
        &[
            "consume",
            "orders",
            "--server",
            &grpc,
            "--from-beginning",
            "--max-messages",
            "50",
        ],
        &alice,
        None,
    )
    .await
    .unwrap();
    assert_eq!(consumed.lines().count(), 50, "{consumed}");
    refused_with(
        cli(
            &["produce", "orders", "--server", &grpc],
            &tls_only,
            Some("x\n"),
        )
        .await,
        "UNAUTHENTICATED",
    );

    // The SDK: the token is sent with every call; without it the server refuses.
    let sdk_tls = Tls::from_files(&ca_path, None::<(&str, &str)>).unwrap();
    let producer = Producer::builder(&grpc)
        .tls(sdk_tls.clone())
        .token(Token::new(&token).unwrap())
        .build()
        .await
        .unwrap();
    producer
        .send(ProducerRecord::new("orders", "from the sdk"))
        .await
        .unwrap();
    let anonymous = Producer::builder(&grpc).tls(sdk_tls).build().await.unwrap();
    match anonymous.partitions("orders").await {
        Err(strata_client::Error::Server { code, .. }) => {
            assert_eq!(code, ErrorCode::Unauthenticated);
        }
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }

    // Alice manages her own tokens only, and no users.
    refused_with(
        cli(&["user", "list", "--admin", &admin], &alice, None).await,
        "PERMISSION_DENIED",
    );
    refused_with(
        cli(
            &[
                "token",
                "create",
                "--principal",
                "User:bob",
                "--admin",
                &admin,
            ],
            &alice,
            None,
        )
        .await,
        "PERMISSION_DENIED",
    );
    let second = cli(
        &[
            "token",
            "create",
            "--principal",
            "User:alice",
            "--expires-in-secs",
            "3600",
            "--admin",
            &admin,
        ],
        &alice,
        None,
    )
    .await
    .unwrap()
    .trim()
    .to_owned();
    let listed = cli(
        &["token", "list", "--admin", &admin, "--format", "json"],
        &alice,
        None,
    )
    .await
    .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert!(
        !listed.to_string().contains(&token[24..]),
        "no secrets listed"
    );

    // Revoked by the super user: refused within the cache's lifetime; the other still works.
    let id = &token["strata_".len().."strata_".len() + 16];
    cli(&["token", "revoke", id, "--admin", &admin], &as_root, None)
        .await
        .unwrap();
    let revoked_at = tokio::time::Instant::now();
    loop {
        let attempt = cli(&["topic", "list", "--admin", &admin], &alice, None).await;
        if attempt.is_err() {
            refused_with(attempt, "UNAUTHENTICATED");
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(20),
            "a revoked token still works after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cli(
        &["topic", "list", "--admin", &admin],
        &with_token(&second),
        None,
    )
    .await
    .unwrap();

    // The broker admits the cluster's own certificate and nothing else.
    let status = |tls: Option<ClientTls>| {
        let broker = broker.clone();
        async move {
            let channel = ClientTls::endpoint(&broker, tls.as_ref())
                .unwrap()
                .connect()
                .await?;
            let mut client = strata_proto::v1::broker_client::BrokerClient::new(channel);
            anyhow::Ok(
                client
                    .status(strata_proto::v1::StatusRequest {})
                    .await
                    .map(|_| ()),
            )
        }
    };
    let as_cluster = ClientTls::from_files(
        &ca_path,
        Some(server.cert.as_path()),
        Some(server.key.as_path()),
    )
    .unwrap();
    status(Some(as_cluster)).await.unwrap().unwrap();
    let as_alice = ClientTls::from_files(
        &ca_path,
        Some(alice_cert.cert.as_path()),
        Some(alice_cert.key.as_path()),
    )
    .unwrap();
    let denied = status(Some(as_alice)).await.unwrap().unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let no_cert = ClientTls::from_files(&ca_path, None, None).unwrap();
    let denied = status(Some(no_cert)).await.unwrap().unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated, "{denied:?}");

    // Brokers export their listener's TLS metrics too (the health endpoint is plain HTTP).
    let broker_http = standalone.listener("--broker-http-addr");
    let metrics = strata_integration_tests::cli::metrics(broker_http)
        .await
        .unwrap();
    assert!(
        metrics.contains("strata_broker_tls_cert_not_after_seconds"),
        "{metrics}"
    );
    assert!(!metrics.contains(&token[24..]), "no secret in metrics");

    // The refusals were logged, and no secret was.
    let log = std::fs::read_to_string(standalone.server.log_path()).unwrap();
    assert!(
        log.contains("caller failed to authenticate"),
        "refusals are logged"
    );
    for secret in [&token[24..], &second[24..]] {
        assert!(!log.contains(secret), "a token's secret reached the log");
    }
}

#[tokio::test]
async fn authentication_without_tls_does_not_start() {
    let data = tempfile::tempdir().unwrap();
    let dir = s(data.path().display());
    let refused = strata(
        &[
            "standalone",
            "--data-dir",
            &dir,
            "--authenticate",
            "--proxy-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--broker-addr",
            "127.0.0.1:0",
            "--kafka-addr",
            "127.0.0.1:0",
            "--proxy-http-addr",
            "127.0.0.1:0",
            "--broker-http-addr",
            "127.0.0.1:0",
        ],
        None,
        MINUTE,
    )
    .await
    .unwrap_err();
    let text = format!("{refused:#}");
    assert!(text.contains("authenticate needs TLS"), "{text}");
}

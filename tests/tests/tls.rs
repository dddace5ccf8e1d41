//! TLS on every listener of a real `strata standalone`, with client certificates required:
//! the CLI (admin REST API and the gRPC SDK underneath it), kcat (librdkafka) and kafka-python
//! (Python's ssl) get in with a certificate from the cluster's CA and are refused without
//! one; the proxy reaches the broker, and the controller asks the broker for partition states,
//! over the same mTLS; plaintext clients are refused; the health endpoint stays plain HTTP;
//! a certificate rotated on disk is served to the next connection without a restart.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::Value;
use strata_integration_tests::cli::samples;
use strata_integration_tests::harness;
use strata_integration_tests::kafka_clients::KafkaClients;
use strata_integration_tests::secured::{self, SecuredStandalone, Security};
use strata_tls::ClientTls;
use strata_tls::testing::Pair;

const MINUTE: Duration = Duration::from_secs(60);

fn s(v: impl ToString) -> String {
    v.to_string()
}

#[tokio::test]
async fn every_listener_serves_mtls_and_refuses_clients_without_a_certificate() {
    harness::init_tracing();
    let Some(clients) = KafkaClients::find("tls") else {
        return;
    };
    let standalone = SecuredStandalone::start(
        "tls",
        Security {
            tls_client_auth: Some("required"),
            ..Security::default()
        },
    )
    .unwrap();
    let (ca, server) = (&standalone.tls().ca, &standalone.tls().server_cert);
    let alice = standalone.client_cert("alice");
    let ca_path = standalone.ca_path();
    let admin = standalone.admin_addr();
    let grpc = standalone.grpc_addr();
    let kafka = standalone.kafka_addr();
    let ca_arg = s(ca_path.display());
    let (cert_arg, key_arg) = (s(alice.cert.display()), s(alice.key.display()));
    let alice_flags = standalone.cert_flags(&alice);
    let as_alice = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(s).collect();
        all.extend(alice_flags.iter().cloned());
        all
    };
    let strata = |args: Vec<String>, stdin: Option<Vec<u8>>| {
        let clients = &clients;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            clients.strata(&args, stdin.as_deref(), MINUTE).await
        }
    };

    // The admin REST API and the gRPC SDK, with alice's certificate.
    strata(
        as_alice(&[
            "topic",
            "create",
            "sealed",
            "--partitions",
            "2",
            "--admin",
            &admin,
        ]),
        None,
    )
    .await
    .unwrap();
    let lines: String = (0..100).map(|i| format!("cli-{i}\n")).collect();
    strata(
        as_alice(&["produce", "sealed", "--server", &grpc]),
        Some(lines.into_bytes()),
    )
    .await
    .unwrap();
    let consumed = strata(
        as_alice(&[
            "consume",
            "sealed",
            "--server",
            &grpc,
            "--from-beginning",
            "--max-messages",
            "100",
        ]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(consumed.lines().count(), 100, "{consumed}");

    // The controller asked the broker for the partitions' states over mTLS: they are known.
    let described = strata(
        as_alice(&[
            "topic", "describe", "sealed", "--admin", &admin, "--format", "json",
        ]),
        None,
    )
    .await
    .unwrap();
    let described: Value = serde_json::from_str(&described).unwrap();
    let states: Vec<&str> = described["partitions_detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["Write", "Write"], "{described}");

    // Refused: no client certificate, no CA (plaintext), on gRPC and the admin API alike.
    for args in [
        vec![
            s("topic"),
            s("list"),
            s("--admin"),
            admin.clone(),
            s("--tls-ca"),
            ca_arg.clone(),
        ],
        vec![s("topic"), s("list"), s("--admin"), admin.clone()],
        vec![
            s("group"),
            s("list"),
            s("--server"),
            grpc.clone(),
            s("--tls-ca"),
            ca_arg.clone(),
        ],
        vec![s("group"), s("list"), s("--server"), grpc.clone()],
    ] {
        let err = s(strata(args.clone(), None).await.unwrap_err());
        let reason = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or(&err);
        eprintln!("refused as expected: {args:?}: {reason}");
    }

    // kcat (librdkafka's TLS) with alice's certificate, then without one.
    let ssl = [
        "-X",
        "security.protocol=ssl",
        "-X",
        &format!("ssl.ca.location={ca_arg}"),
    ];
    let identity = [
        "-X",
        &format!("ssl.certificate.location={cert_arg}"),
        "-X",
        &format!("ssl.key.location={key_arg}"),
    ];
    let records: String = (0..50).map(|i| format!("kcat-{i}\n")).collect();
    let mut produce = vec!["-b", &kafka, "-t", "sealed", "-P"];
    produce.extend(ssl);
    produce.extend(identity.iter().copied());
    clients
        .kcat(&produce, Some(records.as_bytes()), MINUTE)
        .await
        .unwrap();
    let mut consume = vec![
        "-b",
        &kafka,
        "-t",
        "sealed",
        "-C",
        "-e",
        "-q",
        "-o",
        "beginning",
    ];
    consume.extend(ssl);
    consume.extend(identity.iter().copied());
    let read = clients.kcat(&consume, None, MINUTE).await.unwrap();
    assert_eq!(read.lines().count(), 150, "{read}");
    let mut anonymous = vec!["-b", &kafka, "-L", "-m", "5"];
    anonymous.extend(ssl);
    assert!(
        clients.kcat(&anonymous, None, MINUTE).await.is_err(),
        "kcat without a client certificate got in"
    );

    // kafka-python (Python's ssl module) reads everything back.
    let summary = clients
        .python_json(
            "kafka_python_consume.py",
            &[
                s("--bootstrap"),
                kafka.clone(),
                s("--topic"),
                s("sealed"),
                s("--expect"),
                s(150),
                s("--ssl-ca"),
                ca_arg.clone(),
                s("--ssl-cert"),
                cert_arg.clone(),
                s("--ssl-key"),
                key_arg.clone(),
            ],
            MINUTE,
        )
        .await
        .unwrap();
    assert_eq!(summary["count"], 150, "{summary}");

    let health = format!("http://{}", standalone.listener("--proxy-http-addr"));
    // The health endpoint stays plain HTTP (kubelet probes, Prometheus) and counts the
    // refused handshakes.
    let metrics = reqwest::get(format!("{}/metrics", health))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures = metric(&metrics, "strata_proxy_tls_handshake_failures_total");
    assert!(
        failures >= 1.0,
        "refused handshakes not counted:\n{metrics}"
    );

    // A rotation on disk is served to the next connection, without a restart.
    let before = served_certificate(&kafka, &ca_path, &alice).await;
    assert_eq!(before, first_certificate(server));
    let rotated = ca.server(secured::SERVER_CERT, &["rotated.example"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = served_certificate(&kafka, &ca_path, &alice).await;
        if now == first_certificate(&rotated) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated certificate is not served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reloads = reqwest::get(format!("{}/metrics", health))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric(&reloads, "strata_proxy_tls_reloads_total") >= 1.0,
        "{reloads}"
    );
}

fn metric(page: &str, name: &str) -> f64 {
    samples(page, name, &[]).first().copied().unwrap_or(0.0)
}

fn first_certificate(pair: &Pair) -> Vec<u8> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::pem_file_iter(&pair.cert)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// The certificate the listener at `addr` presents to a new connection.
async fn served_certificate(addr: &str, ca: &std::path::Path, identity: &Pair) -> Vec<u8> {
    let tls = ClientTls::from_files(ca, Some(&identity.cert), Some(&identity.key)).unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls.rustls().unwrap());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

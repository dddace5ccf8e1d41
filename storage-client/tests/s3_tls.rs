//! An S3 endpoint over https whose certificate a private CA issued: reachable with
//! `ca_file`, refused without it. The TLS end is a terminator in front of a real S3-protocol
//! server (s3s-fs), the way a load balancer or MinIO with TLS presents it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use object_store::ObjectStoreExt as _;
use object_store::path::Path;
use strata_config::{ClientAuth, PrincipalRule, TlsSection};
use strata_storage::backend::{self, BackendOptions};
use strata_testkit::S3Server;
use strata_tls::testing::TestCa;
use strata_tls::{Alpn, Incoming, ServerTls};

#[tokio::test]
async fn an_https_endpoint_with_a_private_ca_works_with_ca_file_only() {
    let s3 = S3Server::start().expect("the S3 TLS test needs s3s-fs; run scripts/setup.sh");
    s3.create_bucket("tls").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "storage CA");
    let pair = ca.server("s3", &[]);
    let tls = ServerTls::from_config(&TlsSection {
        cert: Some(pair.cert),
        key: Some(pair.key),
        ca: None,
        client_auth: ClientAuth::None,
        principal: PrincipalRule::Cn,
        http: false,
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_addr = listener.local_addr().unwrap();
    let mut incoming = Incoming::new(listener, tls, Alpn::Http);
    let backend_addr = s3.addr();
    let mut relays = tokio::task::JoinSet::new();
    let terminator = tokio::spawn(async move {
        loop {
            let mut conn = incoming.accept().await;
            relays.spawn(async move {
                let mut upstream = tokio::net::TcpStream::connect(backend_addr).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
            });
        }
    });

    let https = s3
        .url("tls")
        .replace(&s3.endpoint(), &format!("https://{tls_addr}"));
    let with_ca = format!("{https}&ca_file={}", ca.ca().display());
    let store = backend::open(&with_ca, BackendOptions::default()).unwrap();
    let path = Path::from("over/tls");
    store
        .put(&path, Bytes::from_static(b"sealed").into())
        .await
        .unwrap();
    let read = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(read, Bytes::from_static(b"sealed"));
    assert_eq!(
        std::fs::read(s3.root().join("tls/over/tls")).unwrap(),
        b"sealed",
        "the object reached the S3 server behind the TLS end"
    );

    let without = backend::open(&https, BackendOptions::default()).unwrap();
    let err = without.get(&path).await.unwrap_err();
    let chain = error_chain(&err);
    assert!(chain.contains("certificate"), "{chain}");

    let missing = format!("{https}&ca_file=/nonexistent/ca.pem");
    let err = backend::open(&missing, BackendOptions::default()).unwrap_err();
    assert!(err.to_string().contains("ca_file"), "{err}");
    assert!(
        !err.to_string().contains("strata-test-secret"),
        "the secret key is masked: {err}"
    );
    terminator.abort();
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

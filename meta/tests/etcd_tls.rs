//! etcd over TLS with client certificates: the store works through it with the right
//! identity, and refuses to start without one or without trusting etcd's CA.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use strata_meta::EtcdTls;
use strata_testkit::{EtcdServer, EtcdTlsFiles};
use strata_tls::ClientTls;
use strata_tls::testing::TestCa;

#[tokio::test]
async fn the_store_talks_to_etcd_over_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "etcd CA");
    let server = ca.server("etcd", &[]);
    let client = ca.client("strata", "strata", &[]);
    let etcd = EtcdServer::start_tls(&EtcdTlsFiles {
        cert: server.cert.clone(),
        key: server.key.clone(),
        ca: ca.ca(),
    })
    .expect("the etcd TLS test needs a real etcd; run scripts/setup.sh");
    let url = etcd.tls_endpoint().unwrap();
    let tls = |cert: Option<&strata_tls::testing::Pair>| -> EtcdTls {
        ClientTls::from_files(
            &ca.ca(),
            cert.map(|p| p.cert.as_path()),
            cert.map(|p| p.key.as_path()),
        )
        .unwrap()
        .tonic()
    };

    let store = strata_meta::open_with(&url, 128, Some(tls(Some(&client))))
        .await
        .unwrap();
    store
        .put("/tls/hello", Bytes::from_static(b"world"), None)
        .await
        .unwrap();
    let read = store.get("/tls/hello").await.unwrap().unwrap();
    assert_eq!(read.value, Bytes::from_static(b"world"));

    let err = strata_meta::open_with(&url, 128, Some(tls(None)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, strata_meta::MetaError::Unavailable { .. }),
        "no client certificate: {err}"
    );

    let err = strata_meta::open_with(&url, 128, None).await.unwrap_err();
    assert!(
        matches!(err, strata_meta::MetaError::Unavailable { .. }),
        "plaintext to a TLS port: {err}"
    );
}

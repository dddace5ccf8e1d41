//! Every listener kind through a real handshake on loopback: plaintext, TLS, mTLS required
//! and optional, principals by CN and SAN, reload on rotation, a bad rotation ignored, and a
//! silent client holding up nobody.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use rustls_pki_types::ServerName;
use strata_config::{ClientAuth, PrincipalRule, TlsSection};
use strata_tls::testing::{Pair, TestCa};
use strata_tls::{Alpn, ClientTls, Conn, Incoming, ServerTls, TlsError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

fn section(server: &Pair, ca: Option<&Path>, client_auth: ClientAuth) -> TlsSection {
    TlsSection {
        cert: Some(server.cert.clone()),
        key: Some(server.key.clone()),
        ca: ca.map(Path::to_owned),
        client_auth,
        principal: PrincipalRule::Cn,
        http: false,
    }
}

async fn listen(tls: Option<Arc<ServerTls>>) -> Incoming {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Incoming::new(listener, tls, Alpn::None)
}

/// Connects over TLS with `client`, says "ping", and returns the server's certificate.
async fn ping(
    addr: std::net::SocketAddr,
    client: &ClientTls,
) -> std::io::Result<rustls_pki_types::CertificateDer<'static>> {
    let connector = tokio_rustls::TlsConnector::from(client.rustls().unwrap());
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(b"ping").await?;
    let mut answer = [0u8; 4];
    tls.read_exact(&mut answer).await?;
    assert_eq!(&answer, b"pong");
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].clone())
}

/// Serves one "ping" on the next connection and returns it.
async fn pong(incoming: &mut Incoming) -> Conn {
    let mut conn = tokio::time::timeout(Duration::from_secs(10), incoming.accept())
        .await
        .expect("a connection within 10 s");
    let mut asked = [0u8; 4];
    conn.read_exact(&mut asked).await.unwrap();
    conn.write_all(b"pong").await.unwrap();
    conn.flush().await.unwrap();
    conn
}

#[tokio::test]
async fn plaintext_when_no_certificate_is_configured() {
    let section = TlsSection {
        cert: None,
        key: None,
        ca: None,
        client_auth: ClientAuth::None,
        principal: PrincipalRule::Cn,
        http: false,
    };
    assert!(ServerTls::from_config(&section).unwrap().is_none());
    let mut incoming = listen(None).await;
    let addr = incoming.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut a = [0u8; 4];
        s.read_exact(&mut a).await.unwrap();
        a
    });
    let conn = pong(&mut incoming).await;
    assert_eq!(&client.await.unwrap(), b"pong");
    assert!(!conn.peer().tls);
    assert_eq!(conn.peer().principal, None);
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "cluster CA");
    let server = ca.server("server", &[]);
    let tls = ServerTls::from_config(&section(&server, None, ClientAuth::None))
        .unwrap()
        .unwrap();
    let mut incoming = listen(Some(tls.clone())).await;
    let addr = incoming.local_addr().unwrap();

    let trusting = ClientTls::from_files(&ca.ca(), None, None).unwrap();
    let client = tokio::spawn(async move { ping(addr, &trusting).await });
    let conn = pong(&mut incoming).await;
    client.await.unwrap().unwrap();
    assert!(conn.peer().tls);
    assert_eq!(
        conn.peer().principal,
        None,
        "no client certificate asked for"
    );

    let other_ca = TestCa::new(&dir.path().join("other"), "someone else's CA");
    let stranger = ClientTls::from_files(&other_ca.ca(), None, None).unwrap();
    let refused = tokio::spawn(async move { ping(addr, &stranger).await });
    // The handshake runs only while the listener is polled; a failed one yields nothing and
    // is counted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tls.metrics().handshake_failures.get() == 0 {
        tokio::select! {
            _ = incoming.next() => panic!("a failed handshake yielded a connection"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "failure not counted"
        );
    }
    let err = refused.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn mtls_required_names_the_principal_and_refuses_clients_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "cluster CA");
    let server = ca.server("server", &[]);
    let alice = ca.client("alice", "alice", &["alice.example"]);
    for (rule, expected) in [
        (PrincipalRule::Cn, "User:alice"),
        (PrincipalRule::San, "User:alice.example"),
    ] {
        let mut s = section(&server, Some(&ca.ca()), ClientAuth::Required);
        s.principal = rule;
        let tls = ServerTls::from_config(&s).unwrap().unwrap();
        let mut incoming = listen(Some(tls)).await;
        let addr = incoming.local_addr().unwrap();
        let with_cert =
            ClientTls::from_files(&ca.ca(), Some(&alice.cert), Some(&alice.key)).unwrap();
        let client = tokio::spawn(async move { ping(addr, &with_cert).await });
        let conn = pong(&mut incoming).await;
        client.await.unwrap().unwrap();
        assert_eq!(conn.peer().principal.as_deref(), Some(expected));

        // TLS 1.3 reports the refusal on the first read after the handshake.
        let without = ClientTls::from_files(&ca.ca(), None, None).unwrap();
        let server_side = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(2), incoming.accept())
                .await
                .is_ok()
        });
        assert!(ping(addr, &without).await.is_err());
        assert!(
            !server_side.await.unwrap(),
            "a client without a certificate got in"
        );
    }
}

#[tokio::test]
async fn optional_client_auth_admits_anonymous_clients() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "cluster CA");
    let server = ca.server("server", &[]);
    let tls = ServerTls::from_config(&section(&server, Some(&ca.ca()), ClientAuth::Optional))
        .unwrap()
        .unwrap();
    let mut incoming = listen(Some(tls)).await;
    let addr = incoming.local_addr().unwrap();
    let anonymous = ClientTls::from_files(&ca.ca(), None, None).unwrap();
    let client = tokio::spawn(async move { ping(addr, &anonymous).await });
    let conn = pong(&mut incoming).await;
    client.await.unwrap().unwrap();
    assert_eq!(conn.peer().principal, None);
}

#[tokio::test]
async fn a_rotated_certificate_serves_new_connections_and_a_broken_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "cluster CA");
    let first = ca.server("server", &[]);
    let tls = ServerTls::from_config(&section(&first, None, ClientAuth::None))
        .unwrap()
        .unwrap()
        .checking_always();
    let mut incoming = listen(Some(tls.clone())).await;
    let addr = incoming.local_addr().unwrap();
    let client = ClientTls::from_files(&ca.ca(), None, None).unwrap();

    let served = |client: ClientTls| tokio::spawn(async move { ping(addr, &client).await });
    let before = served(client.clone());
    pong(&mut incoming).await;
    let before = before.await.unwrap().unwrap();

    // Same file names, new certificate: the next handshake presents it.
    let rotated = ca.server("server", &["rotated.example"]);
    assert_eq!(rotated.cert, first.cert);
    let after = served(client.clone());
    pong(&mut incoming).await;
    let after = after.await.unwrap().unwrap();
    assert_ne!(before, after, "the rotated certificate is not served");
    assert_eq!(tls.metrics().reloads.get(), 1);

    // A half-done rotation (a key that is not PEM) keeps the last good pair.
    std::fs::write(&first.key, "not a key").unwrap();
    let still = served(client);
    pong(&mut incoming).await;
    assert_eq!(still.await.unwrap().unwrap(), after);
    assert_eq!(tls.metrics().reload_failures.get(), 1);
}

#[tokio::test]
async fn a_silent_client_holds_up_no_other_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "cluster CA");
    let server = ca.server("server", &[]);
    let tls = ServerTls::from_config(&section(&server, None, ClientAuth::None))
        .unwrap()
        .unwrap();
    let mut incoming = listen(Some(tls)).await;
    let addr = incoming.local_addr().unwrap();
    let _silent = TcpStream::connect(addr).await.unwrap();
    let client = ClientTls::from_files(&ca.ca(), None, None).unwrap();
    let talking = tokio::spawn(async move { ping(addr, &client).await });
    pong(&mut incoming).await;
    talking.await.unwrap().unwrap();
}

#[test]
fn bad_settings_name_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "cluster CA");
    let server = ca.server("server", &[]);

    let missing = Pair {
        cert: dir.path().join("nope.crt"),
        key: server.key.clone(),
    };
    let err = ServerTls::from_config(&section(&missing, None, ClientAuth::None)).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope.crt"), "{err}");

    let err = ServerTls::from_config(&section(&server, None, ClientAuth::Required)).unwrap_err();
    assert!(err.to_string().contains("--tls-ca"), "{err}");

    let swapped = Pair {
        cert: server.key.clone(),
        key: server.cert.clone(),
    };
    let err = ServerTls::from_config(&section(&swapped, None, ClientAuth::None)).unwrap_err();
    assert!(matches!(err, TlsError::Empty { .. }), "{err}");

    let other = ca.server("other", &[]);
    let mismatched = Pair {
        cert: server.cert.clone(),
        key: other.key.clone(),
    };
    let err = ServerTls::from_config(&section(&mismatched, None, ClientAuth::None)).unwrap_err();
    assert!(matches!(err, TlsError::Pair { .. }), "{err}");

    let err = ClientTls::from_files(&ca.ca(), Some(&server.cert), None).unwrap_err();
    assert!(err.to_string().contains("--tls-key"), "{err}");
}

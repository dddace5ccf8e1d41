#![allow(clippy::unwrap_used)]

use super::*;

/// RFC 7677's example exchange, byte for byte.
#[test]
fn the_rfc_7677_exchange_succeeds_with_its_server_signature() {
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let salted = salted_password(ScramMechanism::Sha256, b"pencil", &salt, 4096);
    let credential =
        ScramCredential::from_salted_password(ScramMechanism::Sha256, salt, 4096, &salted);
    let mut exchange = ScramExchange::new(ScramMechanism::Sha256);
    let user = exchange
        .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        .unwrap();
    assert_eq!(user, "user");
    let step = exchange
        .challenge_with(Some(credential), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
        .unwrap();
    assert_eq!(
        step,
        ScramStep::Challenge(
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                .to_vec()
        )
    );
    let done = exchange
        .client_final(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
              p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        )
        .unwrap();
    assert_eq!(
        done,
        Some(ScramStep::Success {
            user: "user".into(),
            server_final: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
        })
    );
}

/// A client's side, to log in with a password.
fn client_final(
    mechanism: ScramMechanism,
    password: &str,
    client_first_bare: &str,
    server_first: &[u8],
) -> String {
    let server_first = std::str::from_utf8(server_first).unwrap();
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0;
    for attribute in server_first.split(',') {
        match attribute.split_once('=').unwrap() {
            ("r", r) => nonce = r,
            ("s", s) => salt = STANDARD.decode(s).unwrap(),
            ("i", i) => iterations = i.parse().unwrap(),
            _ => {}
        }
    }
    let salted = salted_password(mechanism, password.as_bytes(), &salt, iterations);
    let client_key = hmac(mechanism, &salted, b"Client Key");
    let stored = hash(mechanism, &client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac(mechanism, &stored, auth.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    format!("{without_proof},p={}", STANDARD.encode(proof))
}

fn login(credential: Option<ScramCredential>, mechanism: ScramMechanism, password: &str) -> bool {
    let mut exchange = ScramExchange::new(mechanism);
    exchange.client_first(b"n,,n=alice,r=abcdefgh").unwrap();
    let ScramStep::Challenge(server_first) = exchange.challenge(credential).unwrap() else {
        panic!("no challenge");
    };
    let answer = client_final(mechanism, password, "n=alice,r=abcdefgh", &server_first);
    exchange.client_final(answer.as_bytes()).unwrap().is_some()
}

#[test]
fn both_mechanisms_admit_the_right_password_only() {
    for mechanism in ScramMechanism::ALL {
        let credential = ScramCredential::from_password(mechanism, "s3cret", 4096);
        assert!(
            login(Some(credential.clone()), mechanism, "s3cret"),
            "{mechanism:?}"
        );
        assert!(
            !login(Some(credential.clone()), mechanism, "wrong"),
            "{mechanism:?}"
        );
        assert!(
            !login(None, mechanism, "s3cret"),
            "unknown user, {mechanism:?}"
        );
        assert!(credential.matches_password("s3cret"));
        assert!(!credential.matches_password("s3cret "));
    }
    // A SHA-256 credential does not answer a SHA-512 login.
    let credential = ScramCredential::from_password(ScramMechanism::Sha256, "s3cret", 4096);
    assert!(!login(Some(credential), ScramMechanism::Sha512, "s3cret"));
}

#[test]
fn malformed_messages_are_refused_with_a_reason() {
    for bad in [
        &b"p=tls-unique,,n=a,r=x"[..],
        b"n,,r=x",
        b"n,,n=a",
        b"n,a=bob,n=alice,r=x",
        b"garbage",
        b"n,,n=a=ZZ,r=x",
        &[0xff, 0xfe],
    ] {
        let mut exchange = ScramExchange::new(ScramMechanism::Sha256);
        let err = exchange.client_first(bad).unwrap_err();
        assert!(err.to_string().contains("SCRAM"), "{err}");
    }
    let mut exchange = ScramExchange::new(ScramMechanism::Sha256);
    assert!(
        exchange.client_final(b"c=biws,r=x,p=AAAA").is_err(),
        "out of order"
    );
}

#[test]
fn escaped_names_are_unescaped() {
    assert_eq!(unescape("a=2Cb=3Dc").unwrap(), "a,b=c");
}

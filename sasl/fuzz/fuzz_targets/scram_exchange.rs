//! A SCRAM exchange reads a client's first and final messages before the client has proved
//! anything: any bytes must give a step or a typed error, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_sasl::{ScramCredential, ScramExchange, ScramMechanism, ScramStep};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let mechanism = if choice & 1 == 0 {
        ScramMechanism::Sha256
    } else {
        ScramMechanism::Sha512
    };
    // A known user, or one that does not exist (the exchange goes on with a made-up salt).
    let credential = (choice & 2 == 0).then(|| {
        ScramCredential::from_salted_password(mechanism, vec![7; 16], 4096, &[1; 32])
    });
    // The two client messages, split at the first 0xFF (never valid UTF-8, so never inside
    // a well-formed message).
    let (first, last) = match rest.iter().position(|b| *b == 0xFF) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let mut exchange = ScramExchange::new(mechanism);
    if exchange.client_first(first).is_err() {
        return;
    }
    match exchange.challenge(credential) {
        Ok(ScramStep::Challenge(_)) => {}
        other => panic!("a named user always gets a challenge, got {other:?}"),
    }
    if let Ok(Some(ScramStep::Success { .. })) = exchange.client_final(last) {
        panic!("a proof without the server's random nonce was accepted");
    }
});

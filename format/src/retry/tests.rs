use bytes::Bytes;

use super::*;

fn record(headers: &[(&str, &str)]) -> Record {
    Record {
        offset: 5,
        timestamp: 1,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some(Bytes::from((*v).to_owned()))))
            .collect(),
    }
}

#[test]
fn a_retry_names_its_origin_attempt_and_error_and_is_delayed() {
    let origin = Origin {
        topic: "orders".into(),
        partition: 2,
        offset: 40,
    };
    let retry = retry_record(
        record(&[("trace", "t1")]),
        &origin,
        1,
        "timeout",
        10_000,
        500,
    );
    assert_eq!(origin_of(&retry.headers), Some(origin.clone()));
    assert_eq!(attempt_of(&retry.headers), 1);
    assert_eq!(retry.timestamp, 500);
    assert_eq!(
        delay::due_time(&retry).unwrap(),
        Some(10_500),
        "due a backoff after the nack"
    );
    assert!(retry.headers.iter().any(|(k, _)| k == "trace"));
    // The second failure replaces the bookkeeping rather than adding to it.
    let again = retry_record(retry, &origin, 2, "still down", 30_000, 20_000);
    assert_eq!(attempt_of(&again.headers), 2);
    assert_eq!(again.headers.len(), 7, "{:?}", again.headers);
    let dead = dead_letter(again, &origin, 3, &"x".repeat(5000), 99);
    assert!(
        !delay::is_delayed(&dead.headers),
        "a dead letter is not delayed"
    );
    let error = dead
        .headers
        .iter()
        .find(|(k, _)| k == LAST_ERROR_HEADER)
        .unwrap();
    assert_eq!(error.1.as_ref().unwrap().len(), MAX_ERROR_BYTES);
    let back = replayed(dead);
    assert_eq!(
        back.headers.len(),
        1,
        "only the application's header: {:?}",
        back.headers
    );
}

#[test]
fn names_and_schedules() {
    assert_eq!(retry_topic("billing"), "__retry.billing");
    assert_eq!(dead_letter_topic("billing"), "__dlq.billing");
    assert!(is_reserved("__retry.billing") && is_reserved("__dlq.x"));
    assert!(!is_reserved("orders") && !is_reserved("__consumer_offsets"));
    assert_eq!(backoff_ms(&DEFAULT_BACKOFF_MS, 1), 10_000);
    assert_eq!(backoff_ms(&DEFAULT_BACKOFF_MS, 16), 7_200_000);
    assert_eq!(
        backoff_ms(&DEFAULT_BACKOFF_MS, 40),
        7_200_000,
        "the last repeats"
    );
    assert_eq!(backoff_ms(&[250], 3), 250);
    assert_eq!(attempt_of(&record(&[(ATTEMPT_HEADER, "junk")]).headers), 0);
    assert_eq!(origin_of(&record(&[]).headers), None);
}

#[test]
fn an_error_is_cut_at_a_character_boundary() {
    let long = "é".repeat(MAX_ERROR_BYTES);
    let origin = Origin {
        topic: "t".into(),
        partition: 0,
        offset: 0,
    };
    let dead = dead_letter(record(&[]), &origin, 1, &long, 0);
    let error = dead
        .headers
        .iter()
        .find(|(k, _)| k == LAST_ERROR_HEADER)
        .unwrap();
    assert!(std::str::from_utf8(error.1.as_ref().unwrap()).is_ok());
}

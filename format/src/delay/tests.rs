use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn record(timestamp: i64, headers: &[(&str, &str)]) -> Record {
    Record {
        offset: 0,
        timestamp,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some(Bytes::from((*v).to_owned()))))
            .collect(),
    }
}

#[test]
fn each_header_gives_a_due_time() {
    assert_eq!(due_time(&record(1_000, &[])).unwrap(), None);
    assert_eq!(
        due_time(&record(1_000, &[(DELIVER_AT_HEADER, "5000")])).unwrap(),
        Some(5_000)
    );
    assert_eq!(
        due_time(&record(1_000, &[(DELAY_MS_HEADER, " 250 ")])).unwrap(),
        Some(1_250)
    );
    assert_eq!(
        due_time(&record(1_000, &[(DELAY_LEVEL_HEADER, "1")])).unwrap(),
        Some(2_000)
    );
    assert_eq!(
        due_time(&record(0, &[(DELAY_LEVEL_HEADER, "18")])).unwrap(),
        Some(7_200_000),
        "level 18 is two hours, as in RocketMQ"
    );
    assert!(is_delayed(&record(0, &[(DELAY_MS_HEADER, "1")]).headers));
    assert!(!is_delayed(&record(0, &[("other", "1")]).headers));
}

#[test]
fn bad_requests_name_the_header_and_what_it_takes() {
    for (header, value, says) in [
        (
            DELIVER_AT_HEADER,
            "soon",
            "milliseconds since the Unix epoch",
        ),
        (DELAY_MS_HEADER, "-5", "0 or more"),
        (DELAY_LEVEL_HEADER, "19", "level from 1 to 18"),
        (DELAY_LEVEL_HEADER, "0", "level from 1 to 18"),
    ] {
        let e = due_time(&record(0, &[(header, value)])).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(header) && text.contains(says), "{text}");
    }
    let both = record(0, &[(DELAY_MS_HEADER, "1"), (DELAY_LEVEL_HEADER, "1")]);
    assert_eq!(due_time(&both).unwrap_err(), DelayError::Ambiguous);
}

#[test]
fn the_topic_maximum_bounds_the_delay_from_now() {
    let r = record(10_000, &[(DELAY_MS_HEADER, "5000")]);
    assert_eq!(check_record(&r, "t", 5_000, 10_000).unwrap(), Some(15_000));
    let e = check_record(&r, "t", 4_999, 10_000).unwrap_err();
    assert!(
        matches!(
            e,
            DelayError::TooLate {
                asked_ms: 5_000,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("max_delay_ms"), "{e}");
    let e = check_record(&r, "t", 0, 10_000).unwrap_err();
    assert!(matches!(e, DelayError::NotAccepted { .. }), "{e}");
    assert_eq!(
        check_record(&record(0, &[]), "t", 0, 0).unwrap(),
        None,
        "records without a delay pass on any topic"
    );
    let forged = record(0, &[(DELAYED_FROM_HEADER, "3")]);
    assert_eq!(
        check_record(&forged, "t", 5_000, 0).unwrap_err(),
        DelayError::ReservedHeader
    );
}

#[test]
fn a_copy_drops_the_request_and_names_its_original() {
    let original = record(
        1,
        &[
            (DELAY_LEVEL_HEADER, "2"),
            ("trace", "x"),
            (DELAYED_FROM_HEADER, "9"),
        ],
    );
    let copy = delivered_copy(original, 42, 5_001);
    assert!(!is_delayed(&copy.headers));
    assert_eq!(copy.timestamp, 5_001);
    assert_eq!(delayed_from(&copy.headers), Some(42));
    assert_eq!(copy.headers.len(), 2, "{:?}", copy.headers);
    assert_eq!(copy.value.as_deref(), Some(&b"v"[..]));
}

proptest! {
    #[test]
    fn any_header_value_is_judged_without_panicking(value in ".{0,40}", ts in any::<i64>()) {
        for header in [DELIVER_AT_HEADER, DELAY_MS_HEADER, DELAY_LEVEL_HEADER] {
            let _ = check_record(&record(ts, &[(header, &value)]), "t", i64::MAX, ts);
        }
    }
}

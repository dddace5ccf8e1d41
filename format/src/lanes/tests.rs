use bytes::Bytes;

use super::*;

fn on(lane: Option<&str>) -> Vec<(String, Option<Bytes>)> {
    lane.map(|l| vec![(LANE_HEADER.to_owned(), Some(Bytes::from(l.to_owned())))])
        .unwrap_or_default()
}

#[test]
fn main_consumers_never_see_lane_records() {
    assert!(LaneFilter::Main.matches(&on(None)));
    assert!(
        LaneFilter::Main.matches(&on(Some(" "))),
        "an empty lane is the main lane"
    );
    assert!(!LaneFilter::Main.matches(&on(Some("alice"))));
    let alice = LaneFilter::Lane {
        name: "alice".into(),
        with_main: false,
    };
    assert!(alice.matches(&on(Some("alice"))));
    assert!(!alice.matches(&on(Some("bob"))));
    assert!(!alice.matches(&on(None)));
    let alice_and_main = LaneFilter::Lane {
        name: "alice".into(),
        with_main: true,
    };
    assert!(alice_and_main.matches(&on(None)));
    assert!(!alice_and_main.matches(&on(Some("bob"))));
    assert_eq!(alice.lane(), Some("alice"));
    assert_eq!(LaneFilter::Main.lane(), None);
}

#[test]
fn lane_names_and_lists_are_checked() {
    assert!(check_lane("test-alice_1.2").is_ok());
    for (bad, says) in [("", "empty"), ("a b", "holds ` `"), ("a,b", "holds `,`")] {
        let e = check_lane(bad).unwrap_err();
        assert!(e.to_string().contains(says), "{bad:?}: {e}");
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
    }
    assert!(
        check_lane(&"x".repeat(65))
            .unwrap_err()
            .to_string()
            .contains("longer than 64")
    );
    assert!(check_lanes(&["a".into(), "b".into()]).is_ok());
    let twice = check_lanes(&["a".into(), "a".into()]).unwrap_err();
    assert!(
        twice.to_string().contains("`a` is declared twice"),
        "{twice}"
    );
    let many: Vec<String> = (0..65).map(|i| format!("l{i}")).collect();
    assert!(
        check_lanes(&many)
            .unwrap_err()
            .to_string()
            .contains("65 lanes")
    );
}

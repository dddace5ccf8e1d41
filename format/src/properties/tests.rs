use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Option<Bytes>)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some(Bytes::from((*v).to_owned()))))
        .collect()
}

fn takes(filter: &str, pairs: &[(&str, &str)]) -> bool {
    PropertyFilter::parse(filter)
        .unwrap_or_else(|e| panic!("{e}"))
        .matches(&headers(pairs))
}

#[test]
fn comparisons_read_numbers_text_and_booleans() {
    let order = [("region", "eu"), ("amount", "250"), ("vip", "true")];
    assert!(takes("region = 'eu'", &order));
    assert!(!takes("region <> 'eu'", &order));
    assert!(takes("amount > 100", &order));
    assert!(takes("amount >= 250 AND amount <= 250.0", &order));
    assert!(!takes("amount < 100", &order));
    assert!(takes("amount != 3", &order));
    assert!(takes("amount = 2.5e2", &order));
    assert!(takes("vip = TRUE", &order));
    assert!(!takes("vip = false", &order));
    assert!(takes("amount BETWEEN 200 AND 300", &order));
    assert!(takes("amount NOT BETWEEN -5 AND 5", &order));
    assert!(takes("region IN ('us', 'eu')", &order));
    assert!(!takes("region NOT IN ('us', 'eu')", &order));
    assert!(takes("missing IS NULL AND region IS NOT NULL", &order));
    assert!(takes(
        "region = 'us' OR amount > 100 AND vip = TRUE",
        &order
    ));
    assert!(!takes(
        "(region = 'us' OR amount > 100) AND vip = FALSE",
        &order
    ));
    assert!(takes("NOT region = 'us'", &order));
    assert!(
        takes("and_then = 'x'", &[("and_then", "x")]),
        "a name may start like a keyword"
    );
    assert!(takes("\"x-trace id\" = 'a''b'", &[("x-trace id", "a'b")]));
    assert!(
        takes("a.b = 'c' and TRUE", &[("a.b", "c")]),
        "keywords in any case"
    );
}

#[test]
fn missing_or_unreadable_properties_are_unknown() {
    let text = [("amount", "lots")];
    for filter in [
        "amount > 100",
        "NOT amount > 100",
        "missing = 'x'",
        "NOT missing = 'x'",
        "missing IN ('x')",
        "missing NOT IN ('x')",
        "amount BETWEEN 1 AND 2",
        "amount NOT BETWEEN 1 AND 2",
        "NOT (missing = 'x' AND TRUE)",
    ] {
        assert!(
            !takes(filter, &text),
            "{filter} takes a record it cannot judge"
        );
    }
    // Unknown OR true is true; unknown AND false is false, and NOT of that is true.
    assert!(takes("missing = 'x' OR amount = 'lots'", &text));
    assert!(takes("NOT (missing = 'x' AND FALSE)", &text));
    // A header without a value is missing.
    let empty = vec![("k".to_owned(), None)];
    assert!(PropertyFilter::parse("k IS NULL").unwrap().matches(&empty));
}

#[test]
fn errors_say_where_and_what() {
    for (bad, at, says) in [
        ("", 1, "empty"),
        ("region", 7, "ends where a comparison"),
        ("region = ", 10, "ends where a value"),
        ("region = eu", 10, "where a number, 'text'"),
        ("region < 'eu'", 10, "compare with = or <> only"),
        ("amount > 1 amount", 12, "follows a whole condition"),
        ("(amount > 1", 12, "ends where `)`"),
        ("amount IN (1)", 12, "holds 'text' only"),
        ("amount BETWEEN 1 OR 2", 18, "BETWEEN's `AND`"),
        ("region = 'eu", 10, "not closed"),
        ("a # 1", 3, "`#` has no meaning"),
        ("a > 1e999", 5, "is not a number"),
        ("a NOT = 1", 7, "BETWEEN or IN"),
        ("a ! 1", 3, "`!=`"),
        ("OR a = 1", 1, "where a condition should start"),
    ] {
        let e = PropertyFilter::parse(bad).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(says), "{bad:?}: {text}");
        assert_eq!(e.position, at, "{bad:?}: {text}");
        assert!(text.contains(&format!("`{bad}`")), "{text}");
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
    }
    let deep = format!("{}a = 1{}", "(".repeat(100), ")".repeat(100));
    assert!(
        PropertyFilter::parse(&deep)
            .unwrap_err()
            .reason
            .contains("deeper")
    );
    let nots = format!("{}a = 1", "NOT ".repeat(100));
    assert!(
        PropertyFilter::parse(&nots)
            .unwrap_err()
            .reason
            .contains("deeper")
    );
    let long = format!("a IN ({})", vec!["'x'"; 3000].join(","));
    assert!(
        PropertyFilter::parse(&long)
            .unwrap_err()
            .reason
            .contains("longer")
    );
    let many = format!("a IN ({})", vec!["'x'"; 1500].join(","));
    assert!(
        PropertyFilter::parse(&many)
            .unwrap_err()
            .reason
            .contains("at most")
    );
}

#[test]
fn printing_keeps_only_the_parentheses_needed() {
    let f =
        PropertyFilter::parse("(a = 1 AND (b = 'x' OR c IS NULL)) OR NOT d IN ('p','q')").unwrap();
    assert_eq!(
        f.to_string(),
        "a = 1.0 AND (b = 'x' OR c IS NULL) OR NOT d IN ('p', 'q')"
    );
    // A long chain stays flat, so it parses back within the depth limit.
    let chain = vec!["a = 1"; 200].join(" AND ");
    let f = PropertyFilter::parse(&chain).unwrap();
    assert_eq!(PropertyFilter::parse(&f.to_string()).unwrap(), f);
    let odd = PropertyFilter::parse("\"and\" = 'it''s' OR \"1x\" BETWEEN -1e300 AND 2").unwrap();
    assert_eq!(PropertyFilter::parse(&odd.to_string()).unwrap(), odd);
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_.]{0,6}",
        "[ -~]{1,6}",
        Just("and".to_owned()),
        Just("x\"y".to_owned())
    ]
}

fn leaf() -> impl Strategy<Value = String> {
    let text = "[ -~]{0,6}".prop_map(|t| format!("'{}'", t.replace('\'', "''")));
    let quoted = |n: String| format!("\"{}\"", n.replace('"', "\"\""));
    prop_oneof![
        (
            name(),
            prop_oneof!["=", "<>", "<", ">=", "!="],
            -1e6f64..1e6
        )
            .prop_map(move |(n, op, v)| format!("{} {op} {v}", quoted(n))),
        (name(), text.clone()).prop_map(move |(n, t)| format!("{} = {t}", quoted(n))),
        (name(), proptest::collection::vec(text, 1..4)).prop_map(move |(n, v)| format!(
            "{} NOT IN ({})",
            quoted(n),
            v.join(",")
        )),
        (name(), -100i32..100, 0i32..100).prop_map(move |(n, lo, w)| format!(
            "{} BETWEEN {lo} AND {}",
            quoted(n),
            lo + w
        )),
        name().prop_map(move |n| format!("{} IS NOT NULL", quoted(n))),
        Just("TRUE".to_owned()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) OR {b}")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

proptest! {
    /// Whatever parses prints back to the same filter, which takes the same records.
    #[test]
    fn printed_filters_parse_back(text in condition(), values in proptest::collection::vec(("[a-z]{1,3}", "[ -~]{0,4}"), 0..6)) {
        let filter = PropertyFilter::parse(&text).unwrap();
        let again = PropertyFilter::parse(&filter.to_string()).unwrap();
        prop_assert_eq!(&again, &filter);
        let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let h = headers(&pairs);
        prop_assert_eq!(again.matches(&h), filter.matches(&h));
    }

    /// Untrusted text is an error or a filter, never a panic.
    #[test]
    fn any_text_parses_or_fails_cleanly(text in "[ -~]{0,40}") {
        let _ = PropertyFilter::parse(&text);
    }
}

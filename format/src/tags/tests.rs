use bytes::Bytes;

use super::*;
use crate::Record;

/// Record `i`, with `tags` in its tags header when given.
pub(crate) fn tagged(tags: Option<&str>, i: i64) -> Record {
    Record {
        offset: 0,
        timestamp: 1_700_000_000_000 + i,
        key: Some(Bytes::from(format!("k{i}"))),
        value: Some(Bytes::from(format!("v{i}"))),
        headers: tags
            .map(|t| vec![(TAGS_HEADER.to_owned(), Some(Bytes::from(t.to_owned())))])
            .unwrap_or_default(),
    }
}

#[test]
fn expressions_parse_as_rocketmq_writes_them() {
    assert_eq!(TagFilter::parse("*").unwrap(), TagFilter::All);
    assert_eq!(TagFilter::parse("  *  ").unwrap(), TagFilter::All);
    let f = TagFilter::parse("TagA || TagB||tag.c-1").unwrap();
    assert_eq!(f.to_string(), "TagA || TagB || tag.c-1");
    assert_eq!(TagFilter::parse(&f.to_string()).unwrap(), f);
    for (bad, says) in [
        ("", "empty"),
        ("TagA ||", "term 2"),
        ("|| TagA", "term 1"),
        ("TagA|TagB", "holds `|`"),
        ("TagA&&TagB", "holds `&`"),
        ("* || TagA", "stands alone"),
        ("Tag A", "holds ` `"),
    ] {
        let e = TagFilter::parse(bad).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(says), "{bad:?}: {text}");
        assert!(text.contains(&format!("`{bad}`")), "{text}");
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
    }
    let long = "x".repeat(MAX_TAG_LEN + 1);
    assert!(TagFilter::parse(&long).is_err());
}

#[test]
fn a_record_is_taken_when_it_carries_a_wanted_tag() {
    let f = TagFilter::parse("A || B").unwrap();
    assert!(f.matches(&tagged(Some("A"), 0).headers));
    assert!(f.matches(&tagged(Some("C, B"), 0).headers));
    assert!(!f.matches(&tagged(Some("C"), 0).headers));
    assert!(!f.matches(&tagged(None, 0).headers));
    assert!(TagFilter::All.matches(&tagged(None, 0).headers));
    let bad_utf8 = vec![(TAGS_HEADER.to_owned(), Some(Bytes::from_static(b"\xff")))];
    assert!(!f.matches(&bad_utf8));
    assert!(tags_header(&["A".into(), "B".into()]).unwrap() == "A,B");
    assert!(tags_header(&["A,B".into()]).is_err());
}

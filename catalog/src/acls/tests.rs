#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

fn rule(
    principal: &str,
    resource_type: ResourceType,
    pattern_type: PatternType,
    name: &str,
    operation: Operation,
    permission: Permission,
) -> AclRule {
    AclRule {
        principal: principal.into(),
        host: "*".into(),
        resource_type,
        pattern_type,
        resource_name: name.into(),
        operation,
        permission,
    }
}

use Operation as O;
use PatternType as P;
use Permission as A;
use ResourceType as R;

#[test]
fn no_rule_means_no_access_and_a_rule_allows_what_it_names() {
    let rules = vec![rule(
        "User:alice",
        R::Topic,
        P::Literal,
        "orders",
        O::Write,
        A::Allow,
    )];
    let index = RuleIndex::new(rules);
    assert!(index.decide("User:alice", O::Write, R::Topic, "orders"));
    assert!(!index.decide("User:alice", O::Read, R::Topic, "orders"));
    assert!(!index.decide("User:alice", O::Write, R::Topic, "orders2"));
    assert!(!index.decide("User:bob", O::Write, R::Topic, "orders"));
    assert!(!index.decide("User:alice", O::Write, R::Group, "orders"));
    assert!(!RuleIndex::new(vec![]).decide("User:alice", O::Describe, R::Cluster, CLUSTER_NAME));
}

#[test]
fn prefixes_wildcards_and_everyone() {
    let rules = vec![
        rule(
            "User:alice",
            R::Topic,
            P::Prefixed,
            "orders.",
            O::Read,
            A::Allow,
        ),
        rule("User:*", R::Group, P::Literal, "*", O::Read, A::Allow),
    ];
    let index = RuleIndex::new(rules);
    assert!(index.decide("User:alice", O::Read, R::Topic, "orders.eu"));
    assert!(!index.decide("User:alice", O::Read, R::Topic, "orders"));
    assert!(index.decide("User:anyone", O::Read, R::Group, "g1"));
}

#[test]
fn deny_wins_and_implications_only_allow() {
    let rules = vec![
        rule("User:*", R::Topic, P::Literal, "*", O::All, A::Allow),
        rule(
            "User:mallory",
            R::Topic,
            P::Prefixed,
            "secret",
            O::Read,
            A::Deny,
        ),
    ];
    let index = RuleIndex::new(rules);
    assert!(index.decide("User:mallory", O::Write, R::Topic, "secret.x"));
    assert!(!index.decide("User:mallory", O::Read, R::Topic, "secret.x"));
    // Denying Read does not deny Describe (Kafka's rule); allowing Read allows Describe.
    assert!(index.decide("User:mallory", O::Describe, R::Topic, "secret.x"));
    let reader = RuleIndex::new(vec![rule(
        "User:a",
        R::Topic,
        P::Literal,
        "t",
        O::Read,
        A::Allow,
    )]);
    assert!(reader.decide("User:a", O::Describe, R::Topic, "t"));
    assert!(!reader.decide("User:a", O::DescribeConfigs, R::Topic, "t"));
    let configs = RuleIndex::new(vec![rule(
        "User:a",
        R::Topic,
        P::Literal,
        "t",
        O::AlterConfigs,
        A::Allow,
    )]);
    assert!(configs.decide("User:a", O::DescribeConfigs, R::Topic, "t"));
}

/// Kafka's `authorizeByResourceType` on examples; `allowed_somewhere_means_allowed_on_some_name`
/// checks it against `RuleIndex::decide` on random rules.
#[test]
fn some_topic_is_writable_unless_every_allow_is_overridden() {
    let write =
        |pattern, name, permission| rule("User:a", R::Topic, pattern, name, O::Write, permission);
    let allows_some = |rules: &[AclRule]| {
        RuleIndex::new(rules.to_vec()).allows_some("User:a", O::Write, R::Topic)
    };
    let literal = write(P::Literal, "orders", A::Allow);
    let prefixed = write(P::Prefixed, "orders.", A::Allow);
    assert!(!allows_some(&[]));
    assert!(allows_some(&[literal.clone(), prefixed.clone()]));
    // Read on a topic, or Write on a transactional id, is no Write on a topic.
    let read = rule("User:a", R::Topic, P::Literal, "t", O::Read, A::Allow);
    let transactional = rule(
        "User:a",
        R::TransactionalId,
        P::Literal,
        "t",
        O::Write,
        A::Allow,
    );
    assert!(!allows_some(&[read, transactional]));
    // Overridden: a literal by a deny of a prefix of its name, a prefix by a shorter one.
    let deny_ord = write(P::Prefixed, "ord", A::Deny);
    assert!(!allows_some(&[literal.clone(), prefixed.clone(), deny_ord]));
    // Not overridden: a prefix with one of its names, and a longer prefix, denied.
    let deny_one = write(P::Literal, "orders.eu", A::Deny);
    let deny_longer = write(P::Prefixed, "orders.us", A::Deny);
    assert!(allows_some(&[prefixed.clone(), deny_one, deny_longer]));
    // `*`: an allow stands against prefix denies; a deny refuses whatever allows.
    let everything = write(P::Literal, "*", A::Allow);
    let deny_o = write(P::Prefixed, "o", A::Deny);
    assert!(allows_some(&[everything.clone(), deny_o]));
    let nothing = write(P::Literal, "*", A::Deny);
    assert!(!allows_some(&[everything, literal, prefixed, nothing]));
}

#[test]
fn rules_that_cannot_match_are_refused_by_name() {
    let ok = rule("User:a", R::Topic, P::Literal, "t", O::Read, A::Allow);
    ok.validate().unwrap();
    for (bad, needle) in [
        (
            AclRule {
                principal: "alice".into(),
                ..ok.clone()
            },
            "User:",
        ),
        (
            AclRule {
                host: "10.0.0.1".into(),
                ..ok.clone()
            },
            "host",
        ),
        (
            AclRule {
                resource_name: String::new(),
                ..ok.clone()
            },
            "names a resource",
        ),
        (
            AclRule {
                operation: O::IdempotentWrite,
                ..ok.clone()
            },
            "not an operation",
        ),
        (
            AclRule {
                resource_type: R::Cluster,
                resource_name: "c".into(),
                ..ok.clone()
            },
            CLUSTER_NAME,
        ),
        (
            AclRule {
                pattern_type: P::Prefixed,
                resource_name: "*".into(),
                ..ok.clone()
            },
            "literal `*`",
        ),
    ] {
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "{bad:?}: {e}");
    }
}

#[test]
fn filters_pick_rules_as_kafka_does() {
    let literal = rule("User:a", R::Topic, P::Literal, "orders", O::Read, A::Allow);
    let prefixed = rule("User:a", R::Topic, P::Prefixed, "ord", O::Read, A::Allow);
    let wildcard = rule("User:b", R::Topic, P::Literal, "*", O::Write, A::Deny);
    let named = |pattern| AclFilter {
        resource_name: Some("orders".into()),
        pattern,
        ..AclFilter::default()
    };
    let picked = |f: &AclFilter| {
        [&literal, &prefixed, &wildcard]
            .iter()
            .filter(|r| f.matches(r))
            .count()
    };
    assert_eq!(picked(&AclFilter::default()), 3);
    assert_eq!(picked(&named(PatternFilter::Any)), 1);
    assert_eq!(picked(&named(PatternFilter::Literal)), 1);
    assert_eq!(picked(&named(PatternFilter::Prefixed)), 0);
    assert_eq!(picked(&named(PatternFilter::Match)), 3);
    assert!(AclFilter::exactly(&prefixed).matches(&prefixed));
    assert!(!AclFilter::exactly(&prefixed).matches(&literal));
}

fn any_rule() -> impl Strategy<Value = AclRule> {
    (
        prop::sample::select(vec!["User:a", "User:b", "User:*"]),
        prop::sample::select(ResourceType::ALL.to_vec()),
        prop::sample::select(vec![P::Literal, P::Prefixed]),
        prop::sample::select(vec!["t", "t1", "*", "x"]),
        prop::sample::select(vec![O::All, O::Read, O::Write, O::Describe, O::Delete]),
        prop::sample::select(vec![A::Allow, A::Deny]),
    )
        .prop_map(|(p, r, pt, n, o, a)| rule(p, r, pt, n, o, a))
}

proptest! {
    /// Adding a deny rule never allows more; adding an allow rule never allows less; a
    /// request some deny rule applies to is refused whatever else there is.
    #[test]
    fn deny_wins_and_rules_are_monotone(
        rules in prop::collection::vec(any_rule(), 0..8),
        extra in any_rule(),
        principal in prop::sample::select(vec!["User:a", "User:b"]),
        operation in prop::sample::select(vec![O::Read, O::Write, O::Describe, O::Delete]),
        resource_type in prop::sample::select(ResourceType::ALL.to_vec()),
        name in prop::sample::select(vec!["t", "t1", "x", "*"]),
    ) {
        let before = RuleIndex::new(rules.clone()).decide(principal, operation, resource_type, name);
        let mut with = rules.clone();
        with.push(extra.clone());
        let after = RuleIndex::new(with.clone()).decide(principal, operation, resource_type, name);
        match extra.permission {
            A::Deny => prop_assert!(!after || before),
            A::Allow => prop_assert!(after || !before),
        }
        let denied = with.iter().any(|r| {
            r.permission == A::Deny && r.applies(principal, operation, resource_type, name)
        });
        if denied {
            prop_assert!(!after);
        }
    }

    /// Some resource of a kind is allowed exactly when some name is: the names the rules
    /// speak of, each with a suffix, or one none of them speaks of.
    #[test]
    fn allowed_somewhere_means_allowed_on_some_name(
        rules in prop::collection::vec(any_rule(), 0..8),
        principal in prop::sample::select(vec!["User:a", "User:b"]),
        operation in prop::sample::select(vec![O::Read, O::Write, O::Describe, O::Delete]),
        resource_type in prop::sample::select(vec![R::Topic, R::Group]),
    ) {
        let index = RuleIndex::new(rules.clone());
        let mut names: Vec<String> = vec!["fresh".into()];
        for r in &rules {
            names.push(r.resource_name.clone());
            names.push(format!("{}~", r.resource_name));
        }
        let on_some_name = names
            .iter()
            .filter(|n| n.as_str() != "*")
            .any(|n| index.decide(principal, operation, resource_type, n));
        prop_assert_eq!(
            index.allows_some(principal, operation, resource_type),
            on_some_name
        );
    }
}

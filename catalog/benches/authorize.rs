//! What an ACL check costs a request: `Access::check` against 10 to 10,000 rules, from the
//! cache every request uses, and the refresh that re-reads every rule once per cache lifetime.
//!
//! Rules are spread as a real cluster's would be: 100 principals, literal and prefixed topic
//! and group rules, some denies. Each check asks about a principal and a topic in turn, half
//! of them allowed. Prints p50, p99 and p99.9 per check and the refresh time; asserts nothing:
//! the figures go to `docs/benchmarks.md`.
//!
//! `cargo bench -p strata-catalog --bench authorize`.

// A benchmark measures real time.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_catalog::Admin;
use strata_catalog::acls::{
    Access, AclRule, Authorizer, Operation, PatternType, Permission, ResourceType,
};
use strata_meta::schema::Keyspace;

const CHECKS: usize = 200_000;
const PRINCIPALS: usize = 100;

fn rule(i: usize) -> AclRule {
    let principal = format!("User:u{}", i % PRINCIPALS);
    let (resource_type, operation) = if i % 4 == 3 {
        (ResourceType::Group, Operation::Read)
    } else {
        (ResourceType::Topic, Operation::Write)
    };
    AclRule {
        principal,
        host: "*".into(),
        resource_type,
        pattern_type: if i.is_multiple_of(5) {
            PatternType::Prefixed
        } else {
            PatternType::Literal
        },
        resource_name: format!("t{i}"),
        operation,
        permission: if i.is_multiple_of(17) {
            Permission::Deny
        } else {
            Permission::Allow
        },
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!(
        "{:>8}  {:>10}  {:>10}  {:>10}  {:>10}  {:>12}",
        "rules", "p50", "p99", "p99.9", "allowed", "refresh"
    );
    for count in [10, 100, 1_000, 10_000] {
        let (_dir, meta) = strata_meta::testing::embedded().await;
        let admin = Admin::new(meta, Keyspace::new("bench").expect("a valid keyspace"));
        let rules: Vec<AclRule> = (0..count).map(rule).collect();
        admin.create_acls(&rules).await.expect("rules are stored");
        let authorizer = Arc::new(Authorizer::new(
            admin,
            true,
            vec!["User:root".into()],
            Arc::new(strata_clock::SystemClock),
        ));
        let accesses: Vec<Access> = (0..PRINCIPALS)
            .map(|p| Access::new(Some(format!("User:u{p}")), authorizer.clone()))
            .collect();
        // The first check reads every rule: that is the refresh a process pays once per
        // cache lifetime.
        let started = Instant::now();
        accesses[0]
            .allows(Operation::Write, ResourceType::Topic, "t0")
            .await
            .expect("the store answers");
        let refresh = started.elapsed();
        let mut timings = Vec::with_capacity(CHECKS);
        let mut allowed = 0usize;
        let started_all = Instant::now();
        for i in 0..CHECKS {
            // Half the topics asked about have a rule for the principal asking.
            let topic_index = if i.is_multiple_of(2) {
                i % count
            } else {
                count + i
            };
            let access = &accesses[topic_index % PRINCIPALS];
            let topic = format!("t{topic_index}");
            let started = Instant::now();
            let ok = access
                .allows(Operation::Write, ResourceType::Topic, &topic)
                .await
                .expect("the cache answers");
            timings.push(started.elapsed());
            allowed += usize::from(ok);
            // The cache lives 2 s: a long run includes the refreshes a server would make.
            if started_all.elapsed() > Duration::from_secs(60) {
                break;
            }
        }
        timings.sort();
        println!(
            "{:>8}  {:>10.1?}  {:>10.1?}  {:>10.1?}  {:>9.0}%  {:>12.1?}",
            count,
            percentile(&timings, 0.50),
            percentile(&timings, 0.99),
            percentile(&timings, 0.999),
            100.0 * allowed as f64 / timings.len() as f64,
            refresh,
        );
    }
}

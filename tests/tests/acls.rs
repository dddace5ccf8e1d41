//! The three front doors of ACL rules on a real `strata standalone`:
//! - `strata acl add|list|remove`: a cross product of principals and operations, prefixed and
//!   deny rules, filters (principal, resource, `--match`, operation, permission), names in any
//!   case; a bad operation for the resource and an unknown one refused with the reason; a
//!   removal without a filter refused unless `--all`;
//! - `GET`, `POST` and `DELETE /v1/acls` with filters as query parameters, a mistyped
//!   parameter and an unfiltered removal refused;
//! - Kafka's CreateAcls, DescribeAcls and DeleteAcls byte by byte at every advertised version
//!   (a host other than `*` and unknown codes refused with INVALID_REQUEST and the reason), and
//!   through confluent-kafka's and kafka-python's AdminClients with SASL on: a super user
//!   manages rules, a principal without Alter or Describe on the cluster is refused with
//!   CLUSTER_AUTHORIZATION_FAILED until a rule allows it.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::{Value, json};
use strata_integration_tests::cli::strata;
use strata_integration_tests::harness;
use strata_integration_tests::kafka_clients::KafkaClients;
use strata_integration_tests::kafka_wire::KafkaWire;
use strata_testkit::{StrataServer, log_dir, strata_binary, target_tmp_dir};

const MINUTE: Duration = Duration::from_secs(60);
const INVALID_REQUEST: i16 = 42;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

fn s(v: impl ToString) -> String {
    v.to_string()
}

fn standalone(name: &str, extra: &[String]) -> (StrataServer, tempfile::TempDir) {
    let logs = log_dir(&target_tmp_dir().unwrap(), name).unwrap();
    let data = tempfile::tempdir().unwrap();
    let server =
        StrataServer::standalone_with(strata_binary().unwrap(), data.path(), &logs, extra).unwrap();
    (server, data)
}

/// `strata acl ARGS --admin ADMIN`: its stdout, or the error with its stderr.
async fn acl(admin: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut all = vec!["acl"];
    all.extend(args);
    all.extend(["--admin", admin]);
    strata(&all, None, MINUTE).await
}

/// `strata acl ARGS --format json`, parsed.
async fn acl_json(admin: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&acl(admin, &all).await.unwrap()).unwrap()
}

/// A rule as (principal, permission, operation, resource type, pattern, name), for comparing.
fn row(rule: &Value) -> (String, String, String, String, String, String) {
    let f = |k: &str| rule[k].as_str().unwrap_or("?").to_owned();
    (
        f("principal"),
        f("permission"),
        f("operation"),
        f("resource_type"),
        f("pattern_type"),
        f("resource_name"),
    )
}

fn rows(rules: &Value) -> Vec<(String, String, String, String, String, String)> {
    let mut rows: Vec<_> = rules.as_array().unwrap().iter().map(row).collect();
    rows.sort();
    rows
}

fn r(
    principal: &str,
    permission: &str,
    operation: &str,
    kind: &str,
    pattern: &str,
    name: &str,
) -> (String, String, String, String, String, String) {
    (
        s(principal),
        s(permission),
        s(operation),
        s(kind),
        s(pattern),
        s(name),
    )
}

fn refused(result: anyhow::Result<String>, says: &[&str]) -> String {
    let text = format!("{:#}", result.expect_err("the command was refused"));
    for part in says {
        assert!(text.contains(part), "expected {part:?} in: {text}");
    }
    text
}

#[tokio::test]
async fn strata_acl_and_the_rest_api_add_list_and_remove_rules() {
    harness::init_tracing();
    let (server, _data) = standalone("acls-cli", &[]);
    let admin = s(server.listener("--admin-addr").unwrap());
    let admin = admin.as_str();

    // A cross product: two principals times two operations, named in any case.
    let added = acl(
        admin,
        &[
            "add",
            "--allow-principal",
            "User:alice",
            "--allow-principal",
            "User:bob",
            "--operation",
            "read",
            "--operation",
            "WRITE",
            "--topic",
            "orders",
        ],
    )
    .await
    .unwrap();
    let lines: Vec<&str> = added.lines().filter(|l| l.contains("orders")).collect();
    assert_eq!(lines.len(), 4, "{added}");
    assert!(lines.iter().all(|l| l.contains("Allow")), "{added}");
    acl(
        admin,
        &[
            "add",
            "--deny-principal",
            "User:mallory",
            "--operation",
            "idempotent-write",
            "--cluster",
        ],
    )
    .await
    .unwrap();
    acl(
        admin,
        &[
            "add",
            "--allow-principal",
            "User:*",
            "--operation",
            "Describe",
            "--topic",
            "ord",
            "--prefixed",
        ],
    )
    .await
    .unwrap();
    let tx = acl_json(
        admin,
        &[
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--transactional-id",
            "tx-1",
        ],
    )
    .await;
    assert_eq!(
        rows(&tx["rules"]),
        [r(
            "User:alice",
            "Allow",
            "Write",
            "TransactionalId",
            "Literal",
            "tx-1"
        )]
    );

    let all = acl_json(admin, &["list"]).await;
    assert_eq!(
        rows(&all),
        [
            r("User:*", "Allow", "Describe", "Topic", "Prefixed", "ord"),
            r("User:alice", "Allow", "Read", "Topic", "Literal", "orders"),
            r("User:alice", "Allow", "Write", "Topic", "Literal", "orders"),
            r(
                "User:alice",
                "Allow",
                "Write",
                "TransactionalId",
                "Literal",
                "tx-1"
            ),
            r("User:bob", "Allow", "Read", "Topic", "Literal", "orders"),
            r("User:bob", "Allow", "Write", "Topic", "Literal", "orders"),
            r(
                "User:mallory",
                "Deny",
                "IdempotentWrite",
                "Cluster",
                "Literal",
                "kafka-cluster"
            ),
        ],
        "{all}"
    );
    assert!(
        all.as_array().unwrap().iter().all(|r| r["host"] == "*"),
        "{all}"
    );
    // Filters: what applies to topic `orders` (its literal rules and the prefix `ord`), one
    // principal's reads, the deny rules, the prefixed ones.
    let applies = acl_json(admin, &["list", "--topic", "orders", "--match"]).await;
    assert_eq!(applies.as_array().unwrap().len(), 5, "{applies}");
    let alice_reads = acl_json(
        admin,
        &["list", "--principal", "User:alice", "--operation", "READ"],
    )
    .await;
    assert_eq!(
        rows(&alice_reads),
        [r(
            "User:alice",
            "Allow",
            "Read",
            "Topic",
            "Literal",
            "orders"
        )]
    );
    let denies = acl_json(admin, &["list", "--deny"]).await;
    assert_eq!(denies[0]["principal"], "User:mallory", "{denies}");
    assert_eq!(denies.as_array().unwrap().len(), 1, "{denies}");
    let prefixed = acl_json(admin, &["list", "--prefixed"]).await;
    assert_eq!(prefixed.as_array().unwrap().len(), 1, "{prefixed}");
    let table = acl(admin, &["list", "--cluster"]).await.unwrap();
    assert!(
        table.lines().next().unwrap().starts_with("principal")
            && table.contains("User:mallory")
            && table.contains("kafka-cluster")
            && !table.contains("orders"),
        "{table}"
    );

    // Refused, with the reason: an operation the resource does not take, an unknown one, a
    // principal without its type, and a removal without a filter.
    refused(
        acl(
            admin,
            &[
                "add",
                "--allow-principal",
                "User:alice",
                "--operation",
                "Write",
                "--group",
                "readers",
            ],
        )
        .await,
        &["INVALID_ARGUMENT", "Write is not an operation on a Group"],
    );
    refused(
        acl(
            admin,
            &[
                "add",
                "--allow-principal",
                "User:alice",
                "--operation",
                "Reed",
                "--topic",
                "orders",
            ],
        )
        .await,
        &["operation `Reed` is unknown", "IdempotentWrite"],
    );
    refused(
        acl(
            admin,
            &[
                "add",
                "--allow-principal",
                "alice",
                "--operation",
                "Read",
                "--topic",
                "orders",
            ],
        )
        .await,
        &["User:"],
    );
    refused(acl(admin, &["remove"]).await, &["--all"]);
    assert_eq!(
        acl_json(admin, &["list"]).await.as_array().unwrap().len(),
        7
    );

    // Removal by filter answers with what it removed.
    let removed = acl_json(admin, &["remove", "--principal", "User:bob"]).await;
    assert_eq!(removed["removed"].as_array().unwrap().len(), 2, "{removed}");
    let removed = acl(admin, &["remove", "--deny", "--cluster"])
        .await
        .unwrap();
    assert!(removed.contains("User:mallory"), "{removed}");
    assert_eq!(
        acl_json(admin, &["list"]).await.as_array().unwrap().len(),
        4
    );

    // The REST API: filters as query parameters, values in any case.
    let http = reqwest::Client::new();
    let url = format!("http://{admin}/v1/acls");
    let get = |query: &str| {
        let request = http.get(format!("{url}{query}"));
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, found) = get("?resource_type=TOPIC&pattern=prefixed").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        rows(&found),
        [r("User:*", "Allow", "Describe", "Topic", "Prefixed", "ord")]
    );
    let (status, found) = get("?principal=User%3Aalice&resource_type=topic&operation=write").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let (status, error) = get("?principle=User:alice").await;
    assert_eq!(status, 400, "a mistyped filter is refused, not ignored");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("principle"),
        "{error}"
    );
    let (status, error) = get("?operation=reed").await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );

    let body = json!({ "rules": [
        { "principal": "User:carol", "resource_type": "group", "resource_name": "app-",
          "pattern_type": "prefixed", "operation": "read", "permission": "allow" },
        { "principal": "User:carol", "resource_type": "Topic", "resource_name": "*",
          "operation": "DESCRIBE", "permission": "Allow" },
        // The first one again, spelled otherwise: one rule.
        { "principal": "User:carol", "resource_type": "GROUP", "resource_name": "app-",
          "pattern_type": "Prefixed", "operation": "Read", "permission": "ALLOW", "host": "*" },
    ] });
    let response = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        rows(&created["rules"]),
        [
            r("User:carol", "Allow", "Describe", "Topic", "Literal", "*"),
            r("User:carol", "Allow", "Read", "Group", "Prefixed", "app-"),
        ],
        "defaults: literal, every host: {created}"
    );
    let bad_host = json!({ "rules": [
        { "principal": "User:carol", "resource_type": "topic", "resource_name": "t",
          "operation": "read", "permission": "allow", "host": "10.0.0.1" },
    ] });
    let response = http.post(&url).json(&bad_host).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("10.0.0.1"),
        "{error}"
    );

    let response = http.delete(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400, "no filter, no removal");
    let response = http
        .delete(format!("{url}?principal=User:carol&resource_type=Group"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let removed: Value = response.json().await.unwrap();
    assert_eq!(
        rows(&removed["removed"]),
        [r(
            "User:carol",
            "Allow",
            "Read",
            "Group",
            "Prefixed",
            "app-"
        )]
    );

    // `--all` removes every rule.
    let removed = acl_json(admin, &["remove", "--all"]).await;
    assert_eq!(removed["removed"].as_array().unwrap().len(), 5, "{removed}");
    assert_eq!(acl_json(admin, &["list"]).await, json!([]));
}

fn creation(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_owned()))
        .with_resource_pattern_type(pattern)
        .with_principal(StrBytes::from_string(principal.to_owned()))
        .with_host(StrBytes::from_string(host.to_owned()))
        .with_operation(operation)
        .with_permission_type(permission)
}

/// DescribeAcls with every filter field "any" (1, or null for strings: the codec's default
/// is an empty string, which names nothing).
fn describe_all() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

#[tokio::test]
async fn kafka_acl_apis_answer_at_every_version_and_refuse_what_cannot_be_a_rule() {
    harness::init_tracing();
    let (server, _data) = standalone("acls-wire", &[]);
    let mut wire = KafkaWire::connect(server.kafka_addr().unwrap())
        .await
        .unwrap();

    // v3 (flexible): one good rule, a host other than `*`, "any" as a rule's resource type,
    // and an operation topics do not take.
    let created = wire
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![
                creation(2, "orders", 3, "User:alice", "*", 3, 3),
                creation(2, "orders", 3, "User:bob", "10.0.0.1", 3, 3),
                creation(1, "orders", 3, "User:bob", "*", 3, 3),
                creation(2, "orders", 3, "User:bob", "*", 12, 3),
            ]),
        )
        .await
        .unwrap();
    let codes: Vec<i16> = created.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        [0, INVALID_REQUEST, INVALID_REQUEST, INVALID_REQUEST],
        "{created:?}"
    );
    let message = |i: usize| {
        created.results[i]
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default()
    };
    assert!(
        message(1).contains("10.0.0.1") && message(1).contains("every host"),
        "{}",
        message(1)
    );
    assert!(message(2).contains("resource type 1"), "{}", message(2));
    assert!(message(3).contains("IdempotentWrite"), "{}", message(3));
    // v1 (not flexible): a prefixed deny rule on groups.
    let created = wire
        .call(
            1,
            &CreateAclsRequest::default()
                .with_creations(vec![creation(3, "app-", 4, "User:*", "*", 3, 2)]),
        )
        .await
        .unwrap();
    assert_eq!(created.results[0].error_code, 0, "{created:?}");

    // Every version lists the same rules, grouped by resource.
    for version in 1..=3 {
        let described = wire.call(version, &describe_all()).await.unwrap();
        assert_eq!(described.error_code, 0, "v{version}: {described:?}");
        let resources: Vec<(i8, String, i8, usize)> = described
            .resources
            .iter()
            .map(|r| {
                (
                    r.resource_type,
                    r.resource_name.to_string(),
                    r.pattern_type,
                    r.acls.len(),
                )
            })
            .collect();
        assert_eq!(
            resources,
            [(2, s("orders"), 3, 1), (3, s("app-"), 4, 1)],
            "v{version}"
        );
        let alice = &described.resources[0].acls[0];
        assert_eq!(
            (
                alice.principal.as_str(),
                alice.host.as_str(),
                alice.operation,
                alice.permission_type
            ),
            ("User:alice", "*", 3, 3)
        );
    }
    // Filters: a topic's name with "match", a host other than `*` (no rule holds there), an
    // unknown resource type.
    let matching = wire
        .call(
            2,
            &describe_all()
                .with_resource_type_filter(3)
                .with_resource_name_filter(Some(StrBytes::from_static_str("app-orders")))
                .with_pattern_type_filter(2),
        )
        .await
        .unwrap();
    assert_eq!(matching.resources.len(), 1, "{matching:?}");
    let elsewhere = wire
        .call(
            3,
            &describe_all().with_host_filter(Some(StrBytes::from_static_str("10.0.0.1"))),
        )
        .await
        .unwrap();
    assert_eq!(
        (elsewhere.error_code, elsewhere.resources.len()),
        (0, 0),
        "{elsewhere:?}"
    );
    let unknown = wire
        .call(3, &describe_all().with_resource_type_filter(9))
        .await
        .unwrap();
    assert_eq!(unknown.error_code, INVALID_REQUEST, "{unknown:?}");

    // DeleteAcls: each filter answers with the rules it removed.
    let any_filter = || {
        DeleteAclsFilter::default()
            .with_resource_type_filter(1)
            .with_resource_name_filter(None)
            .with_pattern_type_filter(1)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1)
    };
    let deleted = wire
        .call(
            3,
            &DeleteAclsRequest::default().with_filters(vec![
                any_filter().with_permission_type(2),
                any_filter()
                    .with_resource_type_filter(2)
                    .with_resource_name_filter(Some(StrBytes::from_static_str("orders")))
                    .with_pattern_type_filter(3),
            ]),
        )
        .await
        .unwrap();
    let removed: Vec<Vec<(i8, String)>> = deleted
        .filter_results
        .iter()
        .map(|f| {
            assert_eq!(f.error_code, 0, "{deleted:?}");
            f.matching_acls
                .iter()
                .map(|m| (m.resource_type, m.resource_name.to_string()))
                .collect()
        })
        .collect();
    assert_eq!(removed, [vec![(3, s("app-"))], vec![(2, s("orders"))]]);
    let described = wire.call(1, &describe_all()).await.unwrap();
    assert!(described.resources.is_empty(), "{described:?}");
}

#[tokio::test]
async fn kafka_admin_clients_manage_rules_and_only_principals_allowed_to_may() {
    harness::init_tracing();
    let Some(clients) = KafkaClients::find("acls") else {
        return;
    };
    let (server, _data) = standalone(
        "acls-kafka",
        &[
            s("--kafka-sasl-mechanisms"),
            s("SCRAM-SHA-256"),
            s("--super-users"),
            s("User:admin"),
        ],
    );
    let admin = s(server.listener("--admin-addr").unwrap());
    let kafka = s(server.kafka_addr().unwrap());
    for (user, password) in [("admin", "admin-Pa55word"), ("alice", "alice-Pa55word")] {
        strata(
            &["user", "add", user, "--admin", &admin],
            Some(format!("{password}\n").as_bytes()),
            MINUTE,
        )
        .await
        .unwrap();
    }
    let run = |user: &str, password: &str, describe_only: bool| {
        let mut args = [
            "--bootstrap",
            &kafka,
            "--user",
            user,
            "--password",
            password,
        ]
        .map(s)
        .to_vec();
        if describe_only {
            args.push(s("--describe-only"));
        }
        let clients = &clients;
        async move { clients.python_json("acls.py", &args, MINUTE).await.unwrap() }
    };

    // The super user creates, describes and deletes with confluent-kafka.
    let out = run("admin", "admin-Pa55word", false).await;
    assert_eq!(out["errors"], json!([]), "{out}");
    let created = out["created"].as_array().unwrap();
    let refused: Vec<&Value> = created.iter().filter(|c| !c["error"].is_null()).collect();
    assert_eq!(refused.len(), 1, "only the rule for host 10.0.0.1: {out}");
    assert_eq!(refused[0]["rule"]["host"], "10.0.0.1");
    let why = refused[0]["error"].as_str().unwrap();
    assert!(
        why.contains("INVALID_REQUEST") && why.contains("every host"),
        "{why}"
    );
    assert_eq!(out["described"].as_array().unwrap().len(), 4, "{out}");
    let orders = out["described_orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2, "{out}");
    assert!(orders.iter().all(|r| r["name"] == "orders"), "{out}");
    let deleted = out["deleted"].as_array().unwrap();
    assert_eq!(deleted.len(), 1, "{out}");
    assert_eq!(
        (
            &deleted[0]["resource_type"],
            &deleted[0]["pattern"],
            &deleted[0]["permission"]
        ),
        (&json!("GROUP"), &json!("PREFIXED"), &json!("DENY"))
    );
    assert_eq!(out["described_after"].as_array().unwrap().len(), 3, "{out}");

    // The same rules through the CLI: one store behind every door.
    let listed: Value = serde_json::from_str(
        &acl(
            &admin,
            &["list", "--principal", "User:alice", "--format", "json"],
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        rows(&listed),
        [
            r(
                "User:alice",
                "Allow",
                "IdempotentWrite",
                "Cluster",
                "Literal",
                "kafka-cluster"
            ),
            r("User:alice", "Allow", "Read", "Topic", "Literal", "orders"),
            r("User:alice", "Allow", "Write", "Topic", "Literal", "orders"),
        ]
    );

    // alice, without Alter on the cluster, may change nothing; without Describe, list nothing.
    let out = run("alice", "alice-Pa55word", false).await;
    let created = out["created"].as_array().unwrap();
    assert_eq!(created.len(), 5, "{out}");
    for c in created {
        let why = c["error"].as_str().unwrap_or_default();
        assert!(
            why.contains("CLUSTER_AUTHORIZATION_FAILED") && why.contains("Alter"),
            "{out}"
        );
    }
    assert!(
        out["errors"]
            .to_string()
            .contains("delete: KafkaError{code=CLUSTER_AUTHORIZATION_FAILED"),
        "{out}"
    );
    let out = run("alice", "alice-Pa55word", true).await;
    // librdkafka drops DescribeAcls' top-level error (no rules); kafka-python raises it.
    assert_eq!(out["described"], json!([]), "{out}");
    let why = out["kafka_python"].as_str().unwrap_or_default();
    assert!(
        why.contains("ClusterAuthorizationFailed") && why.contains("Describe"),
        "{out}"
    );
    let code = CLUSTER_AUTHORIZATION_FAILED;
    assert!(why.contains(&format!("[Error {code}]")), "{why}");
    // Allowed Describe on the cluster, she lists the rules within the rules' cache lifetime.
    acl(
        &admin,
        &[
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Describe",
            "--cluster",
        ],
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = run("alice", "alice-Pa55word", true).await;
        // Both clients list within one run; the rule may reach the proxy between them.
        let listed = |client: &str| out[client].as_array().is_some_and(|a| a.len() == 4);
        if listed("kafka_python") && listed("described") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new rule did not apply within 10 s: {out}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

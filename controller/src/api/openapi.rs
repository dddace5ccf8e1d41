//! The OpenAPI 3.0 document of the admin API, built from one route table.

use serde_json::{Value, json};

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Schema name of the JSON body, if the operation takes one.
    pub body: Option<&'static str>,
    /// Status and schema name of the success answer (`None`: no body).
    pub ok: (u16, Option<&'static str>),
}

const fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    ok: (u16, Option<&'static str>),
) -> Route {
    Route {
        method,
        path,
        summary,
        body,
        ok,
    }
}

/// Every route the router serves.
pub const ROUTES: &[Route] = &[
    route(
        "get",
        "/healthz",
        "Liveness: the process serves HTTP",
        None,
        (200, Some("Status")),
    ),
    route(
        "get",
        "/readyz",
        "Readiness: the metadata store answers",
        None,
        (200, Some("Status")),
    ),
    route(
        "get",
        "/metrics",
        "Prometheus metrics (text format)",
        None,
        (200, None),
    ),
    route("get", "/openapi.json", "This document", None, (200, None)),
    route(
        "get",
        "/v1/controller",
        "The active controller and its term",
        None,
        (200, Some("Leader")),
    ),
    route(
        "get",
        "/v1/topics",
        "List topics",
        None,
        (200, Some("TopicList")),
    ),
    route(
        "post",
        "/v1/topics",
        "Create a topic; its partitions are assigned before the answer",
        Some("NewTopic"),
        (201, Some("Topic")),
    ),
    route(
        "get",
        "/v1/topics/{topic}",
        "Describe a topic and its partitions",
        None,
        (200, Some("TopicDescription")),
    ),
    route(
        "patch",
        "/v1/topics/{topic}",
        "Change a topic's retention or segment size; fields left out keep their values",
        Some("TopicConfigChange"),
        (200, Some("Topic")),
    ),
    route(
        "delete",
        "/v1/topics/{topic}",
        "Delete a topic and its metadata",
        None,
        (204, None),
    ),
    route(
        "post",
        "/v1/topics/{topic}/partitions",
        "Raise the partition count",
        Some("AddPartitions"),
        (200, Some("Topic")),
    ),
    route(
        "get",
        "/v1/partitions",
        "Partitions with owner, epoch and high watermark (optional ?topic=)",
        None,
        (200, Some("PartitionList")),
    ),
    route(
        "get",
        "/v1/brokers",
        "Registered brokers",
        None,
        (200, Some("BrokerList")),
    ),
    route(
        "post",
        "/v1/brokers/{broker}/drain",
        "Drain a broker: move its partitions off and keep them off",
        None,
        (200, Some("Moves")),
    ),
    route(
        "delete",
        "/v1/brokers/{broker}/drain",
        "Undrain a broker and give it its share back",
        None,
        (200, Some("Moves")),
    ),
    route(
        "post",
        "/v1/reassignments",
        "Move one partition to a broker, or rebalance everything",
        Some("Reassignment"),
        (200, Some("Moves")),
    ),
    route(
        "get",
        "/v1/groups",
        "Consumer groups with their state and member count",
        None,
        (200, Some("GroupList")),
    ),
    route(
        "get",
        "/v1/groups/{group}",
        "A consumer group's members, partitions, committed offsets and lag",
        None,
        (200, Some("Group")),
    ),
    route(
        "get",
        "/v1/users",
        "SASL users and their SCRAM mechanisms (never keys or passwords)",
        None,
        (200, Some("UserList")),
    ),
    route(
        "put",
        "/v1/users/{user}",
        "Set a user's SCRAM credentials from a password (kept as salted keys only)",
        Some("UserCredentials"),
        (200, Some("User")),
    ),
    route(
        "delete",
        "/v1/users/{user}",
        "Remove a user and its credentials",
        None,
        (204, None),
    ),
    route(
        "get",
        "/v1/tokens",
        "Bearer tokens (never their secrets): all for a super user, else the caller's own",
        None,
        (200, Some("TokenList")),
    ),
    route(
        "post",
        "/v1/tokens",
        "Make a bearer token; the answer is the only place its secret appears",
        Some("NewToken"),
        (201, Some("IssuedToken")),
    ),
    route(
        "delete",
        "/v1/tokens/{id}",
        "Revoke a token (refused everywhere within 10 seconds)",
        None,
        (204, None),
    ),
    route(
        "get",
        "/v1/acls",
        "ACL rules the query's filters match (all without filters)",
        None,
        (200, Some("AclRuleList")),
    ),
    route(
        "post",
        "/v1/acls",
        "Add ACL rules: all or none, each checked first; they apply within 2 seconds",
        Some("NewAclRules"),
        (201, Some("AclRules")),
    ),
    route(
        "delete",
        "/v1/acls",
        "Remove the ACL rules the query's filters match; no filter needs all=true",
        None,
        (200, Some("RemovedAclRules")),
    ),
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn operation(route: &Route) -> Value {
    let mut op = json!({
        "summary": route.summary,
        "operationId": format!("{}{}", route.method, route.path.replace(['/', '{', '}', '.'], "_")),
        "responses": {
            "default": {
                "description": "An error with a stable code",
                "content": { "application/json": { "schema": schema_ref("Error") } }
            }
        }
    });
    let (status, schema) = route.ok;
    let mut ok = json!({ "description": "Success" });
    if let Some(name) = schema {
        ok["content"] = json!({ "application/json": { "schema": schema_ref(name) } });
    } else if route.path == "/metrics" {
        ok["content"] = json!({ "text/plain": { "schema": { "type": "string" } } });
    }
    op["responses"][status.to_string()] = ok;
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    if route.path == "/v1/partitions" {
        parameters.push(json!({ "name": "topic", "in": "query", "required": false, "schema": { "type": "string" } }));
    }
    if route.path == "/v1/acls" && route.method != "post" {
        parameters.extend(acl_filters(route.method == "delete"));
    }
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = route.body {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": schema_ref(body) } }
        });
    }
    op
}

/// The query parameters that pick ACL rules; `all` for removals.
fn acl_filters(removal: bool) -> Vec<Value> {
    let text = |name: &str, description: &str| {
        json!({ "name": name, "in": "query", "required": false,
            "description": description, "schema": { "type": "string" } })
    };
    let mut filters = vec![
        text(
            "principal",
            "`User:<name>`, or `User:*` for the rules about everyone",
        ),
        text(
            "resource_type",
            "Topic, Group, Cluster or TransactionalId (any case)",
        ),
        text(
            "resource_name",
            "A resource name (`kafka-cluster` for the cluster)",
        ),
        text(
            "pattern",
            "Any (default), Literal, Prefixed, or Match: every rule that applies to resource_name",
        ),
        text(
            "operation",
            "An operation (any case; `idempotent-write` works too)",
        ),
        text("permission", "Allow or Deny"),
    ];
    if removal {
        filters.push(json!({ "name": "all", "in": "query", "required": false,
            "description": "Needed to remove with no filter, that is every rule",
            "schema": { "type": "boolean" } }));
    }
    filters
}

fn schemas() -> Value {
    let lane = json!({ "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$" });
    let lanes = json!({ "type": "array", "items": lane.clone(), "maxItems": strata_catalog::admin::MAX_LANES, "uniqueItems": true });
    let topic_fields = json!({
        "name": { "type": "string" },
        "id": { "type": "integer", "format": "int64" },
        "partitions": { "type": "integer" },
        "retention_ms": { "type": "integer", "format": "int64", "description": "-1 keeps data forever" },
        "retention_bytes": { "type": "integer", "format": "int64", "description": "-1 for no limit" },
        "segment_bytes": { "type": "integer", "format": "int64" },
        "created_ms": { "type": "integer", "format": "int64" },
        "lanes": { "type": "array", "items": lane.clone(), "description": "swimlanes besides the main lane; absent when none" },
        "max_delay_ms": { "type": "integer", "format": "int64", "description": "the longest delay a record may ask for; absent when 0 (delayed records refused)" },
        "delay_filtering": { "type": "boolean", "description": "set once the topic has accepted delays, never cleared: its log may hold delayed records; absent when false" },
        "trace_sample_ppm": { "type": "integer", "format": "int32", "description": "parts per million of the messages whose path is traced (to __strata_trace); absent when 0 (tracing off)" }
    });
    let max_delay_ms = json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": strata_catalog::admin::MAX_DELAY_MS,
        "description": "the longest delay a record may ask for; 0 refuses delayed records. Must be below retention_ms (unless -1), and needs retention_bytes -1" });
    let trace_sample_ppm = json!({ "type": "integer", "format": "int32", "minimum": 0, "maximum": strata_catalog::admin::MAX_TRACE_SAMPLE_PPM,
        "description": "parts per million of the messages whose path is traced: 0 turns tracing off, 10000 traces 1%, 1000000 every message. May change at any time; tracing creates the internal topic __strata_trace" });
    let partition = json!({
        "type": "object",
        "required": ["topic", "partition", "epoch", "high_watermark"],
        "properties": {
            "topic": { "type": "string" },
            "partition": { "type": "integer" },
            "broker": { "type": "string", "nullable": true },
            "epoch": { "type": "integer", "format": "int64" },
            "high_watermark": { "type": "integer", "format": "int64" },
            "state": { "type": "string", "description": "Start, Recover, Write, Closing, Closed, Fenced, unassigned or unknown" }
        }
    });
    let mut all = json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": { "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": { "type": "string", "enum": strata_proto::ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>() },
                    "message": { "type": "string" }
                }
            } }
        },
        "Status": { "type": "object", "properties": { "status": { "type": "string" } } },
        "Leader": { "type": "object", "properties": {
            "leader": { "type": "string", "nullable": true },
            "term": { "type": "integer", "format": "int64", "nullable": true }
        } },
        "NewTopic": {
            "type": "object",
            "required": ["name", "partitions"],
            "additionalProperties": false,
            "properties": {
                "name": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,249}$" },
                "partitions": { "type": "integer", "minimum": 1, "maximum": strata_catalog::admin::MAX_PARTITIONS },
                "retention_ms": { "type": "integer", "format": "int64" },
                "retention_bytes": { "type": "integer", "format": "int64" },
                "segment_bytes": { "type": "integer", "format": "int64", "minimum": 1024 },
                "lanes": lanes.clone(),
                "max_delay_ms": max_delay_ms.clone(),
                "trace_sample_ppm": trace_sample_ppm.clone()
            }
        },
        "Topic": { "type": "object", "properties": topic_fields.clone() },
        "TopicList": { "type": "array", "items": schema_ref("Topic") },
        "TopicDescription": {
            "type": "object",
            "properties": {
                "partitions_detail": { "type": "array", "items": schema_ref("Partition") }
            },
            "allOf": [schema_ref("Topic")]
        },
        "TopicConfigChange": {
            "type": "object",
            "additionalProperties": false,
            "minProperties": 1,
            "properties": {
                "retention_ms": { "type": "integer", "format": "int64", "description": "positive, or -1 to keep data forever" },
                "retention_bytes": { "type": "integer", "format": "int64", "description": "positive, or -1 for no limit" },
                "segment_bytes": { "type": "integer", "format": "int64", "minimum": 1024 },
                "lanes": { "description": "the whole list of swimlanes; empty for none", "allOf": [lanes] },
                "add_lanes": { "type": "array", "items": lane.clone(), "description": "swimlanes to declare besides the current ones" },
                "remove_lanes": { "type": "array", "items": lane, "description": "swimlanes to take away; each must be declared" },
                "max_delay_ms": max_delay_ms,
                "trace_sample_ppm": trace_sample_ppm
            }
        },
        "AddPartitions": {
            "type": "object", "required": ["partitions"], "additionalProperties": false,
            "properties": { "partitions": { "type": "integer", "minimum": 1 } }
        },
        "Partition": partition,
        "PartitionList": { "type": "array", "items": schema_ref("Partition") },
        "Broker": { "type": "object", "properties": {
            "id": { "type": "string" }, "addr": { "type": "string" },
            "started_ms": { "type": "integer", "format": "int64" },
            "draining": { "type": "boolean" }, "partitions": { "type": "integer" },
            "zone": { "type": "string", "description": "availability zone; empty for none" }
        } },
        "BrokerList": { "type": "array", "items": schema_ref("Broker") },
        "Move": { "type": "object", "properties": {
            "topic": { "type": "string" }, "partition": { "type": "integer" },
            "from": { "type": "string", "nullable": true }, "to": { "type": "string" },
            "epoch": { "type": "integer", "format": "int64" }
        } },
        "Moves": { "type": "object", "properties": { "moves": { "type": "array", "items": schema_ref("Move") } } },
        "Reassignment": { "oneOf": [
            { "type": "object", "required": ["topic", "partition", "broker"], "additionalProperties": false,
              "properties": { "topic": { "type": "string" }, "partition": { "type": "integer" }, "broker": { "type": "string" } } },
            { "type": "object", "required": ["rebalance"], "additionalProperties": false,
              "properties": { "rebalance": { "type": "boolean", "enum": [true] } } }
        ] }
    });
    // A second object: one json! this size exceeds the macro recursion limit.
    let lag = json!({ "type": "object", "properties": {
        "topic": { "type": "string" }, "partition": { "type": "integer" },
        "committed": { "type": "integer", "format": "int64", "description": "-1: nothing committed" },
        "high_watermark": { "type": "integer", "format": "int64" },
        "lag": { "type": "integer", "format": "int64" },
        "member_id": { "type": "string", "nullable": true }
    } });
    let groups = json!({
        "GroupSummary": { "type": "object", "properties": {
            "group": { "type": "string" },
            "state": { "type": "string", "enum": ["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Broadcast"] },
            "protocol_type": { "type": "string" }, "members": { "type": "integer" }
        } },
        "GroupList": { "type": "array", "items": schema_ref("GroupSummary") },
        "Group": { "type": "object", "properties": {
            "group": { "type": "string" }, "state": { "type": "string" },
            "generation": { "type": "integer" }, "protocol_type": { "type": "string" },
            "protocol": { "type": "string" }, "leader": { "type": "string" },
            "members": { "type": "array", "items": { "type": "object", "properties": {
                "member_id": { "type": "string" }, "client_id": { "type": "string" },
                "client_host": { "type": "string" },
                "lane": { "type": "string", "description": "the swimlane it serves; empty for the main lane" },
                "assignment": { "type": "array", "items": { "type": "object", "properties": {
                    "topic": { "type": "string" }, "partition": { "type": "integer" } } } }
            } } },
            "offsets": { "type": "array", "items": lag.clone() },
            "broadcast_members": { "type": "array", "description": "a broadcast group's members (state Broadcast), each reading every partition with positions of its own; absent otherwise",
                "items": { "type": "object", "properties": {
                    "member": { "type": "string" },
                    "committed_ms": { "type": "integer", "format": "int64" },
                    "offsets": { "type": "array", "items": lag }
            } } }
        } }
    });
    let users = json!({
        "User": { "type": "object", "properties": {
            "name": { "type": "string" },
            "mechanisms": { "type": "array", "items": { "type": "object", "properties": {
                "mechanism": { "type": "string", "enum": ["SCRAM-SHA-256", "SCRAM-SHA-512"] },
                "iterations": { "type": "integer" } } } }
        } },
        "UserList": { "type": "array", "items": schema_ref("User") },
        "UserCredentials": { "type": "object", "required": ["password"], "properties": {
            "password": { "type": "string", "format": "password", "writeOnly": true,
                "description": "Salted and hashed on arrival; never stored or logged" },
            "mechanisms": { "type": "array", "items": { "type": "string" },
                "description": "Default: both SCRAM-SHA-256 and SCRAM-SHA-512" },
            "iterations": { "type": "integer", "minimum": 4096, "maximum": 16384, "default": 8192 }
        } }
    });
    let tokens = json!({
        "Token": { "type": "object", "properties": {
            "id": { "type": "string", "description": "16 hex digits; public" },
            "principal": { "type": "string", "example": "User:alice" },
            "description": { "type": "string" },
            "created_ms": { "type": "integer" },
            "expires_ms": { "type": "integer", "nullable": true }
        } },
        "TokenList": { "type": "array", "items": schema_ref("Token") },
        "NewToken": { "type": "object", "required": ["principal"], "properties": {
            "principal": { "type": "string", "example": "User:alice" },
            "description": { "type": "string" },
            "expires_in_secs": { "type": "integer", "minimum": 1,
                "description": "Absent: until revoked" }
        } },
        "IssuedToken": { "allOf": [schema_ref("Token"), { "type": "object", "properties": {
            "token": { "type": "string", "format": "password", "readOnly": true,
                "description": "strata_<id>_<secret>: shown once, stored only as a SHA-256" }
        } }] }
    });
    let acls = json!({
        "AclRule": { "type": "object",
            "required": ["principal", "host", "resource_type", "pattern_type", "resource_name", "operation", "permission"],
            "properties": {
                "principal": { "type": "string", "example": "User:alice",
                    "description": "`User:<name>`, or `User:*` for every authenticated principal" },
                "host": { "type": "string", "enum": ["*"] },
                "resource_type": { "type": "string", "enum": ["Topic", "Group", "Cluster", "TransactionalId"] },
                "pattern_type": { "type": "string", "enum": ["Literal", "Prefixed"] },
                "resource_name": { "type": "string", "example": "orders",
                    "description": "`*` (literal) for every resource; `kafka-cluster` for the cluster" },
                "operation": { "type": "string", "enum": ["All", "Read", "Write", "Create", "Delete",
                    "Alter", "Describe", "ClusterAction", "DescribeConfigs", "AlterConfigs", "IdempotentWrite"] },
                "permission": { "type": "string", "enum": ["Allow", "Deny"] }
            } },
        "AclRuleList": { "type": "array", "items": schema_ref("AclRule") },
        "NewAclRule": { "type": "object", "additionalProperties": false,
            "required": ["principal", "resource_type", "resource_name", "operation", "permission"],
            "description": "As AclRule; enum values in any case, `-` and `_` ignored",
            "properties": {
                "principal": { "type": "string", "example": "User:alice" },
                "host": { "type": "string", "default": "*", "description": "only `*`" },
                "resource_type": { "type": "string", "example": "topic" },
                "pattern_type": { "type": "string", "default": "Literal", "example": "prefixed" },
                "resource_name": { "type": "string", "example": "orders" },
                "operation": { "type": "string", "example": "read" },
                "permission": { "type": "string", "example": "allow" }
            } },
        "NewAclRules": { "type": "object", "required": ["rules"], "additionalProperties": false,
            "properties": { "rules": { "type": "array", "minItems": 1, "items": schema_ref("NewAclRule") } } },
        "AclRules": { "type": "object", "properties": {
            "rules": { "type": "array", "items": schema_ref("AclRule") } } },
        "RemovedAclRules": { "type": "object", "properties": {
            "removed": { "type": "array", "items": schema_ref("AclRule") } } }
    });
    for extra in [groups, users, tokens, acls] {
        if let (Some(all), Some(extra)) = (all.as_object_mut(), extra.as_object()) {
            all.extend(extra.clone());
        }
    }
    all
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method] = operation(route);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Strata admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Topics, partitions, brokers, reassignment, consumer groups, users, tokens and ACL rules of a Strata cluster."
        },
        "paths": paths,
        "components": { "schemas": schemas() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field that carries a secret, with where it was found.
    fn secret_fields(value: &Value, path: &str, found: &mut Vec<(String, Value)>) {
        match value {
            Value::Object(map) => {
                if map.get("format").and_then(Value::as_str) == Some("password") {
                    found.push((path.to_owned(), value.clone()));
                }
                for (k, v) in map {
                    secret_fields(v, &format!("{path}/{k}"), found);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    secret_fields(v, &format!("{path}/{i}"), found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn secrets_are_marked_and_never_shown_by_example() {
        let doc = document();
        let mut found = Vec::new();
        secret_fields(&doc, "", &mut found);
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert!(
            paths
                .iter()
                .any(|p| p.ends_with("UserCredentials/properties/password"))
                && paths.iter().any(|p| p.contains("IssuedToken")),
            "the password and the issued token are marked as secrets: {paths:?}"
        );
        for (path, field) in &found {
            assert!(
                field.get("example").is_none(),
                "{path} shows an example secret"
            );
        }
        // No example anywhere looks like a credential.
        let text = doc.to_string();
        assert!(!text.contains("\"example\":\"strata_"), "an example token");
        assert!(
            !text.to_lowercase().contains("\"example\":\"secret"),
            "an example secret"
        );
    }
}

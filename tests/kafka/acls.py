#!/usr/bin/env python3
"""confluent-kafka's AdminClient managing ACL rules over Kafka (CreateAcls, DescribeAcls,
DeleteAcls), optionally logged in with SASL SCRAM-SHA-256 as --user. With --describe-only it
only lists every rule, with confluent-kafka and with kafka-python; otherwise it creates four
rules and one with a host other than `*`, lists every rule and those on topic `orders`,
deletes the deny rules and lists again. Prints what each step answered:
  {"created": [{"rule": {...}, "error": "..." | null}], "described": [rule, ...],
   "described_orders": [...], "deleted": [...], "described_after": [...],
   "kafka_python": [...] | "error", "errors": [...]}
where a rule is {"resource_type", "name", "pattern", "principal", "host", "operation",
"permission"} with Kafka's enum names (TOPIC, LITERAL, READ, ALLOW, ...; confluent-kafka calls
the cluster BROKER).

librdkafka (2.x) ignores DescribeAcls' top-level error and answers a refused listing with no
rules; kafka-python raises it, so a refusal is seen through kafka-python.
"""

import argparse

from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, ResourcePatternType, ResourceType)

from common import emit, log


def rule(binding):
    return {"resource_type": binding.restype.name, "name": binding.name,
            "pattern": binding.resource_pattern_type.name, "principal": binding.principal,
            "host": binding.host, "operation": binding.operation.name,
            "permission": binding.permission_type.name}


def kafka_python_describe(args):
    """Every rule by kafka-python, or the error it raised as text."""
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType
    config = {"bootstrap_servers": args.bootstrap, "client_id": "strata-test-acls-kp"}
    if args.user:
        config.update({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                       "sasl_plain_username": args.user, "sasl_plain_password": args.password})
    admin = KafkaAdminClient(**config)
    every = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                      permission_type=ACLPermissionType.ANY,
                      resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None,
                                                             ACLResourcePatternType.ANY))
    try:
        acls, _ = admin.describe_acls(every)
        return sorted(({"resource_type": a.resource_pattern.resource_type.name,
                        "name": a.resource_pattern.resource_name,
                        "pattern": a.resource_pattern.pattern_type.name,
                        "principal": a.principal, "host": a.host,
                        "operation": a.operation.name, "permission": a.permission_type.name}
                       for a in acls), key=lambda r: sorted(r.items()))
    except Exception as e:  # the test asserts on it
        log(f"kafka-python describe: {e}")
        return f"{type(e).__name__}: {e}"
    finally:
        admin.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--describe-only", action="store_true")
    ap.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()
    config = {"bootstrap.servers": args.bootstrap, "client.id": "strata-test-acls"}
    if args.user:
        config.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-256",
                       "sasl.username": args.user, "sasl.password": args.password})
    admin = AdminClient(config)
    out = {"created": [], "described": [], "described_orders": [], "deleted": [],
           "described_after": [], "errors": []}
    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)

    def describe(key, acl_filter):
        try:
            found = admin.describe_acls(acl_filter).result(timeout=args.timeout)
            out[key] = sorted((rule(b) for b in found), key=lambda r: sorted(r.items()))
        except Exception as e:  # the test asserts on it
            out["errors"].append(f"{key}: {e}")
            log(f"{key}: {e}")

    if args.describe_only:
        describe("described", every)
        out["kafka_python"] = kafka_python_describe(args)
        emit(out)
        return

    bindings = [
        AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
        AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
                   AclOperation.WRITE, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, "app-", ResourcePatternType.PREFIXED, "User:*", "*",
                   AclOperation.READ, AclPermissionType.DENY),
        AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL,
                   "User:alice", "*", AclOperation.IDEMPOTENT_WRITE, AclPermissionType.ALLOW),
        AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:bob",
                   "10.0.0.1", AclOperation.READ, AclPermissionType.ALLOW),
    ]
    try:
        for binding, future in admin.create_acls(bindings, request_timeout=args.timeout).items():
            entry = {"rule": rule(binding), "error": None}
            try:
                future.result(timeout=args.timeout)
            except Exception as e:
                entry["error"] = str(e)
            out["created"].append(entry)
    except Exception as e:
        out["errors"].append(f"create: {e}")
        log(f"create: {e}")
    out["created"].sort(key=lambda c: sorted(c["rule"].items()))

    describe("described", every)
    describe("described_orders",
             AclBindingFilter(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, None,
                              None, AclOperation.ANY, AclPermissionType.ANY))
    deny = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                            AclOperation.ANY, AclPermissionType.DENY)
    try:
        for _, future in admin.delete_acls([deny], request_timeout=args.timeout).items():
            out["deleted"] = [rule(b) for b in future.result(timeout=args.timeout)]
    except Exception as e:
        out["errors"].append(f"delete: {e}")
        log(f"delete: {e}")
    describe("described_after", every)
    emit(out)


if __name__ == "__main__":
    main()

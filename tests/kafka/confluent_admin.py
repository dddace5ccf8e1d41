#!/usr/bin/env python3
"""confluent-kafka's AdminClient: creates --topic with --partitions and a retention.ms
setting, reads the setting back, adds a partition, lists the cluster and the topics, and
(with --delete) deletes the topic. Prints what each step answered:
  {"created": bool, "retention_ms": "...", "partitions_after": n, "brokers": [...],
   "listed": bool, "deleted": bool, "listed_after_delete": bool, "errors": [...]}
"""

import argparse

from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions, NewTopic,
                                   ResourceType)

from common import Deadline, emit, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--retention-ms", default="3600000")
    ap.add_argument("--delete", action="store_true")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    deadline = Deadline(args.timeout)
    step = lambda: max(1.0, min(20.0, deadline.left()))  # noqa: E731
    admin = AdminClient({"bootstrap.servers": args.bootstrap,
                         "client.id": "strata-test-confluent-admin"})
    out = {"client": "confluent-kafka", "errors": []}

    def attempt(name, fn):
        try:
            return fn()
        except Exception as e:  # reported, and the test asserts there are none
            out["errors"].append(f"{name}: {e}")
            log(f"confluent admin: {name}: {e}")
            return None

    new = NewTopic(args.topic, num_partitions=args.partitions, replication_factor=-1,
                   config={"retention.ms": args.retention_ms})
    out["created"] = attempt(
        "create_topics",
        lambda: admin.create_topics([new])[args.topic].result(step()) is None) or False

    def retention():
        resource = ConfigResource(ResourceType.TOPIC, args.topic)
        configs = admin.describe_configs([resource])[resource].result(step())
        return configs["retention.ms"].value

    out["retention_ms"] = attempt("describe_configs", retention)
    attempt("create_partitions",
            lambda: admin.create_partitions(
                [NewPartitions(args.topic, args.partitions + 1)])[args.topic].result(step()))
    meta = attempt("list_topics", lambda: admin.list_topics(timeout=step()))
    if meta is not None:
        topic = meta.topics.get(args.topic)
        out["listed"] = topic is not None
        out["partitions_after"] = len(topic.partitions) if topic else 0
        out["brokers"] = sorted(f"{b.host}:{b.port}" for b in meta.brokers.values())
    if args.delete:
        out["deleted"] = attempt(
            "delete_topics",
            lambda: admin.delete_topics([args.topic])[args.topic].result(step()) is None) or False
        after = attempt("list_topics", lambda: admin.list_topics(timeout=step()))
        out["listed_after_delete"] = after is not None and args.topic in after.topics
    emit(out)


if __name__ == "__main__":
    main()

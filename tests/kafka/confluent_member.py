#!/usr/bin/env python3
"""confluent-kafka consumer group member for the group tests: subscribes to --topic in
--group and prints one JSON line per event on stdout, flushed at once so a test can follow it
and still have everything a member printed before a `kill -9`:
  {"event": "assigned", "partitions": [..]}    after every rebalance that gives partitions
  {"event": "revoked", "partitions": [..]}
  {"event": "consumed", "records": [[key, partition, offset], ..], "total": n}
                                               each batch, before its offsets are committed
  {"event": "done", "total": n, "errors": {...}}   at the end (--duration or --timeout)
Every batch is reported, then its offsets are committed synchronously: whatever the group
has committed was reported first, even if the member is killed during the commit (a batch
reported but not committed is read again by the next owner: at least once). The
member leaves the group and exits when its stdin closes (the test drops its end), so a test
stops members gracefully without signals.
"""

import argparse
import json
import os
import select
import sys
import time

from confluent_kafka import Consumer

from common import Deadline, log, text


def line(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def stdin_closed():
    readable, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(readable) and os.read(sys.stdin.fileno(), 1024) == b""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--name", default="member")
    ap.add_argument("--timeout", type=float, default=120, help="seconds the member runs at most")
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--debug", default="")
    args = ap.parse_args()

    errors = {}

    def on_error(err):
        errors[err.name()] = errors.get(err.name(), 0) + 1
        log(f"{args.name}: error {err}")

    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": f"strata-test-{args.name}",
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": max(100, args.session_timeout_ms // 4),
        "partition.assignment.strategy": "range,roundrobin",
        "error_cb": on_error,
    }
    if args.debug:
        conf["debug"] = args.debug
    consumer = Consumer(conf)

    def on_assign(c, partitions):
        line({"event": "assigned", "member": args.name,
              "partitions": sorted(p.partition for p in partitions)})

    def on_revoke(c, partitions):
        line({"event": "revoked", "member": args.name,
              "partitions": sorted(p.partition for p in partitions)})

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    deadline = Deadline(args.timeout)
    total = 0
    while not deadline.passed():
        if stdin_closed():
            break
        batch = consumer.consume(num_messages=500, timeout=0.2)
        records = []
        for msg in batch:
            if msg.error():
                on_error(msg.error())
                continue
            records.append([text(msg.key()), msg.partition(), msg.offset()])
        if not records:
            continue
        total += len(records)
        line({"event": "consumed", "member": args.name, "records": records, "total": total})
        try:
            consumer.commit(asynchronous=False)
        except Exception as e:  # a commit racing a rebalance; the next owner re-reads
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            log(f"{args.name}: commit failed: {e}")
    consumer.close()
    line({"event": "done", "member": args.name, "total": total, "errors": errors})


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""confluent-kafka consumer: reads a topic from the beginning (every partition assigned, or
as a member of --group) and checks what it read.

Stops once --expect distinct messages arrived and nothing more came for --settle seconds,
after --idle seconds without a message, or at --timeout. Prints:
  {"count": n, "distinct": n, "duplicates": n, "missing": n, "missing_sample": [...],
   "bad": n, "bad_sample": [...], "complete": bool, "errors": {...}, "records": [...]?}
With --prefix, keys and values are checked against the generated ones (common.py); with
--acked-file, the acknowledged keys a producer wrote are the expected set. --dump adds every
record (key, value, headers, timestamp, partition, offset) to the summary.
"""

import argparse
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from common import (Deadline, add_security_args, emit, headers_dict, index_of, key_of, log,
                    security_conf, text, value_of)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--expect", type=int, default=0,
                    help="generated messages 0..N expected (with --prefix)")
    ap.add_argument("--prefix")
    ap.add_argument("--value-bytes", type=int, default=0)
    ap.add_argument("--acked-file", help="key<TAB>partition<TAB>offset lines to expect")
    ap.add_argument("--group")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--idle", type=float, default=15)
    ap.add_argument("--settle", type=float, default=1.5)
    ap.add_argument("--dump", action="store_true")
    ap.add_argument("--keys-file", help="writes key<TAB>partition<TAB>offset per message read")
    ap.add_argument("--debug", default="")
    add_security_args(ap)
    args = ap.parse_args()

    expected = set()
    acked_at = {}
    if args.acked_file:
        with open(args.acked_file) as f:
            for line in f:
                k, p, o = line.rstrip("\n").split("\t")
                expected.add(k)
                acked_at[k] = (int(p), int(o))
    elif args.prefix is not None and args.expect:
        expected = {key_of(args.prefix, i) for i in range(args.expect)}
    want = len(expected) if expected else args.expect

    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": "strata-test-confluent-consumer",
        "group.id": args.group or "strata-test-unused",
        "enable.auto.commit": bool(args.group),
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    conf.update(security_conf(args))
    if args.debug:
        conf["debug"] = args.debug
    errors = {}
    samples = []

    def on_error(err):
        errors[err.name()] = errors.get(err.name(), 0) + 1
        if len(samples) < 20:
            samples.append({"error": str(err), "retriable": err.retriable(),
                            "fatal": err.fatal()})

    conf["error_cb"] = on_error
    consumer = Consumer(conf)
    deadline = Deadline(args.timeout)
    if args.group:
        consumer.subscribe([args.topic])
    else:
        meta = consumer.list_topics(args.topic, timeout=min(30, deadline.left()))
        parts = sorted(meta.topics[args.topic].partitions)
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in parts])

    seen = {}
    positions = set()
    count = duplicates = bad = 0
    bad_sample = []
    wrong_place = 0
    records = []
    keys_out = open(args.keys_file, "w") if args.keys_file else None
    last_message = time.monotonic()
    complete_at = None
    while not deadline.passed():
        now = time.monotonic()
        if complete_at is not None and now - complete_at >= args.settle:
            break
        if now - last_message >= args.idle:
            break
        batch = consumer.consume(num_messages=1000, timeout=0.2)
        for msg in batch:
            if msg.error():
                on_error(msg.error())
                continue
            last_message = time.monotonic()
            count += 1
            key = text(msg.key())
            value = text(msg.value())
            place = (msg.partition(), msg.offset())
            if place in positions or key in seen:
                duplicates += 1
            positions.add(place)
            seen[key] = seen.get(key, 0) + 1
            if args.prefix is not None:
                i = index_of(args.prefix, key)
                if i is None or value != value_of(args.prefix, i, args.value_bytes):
                    bad += 1
                    if len(bad_sample) < 10:
                        bad_sample.append({"key": key, "value": value[:80] if value else value})
            if keys_out:
                keys_out.write(f"{key}\t{msg.partition()}\t{msg.offset()}\n")
            if key in acked_at and acked_at[key] != place:
                wrong_place += 1
            if args.dump:
                ts_type, ts = msg.timestamp()
                records.append({
                    "key": key, "value": value, "headers": headers_dict(msg.headers()),
                    "timestamp": ts, "timestamp_type": ts_type,
                    "partition": msg.partition(), "offset": msg.offset(),
                })
        if complete_at is None and want and len(seen) >= want and (
                not expected or expected.issubset(seen.keys())):
            complete_at = time.monotonic()
    consumer.close()
    if keys_out:
        keys_out.close()
    missing = sorted(expected - seen.keys()) if expected else []
    summary = {
        "client": "confluent-kafka",
        "count": count,
        "distinct": len(seen),
        "duplicates": duplicates,
        "missing": len(missing) if expected else max(0, want - len(seen)),
        "missing_sample": missing[:10],
        "bad": bad,
        "bad_sample": bad_sample,
        "wrong_place": wrong_place,
        "complete": bool(want) and len(seen) >= want and not missing,
        "errors": errors,
        "error_samples": samples,
    }
    if args.dump:
        summary["records"] = records
    log(f"confluent consumer: {count} read, {len(seen)} distinct, {duplicates} duplicates, "
        f"{summary['missing']} missing, {bad} bad, errors {errors}")
    emit(summary)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Kafka-path consume measurement for scripts/bench.sh kafka: a confluent-kafka consumer assigns
every partition of a topic at the beginning and reads up to --max-mb back. Prints one JSON
document on stdout; progress goes to stderr.

Like `strata bench`'s consume suite it reads twice: the first pass is cold (nothing read these
offsets through this proxy yet), the second reads the same offsets again and may be served from
the proxy's read cache. Each pass stops at its byte cap, at the end of the data present when it
started, or at --timeout-secs, whichever comes first.
"""

import argparse
import json
import resource
import sys
import time
import uuid

MB = 1e6


def log(msg):
    print(f"kafka consume: {msg}", file=sys.stderr, flush=True)


def watermarks(consumer, tp, attempts=5):
    """Low and high offsets. Retried: the consumer's group.id (confluent-kafka insists on one)
    makes librdkafka look for a coordinator, and a listener that cannot answer FindCoordinator
    closes the connection, failing whatever else was in flight on it."""
    from confluent_kafka import KafkaException

    for attempt in range(attempts):
        try:
            return consumer.get_watermark_offsets(tp, timeout=10)
        except KafkaException as e:
            if attempt == attempts - 1:
                raise
            log(f"watermarks of {tp.topic}/{tp.partition}: {e}; retrying")
            time.sleep(0.5)


def read_pass(args, name):
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING

    c = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            # A fresh group that never commits: nothing of this run's position survives it.
            "group.id": f"strata-bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # 1 MiB per partition per fetch, as the gRPC consume suite asks for.
            "max.partition.fetch.bytes": 1 << 20,
            "client.id": "strata-bench-kafka",
        }
    )
    try:
        # What to read is fixed before the clock starts: per partition, up to the high
        # watermark, and no more than its share of the byte cap.
        per_partition_cap = max(1, int(args.max_mb * MB / args.partitions / args.size))
        goal = {}
        target_msgs = 0
        for part in range(args.partitions):
            low, high = watermarks(c, TopicPartition(args.topic, part))
            want = min(high - low, per_partition_cap)
            if want > 0:
                goal[part] = low + want
                target_msgs += want
        c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in goal])
        r = resource.getrusage(resource.RUSAGE_SELF)
        cpu_before = r.ru_utime + r.ru_stime
        started = time.monotonic()
        deadline = started + args.timeout_secs
        first = None
        msgs = nbytes = errors = 0
        first_error = None
        done = set()
        last_show = started
        while len(done) < len(goal) and time.monotonic() < deadline:
            batch = c.consume(num_messages=10_000, timeout=0.5)
            now = time.monotonic()
            for m in batch:
                if m.error() is not None:
                    errors += 1
                    first_error = first_error or str(m.error())
                    continue
                part = m.partition()
                if part in done:
                    continue
                if m.offset() + 1 >= goal[part]:
                    done.add(part)
                if first is None:
                    first = now
                msgs += 1
                nbytes += len(m.value())
            if now - last_show >= 1.0:
                last_show = now
                log(f"{name}: {msgs}/{target_msgs} messages, {now - started:.1f} s")
        finished = time.monotonic()
        r = resource.getrusage(resource.RUSAGE_SELF)
        cpu = r.ru_utime + r.ru_stime - cpu_before
    finally:
        c.close()
    secs = finished - started
    result = {
        "messages": msgs,
        "target_messages": target_msgs,
        "bytes": nbytes,
        "seconds": secs,
        "mb_per_s": nbytes / MB / secs if secs > 0 else 0.0,
        # From assign() to the first record: metadata, ListOffsets and the first Fetch.
        "first_record_s": None if first is None else first - started,
        "complete": len(done) == len(goal),
        # This process (Python and librdkafka's threads): near 1 core, the client is the limit.
        "consumer_cpu_cores": cpu / secs if secs > 0 else None,
        "errors": errors,
        "first_error": first_error,
    }
    log(f"{name}: {result['mb_per_s']:.1f} MB/s, {msgs} messages in {secs:.2f} s, consumer cpu {result['consumer_cpu_cores']:.2f} cores"
        + ("" if result["complete"] else " (INCOMPLETE: timed out)"))
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--size", type=int, default=1024, help="value bytes, to split the cap per partition")
    ap.add_argument("--max-mb", type=float, default=128, help="megabytes read per pass (10^6 bytes)")
    ap.add_argument("--passes", type=int, default=2, help="1: cold only; 2: cold, then cached")
    ap.add_argument("--timeout-secs", type=float, default=60.0, help="limit per pass")
    args = ap.parse_args()
    if args.partitions < 1 or args.size < 1 or args.max_mb <= 0 or not 1 <= args.passes <= 2:
        ap.error("--partitions, --size, --max-mb must be positive; --passes is 1 or 2")
    doc = {"client": "confluent-kafka (librdkafka)", "topic": args.topic, "partitions": args.partitions, "size": args.size}
    doc["cold"] = read_pass(args, "cold pass")
    if args.passes == 2:
        doc["cached"] = read_pass(args, "cached pass")
    for k in ("mb_per_s", "messages", "seconds"):
        doc[k] = doc["cold"][k]
    json.dump(doc, sys.stdout)
    print()


if __name__ == "__main__":
    main()

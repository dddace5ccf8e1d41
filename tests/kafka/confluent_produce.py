#!/usr/bin/env python3
"""confluent-kafka producer: idempotent (enable.idempotence=true, acks=all) by default.

Sends --count generated messages (see common.py) with --compression, or the records of
--records (a JSON list of {key, value, headers, timestamp, partition}), and prints:
  {"acked": n, "failed": n, "errors": {"NAME": count}, "error_samples": [...],
   "retriable_only": bool, "offsets": {"p": [first, last, count]}, "seconds": s, ...}
--acked-file writes `key<TAB>partition<TAB>offset` per acknowledged message.
--rate limits messages per second (a steady stream for the fault tests).
"""

import argparse
import json
import time

from confluent_kafka import Producer

from common import (Deadline, add_security_args, emit, key_of, log, security_conf,
                    value_of)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--prefix", default="m")
    ap.add_argument("--compression", default="none",
                    choices=["none", "gzip", "snappy", "lz4", "zstd"])
    ap.add_argument("--value-bytes", type=int, default=0)
    ap.add_argument("--records", help="JSON file: a list of records to send instead")
    ap.add_argument("--no-idempotence", action="store_true")
    ap.add_argument("--acks", default="all")
    ap.add_argument("--rate", type=float, default=0, help="messages per second, 0: no limit")
    ap.add_argument("--timeout", type=float, default=120, help="seconds for the whole run")
    ap.add_argument("--acked-file")
    ap.add_argument("--debug", default="", help="librdkafka debug contexts, e.g. protocol,broker")
    add_security_args(ap)
    args = ap.parse_args()

    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": "strata-test-confluent-producer",
        "enable.idempotence": not args.no_idempotence,
        "acks": args.acks,
        "compression.type": args.compression,
        # Kafka's Java partitioner (murmur2), the one Strata's SDK uses too.
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "message.timeout.ms": int(args.timeout * 1000),
        "retry.backoff.ms": 100,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    conf.update(security_conf(args))
    if args.debug:
        conf["debug"] = args.debug
    errors = {}
    samples = []
    fatal = []

    def on_error(err):
        # Client-level errors (broker down, all brokers down, fatal idempotence errors).
        name = err.name()
        errors[name] = errors.get(name, 0) + 1
        if err.fatal():
            fatal.append(str(err))
        if len(samples) < 20:
            samples.append({"where": "client", "error": str(err), "retriable": err.retriable(),
                            "fatal": err.fatal()})

    conf["error_cb"] = on_error
    producer = Producer(conf)
    acked = 0
    failed = 0
    offsets = {}
    acked_out = open(args.acked_file, "w") if args.acked_file else None

    def on_delivery(err, msg):
        nonlocal acked, failed
        if err is not None:
            failed += 1
            name = err.name()
            errors[name] = errors.get(name, 0) + 1
            if len(samples) < 20:
                samples.append({"where": "delivery", "error": str(err),
                                "retriable": err.retriable(), "fatal": err.fatal()})
            return
        acked += 1
        p = str(msg.partition())
        first, last, n = offsets.get(p, (msg.offset(), msg.offset(), 0))
        offsets[p] = (min(first, msg.offset()), max(last, msg.offset()), n + 1)
        if acked_out:
            acked_out.write(f"{msg.key().decode()}\t{msg.partition()}\t{msg.offset()}\n")

    if args.records:
        with open(args.records) as f:
            records = json.load(f)
    else:
        records = None
    total = len(records) if records is not None else args.count
    deadline = Deadline(args.timeout)
    started = time.monotonic()
    sent = 0
    for i in range(total):
        if deadline.passed():
            break
        if args.rate > 0:
            due = started + i / args.rate
            while time.monotonic() < due:
                producer.poll(min(0.05, max(0.0, due - time.monotonic())))
        if records is not None:
            r = records[i]
            kw = {"key": r.get("key"), "value": r.get("value"),
                  "headers": list((r.get("headers") or {}).items())}
            if r.get("timestamp") is not None:
                kw["timestamp"] = r["timestamp"]
            if r.get("partition") is not None:
                kw["partition"] = r["partition"]
        else:
            kw = {"key": key_of(args.prefix, i),
                  "value": value_of(args.prefix, i, args.value_bytes),
                  "headers": [("i", str(i)), ("src", "confluent")]}
        while True:
            try:
                producer.produce(args.topic, on_delivery=on_delivery, **kw)
                break
            except BufferError:
                producer.poll(0.05)
                if deadline.passed():
                    break
        sent += 1
        producer.poll(0)
        if fatal:
            break
    left = producer.flush(max(1.0, deadline.left()))
    seconds = time.monotonic() - started
    if acked_out:
        acked_out.close()
    retriable_only = not fatal and failed == 0
    log(f"confluent producer: {acked}/{sent} acked in {seconds:.1f} s, "
        f"{left} unresolved, errors {errors}")
    emit({
        "client": "confluent-kafka",
        "sent": sent,
        "acked": acked,
        "failed": failed,
        "unresolved": left,
        "errors": errors,
        "error_samples": samples,
        "fatal": fatal,
        "retriable_only": retriable_only,
        "offsets": {p: list(v) for p, v in offsets.items()},
        "seconds": round(seconds, 3),
    })


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""kafka-python consumer (a second, pure-Python client implementation): reads every partition
of --topic from the beginning until --expect records arrived or --idle seconds pass without
one, and prints {"count": n, "records": [{key, value, headers, timestamp, partition,
offset}]}."""

import argparse
import time

from kafka import KafkaConsumer, TopicPartition

from common import Deadline, emit, headers_dict, log, text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--ssl-ca", help="connect over TLS, trusting this CA bundle")
    ap.add_argument("--ssl-cert", help="client certificate (mTLS), with --ssl-key")
    ap.add_argument("--ssl-key")
    ap.add_argument("--sasl-mechanism", help="log in with SASL (PLAIN, SCRAM-SHA-256, ...)")
    ap.add_argument("--sasl-user")
    ap.add_argument("--sasl-password")
    args = ap.parse_args()

    tls = {}
    if args.ssl_ca:
        tls = {"security_protocol": "SSL", "ssl_cafile": args.ssl_ca,
               "ssl_certfile": args.ssl_cert, "ssl_keyfile": args.ssl_key,
               "ssl_check_hostname": True}
    if args.sasl_mechanism:
        tls["security_protocol"] = "SASL_SSL" if args.ssl_ca else "SASL_PLAINTEXT"
        tls.update({"sasl_mechanism": args.sasl_mechanism,
                    "sasl_plain_username": args.sasl_user,
                    "sasl_plain_password": args.sasl_password})
    deadline = Deadline(args.timeout)
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap.split(","),
                             client_id="strata-test-kafka-python",
                             enable_auto_commit=False, auto_offset_reset="earliest", **tls)
    parts = None
    while parts is None and not deadline.passed():
        parts = consumer.partitions_for_topic(args.topic)
        if parts is None:
            time.sleep(0.2)
    tps = [TopicPartition(args.topic, p) for p in sorted(parts or [])]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    records = []
    last = time.monotonic()
    while not deadline.passed() and time.monotonic() - last < args.idle:
        if args.expect and len(records) >= args.expect:
            break
        polled = consumer.poll(timeout_ms=200)
        for batch in polled.values():
            for msg in batch:
                last = time.monotonic()
                records.append({
                    "key": text(msg.key), "value": text(msg.value),
                    "headers": headers_dict(msg.headers), "timestamp": msg.timestamp,
                    "timestamp_type": msg.timestamp_type,
                    "partition": msg.partition, "offset": msg.offset,
                })
    consumer.close()
    log(f"kafka-python consumer: {len(records)} records")
    emit({"client": "kafka-python", "count": len(records), "records": records})


if __name__ == "__main__":
    main()

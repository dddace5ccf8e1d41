#!/usr/bin/env python3
"""Kafka-path produce load for scripts/bench.sh kafka: confluent-kafka (librdkafka) producers
against a Strata proxy's Kafka listener. Prints one JSON document on stdout; progress goes to
stderr.

It mirrors the shape of `strata bench`'s produce runs so the two paths can sit in one table:
a warm-up, then a measured window; only acknowledgements that *arrive inside the window* count
towards MB/s and the latency percentiles (nearest rank, as the Rust bench computes them).
Ack latency is produce() -> delivery callback.

    produce.py --bootstrap 127.0.0.1:9092 --topic t --partitions 8 [--rate MSGS_PER_S]
"""

import argparse
import functools
import json
import math
import multiprocessing as mp
import os
import resource
import sys
import time

MB = 1e6
# Records handed to librdkafka per produce_batch call (one partition each).
CHUNK = 64


def log(msg):
    print(f"kafka produce: {msg}", file=sys.stderr, flush=True)


def nearest_rank(sorted_values, q):
    n = len(sorted_values)
    return sorted_values[min(max(math.ceil(q * n), 1), n) - 1]


def percentiles_ms(latencies_us):
    if not latencies_us:
        return {"samples": 0, "p50_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None}
    s = sorted(latencies_us)
    return {
        "samples": len(s),
        "p50_ms": nearest_rank(s, 0.50) / 1e3,
        "p99_ms": nearest_rank(s, 0.99) / 1e3,
        "p999_ms": nearest_rank(s, 0.999) / 1e3,
        "max_ms": s[-1] / 1e3,
    }


def producer_config(args, processes):
    return {
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "linger.ms": args.linger_ms,
        # The SDK bench gives its one producer 64 MiB of buffer; split it so N processes
        # together queue as much as the gRPC side can, no more.
        "queue.buffering.max.kbytes": max(1024, 65536 // processes),
        "queue.buffering.max.messages": 1_000_000,
        "compression.type": "none",
        "message.timeout.ms": 60_000,
        "client.id": "strata-bench-kafka",
    } | ({"max.in.flight.requests.per.connection": args.max_in_flight} if args.max_in_flight else {})


def busy_cores_sample():
    """(busy jiffies, all jiffies, cores) of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        cores = os.cpu_count() or 1
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields), cores


def process_cpu_seconds(pid):
    """utime + stime of one process (all its threads), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name is in parentheses and may hold spaces: split after it.
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def watched_sample(watch):
    return {name: process_cpu_seconds(pid) for name, pid in watch.items()}


def busy_cores(before, after):
    if not before or not after or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * after[2]


def summarize_stats(text, topic):
    """The few librdkafka statistics that say where a produce waits (µs windows of ~1 s)."""
    if not text:
        return None
    st = json.loads(text)
    brokers = [b for b in st.get("brokers", {}).values() if b.get("nodeid", -1) >= 0]
    out = {"brokers": []}
    for b in brokers:
        out["brokers"].append(
            {
                "name": b.get("name"),
                "produce_requests": (b.get("req") or {}).get("Produce"),
                "rtt_avg_ms": (b.get("rtt") or {}).get("avg", 0) / 1e3,
                "rtt_p99_ms": (b.get("rtt") or {}).get("p99", 0) / 1e3,
                "outbuf_latency_p99_ms": (b.get("outbuf_latency") or {}).get("p99", 0) / 1e3,
                "int_latency_p50_ms": (b.get("int_latency") or {}).get("p50", 0) / 1e3,
                "int_latency_p99_ms": (b.get("int_latency") or {}).get("p99", 0) / 1e3,
                "waitresp_cnt": b.get("waitresp_cnt"),
                "outbuf_cnt": b.get("outbuf_cnt"),
                "tx_requests": b.get("tx"),
            }
        )
    t = st.get("topics", {}).get(topic) or {}
    out["batch_bytes_avg"] = (t.get("batchsize") or {}).get("avg")
    out["batch_msgs_avg"] = (t.get("batchcnt") or {}).get("avg")
    out["queued_msgs"] = st.get("msg_cnt")
    return out


def wait_ready(args):
    """Metadata for every partition, then one acknowledged record per partition: the topic is
    writable before the clock starts, as `strata bench` waits for its topics."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": 0})
    deadline = time.monotonic() + args.ready_secs
    while True:
        try:
            md = p.list_topics(args.topic, timeout=5)
            t = md.topics.get(args.topic)
            if t is not None and t.error is None and len(t.partitions) == args.partitions and all(
                pm.leader >= 0 for pm in t.partitions.values()
            ):
                break
            seen = None if t is None else (len(t.partitions), t.error)
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            seen = e
        if time.monotonic() > deadline:
            raise SystemExit(f"topic {args.topic} not ready after {args.ready_secs}s: {seen}")
        time.sleep(0.2)
    failed = []
    for part in range(args.partitions):
        p.produce(args.topic, b"ready", partition=part, on_delivery=lambda e, m: e and failed.append(e))
    left = p.flush(args.ready_secs)
    if left or failed:
        raise SystemExit(f"topic {args.topic}: readiness records failed: left={left} {failed[:1]}")


def worker(index, processes, args, start_at, out):
    """One producer process. Its share of the partitions is round-robin over all of them (every
    process writes every partition, like the SDK's round-robin partitioner)."""
    from confluent_kafka import Producer, KafkaException

    warm_end = start_at + args.warmup_secs
    end = warm_end + args.measure_secs
    stats = {}

    def on_stats(text):
        # librdkafka's own view of the connection, kept from inside the window: how long a
        # Produce request waits for its answer and how many are outstanding at once.
        if warm_end <= time.monotonic() < end + 1.0:
            stats["last"] = text

    config = producer_config(args, processes)
    config["statistics.interval.ms"] = 1000
    config["stats_cb"] = on_stats
    p = Producer(config)
    value = os.urandom(args.size)
    latencies = []  # µs, acks arriving inside the window
    state = {"acked": 0, "errors": 0, "first_error": None}

    def delivered(t0, err, msg):
        now = time.monotonic()
        if err is not None:
            if warm_end <= now < end:
                state["errors"] += 1
            if state["first_error"] is None:
                state["first_error"] = str(err)
            return
        if warm_end <= now < end:
            state["acked"] += 1
            latencies.append(int((now - t0) * 1e6))

    rate = args.rate / processes if args.rate else None
    part = index  # processes start on different partitions so none share a batch at first
    sent = 0
    behind = 0.0
    cpu_before = None
    while time.monotonic() < start_at:
        time.sleep(0.001)
    last_show = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if cpu_before is None and now >= warm_end:
            r = resource.getrusage(resource.RUSAGE_SELF)
            cpu_before = (r.ru_utime + r.ru_stime, now)
        # Records go to librdkafka CHUNK at a time through produce_batch, one partition per
        # chunk, round-robin: a Python call per record cost more CPU than the servers spent
        # on the record, and the generator shares the servers' cores. Every record still gets
        # its own delivery callback, timed from the moment its chunk was handed over.
        count = CHUNK
        if rate is not None:
            due = start_at + sent / rate
            if due > now:
                p.poll(min(due - now, 0.001))
                continue
            if now >= warm_end:
                behind = max(behind, now - due)
            # Every record due by now, so a chunk never runs ahead of the schedule.
            count = max(1, min(CHUNK, int((now - start_at) * rate) - sent + 1))
        t0 = time.monotonic()
        chunk = [{"value": value} for _ in range(count)]
        try:
            queued = p.produce_batch(
                args.topic, chunk, partition=part, on_delivery=functools.partial(delivered, t0)
            )
        except BufferError:
            queued = 0
        except KafkaException as e:
            state["errors"] += 1
            state["first_error"] = state["first_error"] or str(e)
            p.poll(0.01)
            continue
        if queued < count:
            # librdkafka's queue is full: the producer "does not take" more, which is what the
            # SDK's enqueue blocking means on the gRPC side. The rest of the chunk is dropped
            # here, not counted as sent, and the next chunk continues.
            p.poll(0.001)
        if queued == 0:
            continue
        part = (part + 1) % args.partitions
        sent += queued
        # Callbacks only run inside poll(): the longer between polls, the later an ack is
        # seen, so once per chunk (a fraction of a millisecond of produce calls).
        p.poll(0)
        if index == 0 and now - last_show >= 1.0:
            last_show = now
            phase = "measuring" if now >= warm_end else "warming up"
            log(f"{phase} {now - start_at:.1f}/{end - start_at:.1f} s, {sent * processes} sent (approx)")
    r = resource.getrusage(resource.RUSAGE_SELF)
    cpu_end = (r.ru_utime + r.ru_stime, time.monotonic())
    left = p.flush(args.drain_secs)
    cores = None
    if cpu_before is not None:
        cores = (cpu_end[0] - cpu_before[0]) / max(cpu_end[1] - cpu_before[1], 1e-9)
    out.put(
        {
            "librdkafka": summarize_stats(stats.get("last"), args.topic),
            "sent": sent,
            "acked": state["acked"],
            "errors": state["errors"] + left,
            "first_error": state["first_error"] or (f"{left} records unacknowledged after {args.drain_secs}s" if left else None),
            "latencies": latencies,
            "behind_s": behind,
            "cpu_cores": cores,
        }
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--size", type=int, default=1024, help="value bytes")
    ap.add_argument("--linger-ms", type=float, default=5, help="the SDK's default is 5")
    ap.add_argument("--rate", type=float, default=0, help="records/s over all processes; 0: as fast as produce() takes them")
    ap.add_argument("--processes", type=int, default=1, help="producer processes (one Python process may be the bottleneck)")
    ap.add_argument("--max-in-flight", type=int, default=0,
                    help="max.in.flight.requests.per.connection; 0: librdkafka's default (1,000,000; Java's is 5)")
    ap.add_argument("--warmup-secs", type=float, default=1.0)
    ap.add_argument("--measure-secs", type=float, default=3.0)
    ap.add_argument("--drain-secs", type=float, default=30.0, help="flush limit after the window")
    ap.add_argument("--ready-secs", type=float, default=60.0)
    ap.add_argument("--label", default="kafka")
    ap.add_argument("--watch-pids", default="", help="name=pid,... of servers whose CPU in the window to report")
    args = ap.parse_args()
    if args.processes < 1 or args.partitions < 1 or args.size < 1 or args.measure_secs <= 0:
        ap.error("--processes, --partitions, --size and --measure-secs must be positive")

    # name=pid pairs of the servers whose CPU in the window is reported beside the producers'.
    watch = {}
    for item in filter(None, args.watch_pids.split(",")):
        name, _, pid = item.partition("=")
        if pid.isdigit():
            watch[name] = int(pid)

    wait_ready(args)
    # spawn, not fork: the readiness check above ran librdkafka threads in this process.
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # CLOCK_MONOTONIC is one clock for every process on the machine, so a shared start time
    # lines the windows up; 2 s cover the children starting Python and connecting.
    start_at = time.monotonic() + 2.0
    what = f"{args.rate:.0f} records/s" if args.rate else "max rate"
    log(f"{args.label}: {args.processes} process(es), {what}, {args.size} B × {args.partitions}p, linger {args.linger_ms} ms, "
        f"{args.warmup_secs}+{args.measure_secs} s")
    procs = [ctx.Process(target=worker, args=(i, args.processes, args, start_at, out)) for i in range(args.processes)]
    for pr in procs:
        pr.start()
    # The whole machine's CPU in the window: with the producers' own share it says what was
    # left for the servers (and whoever else shares the cores).
    while time.monotonic() < start_at + args.warmup_secs:
        time.sleep(0.01)
    machine_before = busy_cores_sample()
    watched_before, watched_t0 = watched_sample(watch), time.monotonic()
    while time.monotonic() < start_at + args.warmup_secs + args.measure_secs:
        time.sleep(0.01)
    machine_busy = busy_cores(machine_before, busy_cores_sample())
    watched_after, watched_t1 = watched_sample(watch), time.monotonic()
    server_cores = {
        name: (watched_after[name] - watched_before[name]) / (watched_t1 - watched_t0)
        for name in watch
        if watched_before[name] is not None and watched_after[name] is not None
    }
    limit = args.warmup_secs + args.measure_secs + args.drain_secs + 30
    results = []
    for _ in procs:
        try:
            results.append(out.get(timeout=limit))
        except Exception:  # noqa: BLE001 - a worker that never answers is reported, not waited on forever
            break
    for pr in procs:
        pr.join(timeout=5)
        if pr.is_alive():
            pr.kill()
    if len(results) != len(procs):
        raise SystemExit(f"only {len(results)} of {len(procs)} producer processes reported")

    latencies = [l for r in results for l in r["latencies"]]
    acked = sum(r["acked"] for r in results)
    secs = args.measure_secs
    cores = [r["cpu_cores"] for r in results if r["cpu_cores"] is not None]
    doc = {
        "label": args.label,
        "client": "confluent-kafka (librdkafka)",
        "processes": args.processes,
        "size": args.size,
        "partitions": args.partitions,
        "acks": "all",
        "linger_ms": args.linger_ms,
        "max_in_flight": args.max_in_flight or "librdkafka default",
        "target_msgs_per_s": args.rate or None,
        "warmup_s": args.warmup_secs,
        "seconds": secs,
        "sent": sum(r["sent"] for r in results),
        "messages": acked,
        "bytes": acked * args.size,
        "msgs_per_s": acked / secs,
        "mb_per_s": acked * args.size / MB / secs,
        "ack": percentiles_ms(latencies),
        "errors": sum(r["errors"] for r in results),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
        "behind_schedule_ms": max(r["behind_s"] for r in results) * 1e3 if args.rate else None,
        "producer_cpu_cores": sum(cores) if cores else None,
        "producer_cpu_cores_each": cores,
        "machine_busy_cores": machine_busy,
        "server_cpu_cores": server_cores,
        "others_cpu_cores": machine_busy - sum(cores) if machine_busy is not None and cores else None,
        "librdkafka": [r["librdkafka"] for r in results],
    }
    a = doc["ack"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    log(f"{args.label}: {doc['mb_per_s']:.1f} MB/s ({doc['msgs_per_s']:.0f} msgs/s), ack p50 {fmt(a['p50_ms'])} "
        f"p99 {fmt(a['p99_ms'])} max {fmt(a['max_ms'])} ms, errors {doc['errors']}, producer cpu {fmt(doc['producer_cpu_cores'])} cores")
    json.dump(doc, sys.stdout)
    print()


if __name__ == "__main__":
    main()

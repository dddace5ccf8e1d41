#!/usr/bin/env python3
"""Side-by-side summary of scripts/bench.sh kafka: reads the raw results of one run (RAW_DIR:
grpc.json from `strata bench`, kafka-max.json, kafka-load.json, kafka-consume.json, the proxy's
metric snapshots, one `top`), writes OUT_JSON and prints the table with the issue's goals.

    summary.py RAW_DIR OUT_JSON
"""

import json
import os
import re
import sys

THROUGHPUT_GOAL = 0.90  # Kafka MB/s >= 90% of the gRPC path's
P99_GOAL = 1.10  # Kafka p99 at most 10% above the gRPC path's


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def metrics(path):
    """Prometheus text lines -> {series: value}."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r"^(\S+)\s+([0-9.eE+-]+)$", line.strip())
                if m:
                    out[m.group(1)] = float(m.group(2))
    except OSError:
        pass
    return out


def diff(after, before):
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) != 0}


def api_count(d, api):
    return sum(v for k, v in d.items() if k.startswith("strata_proxy_kafka_requests") and f'api="{api}"' in k)


def fmt(v, digits=1, unit=""):
    return "-" if v is None else f"{v:.{digits}f}{unit}"


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    raw, out_json = sys.argv[1], sys.argv[2]
    grpc = load(os.path.join(raw, "grpc.json")) or {}
    kmax = load(os.path.join(raw, "kafka-max.json")) or {}
    kload = load(os.path.join(raw, "kafka-load.json")) or {}
    kcons = load(os.path.join(raw, "kafka-consume.json")) or {}

    point = (grpc.get("points") or [{}])[0]
    gmax = point.get("max") or {}
    gload = point.get("at_load") or {}
    gcons = (grpc.get("consume") or [{}])[0]

    def side(prod_max, prod_load, cold, cached):
        return {
            "produce_mb_per_s": prod_max.get("mb_per_s"),
            "produce_msgs_per_s": prod_max.get("msgs_per_s"),
            "max_ack_p50_ms": (prod_max.get("ack") or {}).get("p50_ms"),
            "max_ack_p99_ms": (prod_max.get("ack") or {}).get("p99_ms"),
            "load_rate_msgs_per_s": prod_load.get("msgs_per_s"),
            "load_target_msgs_per_s": prod_load.get("target_msgs_per_s"),
            "load_behind_schedule_ms": prod_load.get("behind_schedule_ms"),
            "ack_p50_ms": (prod_load.get("ack") or {}).get("p50_ms"),
            "ack_p99_ms": (prod_load.get("ack") or {}).get("p99_ms"),
            "ack_max_ms": (prod_load.get("ack") or {}).get("max_ms"),
            "errors": (prod_max.get("errors") or 0) + (prod_load.get("errors") or 0),
            "consume_cold_mb_per_s": (cold or {}).get("mb_per_s"),
            "consume_cached_mb_per_s": (cached or {}).get("mb_per_s"),
        }

    g = side(gmax, gload, gcons.get("cold"), gcons.get("cached"))
    k = side(kmax, kload, kcons.get("cold"), kcons.get("cached"))

    tput = ratio(k["produce_mb_per_s"], g["produce_mb_per_s"])
    p99 = ratio(k["ack_p99_ms"], g["ack_p99_ms"])
    # A rate the Kafka side could not hold makes its p99 a queue's, not a comparison.
    kept_rate = (kload.get("behind_schedule_ms") or 0) < 100
    goals = [
        {
            "goal": f"Kafka produce MB/s >= {THROUGHPUT_GOAL:.0%} of the gRPC path's",
            "measured": f"{fmt(k['produce_mb_per_s'])} / {fmt(g['produce_mb_per_s'])} MB/s = {fmt(tput and tput * 100, 0)}%",
            "met": None if tput is None else tput >= THROUGHPUT_GOAL,
        },
        {
            "goal": f"Kafka ack p99 within {P99_GOAL - 1:.0%} of the gRPC path's, at the same rate",
            "measured": f"{fmt(k['ack_p99_ms'], 2)} / {fmt(g['ack_p99_ms'], 2)} ms = {fmt(p99 and p99 * 100, 0)}%"
            + ("" if kept_rate else " (the Kafka producers fell behind the rate)"),
            "met": None if p99 is None else (p99 <= P99_GOAL and kept_rate),
        },
    ]

    before = metrics(os.path.join(raw, "metrics-before.txt"))
    after_max = metrics(os.path.join(raw, "metrics-after-max.txt"))
    after_load = metrics(os.path.join(raw, "metrics-after-load.txt"))
    after_cons = metrics(os.path.join(raw, "metrics-after-consume.txt"))
    d_max, d_load, d_cons = diff(after_max, before), diff(after_load, after_max), diff(after_cons, after_load)
    produce_reqs_max = api_count(d_max, "Produce")
    sent_max = kmax.get("sent")
    evidence = {
        "kafka_producer_processes": kmax.get("processes"),
        "kafka_producer_cpu_cores_max_run": kmax.get("producer_cpu_cores"),
        "kafka_producer_cpu_cores_each": kmax.get("producer_cpu_cores_each"),
        "grpc_bench_cpu_max_run": gmax.get("cpu"),
        "kafka_machine_busy_cores_max_run": kmax.get("machine_busy_cores"),
        "kafka_others_cpu_cores_max_run": kmax.get("others_cpu_cores"),
        "proxy_kafka_requests_max_run": {kk: v for kk, v in d_max.items() if "kafka_requests" in kk},
        "proxy_kafka_requests_load_run": {kk: v for kk, v in d_load.items() if "kafka_requests" in kk},
        "proxy_kafka_requests_consume": {kk: v for kk, v in d_cons.items() if "kafka_requests" in kk},
        "librdkafka_max_run": kmax.get("librdkafka"),
        "librdkafka_latency_run": kload.get("librdkafka"),
        "records_per_produce_request_max_run": (sent_max / produce_reqs_max) if sent_max and produce_reqs_max else None,
        "proxy_metric_deltas_max_run": d_max,
    }
    top_path = os.path.join(raw, "top-kafka-max.txt")
    top = open(top_path).read() if os.path.exists(top_path) else ""
    machine = {}
    for name in ("machine-before.txt", "machine-after.txt"):
        p = os.path.join(raw, name)
        if os.path.exists(p):
            machine[name.removesuffix(".txt")] = open(p).read().strip()

    doc = {
        "settings": {
            "size": 1024,
            "partitions": 8,
            "acks": "durable (gRPC) / all (Kafka)",
            "warmup_s": kmax.get("warmup_s"),
            "measure_s": kmax.get("seconds"),
            "linger_ms_max_runs": 5,
            "linger_ms_latency_runs": 0,
            "latency_rate_msgs_per_s": kload.get("target_msgs_per_s"),
        },
        "grpc": g,
        "kafka": k,
        "goals": goals,
        "evidence": evidence,
        "machine": machine,
    }
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=2)

    rate = kload.get("target_msgs_per_s")
    lines = []
    lines.append("Kafka wire protocol against the gRPC SDK: 1024 B records, 8 partitions, durable acks (Kafka acks=all)")
    lines.append(f"max runs: linger 5 ms, as fast as the producer takes records; latency runs: linger 0 at {fmt(rate, 0)} records/s "
                 "(half the gRPC maximum) on both sides")
    lines.append("")
    head = ["path", "produce MB/s", "msgs/s", "p50/p99 at max", f"ack p50 @rate", "ack p99 @rate", "consume cold", "cached"]
    rows = []
    for name, s in (("gRPC SDK (strata bench)", g), (f"Kafka (confluent-kafka ×{kmax.get('processes', '?')})", k)):
        rows.append([
            name,
            fmt(s["produce_mb_per_s"]),
            fmt(s["produce_msgs_per_s"], 0),
            f"{fmt(s['max_ack_p50_ms'])}/{fmt(s['max_ack_p99_ms'])} ms",
            fmt(s["ack_p50_ms"], 2, " ms"),
            fmt(s["ack_p99_ms"], 2, " ms"),
            fmt(s["consume_cold_mb_per_s"], 1, " MB/s"),
            fmt(s["consume_cached_mb_per_s"], 1, " MB/s"),
        ])
    rows.append([
        "Kafka ÷ gRPC",
        fmt(tput, 2),
        "",
        "",
        fmt(ratio(k["ack_p50_ms"], g["ack_p50_ms"]), 2),
        fmt(p99, 2),
        fmt(ratio(k["consume_cold_mb_per_s"], g["consume_cold_mb_per_s"]), 2),
        fmt(ratio(k["consume_cached_mb_per_s"], g["consume_cached_mb_per_s"]), 2),
    ])
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    for r in [head] + rows:
        lines.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    lines.append("")
    lines.append("goals (issue):")
    for goal in goals:
        verdict = {True: "MET", False: "NOT MET", None: "not measured"}[goal["met"]]
        lines.append(f"  {goal['goal']}: {goal['measured']}: {verdict}")
    lines.append("")
    lines.append("evidence:")
    lines.append(f"  Kafka producer processes: {kmax.get('processes')}, their CPU in the max window: "
                 f"{fmt(kmax.get('producer_cpu_cores'), 2)} cores (each: {', '.join(fmt(c, 2) for c in kmax.get('producer_cpu_cores_each') or [])})")
    if kmax.get("machine_busy_cores") is not None:
        lines.append(f"  machine in the Kafka max window: {fmt(kmax['machine_busy_cores'], 2)} cores busy, of which "
                     f"{fmt(kmax.get('others_cpu_cores'), 2)} not the producers (servers, etcd, other users)")
    if kmax.get("server_cpu_cores"):
        sc = kmax["server_cpu_cores"]
        lines.append("  server CPU in the Kafka max window (cores): " + ", ".join(f"{n} {v:.2f}" for n, v in sorted(sc.items()))
                     + f"; all {sum(sc.values()):.2f}")
    kmb = ratio(kmax.get("producer_cpu_cores"), k["produce_mb_per_s"])
    gmb = ratio((gmax.get("cpu") or {}).get("bench_cores"), g["produce_mb_per_s"])
    lines.append(f"  load generator CPU per MB produced: gRPC SDK {fmt(gmb and gmb * 1e3, 1)} ms, Kafka client {fmt(kmb and kmb * 1e3, 1)} ms")
    gcpu = gmax.get("cpu") or {}
    if gcpu:
        lines.append(f"  gRPC max window (strata bench's own figures): {json.dumps(gcpu)}")
    lines.append(f"  errors: gRPC {g['errors']}, Kafka {k['errors']}"
                 + (f" (first: {kmax.get('first_error') or kload.get('first_error')})" if k["errors"] else ""))
    for what, d in (("max run", d_max), ("latency run", d_load), ("consume", d_cons)):
        reqs = {re.search(r'api="([^"]+)"', kk).group(1): int(v) for kk, v in d.items()
                if "kafka_requests" in kk and 'api="' in kk}
        lines.append(f"  proxy Kafka requests, {what}: {reqs or '-'}")
    if evidence["records_per_produce_request_max_run"]:
        lines.append(f"  records per Produce request in the max run: {evidence['records_per_produce_request_max_run']:.0f}")
    for what, run in (("max run", kmax), ("latency run", kload)):
        for i, lk in enumerate(run.get("librdkafka") or []):
            if not lk:
                continue
            for b in lk["brokers"]:
                lines.append(
                    f"  librdkafka, {what}, process {i}: Produce requests {b['produce_requests']}, answer time (rtt) "
                    f"avg {fmt(b['rtt_avg_ms'], 1)} p99 {fmt(b['rtt_p99_ms'], 1)} ms, awaiting answers {b['waitresp_cnt']}, "
                    f"queued in client {lk['queued_msgs']} msgs, batch avg {fmt(lk['batch_msgs_avg'], 0)} records / "
                    f"{fmt((lk['batch_bytes_avg'] or 0) / 1e3, 0)} kB")
    for pass_name in ("cold", "cached"):
        ps = kcons.get(pass_name) or {}
        if ps:
            lines.append(f"  Kafka consume, {pass_name} pass: {ps.get('messages')} records in {fmt(ps.get('seconds'), 2)} s, "
                         f"consumer CPU {fmt(ps.get('consumer_cpu_cores'), 2)} cores, first record after {fmt(ps.get('first_record_s'), 2)} s"
                         + ("" if ps.get("complete", True) else ", INCOMPLETE (timed out)"))
    if kload.get("behind_schedule_ms") is not None:
        lines.append(f"  Kafka latency run: {fmt(kload.get('msgs_per_s'), 0)} of {fmt(rate, 0)} records/s acknowledged per second, "
                     f"worst behind schedule {fmt(kload.get('behind_schedule_ms'), 1)} ms")
    if top:
        lines.append("  top in the middle of the Kafka max window:")
        lines.extend("    " + l for l in top.rstrip().splitlines())
    for name, text in machine.items():
        lines.append(f"  {name}: " + text.replace("\n", "; "))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

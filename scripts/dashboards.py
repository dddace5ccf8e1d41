#!/usr/bin/env python3
"""Writes the Grafana dashboards of helm/strata/dashboards/ from the panels listed here.

    scripts/dashboards.py                write the JSON files
    scripts/dashboards.py --check        exit 1 if a file differs from what this would write
    scripts/dashboards.py --rules FILE   also write every query as a recording rule, for
                                         `promtool check rules` to parse

The chart ships the JSON as ConfigMaps (metrics.dashboards.enabled); any Grafana can import
them too. Every query filters on a `namespace` variable, so one Prometheus may scrape several
releases. tests/tests/monitoring.rs checks that every metric the queries name is one the
servers export; scripts/test-deploy.sh runs --check and has promtool parse the queries.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "helm" / "strata" / "dashboards"
NS = 'namespace=~"$namespace"'


def q(expr: str) -> str:
    """Adds the namespace matcher to every strata_* selector of `expr`."""

    def add(m: re.Match) -> str:
        name, labels = m.group(1), m.group(2)
        if labels:
            return f"{name}{{{NS},{labels[1:-1]}}}" if labels != "{}" else f"{name}{{{NS}}}"
        return f"{name}{{{NS}}}"

    return re.sub(r"\b(strata_[a-z0-9_]+)(\{[^}]*\})?", add, expr)


def panel(title: str, exprs: list[tuple[str, str]], unit: str = "short", kind: str = "timeseries",
          width: int = 12, height: int = 8, description: str = "") -> dict:
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"w": width, "h": height},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "expr": q(expr),
                "legendFormat": legend,
                **({"instant": True, "format": "table"} if kind == "table" else {}),
            }
            for i, (expr, legend) in enumerate(exprs)
        ],
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    return p


def stat(title: str, expr: str, description: str = "") -> dict:
    return panel(title, [(expr, "")], kind="stat", width=6, height=4, description=description)


def leader(expr: str) -> str:
    """A controller figure as the active controller has it (standbys keep stale ones)."""
    return f"max({expr} and on (instance) (strata_controller_is_leader == 1))"


def dashboard(uid: str, title: str, panels: list[dict]) -> dict:
    x = y = row_height = 0
    for i, p in enumerate(panels):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y, row_height = 0, y + row_height, 0
        p["gridPos"].update({"x": x, "y": y})
        p["id"] = i + 1
        x += w
        row_height = max(row_height, h)
    return {
        "uid": uid,
        "title": title,
        "tags": ["strata"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                },
                {
                    "name": "namespace",
                    "label": "Namespace",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(strata_controller_is_leader, namespace)",
                    "refresh": 2,
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": False,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def quantile(q_: float, histogram: str, by: str = "instance") -> str:
    return f"histogram_quantile({q_}, sum by (le, {by}) (rate({histogram}_bucket[5m])))"


DASHBOARDS = [
    dashboard("strata-cluster", "Strata / Cluster", [
        stat("Active controllers", "sum(strata_controller_is_leader)", "1 in a healthy cluster"),
        stat("Live brokers", leader("strata_controller_live_brokers")),
        stat("Partitions", leader("strata_controller_partitions")),
        stat("Partitions without an owner", leader("strata_controller_homeless_partitions"),
             "Alert StrataPartitionsUnavailable fires when this stays above 0"),
        panel("Produced", [("sum by (instance) (rate(strata_broker_produced_bytes_total[1m]))", "{{instance}}")],
              unit="Bps"),
        panel("Through the proxies", [
            ("sum(rate(strata_proxy_produced_bytes_total[1m]))", "produced"),
            ("sum(rate(strata_proxy_fetched_bytes_total[1m]))", "fetched"),
        ], unit="Bps"),
        panel("Partitions by state", [("sum by (state) (strata_broker_partitions)", "{{state}}")]),
        panel("Errors returned to clients", [
            ("sum by (rpc, code) (rate(strata_proxy_errors_total[5m]))", "{{rpc}} {{code}}"),
        ], unit="reqps", description="gRPC calls that failed, by method and error code"),
        panel("Partition moves", [("sum(increase(strata_controller_partition_moves_total[5m]))", "moves per 5 min")]),
        panel("Storage nodes in use", [("min by (node) (strata_broker_storage_node_healthy)", "{{node}}")],
              description="0 while a node sits out a backoff (alert StrataStorageNodeUnhealthy)"),
    ]),
    dashboard("strata-topics", "Strata / Topics", [
        panel("Records in, by topic",
              [("sum by (topic) (rate(strata_broker_partition_high_watermark[1m]))", "{{topic}}")],
              unit="rps", width=24),
        panel("High watermark by partition",
              [("max by (topic, partition, instance) (strata_broker_partition_high_watermark)", "")],
              kind="table", width=12, height=10,
              description="The instance column is the broker that owns the partition"),
        panel("Partitions per broker",
              [("count by (instance) (strata_broker_partition_high_watermark)", "{{instance}}")], height=10),
        panel("Records by swimlane",
              [("sum by (topic, lane, direction) (rate(strata_proxy_lane_records_total[1m]))",
                "{{topic}} {{lane}} {{direction}}")], unit="rps"),
        panel("Delayed records pending", [("sum(strata_broker_delay_pending_records)", "pending")]),
    ]),
    dashboard("strata-groups", "Strata / Consumer groups", [
        panel("Lag by group and topic",
              [("max by (group, topic) (strata_controller_group_lag_records)", "{{group}} on {{topic}}")],
              width=24, description="Records between the group's committed positions and the partitions' ends"),
        panel("Lag growth",
              [("max by (group, topic) (deriv(strata_controller_group_lag_records[10m]))", "{{group}} on {{topic}}")],
              unit="rps", description="Above 0 for 15 minutes with 1,000 records behind: alert StrataConsumerLagGrowing"),
        panel("Lag now", [("max by (group, topic) (strata_controller_group_lag_records)", "")], kind="table"),
        panel("Swimlane lag", [("max by (topic, lane) (strata_proxy_lane_lag_records)", "{{topic}} {{lane}}")],
              width=24),
    ]),
    dashboard("strata-brokers", "Strata / Brokers: flush, commit, storage", [
        panel("Flush PUT latency", [
            (quantile(0.5, "strata_broker_flush_put_seconds"), "p50 {{instance}}"),
            (quantile(0.99, "strata_broker_flush_put_seconds"), "p99 {{instance}}"),
        ], unit="s"),
        panel("Commit latency", [
            (quantile(0.5, "strata_broker_flush_commit_seconds"), "p50 {{instance}}"),
            (quantile(0.99, "strata_broker_flush_commit_seconds"), "p99 {{instance}}"),
        ], unit="s", description="Alert StrataCommitLatencyHigh: p99 over 500 ms for 10 minutes"),
        panel("Flush cycles and PUTs", [
            ("sum by (instance) (rate(strata_broker_flushes_total[1m]))", "cycles {{instance}}"),
            ("sum by (instance) (rate(strata_broker_flush_objects_total[1m]))", "objects {{instance}}"),
        ], unit="ops"),
        panel("Partitions per flush object", [
            ("sum by (instance) (rate(strata_broker_flush_sections_total[5m])) / "
             "sum by (instance) (rate(strata_broker_flush_objects_total[5m]))", "{{instance}}"),
        ]),
        panel("Flush failures", [
            ("sum by (instance, stage) (rate(strata_broker_flush_errors_total[5m]))", "{{stage}} {{instance}}"),
        ], unit="ops", description="Retried; alert StrataFlushFailures when they go on for 5 minutes"),
        panel("Commit transactions", [
            ("sum by (instance) (rate(strata_broker_commit_txns_total[1m]))", "{{instance}}"),
        ], unit="ops"),
        panel("Buffered, not yet flushed", [("sum by (instance) (strata_broker_buffered_bytes)", "{{instance}}")],
              unit="bytes"),
        panel("Storage requests", [
            ("sum by (op) (rate(strata_broker_storage_requests_total[1m]))", "{{op}}"),
        ], unit="reqps"),
        panel("Storage node p99", [("max by (node, op) (strata_broker_storage_node_p99_seconds)", "{{node}} {{op}}")],
              unit="s"),
        panel("Fenced partitions and lease give-ups", [
            ("sum(increase(strata_broker_fenced_partitions_total[5m]))", "fenced"),
            ("sum(increase(strata_broker_storage_give_ups_total[5m]))", "gave the lease up"),
        ]),
    ]),
]


def write_rules(path: Path) -> None:
    """Every query as a recording rule (the variable made a regex that matches all)."""
    lines = ["groups:", "  - name: dashboard-queries", "    rules:"]
    for d in DASHBOARDS:
        for p in d["panels"]:
            for t in p["targets"]:
                expr = t["expr"].replace("$namespace", ".*")
                lines += [f"      - record: {d['uid'].replace('-', '_')}:{p['id']}{t['refId']}",
                          f"        expr: {json.dumps(expr)}"]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    args = sys.argv[1:]
    check = "--check" in args
    if "--rules" in args:
        write_rules(Path(args[args.index("--rules") + 1]))
    stale = []
    for d in DASHBOARDS:
        path = OUT / f"{d['uid']}.json"
        text = json.dumps(d, indent=2, ensure_ascii=False) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"dashboards out of date: {', '.join(stale)}; run scripts/dashboards.py", file=sys.stderr)
        return 1
    print(f"{len(DASHBOARDS)} dashboards {'up to date' if check else 'written'} in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

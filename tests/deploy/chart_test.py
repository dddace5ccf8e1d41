#!/usr/bin/env python3
"""Checks the Helm chart with real Helm (the helm-sdkpy shared library):

1. `helm lint` on the chart with its default values: no message at all, not even info.
2. For the default values, every file in helm/strata/ci/ and values-production.yaml: a real
   `helm install` against
   fake_kube (a stand-in API server on loopback); the objects Helm creates are the rendered
   release. Each is validated against the Kubernetes JSON schemas (kubernetes-validate,
   strict: unknown fields fail) of the oldest supported and the newest known Kubernetes, and
   checked for what Strata needs: probes on the real endpoints, stateless brokers, PDBs,
   HPAs only when asked, a strata.toml that sets exactly the settings config/strata.toml
   documents (less the per-pod and standalone ones).
3. Values that must be refused are refused, with a message that says what to fix.

Ends with a line `N passed, N failed`; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# No __pycache__ beside the sources: the repository has no ignore rule for it here.
sys.dont_write_bytecode = True

# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas.
K8S_VERSIONS = ["1.25.0", None]
RELEASE = "rel"
NAMESPACE = "strata"


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failures: list[str] = []
        self.scope = ""

    def ok(self, cond: bool, what: str) -> bool:
        if cond:
            self.passed += 1
        else:
            self.failures.append(f"{self.scope}: {what}")
            print(f"  FAIL {what}", flush=True)
        return cond


def log(msg: str) -> None:
    print(msg, flush=True)


# --- helpers over rendered objects -------------------------------------------------------


def by_kind(objs: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def component(obj: dict) -> str:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")


def workload(objs: list[dict], comp: str) -> dict | None:
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet") and component(o) == comp:
            return o
    return None


def container(w: dict) -> dict:
    return w["spec"]["template"]["spec"]["containers"][0]


def env_of(c: dict) -> list[dict]:
    return c.get("env", [])


def env_value(c: dict, name: str) -> dict | None:
    for e in env_of(c):
        if e["name"] == name:
            return e
    return None


def port_number(c: dict, port) -> int | None:
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p["name"] == port:
            return p["containerPort"]
    return None


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def rendered_toml(objs: list[dict]) -> dict:
    cms = [o for o in objs if o["kind"] == "ConfigMap" and "strata.toml" in o.get("data", {})]
    if len(cms) != 1:
        raise AssertionError(f"expected one ConfigMap with strata.toml, found {len(cms)}")
    return tomllib.loads(cms[0]["data"]["strata.toml"])


def documented_settings(config_file: Path) -> dict[str, set[str]]:
    """Section (dotted, e.g. broker.maintenance) -> keys config/strata.toml documents,
    commented-out ones included (they are the optional settings without a default, e.g.
    broker.advertised_addr)."""
    sections: dict[str, set[str]] = {"": set()}
    current = ""
    for line in config_file.read_text().splitlines():
        m = re.match(r"^\[([a-z_.]+)\]\s*$", line)
        if m:
            current = m.group(1)
            sections.setdefault(current, set())
            continue
        m = re.match(r"^#?\s*([a-z_]+)\s*=\s*\S", line)
        if m:
            sections[current].add(m.group(1))
    return sections


# config/strata.toml settings the chart does not render: what differs per pod (ids, the
# advertised address) comes from the environment, and the chart never runs standalone.
UNRENDERED = {
    # The pod's zone, from its node's label by an environment variable, unless the values
    # fix one (then it is rendered).
    "": {"zone"},
    "controller": {"id"},
    "broker": {"id", "advertised_addr"},
    # The pod name and IP, by environment variables; both set only when the values set them.
    "proxy": {"id"},
    "proxy.kafka": {"advertised_addr", "rack"},
    "standalone": {"data_dir"},
    # Paths into the mounted TLS Secrets, rendered only when the values name a Secret
    # (checked both ways below).
    "tls": {"cert", "key", "ca"},
    "meta": {"ca", "cert", "key"},
}


def rendered_settings(cfg: dict, section: str = "") -> list[tuple[str, str]]:
    """(dotted section, key) of every setting in a parsed strata.toml."""
    out = []
    for key, value in cfg.items():
        if isinstance(value, dict):
            out += rendered_settings(value, f"{section}.{key}" if section else key)
        else:
            out.append((section, key))
    return out


# --- the checks --------------------------------------------------------------------------


def validate_schemas(checks: Checks, objs: list[dict]) -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import latest_version

    versions = [v or latest_version() for v in K8S_VERSIONS]
    for o in objs:
        name = f"{o['kind']}/{o['metadata']['name']}"
        if o["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: no bundled schema; check_service_monitors covers it
        for v in versions:
            try:
                kubernetes_validate.validate(o, v, strict=True)
                checks.ok(True, "")
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                checks.ok(False, f"{name} is not a valid Kubernetes {v} object: {path}: {e.message}")
            except Exception as e:  # noqa: BLE001 - schema missing is a failure too
                checks.ok(False, f"{name} could not be validated against Kubernetes {v}: {e}")


def check_common(checks: Checks, objs: list[dict], values: dict, documented: dict) -> None:
    for o in objs:
        labels = o["metadata"].get("labels", {})
        checks.ok(
            labels.get("app.kubernetes.io/instance") == RELEASE
            and labels.get("app.kubernetes.io/managed-by") == "Helm",
            f"{o['kind']}/{o['metadata']['name']} carries the release labels",
        )
        checks.ok(
            o["metadata"].get("namespace") in (None, NAMESPACE),
            f"{o['kind']}/{o['metadata']['name']} is in the release namespace",
        )

    cfg = rendered_toml(objs)
    for section, key in rendered_settings(cfg):
        checks.ok(
            key in documented.get(section, set()),
            f"strata.toml setting [{section}] {key} is documented in config/strata.toml",
        )
    for section, keys in documented.items():
        for key in keys - {key for s, key in rendered_settings(cfg) if s == section}:
            checks.ok(
                key in UNRENDERED.get(section, set()),
                f"config/strata.toml setting [{section}] {key} is rendered from the values",
            )

    host = values.get("listenHost", "0.0.0.0")
    host = f"[{host}]" if ":" in host else host
    expect_addrs = {
        ("controller", "admin_addr"): values["controller"]["admin_port"],
        ("broker", "listen"): values["broker"]["port"],
        ("broker", "http_addr"): values["broker"]["http_port"],
        ("proxy", "listen"): values["proxy"]["port"],
        ("proxy", "http_addr"): values["proxy"]["http_port"],
    }
    for (section, key), port in expect_addrs.items():
        checks.ok(
            cfg.get(section, {}).get(key) == f"{host}:{port}",
            f"[{section}] {key} listens on every interface ({host}:{port}), got {cfg.get(section, {}).get(key)}",
        )
    kafka_listen = cfg.get("proxy", {}).get("kafka", {}).get("listen")
    checks.ok(
        kafka_listen == f"{host}:{values['proxy']['kafka']['port']}",
        f"[proxy.kafka] listen listens on every interface, got {kafka_listen}",
    )
    checks.ok(bool(cfg.get("storage", {}).get("nodes")), "strata.toml lists storage nodes")
    checks.ok(cfg.get("cluster") == values["cluster"], "strata.toml names the cluster")

    # Every Strata workload reads that file and restarts when it changes.
    for comp in ("controller", "broker", "proxy"):
        w = workload(objs, comp)
        if not checks.ok(w is not None and w["kind"] == "Deployment", f"a {comp} Deployment exists"):
            continue
        c = container(w)
        checks.ok(
            c.get("args", [])[:1] == [comp] and c["args"][1:3] == ["--config", "/etc/strata/strata.toml"],
            f"{comp} runs `strata {comp} --config /etc/strata/strata.toml`",
        )
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        vols = {v["name"]: v for v in w["spec"]["template"]["spec"].get("volumes", [])}
        cfg_vol = vols.get(mounts.get("/etc/strata", ""), {})
        checks.ok("configMap" in cfg_vol, f"{comp} mounts the config ConfigMap at /etc/strata")
        checks.ok(
            "checksum/config" in w["spec"]["template"]["metadata"].get("annotations", {}),
            f"{comp} pods roll when the config changes",
        )
        pod = w["spec"]["template"]["spec"]
        checks.ok(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{comp} runs as non-root")
        checks.ok(
            c.get("securityContext", {}).get("readOnlyRootFilesystem") is True,
            f"{comp} has a read-only root file system",
        )
        checks.ok(
            not any("persistentVolumeClaim" in v for v in vols.values()),
            f"{comp} mounts no PersistentVolumeClaim",
        )

    # Probes point at the endpoints the binary serves.
    probe_ports = {
        "controller": values["controller"]["admin_port"],
        "broker": values["broker"]["http_port"],
        "proxy": values["proxy"]["http_port"],
    }
    tls = values.get("tls", {})
    tls_on = bool(tls.get("secretName"))
    required = tls.get("client_auth") == "required"
    for comp, port in probe_ports.items():
        w = workload(objs, comp)
        if w is None:
            continue
        c = container(w)
        # The controller's probes hit the admin API, which is TLS whenever TLS is on; with
        # client certificates required, kubelet (without one) can only check the port.
        https = tls_on and (comp == "controller" or tls.get("http", False))
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            if comp == "controller" and required:
                sock = c.get(probe, {}).get("tcpSocket", {})
                checks.ok(
                    port_number(c, sock.get("port")) == port,
                    f"{comp} {probe} checks port {port} opens (mTLS required), got {c.get(probe)}",
                )
                continue
            get = c.get(probe, {}).get("httpGet", {})
            checks.ok(
                get.get("path") == path and port_number(c, get.get("port")) == port,
                f"{comp} {probe} is GET {path} on port {port} (got {get.get('path')} on {get.get('port')})",
            )
            scheme = "HTTPS" if https else "HTTP"
            checks.ok(
                get.get("scheme") == scheme,
                f"{comp} {probe} uses {scheme}, got {get.get('scheme')}",
            )

    # TLS: the Secret is mounted in every Strata pod and strata.toml points into it, or
    # neither. The same for etcd's.
    meta_tls = values.get("meta", {}).get("tls", {})
    for secret, mount, section, keys in (
        (tls.get("secretName"), "/etc/strata/tls", cfg.get("tls", {}), {"cert": "tls.crt", "key": "tls.key", "ca": "ca.crt"}),
        (
            meta_tls.get("secretName"),
            "/etc/strata/etcd",
            cfg.get("meta", {}),
            {"ca": "ca.crt", **({"cert": "tls.crt", "key": "tls.key"} if meta_tls.get("clientCert", True) else {})},
        ),
    ):
        for key, file in keys.items():
            want = f"{mount}/{file}" if secret else None
            checks.ok(section.get(key) == want, f"strata.toml {key} is {want}, got {section.get(key)}")
        for comp in ("controller", "broker", "proxy"):
            w = workload(objs, comp)
            if w is None:
                continue
            mounts = {m["mountPath"]: m["name"] for m in container(w).get("volumeMounts", [])}
            vols = {v["name"]: v for v in w["spec"]["template"]["spec"].get("volumes", [])}
            mounted = vols.get(mounts.get(mount, ""), {}).get("secret", {}).get("secretName")
            checks.ok(
                mounted == (secret or None),
                f"{comp} mounts Secret {secret!r} at {mount}, got {mounted!r}",
            )
    kafka_cfg = cfg.get("proxy", {}).get("kafka", {})
    want = values.get("proxy", {}).get("kafka", {}).get("sasl_mechanisms") or []
    checks.ok(
        kafka_cfg.get("sasl_mechanisms") == want,
        f"[proxy.kafka] sasl_mechanisms is {want}, got {kafka_cfg.get('sasl_mechanisms')}",
    )
    security = values.get("security", {})
    want = list(security.get("super_users") or [])
    admin = security.get("initialAdmin", {})
    if admin.get("name") and f"User:{admin['name']}" not in want:
        want.append(f"User:{admin['name']}")
    cluster = list(security.get("cluster_principals") or [])
    if security.get("authenticate"):
        want += [p for p in cluster if p not in want]
    sec_cfg = cfg.get("security", {})
    checks.ok(
        sec_cfg.get("authenticate") == bool(security.get("authenticate")),
        f"[security] authenticate is the values', got {sec_cfg.get('authenticate')}",
    )
    checks.ok(
        sec_cfg.get("cluster_principals") == cluster,
        f"[security] cluster_principals is {cluster}, got {sec_cfg.get('cluster_principals')}",
    )
    checks.ok(
        cfg.get("security", {}).get("super_users") == want,
        f"[security] super_users is {want}, got {cfg.get('security', {}).get('super_users')}",
    )
    # The initial admin: a Job adding the user from its Secret, over TLS when TLS is on.
    jobs = [o for o in objs if o["kind"] == "Job"]
    if admin.get("name"):
        if checks.ok(len(jobs) == 1, f"one initial-admin Job, got {len(jobs)}"):
            pod = jobs[0]["spec"]["template"]["spec"]
            c = pod["containers"][0]
            checks.ok(
                c["args"][:4] == ["user", "add", admin["name"], "--password-file"],
                f"the Job runs `strata user add {admin['name']} --password-file ...`, got {c['args']}",
            )
            vols = {v["name"]: v for v in pod.get("volumes", [])}
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            secret = vols.get(mounts.get("/etc/strata/admin", ""), {}).get("secret", {}).get("secretName")
            checks.ok(secret == admin.get("passwordSecret"), f"the Job mounts the password Secret, got {secret}")
            names = [e["name"] for e in c.get("env", [])]
            checks.ok(
                ("STRATA_TLS_CA" in names) == tls_on,
                f"the Job trusts the cluster CA exactly when TLS is on, env {names}",
            )
    else:
        checks.ok(not jobs, f"no Job without security.initialAdmin.name, got {len(jobs)}")
    checks.ok(
        cfg.get("tls", {}).get("client_auth") == tls.get("client_auth", "none"),
        f"[tls] client_auth is the values', got {cfg.get('tls', {}).get('client_auth')}",
    )

    ctrl = workload(objs, "controller")
    if ctrl:
        c = container(ctrl)
        checks.ok(
            (env_value(c, "STRATA_CONTROLLER_ID") or {})
            .get("valueFrom", {})
            .get("fieldRef", {})
            .get("fieldPath")
            == "metadata.name",
            "controller election id is the pod name",
        )
        checks.ok(
            ctrl["spec"].get("replicas", 0) >= 2 or values["controller"]["replicaCount"] < 2,
            "controller runs the configured number of replicas",
        )

    # The zone: fixed by the values (rendered, no variable), or each pod's node label.
    zone = values.get("zone", "")
    checks.ok(
        cfg.get("zone") == (zone or None),
        f"zone is rendered as the values set it ({zone!r}), got {cfg.get('zone')!r}",
    )
    for role in ("broker", "proxy"):
        w = workload(objs, role)
        if not w:
            continue
        var = env_value(container(w), "STRATA_ZONE")
        label = "metadata.labels['topology.kubernetes.io/zone']"
        path = (var or {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        checks.ok(
            (var is None) if zone else path == label,
            f"{role} takes its zone from {'the values' if zone else 'its node label'}, got {var}",
        )

    broker = workload(objs, "broker")
    if broker:
        c = container(broker)
        pod = broker["spec"]["template"]["spec"]
        names = [e["name"] for e in env_of(c)]
        pod_ip = env_value(c, "POD_IP") or {}
        adv = env_value(c, "STRATA_BROKER_ADVERTISED_ADDR") or {}
        bid = env_value(c, "STRATA_BROKER_ID") or {}
        checks.ok(
            pod_ip.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP",
            "broker gets its pod IP from the downward API",
        )
        checks.ok(
            adv.get("value") == f"$(POD_IP):{values['broker']['port']}",
            f"broker advertises $(POD_IP):{values['broker']['port']}, got {adv.get('value')}",
        )
        checks.ok(
            "POD_IP" in names
            and "STRATA_BROKER_ADVERTISED_ADDR" in names
            and names.index("POD_IP") < names.index("STRATA_BROKER_ADVERTISED_ADDR"),
            "POD_IP is defined before the advertised address uses it",
        )
        checks.ok(
            bid.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
            "broker id is the pod name",
        )
        checks.ok(
            pod.get("terminationGracePeriodSeconds", 30) >= 30,
            "brokers get at least 30 s to drain on termination",
        )
        checks.ok(
            not any(w["kind"] == "StatefulSet" and component(w) == "broker" for w in objs),
            "brokers are not a StatefulSet",
        )
        checks.ok(
            not any(o["kind"] == "PersistentVolumeClaim" for o in objs),
            "the chart creates no standalone PersistentVolumeClaim",
        )

    # Services select real pods and expose the documented ports.
    pods = {
        component(w): w["spec"]["template"]["metadata"]["labels"]
        for w in objs
        if w["kind"] in ("Deployment", "StatefulSet")
    }
    services = by_kind(objs, "Service")
    for name, svc in services.items():
        sel = svc["spec"].get("selector", {})
        checks.ok(
            any(selects(sel, labels) for labels in pods.values()),
            f"Service {name} selects the pods of a workload",
        )
    admin = [s for s in services.values() if s["metadata"]["labels"].get("strata.io/service") == "admin"]
    proxy_svc = [s for s in services.values() if s["metadata"]["labels"].get("strata.io/service") == "proxy"]
    checks.ok(
        len(admin) == 1
        and any(p["port"] == values["controller"]["admin_port"] for p in admin[0]["spec"]["ports"])
        and selects(admin[0]["spec"]["selector"], pods.get("controller", {})),
        "an admin Service exposes the controllers' REST port",
    )
    checks.ok(
        len(proxy_svc) == 1
        and any(
            p["port"] == values["proxy"]["port"] and p["name"] == "grpc"
            for p in proxy_svc[0]["spec"]["ports"]
        ),
        "a proxy Service exposes gRPC",
    )
    checks.ok(
        len(proxy_svc) == 1
        and any(
            p["port"] == values["proxy"]["kafka"]["port"] and p["name"] == "kafka"
            for p in proxy_svc[0]["spec"]["ports"]
        ),
        "a proxy Service exposes the Kafka port",
    )

    # Disruption budgets and autoscalers follow the values.
    pdbs = by_kind(objs, "PodDisruptionBudget")
    etcd_bundled = values["etcd"]["enabled"] and not values["meta"]["url"]
    for comp in ("controller", "broker", "proxy") + (("etcd",) if etcd_bundled else ()):
        want = values[comp]["podDisruptionBudget"]["enabled"]
        have = [p for p in pdbs.values() if selects(p["spec"]["selector"]["matchLabels"], pods.get(comp, {}))]
        checks.ok(len(have) == (1 if want else 0), f"{comp} has {'a' if want else 'no'} PodDisruptionBudget")
    hpas = by_kind(objs, "HorizontalPodAutoscaler")
    for comp in ("broker", "proxy"):
        want = values[comp]["autoscaling"]["enabled"]
        w = workload(objs, comp)
        have = [
            h for h in hpas.values() if w and h["spec"]["scaleTargetRef"]["name"] == w["metadata"]["name"]
        ]
        checks.ok(len(have) == (1 if want else 0), f"{comp} has {'an' if want else 'no'} HPA")
        if w:
            checks.ok(
                ("replicas" in w["spec"]) != want,
                f"{comp} Deployment {'leaves' if want else 'sets'} replicas {'to the HPA' if want else ''}".strip(),
            )
    checks.ok(
        len(hpas) == sum(values[c]["autoscaling"]["enabled"] for c in ("broker", "proxy")),
        "no HPA besides the requested ones",
    )

    # The bundled etcd, or none.
    etcd = workload(objs, "etcd")
    checks.ok(
        (etcd is not None) == etcd_bundled, f"bundled etcd is {'present' if etcd_bundled else 'absent'}"
    )
    meta_url = cfg.get("meta", {}).get("url", "")
    if etcd_bundled and etcd:
        n = values["etcd"]["replicaCount"]
        checks.ok(etcd["spec"]["replicas"] == n, f"etcd runs {n} members")
        args = container(etcd).get("args", [])
        initial = next((a for a in args if a.startswith("--initial-cluster=")), "")
        checks.ok(initial.count("=http://") == n, "etcd's initial cluster names every member")
        limit = cfg.get("meta", {}).get("max_txn_ops")
        checks.ok(
            limit == values["meta"]["max_txn_ops"] and f"--max-txn-ops={limit}" in args,
            "etcd allows the transactions strata.toml's max_txn_ops says it may send",
        )
        checks.ok(
            meta_url.startswith("etcd://") and meta_url.count(":2379") == n,
            "strata.toml points at every bundled etcd member",
        )
        has_pvc = bool(etcd["spec"].get("volumeClaimTemplates"))
        checks.ok(
            has_pvc == values["etcd"]["persistence"]["enabled"],
            "etcd keeps its data on a volume claim exactly when persistence is on",
        )
    else:
        checks.ok(meta_url == values["meta"]["url"], "strata.toml uses the external etcd")

    # Credentials reach brokers and proxies when configured.
    creds = values["storage"]["credentials"]
    secret_name = creds["existingSecret"] or (f"{fullname(values)}-storage" if creds["accessKeyId"] else "")
    for comp in ("broker", "proxy"):
        w = workload(objs, comp)
        if w is None:
            continue
        ref = (
            (env_value(container(w), "AWS_ACCESS_KEY_ID") or {}).get("valueFrom", {}).get("secretKeyRef", {})
        )
        if secret_name:
            checks.ok(
                ref.get("name") == secret_name and ref.get("key") == creds["accessKeyIdKey"],
                f"{comp} reads AWS_ACCESS_KEY_ID from Secret {secret_name}",
            )
        else:
            checks.ok(not ref, f"{comp} has no S3 credentials from a Secret")
    secrets = by_kind(objs, "Secret")
    checks.ok(
        bool(secrets) == bool(creds["accessKeyId"] and not creds["existingSecret"]),
        "the chart makes a Secret only for inline credentials",
    )

    check_service_monitors(checks, objs, values, services)
    check_monitoring(checks, objs, values)


def fullname(values: dict) -> str:
    return values.get("fullnameOverride") or f"{RELEASE}-strata"


def check_service_monitors(checks: Checks, objs: list[dict], values: dict, services: dict) -> None:
    sms = [o for o in objs if o["kind"] == "ServiceMonitor"]
    want = values["metrics"]["serviceMonitor"]["enabled"]
    checks.ok(len(sms) == (3 if want else 0), f"{'three' if want else 'no'} ServiceMonitors")
    for sm in sms:
        name = sm["metadata"]["name"]
        checks.ok(
            sm["apiVersion"] == "monitoring.coreos.com/v1",
            f"ServiceMonitor {name} uses monitoring.coreos.com/v1",
        )
        sel = sm["spec"]["selector"]["matchLabels"]
        matched = [s for s in services.values() if selects(sel, s["metadata"]["labels"])]
        checks.ok(len(matched) == 1, f"ServiceMonitor {name} selects exactly one Service")
        for ep in sm["spec"]["endpoints"]:
            checks.ok(ep.get("path") == "/metrics", f"ServiceMonitor {name} scrapes /metrics")
            checks.ok(
                bool(matched) and any(p["name"] == ep["port"] for p in matched[0]["spec"]["ports"]),
                f"ServiceMonitor {name} scrapes a port its Service has ({ep['port']})",
            )
        for key, value in values["metrics"]["serviceMonitor"]["labels"].items():
            checks.ok(
                sm["metadata"]["labels"].get(key) == value, f"ServiceMonitor {name} carries label {key}"
            )


def check_monitoring(checks: Checks, objs: list[dict], values: dict) -> None:
    """The dashboards' ConfigMaps and the PrometheusRule: there exactly when asked for, and
    carrying the chart's files unchanged."""
    import json

    import yaml

    chart = HERE.parents[1] / "helm" / "strata"
    files = sorted((chart / "dashboards").glob("*.json"))
    checks.ok(len(files) >= 4, f"the chart has its dashboards ({len(files)} files)")
    dashboards = values["metrics"]["dashboards"]
    cms = [o for o in objs if o["kind"] == "ConfigMap" and "-dashboard-" in o["metadata"]["name"]]
    checks.ok(
        len(cms) == (len(files) if dashboards["enabled"] else 0),
        f"{'a' if dashboards['enabled'] else 'no'} dashboard ConfigMap per dashboards/*.json ({len(cms)})",
    )
    for cm in cms:
        name = cm["metadata"]["name"]
        for key, value in {**dashboards["labels"], **dashboards["annotations"]}.items():
            where = "labels" if key in dashboards["labels"] else "annotations"
            checks.ok(cm["metadata"].get(where, {}).get(key) == value, f"ConfigMap {name} has {where[:-1]} {key}")
        for key, text in cm.get("data", {}).items():
            source = chart / "dashboards" / key
            checks.ok(source.exists(), f"ConfigMap {name} holds dashboards/{key}")
            if source.exists():
                checks.ok(
                    json.loads(text) == json.loads(source.read_text()),
                    f"ConfigMap {name} holds dashboards/{key} unchanged, as valid JSON",
                )
    rule = values["metrics"]["prometheusRule"]
    rules = [o for o in objs if o["kind"] == "PrometheusRule"]
    checks.ok(len(rules) == (1 if rule["enabled"] else 0), f"{'one' if rule['enabled'] else 'no'} PrometheusRule")
    for r in rules:
        name = r["metadata"]["name"]
        checks.ok(r["apiVersion"] == "monitoring.coreos.com/v1", f"PrometheusRule {name} uses monitoring.coreos.com/v1")
        want = yaml.safe_load((chart / "rules" / "strata-alerts.yaml").read_text())
        checks.ok(r["spec"] == want, f"PrometheusRule {name} holds rules/strata-alerts.yaml unchanged")
        alerts = [a["alert"] for g in r["spec"]["groups"] for a in g["rules"]]
        checks.ok(len(alerts) >= 6, f"PrometheusRule {name} has the alerts ({', '.join(alerts)})")
        for key, value in rule["labels"].items():
            checks.ok(r["metadata"]["labels"].get(key) == value, f"PrometheusRule {name} carries label {key}")


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# Values Helm must refuse, and a piece of the message that tells the user what to fix.
REFUSED = [
    (
        "a broker grace period too short to drain",
        {"broker": {"terminationGracePeriodSeconds": 10}},
        "terminationGracePeriodSeconds",
    ),
    (
        "a broker shutdown that outlasts its grace period",
        {"broker": {"shutdown_timeout_secs": 60}},
        "shutdown_timeout_secs",
    ),
    ("a misspelt setting", {"broker": {"lingr_ms": 5}}, "lingr_ms"),
    ("a misspelt maintenance setting", {"broker": {"maintenance": {"interval": 5}}}, "interval"),
    ("no etcd at all", {"etcd": {"enabled": False}}, "set meta.url"),
    ("no storage at all", {"storage": {"s3": {"bucket": ""}}}, "set storage.s3.bucket or list storage.nodes"),
    ("more replicas than storage nodes", {"storage": {"replicas": 2}}, "storage.replicas is 2"),
    ("an even etcd member count", {"etcd": {"replicaCount": 2}}, "replicaCount"),
    (
        "an access key without its secret",
        {"storage": {"credentials": {"accessKeyId": "AKIA"}}},
        "secretAccessKey",
    ),
    (
        "client certificates without TLS",
        {"tls": {"client_auth": "required"}},
        "set tls.secretName",
    ),
    (
        "TLS health endpoints that kubelet cannot probe",
        {"tls": {"secretName": "strata-tls", "client_auth": "required", "http": True}},
        "set tls.http false",
    ),
    (
        "etcd TLS for the bundled etcd",
        {"meta": {"tls": {"secretName": "etcd-client"}}},
        "set meta.url",
    ),
    ("an unknown client_auth", {"tls": {"secretName": "s", "client_auth": "always"}}, "client_auth"),
    (
        "SASL PLAIN without TLS",
        {"proxy": {"kafka": {"sasl_mechanisms": ["PLAIN"]}}},
        "offer SCRAM only",
    ),
    (
        "an initial admin without a password Secret",
        {"security": {"initialAdmin": {"name": "admin"}}},
        "passwordSecret",
    ),
    ("an unknown SASL mechanism", {"proxy": {"kafka": {"sasl_mechanisms": ["GSSAPI"]}}}, "sasl_mechanisms"),
    ("authentication without TLS", {"security": {"authenticate": True}}, "set tls.secretName"),
    (
        "authentication without client certificates requested",
        {"security": {"authenticate": True, "cluster_principals": ["User:strata"]}, "tls": {"secretName": "s"}},
        "client_auth optional",
    ),
    (
        "authentication without the cluster's principal",
        {"security": {"authenticate": True}, "tls": {"secretName": "s", "client_auth": "optional"}},
        "security.cluster_principals",
    ),
    ("a principal without User:", {"security": {"cluster_principals": ["strata"]}}, "cluster_principals"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--helm-lib", required=True, help="path to libhelm_sdkpy.so")
    ap.add_argument("--chart", default=str(HERE.parents[1] / "helm" / "strata"))
    ap.add_argument("--config", default=str(HERE.parents[1] / "config" / "strata.toml"))
    ap.add_argument(
        "--dump-config",
        metavar="DIR",
        help="write each render's strata.toml here, for a check with the real binary",
    )
    args = ap.parse_args()

    # Helm's Secrets release driver talks protobuf, which fake_kube does not parse; the memory
    # driver keeps the release record in-process. A Go shared library reads the environment
    # once, when it is loaded from the process's initial environment, so it must be set
    # before this process starts: re-exec with it.
    if os.environ.get("HELM_DRIVER") != "memory":
        env = dict(os.environ, HELM_DRIVER="memory")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    import yaml
    from fake_kube import FakeKube
    from helmlib import Helm, HelmError

    chart = Path(args.chart)
    helm = Helm(args.helm_lib)
    checks = Checks()
    documented = documented_settings(Path(args.config))
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    log(f"Helm library {helm.version()}; chart {chart}")

    checks.scope = "lint"
    messages = helm.lint(chart)
    for m in messages:
        log(f"  lint {m['severity']}: {m['path']}")
    checks.ok(
        not messages,
        f"helm lint reports nothing (got {len(messages)} message(s); "
        "the render below shows template errors in full)",
    )
    log(f"lint: {'clean' if not messages else 'NOT clean'}")

    production = chart / "values-production.yaml"
    scenarios = (
        [("default values", {})]
        + [(f"ci/{f.name}", yaml.safe_load(f.read_text()) or {}) for f in sorted((chart / "ci").glob("*.yaml"))]
        + [(production.name, yaml.safe_load(production.read_text()) or {})]
    )
    for label, overrides in scenarios:
        checks.scope = label
        values = deep_merge(defaults, overrides)
        before = (checks.passed, len(checks.failures))
        with FakeKube() as kube:
            try:
                release = helm.install(kube.kubeconfig(), RELEASE, chart, overrides or None, NAMESPACE)
            except HelmError as e:
                checks.ok(False, f"helm install renders the chart: {e}")
                continue
            objs = kube.created
        manifest_objs = [d for d in yaml.safe_load_all(release.get("manifest", "")) if d]
        checks.ok(
            sorted((o["kind"], o["metadata"]["name"]) for o in objs)
            == sorted((o["kind"], o["metadata"]["name"]) for o in manifest_objs),
            "Helm created every object of its manifest, and nothing else",
        )
        checks.ok(bool(release.get("info", {}).get("notes")), "NOTES.txt renders")
        kinds = sorted({o["kind"] for o in objs})
        validate_schemas(checks, objs)
        if args.dump_config:
            cms = [o for o in objs if o["kind"] == "ConfigMap" and "strata.toml" in o.get("data", {})]
            out = Path(args.dump_config) / (re.sub(r"[^A-Za-z0-9.-]+", "_", label) + ".toml")
            out.parent.mkdir(parents=True, exist_ok=True)
            if cms:
                out.write_text(cms[0]["data"]["strata.toml"])
        try:
            check_common(checks, objs, values, documented)
        except (AssertionError, KeyError, TypeError) as e:
            checks.ok(False, f"content checks could not run: {e!r}")
        passed, failed = checks.passed - before[0], len(checks.failures) - before[1]
        log(
            f"render {label}: {len(objs)} objects ({', '.join(kinds)}); {passed} checks passed, {failed} failed"
        )

    for label, overrides, expect in REFUSED:
        checks.scope = f"refuses {label}"
        with FakeKube() as kube:
            try:
                helm.install(kube.kubeconfig(), RELEASE, chart, overrides, NAMESPACE)
                checks.ok(False, "helm install succeeded but should have refused the values")
                continue
            except HelmError as e:
                message = str(e)
            created = len(kube.created)
        checks.ok(expect in message, f"the error names the problem ({expect!r}); got: {message[:300]}")
        checks.ok(created == 0, "nothing was created")
        detail = " ".join(line.strip() for line in message.splitlines())
        detail = detail.replace("helm install failed: install failed: ", "")
        log(f"refused {label}: {detail[:200]}")

    for f in checks.failures:
        log(f"FAILED {f}")
    log(f"{checks.passed} passed, {len(checks.failures)} failed")
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())

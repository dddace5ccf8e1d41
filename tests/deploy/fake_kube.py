"""A stand-in Kubernetes API server on loopback, just enough for `helm install` to run.

Real Helm (the Go library) renders the chart, maps every object through API discovery and
creates it with plain REST calls; this server answers discovery, keeps what is created in
memory and hands it back. So the objects it records are exactly what Helm would send to a
real cluster, with no cluster. It accepts every object as-is: validation is the caller's
job (kubernetes-validate), which keeps this server small and honest about what it checks.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# (group, version) -> [(resource, kind, namespaced)]. Only what the chart and Helm's own
# release storage use, plus neighbours a real server would list; discovery of anything else
# fails, which is what a cluster without that API would do.
API_RESOURCES: dict[tuple[str, str], list[tuple[str, str, bool]]] = {
    ("", "v1"): [
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("pods", "Pod", True),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("endpoints", "Endpoints", True),
        ("events", "Event", True),
        ("namespaces", "Namespace", False),
    ],
    ("apps", "v1"): [
        ("deployments", "Deployment", True),
        ("statefulsets", "StatefulSet", True),
        ("replicasets", "ReplicaSet", True),
        ("daemonsets", "DaemonSet", True),
    ],
    ("policy", "v1"): [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    ("autoscaling", "v2"): [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    ("autoscaling", "v1"): [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    ("batch", "v1"): [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    ("networking.k8s.io", "v1"): [
        ("networkpolicies", "NetworkPolicy", True),
        ("ingresses", "Ingress", True),
    ],
    ("rbac.authorization.k8s.io", "v1"): [
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
    ],
    ("monitoring.coreos.com", "v1"): [
        ("servicemonitors", "ServiceMonitor", True),
        ("podmonitors", "PodMonitor", True),
        ("prometheusrules", "PrometheusRule", True),
    ],
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _singular(kind: str) -> str:
    return kind.lower()


class FakeKube:
    """Runs the server in a thread; `objects()` is everything created so far."""

    def __init__(self, kube_version: str = "1.30.0") -> None:
        self.kube_version = kube_version
        self._lock = threading.Lock()
        # (group, version, namespace, resource, name) -> object
        self._store: dict[tuple[str, str, str, str, str], dict] = {}
        self._rv = 0
        self.requests: list[str] = []
        # Bodies exactly as Helm sent them, before this server stamps uid and friends.
        self.created: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeKube:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def kubeconfig(self) -> str:
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                "users": [{"name": "fake", "user": {}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )

    def objects(self) -> list[dict]:
        with self._lock:
            return [json.loads(json.dumps(o)) for o in self._store.values()]

    # --- request handling -------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # the caller prints what matters
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                ctype = self.headers.get("Content-Type", "")
                if "json" not in ctype and "yaml" not in ctype:
                    raise ValueError(f"unsupported content type {ctype!r}")
                return json.loads(raw or b"{}")

            def _dispatch(self, method: str) -> None:
                fake.requests.append(f"{method} {self.path}")
                try:
                    code, body = fake._route(
                        method, self.path, self._body if method in ("POST", "PUT", "PATCH") else None
                    )
                except Exception as e:  # noqa: BLE001 - a fake must answer, never hang Helm
                    code, body = 500, _status(500, "InternalError", f"fake API server: {e}")
                self._send(code, body)

            def do_GET(self):
                self._dispatch("GET")

            def do_POST(self):
                self._dispatch("POST")

            def do_PUT(self):
                self._dispatch("PUT")

            def do_PATCH(self):
                self._dispatch("PATCH")

            def do_DELETE(self):
                self._dispatch("DELETE")

        return Handler

    def _route(self, method: str, raw_path: str, read_body):
        parts = urlsplit(raw_path)
        path = [p for p in parts.path.split("/") if p]
        query = parse_qs(parts.query)
        if path == ["version"]:
            major, minor, _ = self.kube_version.split(".")
            return 200, {
                "major": major,
                "minor": minor,
                "gitVersion": f"v{self.kube_version}",
                "platform": "linux/amd64",
            }
        if path == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == ["apis"]:
            return 200, self._group_list()
        if path[:1] == ["api"] and len(path) >= 2:
            group, version, rest = "", path[1], path[2:]
        elif path[:1] == ["apis"] and len(path) >= 3:
            group, version, rest = path[1], path[2], path[3:]
        else:
            return 404, _status(404, "NotFound", f"the server could not find {parts.path}")
        resources = API_RESOURCES.get((group, version))
        if resources is None:
            return 404, _status(404, "NotFound", f"no API {group}/{version}")
        if not rest:
            if method != "GET":
                return 405, _status(405, "MethodNotAllowed", "discovery is read-only")
            return 200, self._resource_list(group, version, resources)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        resource, name = rest[0], (rest[1] if len(rest) > 1 else "")
        known = {r: (k, ns) for r, k, ns in resources}
        if resource not in known:
            return 404, _status(404, "NotFound", f"no resource {resource} in {group}/{version}")
        kind, _ = known[resource]
        key = (group, version, namespace, resource, name)
        with self._lock:
            if method == "GET" and not name:
                return 200, self._list(group, version, namespace, resource, kind, query)
            if method == "GET":
                obj = self._store.get(key)
                return (200, obj) if obj else (404, _not_found(resource, name))
            if method == "POST":
                obj = read_body()
                name = obj.get("metadata", {}).get("name", "")
                key = (group, version, namespace, resource, name)
                if not name:
                    return 422, _status(422, "Invalid", "metadata.name is required")
                if key in self._store:
                    return 409, _status(409, "AlreadyExists", f'{resource} "{name}" already exists')
                self.created.append(json.loads(json.dumps(obj)))
                self._store[key] = self._stamp(obj, namespace)
                return 201, self._store[key]
            if method == "PUT":
                obj = read_body()
                if key not in self._store:
                    return 404, _not_found(resource, name)
                self._store[key] = self._stamp(obj, namespace, self._store[key])
                return 200, self._store[key]
            if method == "PATCH":
                # Helm patches on upgrade and for server-side apply; install with client-side
                # apply never does. Refusing keeps a silent no-op from passing for a render.
                return 405, _status(405, "MethodNotAllowed", "the fake API server does not patch")
            if method == "DELETE":
                obj = self._store.pop(key, None)
                return (200, _status(200, "Success", "deleted")) if obj else (404, _not_found(resource, name))
        return 405, _status(405, "MethodNotAllowed", method)

    def _stamp(self, obj: dict, namespace: str, old: dict | None = None) -> dict:
        meta = obj.setdefault("metadata", {})
        if namespace:
            meta["namespace"] = namespace
        meta["uid"] = (old or {}).get("metadata", {}).get("uid") or str(uuid.uuid4())
        meta.setdefault(
            "creationTimestamp",
            (old or {}).get("metadata", {}).get("creationTimestamp")
            or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        meta["resourceVersion"] = self._next_rv()
        return obj

    def _list(self, group, version, namespace, resource, kind, query) -> dict:
        selector = _parse_selector((query.get("labelSelector") or [""])[0])
        items = [
            o
            for (g, v, ns, r, _), o in self._store.items()
            if (g, v, r) == (group, version, resource)
            and (not namespace or ns == namespace)
            and all(o.get("metadata", {}).get("labels", {}).get(k) == val for k, val in selector.items())
        ]
        return {
            "kind": f"{kind}List",
            "apiVersion": f"{group}/{version}" if group else version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _group_list(self) -> dict:
        groups: dict[str, list[str]] = {}
        for group, version in API_RESOURCES:
            if group:
                groups.setdefault(group, []).append(version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                }
                for g, vs in groups.items()
            ],
        }

    def _resource_list(self, group, version, resources) -> dict:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [
                {
                    "name": r,
                    "singularName": _singular(k),
                    "namespaced": ns,
                    "kind": k,
                    "verbs": VERBS,
                }
                for r, k, ns in resources
            ],
        }


def _parse_selector(text: str) -> dict[str, str]:
    """Equality selectors only (`a=b,c==d`): all that Helm's release storage sends."""
    out = {}
    for term in filter(None, text.split(",")):
        key, _, value = term.replace("==", "=").partition("=")
        out[key] = value
    return out


def _status(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _not_found(resource: str, name: str) -> dict:
    body = _status(404, "NotFound", f'{resource} "{name}" not found')
    body["details"] = {"name": name, "kind": resource}
    return body

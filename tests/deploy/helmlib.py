"""Real Helm through its C shared library (`libhelm_sdkpy.so` from the PyPI wheel helm-sdkpy).

No `helm` binary can be installed here, but that wheel ships Helm v4 built as a C library.
Its own Python wrapper needs Python 3.12 and cffi; the library does not, so this module calls
the exported functions with ctypes. The calling convention (from the wheel's
`libhelm_sdkpy.h`): every action takes a configuration handle made by
`helm_sdkpy_config_create`, returns 0 on success, and hands back its result as a JSON C string
the caller frees with `helm_sdkpy_free`; on failure `helm_sdkpy_last_error` holds the message
(owned by the library, valid until the thread's next call).
"""

from __future__ import annotations

import ctypes
import json
import os
import tempfile
from pathlib import Path

# Helm's lint severities (pkg/chart/v2/lint/support).
SEVERITY = {0: "unknown", 1: "info", 2: "warning", 3: "error"}


class HelmError(RuntimeError):
    pass


class Helm:
    def __init__(self, library: str | os.PathLike) -> None:
        lib = ctypes.CDLL(str(library))
        handle = ctypes.c_ulonglong
        out = ctypes.POINTER(ctypes.c_void_p)
        s = ctypes.c_char_p
        lib.helm_sdkpy_version_string.restype = s
        lib.helm_sdkpy_last_error.restype = s
        lib.helm_sdkpy_free.argtypes = [ctypes.c_void_p]
        lib.helm_sdkpy_config_create.argtypes = [s, s, s, s, ctypes.POINTER(handle)]
        lib.helm_sdkpy_config_destroy.argtypes = [handle]
        lib.helm_sdkpy_lint.argtypes = [handle, s, out]
        lib.helm_sdkpy_install.argtypes = [handle, s, s, s, s, s, out]
        self._lib = lib

    def version(self) -> str:
        return self._lib.helm_sdkpy_version_string().decode()

    def _config(self, namespace: str, kubeconfig: str) -> ctypes.c_ulonglong:
        h = ctypes.c_ulonglong()
        rc = self._lib.helm_sdkpy_config_create(
            namespace.encode(), kubeconfig.encode(), b"", b"{}", ctypes.byref(h)
        )
        self._check(rc, "configuration")
        return h

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            msg = self._lib.helm_sdkpy_last_error()
            raise HelmError(f"helm {what} failed: {msg.decode() if msg else 'unknown error'}")

    def _take(self, ptr: ctypes.c_void_p) -> str:
        if not ptr.value:
            return ""
        try:
            return ctypes.string_at(ptr.value).decode()
        finally:
            self._lib.helm_sdkpy_free(ptr)

    def lint(self, chart: str | os.PathLike) -> list[dict]:
        """Helm's lint with the chart's default values; returns its messages.

        The library serialises each message's Go error as `{}`, so only severity and path
        survive; the render step shows the text of any template error.
        """
        h = self._config("default", "")
        try:
            out = ctypes.c_void_p()
            rc = self._lib.helm_sdkpy_lint(h, str(chart).encode(), ctypes.byref(out))
            self._check(rc, "lint")
            result = json.loads(self._take(out) or "{}")
        finally:
            self._lib.helm_sdkpy_config_destroy(h)
        return [
            {"severity": SEVERITY.get(m.get("Severity"), "unknown"), "path": m.get("Path", "")}
            for m in result.get("Messages") or []
        ]

    def install(
        self,
        kubeconfig_text: str,
        release: str,
        chart: str | os.PathLike,
        values: dict | None,
        namespace: str = "default",
    ) -> dict:
        """`helm install` with client-side apply, no waiting and no OpenAPI validation (the
        caller validates against the Kubernetes schemas itself)."""
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(kubeconfig_text)
            h = self._config(namespace, str(kubeconfig))
            try:
                options = {
                    "create_namespace": False,
                    "wait": False,
                    "timeout_seconds": 60,
                    "wait_for_jobs": False,
                    "server_side_apply": "false",
                    "force_conflicts": False,
                    "disable_openapi_validation": True,
                    "skip_schema_validation": False,
                    "rollback_on_failure": False,
                    "take_ownership": False,
                }
                out = ctypes.c_void_p()
                rc = self._lib.helm_sdkpy_install(
                    h,
                    release.encode(),
                    str(chart).encode(),
                    (json.dumps(values) if values else "").encode(),
                    b"",
                    json.dumps(options).encode(),
                    ctypes.byref(out),
                )
                self._check(rc, "install")
                return json.loads(self._take(out) or "{}")
            finally:
                self._lib.helm_sdkpy_config_destroy(h)

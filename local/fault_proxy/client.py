"""Client of the fault proxy's `/_proxy/...` control API: the same calls whether the proxy runs in this
process or in its own (`python -m local.fault_proxy`). Standard library only."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from local.fault_proxy.server import CONTROL_PREFIX


class ProxyControlError(RuntimeError):
    """The proxy refused a control request (a bad fault spec, an unknown endpoint)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"fault proxy control: HTTP {status}: {message}")
        self.status = status


class FaultProxyClient:
    """Arm faults on the proxy at `url`, read and reset what it counted. Specs are `FaultPlan.apply_json`'s:
    {"operation", "kind", ...} | {"kind": "kill", "pid", ...} | {"kind": "rate_limit", ...} |
    {"kind": "base_latency", "operation", "seconds"}."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the proxy's URL must be http://host:port, not {url!r}")
        self.url = url.rstrip("/")
        self._host, self._port, self._timeout = parts.hostname, parts.port or 80, timeout

    def call(self, method: str, endpoint: str, body: Any = None) -> Any:
        """One control request (`endpoint` without the `/_proxy/` prefix); the JSON answer."""
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, CONTROL_PREFIX + endpoint, body=data, headers=headers)
            response = conn.getresponse()
            payload = json.loads(response.read() or b"{}")
        finally:
            conn.close()
        if response.status != 200:
            raise ProxyControlError(response.status, str(payload.get("message", payload)))
        return payload

    # -- faults ----------------------------------------------------------------------------------------

    def apply(self, specs: Iterable[Mapping[str, Any]]) -> None:
        """Add these rules (all or none: a bad spec raises ProxyControlError and adds nothing)."""
        self.call("POST", "faults", [dict(spec) for spec in specs])

    def inject(self, operation: str, kind: str, **rule: Any) -> None:
        """One fault rule, as `FaultPlan.inject(operation, kind, **rule)`."""
        self.apply([{"operation": operation, "kind": kind, **rule}])

    def kill(self, pid: int, operation: str, *, nth: int = 1, when: str = "before") -> None:
        self.apply([{"kind": "kill", "pid": pid, "operation": operation, "nth": nth, "when": when}])

    def rate_limit(self, operation: str, per_second: float, burst: int | None = None) -> None:
        self.apply([{"kind": "rate_limit", "operation": operation, "per_second": per_second, "burst": burst}])

    def latency(self, operation: str, seconds: float) -> None:
        """Base latency added to every request for `operation` ("*": every operation)."""
        self.apply([{"kind": "base_latency", "operation": operation, "seconds": seconds}])

    def clear(self, *, limits: bool = True) -> None:
        """Drop every rule, kill and fired count (and, unless limits=False, quotas and base latency)."""
        self.call("POST", "reset-faults", {"limits": limits})

    def set_faults(self, specs: Iterable[Mapping[str, Any]]) -> None:
        """Exactly these rules from now on."""
        self.clear()
        self.apply(specs)

    def plan(self) -> dict[str, Any]:
        """The rules with their counters, and the base latencies: {"rules": [...], "base_latency": {...}}."""
        return dict(self.call("GET", "faults"))

    # -- what it saw -----------------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """{"counts": {operation: n}, "total": n, "fired": {"operation:kind": n}}, the emulator's shape."""
        return dict(self.call("GET", "calls"))

    def calls(self) -> dict[str, int]:
        """Requests per operation since the last reset_calls."""
        return {str(k): int(v) for k, v in self.counts()["counts"].items()}

    def fired(self) -> dict[tuple[str, str], int]:
        """Faults fired per (operation, kind) since the last clear."""
        out: dict[tuple[str, str], int] = {}
        for key, n in self.counts()["fired"].items():
            operation, _, kind = str(key).rpartition(":")
            out[(operation, kind)] = int(n)
        return out

    def reset_calls(self) -> None:
        self.call("POST", "reset-calls")

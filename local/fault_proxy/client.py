"""Client of the fault proxy's `/_proxy/...` control API: the same calls whether the proxy runs in this
process or in its own (`python -m local.fault_proxy`). One method per route on
`local.control_api.ControlClient` (standard library only)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from local import control_api
from local.fault_proxy.server import CONTROL_PREFIX


class ProxyControlError(control_api.ControlError):
    """The proxy refused a control request (a bad fault spec, an unknown endpoint)."""

    def __init__(self, method: str, path: str, status: int, payload: Any) -> None:
        message = payload.get("message", payload) if isinstance(payload, dict) else payload
        super().__init__(method, path, status, payload, f"fault proxy control: HTTP {status}: {message}")


class FaultProxyClient(control_api.ControlClient):
    """Arm faults on the proxy at `url`, read and reset what it counted. Specs are `FaultPlan.apply_json`'s:
    {"operation", "kind", ...} | {"kind": "kill", "pid", ...} | {"kind": "rate_limit", ...} |
    {"kind": "base_latency", "operation", "seconds"}."""

    server_name = "fault proxy"
    error = ProxyControlError

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        super().__init__(url, timeout=timeout)

    # -- faults ----------------------------------------------------------------------------------------

    def apply(self, specs: Iterable[Mapping[str, Any]]) -> None:
        """Add these rules (all or none: a bad spec raises ProxyControlError and adds nothing)."""
        self.call("POST", CONTROL_PREFIX + "faults", [dict(spec) for spec in specs])

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
        self.call("POST", CONTROL_PREFIX + "reset-faults", {"limits": limits})

    def set_faults(self, specs: Iterable[Mapping[str, Any]]) -> None:
        """Exactly these rules from now on."""
        self.clear()
        self.apply(specs)

    def plan(self) -> dict[str, Any]:
        """The rules with their counters, and the base latencies: {"rules": [...], "base_latency": {...}}."""
        return dict(self.call("GET", CONTROL_PREFIX + "faults"))

    # -- what it saw -----------------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """{"counts": {operation: n}, "total": n, "fired": {"operation:kind": n}}, the emulator's shape."""
        return dict(self.call("GET", CONTROL_PREFIX + "calls"))

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
        self.call("POST", CONTROL_PREFIX + "reset-calls")

"""`EmulatorClient`: the one HTTP client of the emulator's control API (`/_emulator/...`, see `control`).

For tests, benchmarks and the reliability harness that drive an emulator in another process (or in this
one, through its URL). One method per route on `local.control_api.ControlClient` (standard library, no
proxies: the emulator is on 127.0.0.1); any answer but 200 raises `ControlError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from local import control_api

DEFAULT_TIMEOUT = 300.0  # seeding 100k sessions takes a few seconds; a busy 2-core machine, more


class ControlError(control_api.ControlError):
    """The control API answered something other than 200 (bad payload: 400, unknown session or route: 404)."""

    def __init__(self, method: str, path: str, status: int, payload: Any) -> None:
        super().__init__(
            method, path, status, payload, f"emulator control {method} {path} answered {status}: {payload}"
        )


class Calls(TypedDict):
    """What the emulator was asked since the last reset_calls, and which faults fired (ever, or since
    the last reset_faults): `fired` keys are "Operation:kind", e.g. "GetStreamSession:quota"."""

    counts: dict[str, int]
    total: int
    fired: dict[str, int]


class EmulatorClient(control_api.ControlClient):
    """Typed calls to the control API of the emulator at `url` (its `endpoint_url`, or the CLI's first line)."""

    server_name = "emulator"
    error = ControlError

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(url, timeout=timeout)

    # -- sessions ------------------------------------------------------------------------------------

    def seed(self, n: int, region: str | None = None, succeeded_fraction: float = 0.6) -> list[str]:
        """Seed `n` sessions of the realistic mix (`region` None: the emulator's default); their ARNs, oldest
        first (the list call returns newest first)."""
        body: dict[str, Any] = {"seed": n, "succeeded_fraction": succeeded_fraction}
        if region is not None:
            body["region"] = region
        return [str(arn) for arn in self.call("POST", "/_emulator/sessions", body)["arns"]]

    def add(self, region: str | None = None, **fields: Any) -> dict[str, Any]:
        """Add one session (TERMINATED, export SUCCEEDED unless `fields` say otherwise; a None field is
        removed); its detail as on the wire (timestamps as epoch seconds)."""
        if "seed" in fields:
            raise ValueError("'seed' is not a session field: use seed()")
        body: dict[str, Any] = dict(fields)
        if region is not None:
            body["region"] = region
        return dict(self.call("POST", "/_emulator/sessions", body))

    def start(self, region: str | None = None, **fields: Any) -> dict[str, Any]:
        """Start one live session (ACTIVE, streaming, no export yet; `fields` override as in add()): what
        ExportStreamSessionFiles and then TerminateStreamSession act on. Its detail as on the wire."""
        body: dict[str, Any] = dict(fields)
        if region is not None:
            body["region"] = region
        return dict(self.call("POST", "/_emulator/start-session", body))

    def set_export(self, arn: str, status: str | None, output_uri: str | None = None) -> dict[str, Any]:
        """Set a session's export status (None removes its ExportFilesMetadata; SUCCEEDED without
        `output_uri` gets the service's default ZIP name; SUCCEEDED or FAILED end a session not yet ended,
        writing no ZIP); its detail as on the wire."""
        body: dict[str, Any] = {"arn": arn, "status": status}
        if output_uri is not None:
            body["output_uri"] = output_uri
        return dict(self.call("POST", "/_emulator/export-status", body))

    def remove(self, arn: str) -> None:
        """Forget a session, as if it aged out of the API (ControlError 404 if unknown)."""
        self.call("POST", "/_emulator/remove-session", {"arn": arn})

    def succeeded(self, region: str | None = None) -> set[str]:
        """ARNs whose export SUCCEEDED, in `region` (None: every Region)."""
        return {str(arn) for arn in self.call("GET", "/_emulator/succeeded", {"region": region})["arns"]}

    # -- faults and configuration ----------------------------------------------------------------------

    def add_fault(self, spec: Mapping[str, Any]) -> None:
        """Arm one rule, in `FaultPlan.apply_json`'s form (an error, latency, kill, rate_limit, base_latency)."""
        self.call("POST", "/_emulator/faults", spec)

    def set_faults(self, specs: Iterable[Mapping[str, Any]]) -> None:
        """Replace every rule, quota and base latency by `specs` (an empty list: a fault-free emulator)."""
        self.reset_faults(limits=True)
        for spec in specs:
            self.add_fault(spec)

    def reset_faults(self, *, limits: bool = True) -> None:
        """Drop every rule and fired counter; also the quotas and base latency unless limits=False."""
        self.call("POST", "/_emulator/reset-faults", {"limits": limits})

    def config(
        self,
        *,
        shift_on_page: bool | None = None,
        export_s3_endpoint: str | None = None,
        export_success_delay_ms: float | None = None,
        fail_exports: bool | None = None,
    ) -> dict[str, Any]:
        """Change what is given; the configuration after it. shift_on_page: the list shifts by one after every
        page. export_s3_endpoint: the S3 endpoint export ZIPs are written to ("" for none).
        export_success_delay_ms: how long after its ZIP landed an export shows SUCCEEDED. fail_exports: every
        export settling from now on is FAILED, with no ZIP."""
        given = {
            "shift_on_page": shift_on_page,
            "export_s3_endpoint": export_s3_endpoint,
            "export_success_delay_ms": export_success_delay_ms,
            "fail_exports": fail_exports,
        }
        body = {name: value for name, value in given.items() if value is not None}
        return dict(self.call("POST", "/_emulator/config", body))

    # -- the call log ----------------------------------------------------------------------------------

    def calls(self) -> Calls:
        """Requests per operation since the last reset_calls, their total, and the faults that fired."""
        payload = self.call("GET", "/_emulator/calls")
        return Calls(
            counts={str(k): int(v) for k, v in payload["counts"].items()},
            total=int(payload["total"]),
            fired={str(k): int(v) for k, v in payload["fired"].items()},
        )

    def reset_calls(self) -> None:
        """Zero the request counts (fired fault counters are kept: reset_faults drops those)."""
        self.call("POST", "/_emulator/reset-calls")

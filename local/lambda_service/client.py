"""`LambdaServiceClient`: the one client of the local Lambda service's control API (`/_lambda/...`), for
owners in another process (`python -m local.lambda_service`) or in this one, through its URL. One method per
route on `local.control_api.ControlClient` (standard library only); any answer but 200 raises
`LambdaControlError`. Invocations come back as the service's own `Invocation` records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from local import control_api
from local.lambda_service.models import Invocation
from local.lambda_service.responses import CONTROL_PREFIX


class LambdaControlError(control_api.ControlError):
    """The control API refused a request (a bad payload: 400, an unknown function or route: 404, run-pending
    while the dispatcher runs: 409)."""

    def __init__(self, method: str, path: str, status: int, payload: Any) -> None:
        message = payload.get("message", payload) if isinstance(payload, dict) else payload
        super().__init__(
            method, path, status, payload, f"lambda service control {method} {path}: HTTP {status}: {message}"
        )


class FunctionInfo(TypedDict):
    name: str
    arn: str
    retry_attempts: int
    aliases: list[str]


class Calls(TypedDict):
    """Requests per operation ("Invoke", "Unknown") since the last reset_calls, and the faults that fired."""

    counts: dict[str, int]
    total: int
    fired: dict[str, int]


class LambdaServiceClient(control_api.ControlClient):
    """Typed calls to the control API of the service at `url` (its `endpoint_url`, or the CLI's first line).
    `timeout` bounds each request: run_pending runs handlers inside one, wait_idle waits inside one."""

    server_name = "lambda service"
    error = LambdaControlError

    def __init__(self, url: str, *, timeout: float = 960.0) -> None:
        super().__init__(url, timeout=timeout)

    # -- functions -------------------------------------------------------------------------------------

    def add_function(
        self,
        name: str,
        *,
        worker_env: Mapping[str, str] | None = None,
        timeout_seconds: float = 900.0,
        log_dir: str | None = None,
        retry_attempts: int = 0,
        aliases: Iterable[str] = (),
    ) -> FunctionInfo:
        """Register `name`. With `worker_env`, its invocations run `archiver.handler.handler` in a warm
        subprocess (`local.worker`: the service's environment without its AWS_*, ARCHIVE_* and POWERTOOLS_*
        variables, plus `worker_env`, which must carry the endpoints, Region, credentials and settings) and a
        context of `timeout_seconds` (output in `log_dir`); without, they are only recorded, for the owner
        to read and run."""
        body: dict[str, Any] = {"name": name, "retry_attempts": retry_attempts, "aliases": list(aliases)}
        if worker_env is not None:
            body["worker"] = {"env": dict(worker_env), "timeout_seconds": timeout_seconds, "log_dir": log_dir}
        answer = self.call("POST", CONTROL_PREFIX + "functions", body)
        return FunctionInfo(
            name=str(answer["name"]),
            arn=str(answer["arn"]),
            retry_attempts=int(answer["retry_attempts"]),
            aliases=[str(a) for a in answer["aliases"]],
        )

    def remove_function(self, name: str) -> None:
        self.call("POST", CONTROL_PREFIX + "remove-function", {"name": name})

    def functions(self) -> list[FunctionInfo]:
        return [
            FunctionInfo(
                name=str(f["name"]),
                arn=str(f["arn"]),
                retry_attempts=int(f["retry_attempts"]),
                aliases=[str(a) for a in f["aliases"]],
            )
            for f in self.call("GET", CONTROL_PREFIX + "functions")["functions"]
        ]

    # -- invocations -----------------------------------------------------------------------------------

    def invocations(self, function: str | None = None) -> list[Invocation]:
        """Every invocation received (of `function`), in order of receipt, as it is now."""
        answer = self.call("GET", CONTROL_PREFIX + "invocations", {"function": function})
        return [Invocation.from_json(i) for i in answer["invocations"]]

    def run_pending(self, limit: int | None = None) -> list[Invocation]:
        """Run what is queued, in the service's request thread, until nothing is (the service must run
        without its dispatcher, `--no-background`); what ran."""
        answer = self.call("POST", CONTROL_PREFIX + "run-pending", {"limit": limit})
        return [Invocation.from_json(i) for i in answer["invocations"]]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Whether the service had nothing queued or running within `timeout` seconds."""
        return bool(self.call("POST", CONTROL_PREFIX + "wait-idle", {"timeout": timeout})["idle"])

    def reset_invocations(self) -> None:
        """Forget the invocations that ended (queued and running ones stay)."""
        self.call("POST", CONTROL_PREFIX + "reset-invocations")

    # -- faults and the call log -----------------------------------------------------------------------

    def add_fault(self, spec: Mapping[str, Any]) -> None:
        """Arm one rule for "Invoke", in `FaultPlan.apply_json`'s form (an error kind, latency, timeout, reset)."""
        self.call("POST", CONTROL_PREFIX + "faults", spec)

    def reset_faults(self, *, limits: bool = True) -> None:
        self.call("POST", CONTROL_PREFIX + "reset-faults", {"limits": limits})

    def calls(self) -> Calls:
        payload = self.call("GET", CONTROL_PREFIX + "calls")
        return Calls(
            counts={str(k): int(v) for k, v in payload["counts"].items()},
            total=int(payload["total"]),
            fired={str(k): int(v) for k, v in payload["fired"].items()},
        )

    def reset_calls(self) -> None:
        self.call("POST", CONTROL_PREFIX + "reset-calls")

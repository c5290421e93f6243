"""Every fault the harness injects, in one place: the kinds each operation can be given (drawn by the
property runs and the independent run) and the rows of the fault matrix.

To add a fault kind: the engine and the servers must know it (`local.faults`, the emulator, the fault proxy);
then list it under the operations it applies to in `FAULT_KINDS` (with its `FAULT_SECONDS` if it is a delay)
and, if it deserves its own row, add a `Scenario` to `MATRIX`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from local.reliability.constants import GLS_OPERATIONS, OPERATIONS


def fault(operation: str, kind: str, **rule: Any) -> dict[str, Any]:
    """A fault rule for the server that answers `operation` (FaultPlan.apply_json form, plus "on")."""
    return {"on": "gls" if operation in GLS_OPERATIONS else "proxy", "operation": operation, "kind": kind, **rule}


def _throttle_kind(operation: str) -> str:
    """How each service says "slow down": 429 ThrottlingException, ProvisionedThroughputExceeded, 503 SlowDown."""
    return {"PutObject": "slowdown", "BatchGetItem": "throughput", "PutItem": "throughput"}.get(operation, "throttle")


def everywhere(kind: str | Callable[[str], str], **rule: Any) -> tuple[dict[str, Any], ...]:
    return tuple(fault(op, kind(op) if callable(kind) else kind, **rule) for op in OPERATIONS)


@dataclass(frozen=True)
class Scenario:
    """One row of the fault matrix: faults armed for `runs` runs (new sessions before each after the
    first), then one clean run that must leave the archive complete. Every run is judged; every fault must
    have fired (unless too rare to be sure it would: see `suites.matrix`)."""

    name: str
    faults: tuple[dict[str, Any], ...] = ()
    runs: int = 3
    sessions: int = 200
    new_per_run: int = 20
    settings: tuple[tuple[str, str], ...] = ()
    shift: bool = False
    fatal: str | None = None  # every faulted run must fail at once, with an error matching this
    may_fail: str | None = None  # otherwise a faulted run may fail only with an error matching this
    restarts: bool = False  # the listing must have restarted (expired NextToken)
    min_sessions: int = 5  # when scaled down: the listing cases need several pages

    def scaled(self, factor: float, runs: int | None = None) -> Scenario:
        return dataclasses.replace(
            self,
            runs=runs if runs is not None else self.runs,
            sessions=max(self.min_sessions, int(self.sessions * factor)),
            new_per_run=max(2, int(self.new_per_run * factor)),
        )


MATRIX: Final[tuple[Scenario, ...]] = (
    Scenario("none"),
    Scenario("throttling, steady 15% (429 / PTE / SlowDown)", everywhere(_throttle_kind, probability=0.15)),
    Scenario(
        "throttling, bursts",
        (
            fault("ListStreamSessionsByAccount", "throttle", after=1, times=3),  # < MAX_ATTEMPTS: absorbed
            fault("GetStreamSession", "throttle", after=15, times=14),
            fault("BatchGetItem", "throughput", after=1, times=5),
            fault("PutObject", "slowdown", after=10, times=12),
            fault("PutItem", "throughput", after=25, times=12),
        ),
    ),
    Scenario(
        "quota 20/s enforced, client paced at 18/s",
        ({"on": "gls", "kind": "rate_limit", "operation": "*", "per_second": 20, "burst": 20},),
        sessions=100,
        new_per_run=10,
        settings=(("LIST_RATE_PER_SECOND", "18"), ("GET_RATE_PER_SECOND", "18")),
    ),
    Scenario("5xx, 10% everywhere", everywhere("internal", probability=0.10)),
    Scenario("latency spikes, 5% +0.3 s", everywhere("latency", probability=0.05, seconds=0.3)),
    Scenario("connection resets, 5%", everywhere("reset", probability=0.05)),
    Scenario(
        "read timeouts, 2% (request took effect)",
        everywhere("timeout", probability=0.02, seconds=1.3),
        settings=(("READ_TIMEOUT_SECONDS", "1"),),
    ),
    Scenario(
        "expired NextToken, twice a run",
        (fault("ListStreamSessionsByAccount", "validation", times=2),),
        sessions=350,
        min_sessions=210,
        restarts=True,
    ),
    Scenario(
        "expired NextToken, every time",
        (fault("ListStreamSessionsByAccount", "validation"),),
        sessions=250,
        min_sessions=210,
        fatal="NextToken rejected 4 times",
    ),
    Scenario("list shifts while paging", shift=True, sessions=350, min_sessions=210),
    Scenario("vanished between list and get (404), 10%", (fault("GetStreamSession", "not_found", probability=0.1),)),
    Scenario("DynamoDB UnprocessedKeys, 50%", (fault("BatchGetItem", "unprocessed", probability=0.5, fraction=0.5),)),
    Scenario(
        "DynamoDB UnprocessedKeys, never processed",
        (fault("BatchGetItem", "unprocessed", fraction=1.0),),
        runs=1,
        sessions=60,
        new_per_run=0,
    ),
    Scenario(
        "DynamoDB ProvisionedThroughputExceeded, 20%",
        (fault("BatchGetItem", "throughput", probability=0.2), fault("PutItem", "throughput", probability=0.2)),
    ),
    Scenario(
        "S3 SlowDown 15% + 500 5%",
        (fault("PutObject", "slowdown", probability=0.15), fault("PutObject", "internal", probability=0.05)),
    ),
    *(
        Scenario(f"AccessDenied on {op}", (fault(op, "access_denied"),), runs=2, fatal="AccessDenied")
        for op in OPERATIONS
    ),
    Scenario(
        "missing table", (fault("BatchGetItem", "not_found"),), runs=2, fatal="BatchGetItem.*ResourceNotFoundException"
    ),
    Scenario("missing bucket", (fault("PutObject", "not_found"),), runs=2, fatal="NoSuchBucket"),
    Scenario(
        "all of the above at 3%, list shifting",
        (
            *everywhere(_throttle_kind, probability=0.03),
            *everywhere("internal", probability=0.03),
            *everywhere("reset", probability=0.03),
            *everywhere("latency", probability=0.03, seconds=0.2),
            *everywhere("timeout", probability=0.01, seconds=1.3),
            fault("ListStreamSessionsByAccount", "validation", probability=0.2),
            fault("GetStreamSession", "not_found", probability=0.03),
            fault("BatchGetItem", "unprocessed", probability=0.2),
        ),
        shift=True,
        settings=(("READ_TIMEOUT_SECONDS", "1"),),
        may_fail=r"NextToken rejected \d+ times",  # ~1 run in 60: 4 of the 20% expired tokens before the end
        min_sessions=110,
    ),
)


FAULT_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "ListStreamSessionsByAccount": ("throttle", "internal", "reset", "validation", "latency", "access_denied"),
    "GetStreamSession": ("throttle", "internal", "reset", "timeout", "not_found", "access_denied"),
    "BatchGetItem": ("throughput", "internal", "reset", "unprocessed", "not_found"),
    "PutObject": ("slowdown", "internal", "reset", "timeout", "access_denied"),
    "PutItem": ("throughput", "internal", "reset", "timeout"),
}
# How long the delaying kinds hold a request when drawn (a "timeout" outlasts READ_TIMEOUT_SECONDS=1).
FAULT_SECONDS: Final[dict[str, float]] = {"timeout": 1.3, "latency": 0.2}

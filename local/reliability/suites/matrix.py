"""The fault matrix: each scenario's faults armed for several runs, then one clean run that must leave the
archive complete."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from local.reliability.oracle import Audit
from local.reliability.scenarios import Scenario
from local.reliability.world import WorldFactory
from local.worker import Invocation


@dataclass
class ScenarioResult:
    scenario: Scenario
    runs_failed: int = 0
    archived_during: int = 0  # archived (object + item) when the faulted runs were over
    audit: Audit = field(default_factory=Audit)
    restarts: int = 0
    repeated: int = 0
    failed_sessions: int = 0
    skipped: int = 0
    faults_fired: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.audit.clean and not self.violations


def run_scenario(make_world: WorldFactory, scenario: Scenario, *, records: bool = True) -> ScenarioResult:
    """Seed, run `scenario.runs` faulted runs (each judged), then one clean run and the audit."""
    started = time.monotonic()
    result = ScenarioResult(scenario)
    world = make_world(settings=dict(scenario.settings))
    try:
        world.seed(scenario.sessions)
        world.seed(max(1, scenario.sessions // 4), succeeded_fraction=0.0)  # never to be archived
        concurrency = int(world.settings["MAX_CONCURRENCY"])
        faulted: list[Invocation] = []
        for number in range(scenario.runs):
            if number:
                world.seed(scenario.new_per_run)
            world.faults = list(scenario.faults)
            world.shift(scenario.shift)
            invocation = world.run()
            world.shift(False)
            faulted.append(invocation)
            result.runs_failed += invocation.failed
            result.restarts += int(invocation.region(world.region).get("list_restarts", 0))
            result.repeated += invocation.total("repeated")
            result.failed_sessions += invocation.total("failed")
            result.skipped += invocation.total("skipped")
            result.faults_fired += sum(invocation.fired.values())
            if scenario.fatal is not None:
                result.violations += _fatal_violations(scenario, invocation, number, concurrency)
            elif invocation.failed and not re.search(scenario.may_fail or "(?!)", invocation.error or ""):
                result.violations.append(f"run {number + 1} failed outright: {invocation.error}")
        result.violations += never_fired(scenario.faults, faulted)
        if scenario.restarts and result.restarts == 0:
            result.violations.append("the listing never restarted")
        if scenario.fatal is None and scenario.shift and result.repeated == 0:
            result.violations.append("no session was seen twice although the list shifted")
        world.faults = []
        result.archived_during = world.progress()
        final = world.run()
        if final.failed or final.total("failed"):
            result.violations.append(f"the clean run did not finish cleanly: {final.error or final.summary}")
        result.audit = world.audit(check_records=records)
        if result.audit.archived == 0:
            result.violations.append("nothing was archived: the scenario proved nothing")
        result.violations += world.violations
    finally:
        world.close()
    result.seconds = time.monotonic() - started
    return result


# A probabilistic rule expected to fire this many times (probability x requests it applied to) that never
# did is broken plumbing, not bad luck (e**-8: 1 in 3,000); below that, its silence proves nothing.
FIRE_EVIDENCE: Final = 8.0


def never_fired(faults: Sequence[Mapping[str, Any]], runs: Sequence[Invocation]) -> list[str]:
    """The fault rules that had every chance to fire in these runs and never did (a scenario whose faults
    never fired tested nothing), and quota hits of a client that must stay under its quota."""
    out: list[str] = []
    for spec in faults:
        operation, kind = str(spec["operation"]), str(spec["kind"])
        if kind == "rate_limit":  # a quota the client paces itself under: it must never be hit
            hits = sum(n for run in runs for key, n in run.fired.items() if key.endswith(":quota"))
            if hits:
                out.append(f"the client went over the quota {hits} times")
            continue
        fired = sum(run.fired.get(f"{operation}:{kind}", 0) for run in runs)
        expected = sum(_expected_fires(spec, _applied(operation, kind, run)) for run in runs)
        deterministic = spec.get("probability") is None
        if not fired and expected >= (1.0 if deterministic else FIRE_EVIDENCE):
            out.append(f"{operation}:{kind} never fired ({expected:.0f} expected)")
    return out


def _applied(operation: str, kind: str, run: Invocation) -> int:
    """Requests of one run that a rule for (operation, kind) applied to, had it never fired."""
    requests = run.calls.get(operation, 0)
    if kind == "validation":  # only requests that carry a NextToken: all but the first page of one listing
        return max(0, requests - 1)  # (one listing: had the rule never fired, nothing restarted it)
    return requests


def _expected_fires(spec: Mapping[str, Any], applied: int) -> float:
    """How often a rule (FaultPlan's after/every/times/probability) fires over `applied` requests."""
    expected = (
        max(0, applied - int(spec.get("after", 0))) // int(spec.get("every", 1)) * float(spec.get("probability", 1.0))
    )
    return expected if spec.get("times") is None else min(expected, float(spec["times"]))


def _fatal_violations(scenario: Scenario, invocation: Invocation, number: int, concurrency: int) -> list[str]:
    """A fatal fault must fail the run with one clear error and no retry storm."""
    out: list[str] = []
    if invocation.error is None or not re.search(str(scenario.fatal), invocation.error):
        out.append(f"run {number + 1}: expected a failure matching {scenario.fatal!r}, got {invocation.error!r}")
    kinds = {str(f["kind"]) for f in scenario.faults}
    answered = sum(n for name, n in invocation.fired.items() if name.split(":")[1] in kinds)
    operations = {str(f["operation"]) for f in scenario.faults}
    limit = 1 if operations <= {"ListStreamSessionsByAccount", "BatchGetItem"} else concurrency + 2
    if "NextToken" in str(scenario.fatal):
        limit = 4  # MAX_LIST_RESTARTS (3) restarts, then give up
    if answered > limit:
        out.append(f"run {number + 1}: {answered} requests got the fatal fault (at most {limit} expected)")
    return out

"""The fault matrix: each scenario's faults armed for several runs, then one clean run that must leave the
archive complete."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

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
    started = time.monotonic()
    result = ScenarioResult(scenario)
    world = make_world(settings=dict(scenario.settings))
    try:
        world.gls.seed(scenario.sessions)
        world.gls.seed(max(1, scenario.sessions // 4), succeeded_fraction=0.0)  # never to be archived
        concurrency = int(world.settings["MAX_CONCURRENCY"])
        for number in range(scenario.runs):
            if number:
                world.gls.seed(scenario.new_per_run)
            world.faults = list(scenario.faults)
            world.gls.shift(scenario.shift)
            invocation = world.run()
            world.gls.shift(False)
            result.runs_failed += invocation.failed
            result.restarts += int(invocation.region(world.region).get("list_restarts", 0))
            result.repeated += invocation.total("repeated")
            result.failed_sessions += invocation.total("failed")
            result.skipped += invocation.total("skipped")
            result.faults_fired += sum(invocation.fired.values())
            result.violations += world.crash_consistent()
            if invocation.killed:
                result.violations.append(f"run {number + 1} died: {invocation.error}")
            if scenario.fatal is not None:
                result.violations += _fatal_violations(scenario, invocation, number, concurrency)
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
    finally:
        world.close()
    result.seconds = time.monotonic() - started
    return result


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

"""Kills: SIGKILL of the worker at the nth request of an operation, before it is served or after its answer;
the next run must complete the archive exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from local.reliability.oracle import Audit
from local.reliability.world import WorldFactory

KILL_POINTS_FAST: Final = tuple(
    (op, nth, when)
    for op, nth in (
        ("ListStreamSessionsByAccount", 2),
        ("BatchGetItem", 2),
        ("GetStreamSession", 5),
        ("PutObject", 5),
        ("PutItem", 5),
    )
    for when in ("before", "after")
)
KILL_POINTS_FULL: Final = tuple(
    (op, nth, when)
    for op, nths in (
        ("ListStreamSessionsByAccount", (1, 2, 3)),
        ("BatchGetItem", (1, 2, 3)),
        ("GetStreamSession", (1, 10, 60)),
        ("PutObject", (1, 10, 60)),
        ("PutItem", (1, 10, 60)),
    )
    for nth in nths
    for when in ("before", "after")
)


@dataclass
class KillResult:
    operation: str
    nth: int
    when: str
    killed: bool = False
    done_before_kill: int = 0  # sessions archived by the killed run
    audit: Audit = field(default_factory=Audit)
    violations: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.operation} #{self.nth} {self.when}"

    @property
    def ok(self) -> bool:
        return self.killed and self.audit.clean and not self.violations


def run_kill(
    make_world: WorldFactory, operation: str, nth: int, when: str, *, archived: int = 60, new: int = 90
) -> KillResult:
    """Archive `archived` sessions, add `new` more, SIGKILL the next run at the point, then one clean run
    must leave exactly one object and one item per SUCCEEDED session."""
    result = KillResult(operation, nth, when)
    if operation in ("ListStreamSessionsByAccount", "BatchGetItem"):  # one of each per page of 100: make pages
        new = max(new, 100 * (nth - 1) - archived + 10)
    world = make_world()
    try:
        world.seed(archived)
        first = world.run()
        if first.failed:
            result.violations.append(f"setup run failed: {first.error}")
        world.seed(new)
        world.seed(max(1, new // 5), succeeded_fraction=0.0)
        before = world.progress()
        killed = world.run(kill=(operation, nth, when))
        result.killed = killed.killed
        if not killed.killed:
            result.violations.append(f"the kill did not happen ({killed.error or 'run completed'})")
        result.done_before_kill = world.progress() - before
        final = world.run()
        if final.failed or final.total("failed"):
            result.violations.append(f"the next run did not finish cleanly: {final.error or final.summary}")
        result.audit = world.audit(check_records=True)
        result.violations += world.violations  # every run judged, the killed one right after the kill
    finally:
        world.close()
    return result

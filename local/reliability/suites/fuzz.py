"""Hostile-input fuzzing: hypothesis-drawn sessions with hostile values on the wire, each case in a fresh world."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from local.reliability.hostile import HostileEmulator, HostileSession, hostile_sessions, should_archive
from local.reliability.oracle import Audit
from local.reliability.suites.hypothesis_settings import hypothesis_settings
from local.reliability.world import World, WorldFactory


@dataclass
class FuzzResult:
    sessions: int = 0
    expected: int = 0
    hostile_values: int = 0
    audit: Audit = field(default_factory=Audit)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.audit.clean and not self.violations


def run_fuzz_case(world: World, sessions: Sequence[HostileSession]) -> FuzzResult:
    """Store the sessions, run twice, and judge: no crash, nothing outside the record layout, every record
    valid for Athena and equal to GetStreamSession, exactly the well-formed sessions archived, no leak."""
    emulator = world.stack.emulator
    assert isinstance(emulator, HostileEmulator), "fuzzing needs an in-process HostileEmulator"
    result = FuzzResult(sessions=len(sessions))
    expected: set[str] = set()
    for session in sessions:
        stored = emulator.add_session(**session.fields)
        arn = str(stored["Arn"])
        emulator.get_wire[arn] = dict(session.get_wire)
        emulator.list_wire[arn] = dict(session.list_wire)
        if session.list_arn is not None:
            emulator.list_wire[arn]["Arn"] = session.list_arn
        result.hostile_values += len(session.fields) + len(session.get_wire) + len(session.list_wire)
        if should_archive(session, stored):
            expected.add(arn)
    unreadable_page = any(s.list_wire.get("CreatedAt") == "not-a-date" for s in sessions)
    if unreadable_page:
        expected = set()  # one page, and nothing can be read from it
    result.expected = len(expected)
    for number in (1, 2):
        run = world.run()
        if unreadable_page:
            if not (run.error or "").startswith("RunFailed: ") or "unreadable page" not in str(run.error):
                result.violations.append(f"run {number}: expected one clear listing error, got {run.error!r}")
        elif run.failed:
            result.violations.append(f"run {number} failed: {run.error}")
        elif number == 1 and run.total("archived") != len(expected):
            result.violations.append(f"archived {run.total('archived')} of {len(expected)}: {run.summary}")
        if number == 2 and (run.total("archived") or run.calls.get("PutObject") or run.calls.get("PutItem")):
            result.violations.append(f"the second run wrote again: {run.summary} {run.calls}")
    result.audit = world.audit(expected, check_records=True)
    result.violations += world.violations  # both runs judged (consistency, counts, archive)
    return result


def fuzz_check(
    make_world: WorldFactory, *, examples: int, derandomize: bool = True, shrink: bool = True, seed: int | None = None
) -> list[FuzzResult]:
    """Run `examples` hypothesis-drawn hostile inputs (each in a fresh world); raise on the first failure."""
    from hypothesis import given  # noqa: PLC0415 - see sequence_strategy
    from hypothesis import seed as with_seed  # noqa: PLC0415

    results: list[FuzzResult] = []

    @hypothesis_settings(examples, derandomize=derandomize, shrink=shrink)
    @given(sessions=hostile_sessions())
    def hostile(sessions: tuple[HostileSession, ...]) -> None:
        world = make_world(hostile=True)
        try:
            result = run_fuzz_case(world, sessions)
        finally:
            world.close()
        results.append(result)
        assert result.ok, f"{result.audit.describe()}; {result.violations}"

    (with_seed(seed)(hostile) if seed is not None else hostile)()
    return results

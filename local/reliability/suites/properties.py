"""Property-based sequences (hypothesis): random runs, new sessions, late exports, faults, kills, short time
budgets and list shifts; after one final clean run the archive must be exact."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from local.reliability.constants import OPERATIONS
from local.reliability.oracle import Audit
from local.reliability.scenarios import FAULT_KINDS, FAULT_SECONDS, fault
from local.reliability.suites.hypothesis_settings import hypothesis_settings
from local.reliability.world import World, WorldFactory

Step = tuple[Any, ...]


_KILL_NTH: Final = {
    "ListStreamSessionsByAccount": 3,
    "BatchGetItem": 3,
    "GetStreamSession": 12,
    "PutObject": 12,
    "PutItem": 12,
}


def sequence_strategy(max_steps: int = 10) -> Any:
    """Random sequences of: new sessions, sessions whose export is pending then succeeds, faults and kills
    armed for the next run, runs with or without a short time budget, the list shifting while paging."""
    from hypothesis import strategies as st  # noqa: PLC0415 - the worker process never loads hypothesis

    faults = st.one_of(
        *(
            st.tuples(st.just("fault"), st.just(op), st.sampled_from(kinds), st.integers(1, 4))
            for op, kinds in FAULT_KINDS.items()
        )
    )
    kills = st.sampled_from(OPERATIONS).flatmap(
        lambda op: st.tuples(
            st.just("kill"), st.just(op), st.integers(1, _KILL_NTH[op]), st.sampled_from(("before", "after"))
        )
    )
    step = st.one_of(
        st.tuples(st.just("new"), st.integers(1, 40)),
        st.tuples(st.just("pending"), st.integers(1, 4)),
        st.tuples(st.just("succeed"), st.integers(0, 99)),
        faults,
        kills,
        kills,  # twice the weight: a kill is what this property is most about
        st.tuples(st.just("run"), st.sampled_from((0.0, 0.0, 0.3, 1.0))),
        st.tuples(st.just("shift"), st.booleans()),
    )
    return st.lists(step, min_size=2, max_size=max_steps)


def random_sequence(rng: random.Random, steps: int) -> list[Step]:
    """The same kind of sequence from a plain seeded RNG (the independent run draws its own)."""
    out: list[Step] = []
    for _ in range(steps):
        kind = rng.choice(("new", "new", "pending", "succeed", "fault", "fault", "kill", "kill", "run", "run", "shift"))
        if kind == "new":
            out.append(("new", rng.randint(1, 40)))
        elif kind == "pending":
            out.append(("pending", rng.randint(1, 4)))
        elif kind == "succeed":
            out.append(("succeed", rng.randint(0, 99)))
        elif kind == "fault":
            op = rng.choice(OPERATIONS)
            out.append(("fault", op, rng.choice(FAULT_KINDS[op]), rng.randint(1, 4)))
        elif kind == "kill":
            op = rng.choice(OPERATIONS)
            out.append(("kill", op, rng.randint(1, _KILL_NTH[op]), rng.choice(("before", "after"))))
        elif kind == "run":
            out.append(("run", rng.choice((0.0, 0.0, 0.3, 1.0))))
        else:
            out.append(("shift", rng.random() < 0.5))
    return out


@dataclass
class SequenceResult:
    steps: int = 0
    runs: int = 0
    kills: int = 0
    faults: int = 0
    sessions: int = 0
    audit: Audit = field(default_factory=Audit)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.audit.clean and not self.violations


def run_sequence(world: World, steps: Sequence[Step], *, initial: int = 25) -> SequenceResult:
    """Seed `initial` sessions, play the steps (faults and kills armed last fire in one more run), then clear
    every fault and run once more: the archive must then be exactly the SUCCEEDED sessions, each record
    equal to GetStreamSession (less redactions)."""
    result = SequenceResult(steps=len(steps))
    judged = len(world.violations)
    world.seed(initial)
    pending: list[str] = []
    armed: list[dict[str, Any]] = []
    kill: tuple[str, int, str] | None = None
    for step in steps:
        kind = step[0]
        if kind == "new":
            world.seed(int(step[1]))
        elif kind == "pending":
            pending += [world.gls.add(ExportFilesMetadata={"Status": "PENDING"})["Arn"] for _ in range(int(step[1]))]
        elif kind == "succeed" and pending:
            world.gls.set_export(pending.pop(int(step[1]) % len(pending)), "SUCCEEDED")
        elif kind == "fault":
            _, operation, fault_kind, times = step
            armed.append(fault(operation, fault_kind, times=times, seconds=FAULT_SECONDS.get(fault_kind, 0.0)))
        elif kind == "kill":
            kill = (str(step[1]), int(step[2]), str(step[3]))
        elif kind == "shift":
            world.shift(bool(step[1]))
        if kind == "run" or (step is steps[-1] and (armed or kill)):  # what is armed last still fires
            world.faults = armed
            invocation = world.run(timeout=float(step[1]) or None if kind == "run" else None, kill=kill)
            result.runs += 1
            result.kills += invocation.killed
            result.faults += sum(invocation.fired.values())
            armed, kill = [], None
    world.faults = []
    world.shift(False)
    final = world.run()
    result.runs += 1
    if final.failed or final.total("failed"):
        result.violations.append(f"the final clean run did not finish cleanly: {final.error or final.summary}")
    result.audit = world.audit(check_records=True)
    result.violations += world.violations[judged:]  # every run judged (consistency, counts, archive)
    result.sessions = result.audit.expected
    return result


def property_check(
    make_world: WorldFactory,
    *,
    examples: int,
    derandomize: bool = True,
    max_steps: int = 10,
    shrink: bool = True,
    seed: int | None = None,
) -> list[SequenceResult]:
    """Run `examples` hypothesis-drawn sequences (each in a fresh world); raise on the first failure."""
    from hypothesis import given  # noqa: PLC0415 - see sequence_strategy
    from hypothesis import seed as with_seed  # noqa: PLC0415

    results: list[SequenceResult] = []

    @hypothesis_settings(examples, derandomize=derandomize, shrink=shrink)
    @given(steps=sequence_strategy(max_steps))
    def sequences(steps: list[Step]) -> None:
        world = make_world(settings={"READ_TIMEOUT_SECONDS": "1"})  # a "timeout" step (1.3 s) times out
        try:
            result = run_sequence(world, steps)
        finally:
            world.close()
        results.append(result)
        assert result.ok, f"{result.audit.describe()}; {result.violations}"

    (with_seed(seed)(sequences) if seed is not None else sequences)()
    return results

"""The independent run: against a separately started moto server and emulator, controlled over HTTP only."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from local.reliability.constants import OPERATIONS
from local.reliability.control import GLS
from local.reliability.scenarios import FAULT_KINDS, fault
from local.reliability.servers import separate_emulator, separate_moto
from local.reliability.suites.kills import KILL_POINTS_FAST, KillResult
from local.reliability.suites.properties import SequenceResult, random_sequence, run_sequence
from local.reliability.world import World
from local.worker import Worker


@dataclass
class IndependentResult:
    kills: list[KillResult] = field(default_factory=list)
    sequence: SequenceResult = field(default_factory=SequenceResult)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(k.ok for k in self.kills) and self.sequence.ok


def run_independent(log_dir: Path, *, seed: int, steps: int = 30) -> IndependentResult:
    """Against a separately started moto server and emulator (controlled over HTTP), one long world: each
    fast kill point with a random fault armed too, each followed by a clean run and an audit; then a random
    sequence of faults, kills and runs (drawn with `random`, not hypothesis)."""
    started = time.monotonic()
    result = IndependentResult()
    rng = random.Random(seed)
    with (
        separate_moto() as moto_url,
        separate_emulator(seed, latency_ms=2) as emulator_url,
        Worker(log_dir) as worker,
        World(
            moto_url=moto_url,
            worker=worker,
            gls=GLS(url=emulator_url),
            name=f"ind{seed}",
            settings={"READ_TIMEOUT_SECONDS": "1"},
        ) as world,
    ):
        world.gls.seed(150)  # several pages from the start, so every kill point is reached
        for operation, nth, when in KILL_POINTS_FAST:
            kill = KillResult(operation, nth, when)
            world.gls.seed(rng.randint(40, 90))
            world.gls.seed(5, succeeded_fraction=0.0)
            op = rng.choice(OPERATIONS)
            world.faults = [fault(op, rng.choice(FAULT_KINDS[op][:4]), times=rng.randint(1, 3), seconds=1.3)]
            killed = world.run(kill=(operation, nth, when))
            kill.killed = killed.killed
            if not killed.killed:
                kill.violations.append(f"the kill did not happen ({killed.error or 'run completed'})")
            kill.violations += [f"right after the kill: {p}" for p in world.crash_consistent()]
            world.faults = []
            final = world.run()
            if final.failed or final.total("failed"):
                kill.violations.append(f"the next run did not finish cleanly: {final.error or final.summary}")
            kill.audit = world.audit(check_records=True)
            result.kills.append(kill)
        result.sequence = run_sequence(world, random_sequence(rng, steps))
    result.seconds = time.monotonic() - started
    return result

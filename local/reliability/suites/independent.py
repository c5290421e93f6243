"""The independent run: against a separately started moto server and emulator, controlled over HTTP only."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from local.reliability.constants import CANARY, OPERATIONS, REGION
from local.reliability.scenarios import FAULT_KINDS, FAULT_SECONDS, fault
from local.reliability.suites.kills import KILL_POINTS_FAST, KillResult
from local.reliability.suites.properties import SequenceResult, random_sequence, run_sequence
from local.reliability.world import World
from local.stack import LocalStack
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
    """Against a moto server and an emulator in processes of their own (controlled over HTTP only), one
    long world: each fast kill point with a random fault armed too, each followed by a clean run and an
    audit; then a random sequence of faults, kills and runs (drawn with `random`, not hypothesis)."""
    started = time.monotonic()
    result = IndependentResult()
    rng = random.Random(seed)
    with (
        LocalStack(seed, REGION, processes=True, gls_latency_ms=2) as stack,
        Worker(log_dir) as worker,
        World(stack, worker, name=f"ind{seed}", settings={"READ_TIMEOUT_SECONDS": "1"}) as world,
    ):
        world.seed(150)  # several pages from the start, so every kill point is reached
        for n in range(3):  # secrets the harness knows, whatever canary the emulator process writes
            world.gls.add(SignalRequest=f"offer {CANARY}-{n}", AdditionalEnvironmentVariables={"KEY": CANARY})
        for operation, nth, when in KILL_POINTS_FAST:
            kill = KillResult(operation, nth, when)
            judged = len(world.violations)
            world.seed(rng.randint(40, 90))
            world.seed(5, succeeded_fraction=0.0)
            op = rng.choice(OPERATIONS)
            kind = rng.choice(FAULT_KINDS[op][:4])
            world.faults = [fault(op, kind, times=rng.randint(1, 3), seconds=FAULT_SECONDS.get(kind, 0.0))]
            killed = world.run(kill=(operation, nth, when))
            kill.killed = killed.killed
            if not killed.killed:
                kill.violations.append(f"the kill did not happen ({killed.error or 'run completed'})")
            world.faults = []
            final = world.run()
            if final.failed or final.total("failed"):
                kill.violations.append(f"the next run did not finish cleanly: {final.error or final.summary}")
            kill.audit = world.audit(check_records=True)
            kill.violations += world.violations[judged:]  # both runs judged, the killed one right after the kill
            result.kills.append(kill)
        result.sequence = run_sequence(world, random_sequence(rng, steps))
    result.seconds = time.monotonic() - started
    return result

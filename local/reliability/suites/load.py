"""Load: memory must not grow with the number of sessions listed."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from archiver.records import UNDATED_CREATED_AT, object_key, parse_session_arn
from local.reliability.accounting import key_session
from local.reliability.constants import PREFIX
from local.reliability.world import World
from local.stack import LocalStack
from local.worker import Worker


@dataclass
class LoadResult:
    listed: int
    new: int
    runs: int = 0
    archived: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: int = 0
    deferred_runs: int = 0  # runs that hit the time budget and left work to the next one
    failed_runs: int = 0
    seconds: float = 0.0
    maxrss_kb: int = 0  # peak RSS of the worker over the untraced runs
    traced_listed: int = 0  # the follow-up run under tracemalloc (which inflates RSS, so it runs last)
    traced_new: int = 0
    traced_peak_bytes: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.extra or self.violations)


def run_load(
    stack: LocalStack,
    *,
    log_dir: Path,
    listed: Sequence[str],
    new: Sequence[str],
    timeout: float = 300.0,
    max_runs: int = 10,
    settings: Mapping[str, str] | None = None,
    follow_up: int = 0,
) -> LoadResult:
    """`listed` sessions (seeded on `stack`) are listed, of which `new` are not archived yet: run (in one
    fresh, then warm, worker) until a run defers nothing; exactly the new ones must then have been added.
    Peak RSS is that of these runs. With `follow_up`, that many more sessions are then added and archived in
    one run under tracemalloc, for the peak Python heap (tracemalloc's own bookkeeping inflates RSS, so it
    never runs before). `stack` must have started its own moto (the ledger is preloaded straight into it)."""
    result = LoadResult(listed=len(listed), new=len(new))
    started = time.monotonic()
    new_set = set(new)
    with Worker(log_dir, standby=False) as worker:  # a process of its own: its peak RSS is this case's
        world = World(stack, worker, settings=settings, judge=False)  # judged below: 100k items per run is slow
        try:
            stack.preload_ledger(world.table, [a for a in listed if a not in new_set], prefix=PREFIX)
            for _ in range(max_runs):
                invocation = world.run(timeout=timeout)
                result.runs += 1
                result.failed_runs += invocation.failed
                result.maxrss_kb = max(result.maxrss_kb, invocation.maxrss_kb)
                deferred = invocation.total("deferred") or invocation.total("listed") < len(listed)
                result.deferred_runs += bool(deferred)
                if not invocation.failed and not deferred and not invocation.total("failed"):
                    break
            if follow_up:
                new_set.update(world.seed(follow_up))
                traced = world.run(timeout=timeout, trace=True)
                result.traced_listed, result.traced_new = traced.total("listed"), traced.total("new")
                result.traced_peak_bytes = traced.traced_peak_bytes or 0
                if traced.failed or traced.total("deferred"):
                    result.violations.append(f"the traced run did not finish: {traced.error or traced.summary}")
            result.seconds = time.monotonic() - started
            _judge_load(world, new_set, result)
        finally:
            world.close()
    return result


def _judge_load(world: World, new: set[str], result: LoadResult) -> None:
    """Exactly one object per new session, each with its item; no object for any other session."""
    if not new:
        result.violations.append("no new sessions: nothing to judge")
    keys = world.object_keys()
    items = world.items()
    # The file name of each new session's key, whatever its date: from archiver.records, not retyped.
    parsed = [p for p in map(parse_session_arn, new) if p is not None]
    names = {p.arn: key_session(object_key(PREFIX, p, UNDATED_CREATED_AT)) for p in parsed}
    per_name = Counter(key_session(k) for k in keys)
    result.archived = sum(1 for a in new if a in items and items[a]["s3_key"] in keys)
    result.lost = len(new) - result.archived
    result.duplicated = sum(1 for name in names.values() if per_name[name] > 1)
    result.extra = len(set(per_name) - set(names.values()))
    if world.invocations[-1].failed:
        result.violations.append(f"the last run failed: {world.invocations[-1].error}")

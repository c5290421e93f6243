"""One fault, kill, latency and quota engine for the local servers (GameLift Streams emulator, fault proxy).

The engine only decides *what* happens to a request; each server turns a `Decision` into bytes on the
wire in its own protocol (the HTTP plumbing they share is `local.httpserver`).
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Kinds that end the request with an error response (the server picks the protocol's shape).
ERROR_KINDS = frozenset({"throttle", "internal", "access_denied", "not_found", "validation", "throughput", "slowdown"})
# Kinds that change the request without an error: delays, a dropped socket, a partial BatchGetItem.
OTHER_KINDS = frozenset({"latency", "reset", "timeout", "unprocessed"})
KINDS = ERROR_KINDS | OTHER_KINDS
_WHEN = ("before", "after")


@dataclass
class Rule:
    """One injected fault; counters live on the rule so `every`/`times`/`after` are exact."""

    operation: str
    kind: str
    times: int | None = None
    every: int | None = None
    probability: float | None = None
    after: int = 0
    seconds: float = 0.0
    region: str | None = None
    fraction: float = 0.5
    matched: int = 0
    fired: int = 0

    def applies(self, operation: str, region: str, has_next_token: bool) -> bool:
        """Whether the request is one this rule counts at all (before after/every/times)."""
        if self.operation not in ("*", operation):
            return False
        if self.region is not None and self.region != region:
            return False
        if self.kind == "validation" and not has_next_token:
            return False  # only a request that carries a token can have an expired one
        return not (self.kind == "unprocessed" and operation != "BatchGetItem")


@dataclass
class KillRule:
    """SIGKILL `pid` at the `nth` matching request, before serving it or after its response is flushed."""

    pid: int
    operation: str
    nth: int
    when: str
    seen: int = 0
    done: bool = False


@dataclass
class _Bucket:
    tokens: float
    last: float


@dataclass(frozen=True)
class Decision:
    """What a server must do with one request.

    `fault` is None (serve normally), an error kind, "reset" (close the socket, do not serve) or
    "unprocessed". `delay` is slept before serving; `hold` is slept after serving but before the response
    is written (a read timeout that still took effect). Call `FaultPlan.after_response` once the response
    is flushed (or the socket dropped) so that "after" kills run.
    """

    operation: str
    region: str
    fault: str | None = None
    delay: float = 0.0
    hold: float = 0.0
    fraction: float = 0.5
    quota: bool = False
    killed_before: bool = False
    kill_after: tuple[int, ...] = ()
    generation: int = 0  # FaultPlan's generation when decided: a cleared plan runs no "after" kill of before

    @property
    def logged_fault(self) -> str | None:
        """The fault as the call log records it: "kill" (killed before serving), "quota", a kind, or None."""
        return "kill" if self.killed_before else ("quota" if self.quota else self.fault)


class FaultPlan:
    """Thread-safe, seeded set of fault rules, kill rules, base latencies and quotas."""

    def __init__(
        self,
        seed: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        killer: Callable[[int], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._seed = seed
        self._clock = clock
        self._killer = killer or _sigkill
        self._rules: list[Rule] = []
        self._kills: list[KillRule] = []
        self._generation = 0  # bumped by clear(): a response held past it (a "timeout") kills no one
        self._limits: dict[str, tuple[float, float]] = {}
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self.base_latency: dict[str, float] = {}
        self.fired: collections.Counter[tuple[str, str]] = collections.Counter()
        self._sleep_cond = threading.Condition()
        self._generation = 0
        self._closed = False

    # -- configuration -------------------------------------------------------------------------------

    def inject(
        self,
        operation: str,
        kind: str,
        *,
        times: int | None = None,
        every: int | None = None,
        probability: float | None = None,
        after: int = 0,
        seconds: float = 0.0,
        region: str | None = None,
        fraction: float = 0.5,
    ) -> None:
        """Add a rule; with no times/every/probability it fires on every matching request."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(KINDS)}")
        if every is not None and every < 1:
            raise ValueError("every must be >= 1")
        if times is not None and times < 0:
            raise ValueError("times must be >= 0")
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if not 0.0 < fraction <= 1.0:
            raise ValueError("fraction must be within (0, 1]")
        rule = Rule(operation, kind, times, every, probability, after, seconds, region, fraction)
        with self._lock:
            self._rules.append(rule)

    def kill(self, pid: int, operation: str, *, nth: int = 1, when: str = "before") -> None:
        """SIGKILL `pid` when the nth request for `operation` ("*" for any) arrives.

        "before": the request is not served (the socket is dropped), so it never takes effect.
        "after": the request is served and its response flushed, then the process dies.
        """
        if when not in _WHEN:
            raise ValueError(f"when must be one of {_WHEN}, not {when!r}")
        if nth < 1:
            raise ValueError("nth must be >= 1")
        with self._lock:
            self._kills.append(KillRule(pid, operation, nth, when))

    def rate_limit(self, operation: str, per_second: float, burst: int | None = None) -> None:
        """Enforce a token-bucket quota per (operation, region); "*" gives every operation its own bucket."""
        if per_second <= 0:
            raise ValueError("per_second must be > 0")
        capacity = float(burst if burst is not None else max(1, int(per_second)))
        with self._lock:
            self._limits[operation] = (per_second, capacity)
            self._buckets = {k: b for k, b in self._buckets.items() if k[0] != operation}

    def clear(self, *, limits: bool = True) -> None:
        """Drop rules, kill rules and counters (and, unless limits=False, quotas and base latency)."""
        with self._lock:
            self._rules.clear()
            self._kills.clear()
            self.fired.clear()
            self._generation += 1
            if limits:
                self._limits.clear()
                self._buckets.clear()
                self.base_latency.clear()
        self.wake()

    def apply_json(self, spec: Mapping[str, Any]) -> None:
        """Configure from a JSON object (the HTTP control APIs use this).

        {"operation", "kind", ...inject kwargs} | {"kind": "kill", "pid", "operation", "nth", "when"} |
        {"kind": "rate_limit", "operation", "per_second", "burst"} | {"kind": "base_latency", "operation",
        "seconds"}.
        """
        spec = dict(spec)
        kind = str(spec.pop("kind", ""))
        operation = str(spec.pop("operation", "*"))
        if kind == "kill":
            self.kill(int(spec["pid"]), operation, nth=int(spec.get("nth", 1)), when=str(spec.get("when", "before")))
        elif kind == "rate_limit":
            burst = spec.get("burst")
            self.rate_limit(operation, float(spec["per_second"]), None if burst is None else int(burst))
        elif kind == "base_latency":
            self.base_latency[operation] = float(spec["seconds"])
        else:
            allowed = {"times", "every", "probability", "after", "seconds", "region", "fraction"}
            unknown = set(spec) - allowed
            if unknown:
                raise ValueError(f"unknown fault rule fields {sorted(unknown)}")
            self.inject(operation, kind, **spec)

    @property
    def rules(self) -> list[Rule]:
        """A snapshot of the rules with their counters."""
        with self._lock:
            return [Rule(**vars(r)) for r in self._rules]

    # -- decisions -----------------------------------------------------------------------------------

    def decide(self, operation: str, region: str, has_next_token: bool = False) -> Decision:
        """Decide the fate of one request; runs "before" kills itself."""
        kill_now: list[int] = []
        kill_after: list[int] = []
        decision: Decision | None = None
        with self._lock:
            for k in self._kills:
                if k.done or k.operation not in ("*", operation):
                    continue
                k.seen += 1
                if k.seen == k.nth:
                    k.done = True
                    (kill_now if k.when == "before" else kill_after).append(k.pid)
            if kill_now:
                self.fired[(operation, "kill")] += 1
            else:
                decision = self._decide_locked(operation, region, has_next_token, tuple(kill_after))
        if decision is not None:
            return decision
        for pid in kill_now:
            self._killer(pid)
        return Decision(
            operation,
            region,
            fault="reset",
            killed_before=True,
            kill_after=tuple(kill_after),
            generation=self._generation,
        )

    def _decide_locked(
        self, operation: str, region: str, has_next_token: bool, kill_after: tuple[int, ...]
    ) -> Decision:
        delay = self.base_latency.get(operation, self.base_latency.get("*", 0.0))
        if self._over_quota(operation, region):
            self.fired[(operation, "quota")] += 1
            return Decision(
                operation, region, "throttle", delay, quota=True, kill_after=kill_after, generation=self._generation
            )
        hold = 0.0
        for rule in self._rules:
            if not rule.applies(operation, region, has_next_token) or not self._fires(rule):
                continue
            self.fired[(operation, rule.kind)] += 1
            if rule.kind == "latency":
                delay += rule.seconds
            elif rule.kind == "timeout":
                hold = max(hold, rule.seconds)
            else:
                return Decision(
                    operation,
                    region,
                    rule.kind,
                    delay,
                    hold,
                    rule.fraction,
                    kill_after=kill_after,
                    generation=self._generation,
                )
        return Decision(operation, region, None, delay, hold, kill_after=kill_after, generation=self._generation)

    def _fires(self, rule: Rule) -> bool:
        rule.matched += 1
        n = rule.matched - rule.after
        if n <= 0:
            return False
        if rule.every is not None and n % rule.every != 0:
            return False
        if rule.times is not None and rule.fired >= rule.times:
            return False
        if rule.probability is not None and self._rng.random() >= rule.probability:
            return False
        rule.fired += 1
        return True

    def _over_quota(self, operation: str, region: str) -> bool:
        key = operation if operation in self._limits else "*"
        limit = self._limits.get(key)
        if limit is None:
            return False
        rate, capacity = limit
        now = self._clock()
        bucket = self._buckets.setdefault((key, operation, region), _Bucket(capacity, now))
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.last) * rate)
        bucket.last = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return False
        return True

    def after_response(self, decision: Decision) -> None:
        """Run the "after" kills of a request whose response has been flushed, unless the plan was cleared
        since it was decided: a response held past the end of its run (a "timeout" the client gave up on)
        must not kill the worker while it runs the next invocation."""
        if not decision.kill_after:
            return
        with self._lock:
            if decision.generation != self._generation:
                return
            self.fired[(decision.operation, "kill")] += len(decision.kill_after)
        for pid in decision.kill_after:
            self._killer(pid)

    # -- sleeping that stop() can interrupt ------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        """Sleep unless woken by `wake`/`close`: a server with a 60 s "timeout" rule still stops at once."""
        if seconds <= 0:
            return
        deadline = time.monotonic() + seconds
        with self._sleep_cond:
            generation = self._generation
            while not self._closed and generation == self._generation:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._sleep_cond.wait(remaining)

    def wake(self) -> None:
        """Cut short every sleep in progress."""
        with self._sleep_cond:
            self._generation += 1
            self._sleep_cond.notify_all()

    def close(self) -> None:
        """Wake sleepers and make later sleeps return at once (server shutdown)."""
        with self._sleep_cond:
            self._closed = True
            self._generation += 1
            self._sleep_cond.notify_all()

    def reopen(self) -> None:
        """Undo `close` when a server is started again."""
        with self._sleep_cond:
            self._closed = False


def _sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone: the outcome the rule wanted
        os.kill(pid, signal.SIGKILL)

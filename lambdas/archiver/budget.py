"""The run's time: when to stop taking work, and when no request may be sent any more.

Two points before the Lambda's deadline. At `margin` seconds left the run takes no new session but finishes
those in flight. At `reserve` seconds left (one request's worst case: connect and read timeouts, plus the
time to report) no request or retry is sent any more: with its retries and backoff, one stuck call could
otherwise outlast any margin, and Lambda would kill the run before it reports. What is cut off is counted
`deferred` and done by the next run; the writes are idempotent, so a cut between them loses nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CONNECT_TIMEOUT_SECONDS = 5.0
REPORT_SECONDS = 2.0  # to log the summary and flush the metrics after the last request


def request_reserve_seconds(read_timeout_seconds: float) -> float:
    """How long before the deadline the last request may start: its worst case (connect and read timeouts,
    no retry) plus the time to report."""
    return CONNECT_TIMEOUT_SECONDS + read_timeout_seconds + REPORT_SECONDS


class OutOfTime(RuntimeError):
    """No request may be sent any more: its answer (or its retry) could come after the Lambda's deadline."""


class Budget:
    """One invocation's time. Without a deadline (no Lambda context, local runs) nothing ever expires."""

    def __init__(
        self,
        seconds: float | None,
        clock: Callable[[], float] = time.monotonic,
        cutoff_seconds: float | None = None,
    ) -> None:
        self._clock = clock
        now = clock()
        self._deadline = None if seconds is None else now + seconds
        # Never before the work deadline: in-flight work gets at least until then.
        cutoff = seconds if cutoff_seconds is None or seconds is None else max(seconds, cutoff_seconds)
        self._cutoff = None if cutoff is None else now + cutoff

    @classmethod
    def from_context(cls, context: object, margin_seconds: float, reserve_seconds: float = 0.0) -> Budget:
        """Read the remaining time from a Lambda context; no deadline without one (local runs)."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        try:
            seconds = float(remaining()) / 1000.0 if callable(remaining) else None
        except (TypeError, ValueError):
            seconds = None  # not a real Lambda context: no deadline
        if seconds is None:
            return cls(None)
        return cls(max(0.0, seconds - margin_seconds), cutoff_seconds=max(0.0, seconds - reserve_seconds))

    def expired(self) -> bool:
        """No new work: finish what is in flight."""
        return self._deadline is not None and self._clock() >= self._deadline

    def cut_off(self) -> bool:
        """No new request or retry."""
        return self._cutoff is not None and self._clock() >= self._cutoff


class RequestCutoff:
    """Stops every SDK request and retry once the current invocation's budget is cut off.

    Clients are built once per container and outlive invocations, so the hooks read whichever budget the
    handler set for this invocation (none between invocations).
    """

    def __init__(self) -> None:
        self.budget: Budget | None = None

    def install(self, client: Any) -> None:
        client.meta.events.register("before-send", self._before_send)
        client.meta.events.register("needs-retry", self._before_retry)

    def _check(self, event_name: str) -> None:
        budget = self.budget
        if budget is not None and budget.cut_off():
            operation = event_name.rsplit(".", 1)[-1]
            raise OutOfTime(f"{operation} not sent: too little time left before the Lambda's deadline")

    def _before_send(self, event_name: str = "", **_: Any) -> None:
        self._check(event_name)

    def _before_retry(
        self, event_name: str = "", response: Any = None, caught_exception: BaseException | None = None, **_: Any
    ) -> None:
        """Raise instead of sleeping before a retry; an attempt that succeeded is kept."""
        status = getattr(response[0], "status_code", 200) if isinstance(response, tuple) and response else 200
        if caught_exception is not None or status >= 300:
            self._check(event_name)

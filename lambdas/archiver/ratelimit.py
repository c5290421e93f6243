"""Client-side token bucket: stay under the GameLift Streams quota instead of retrying into throttles."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_BURST = 2.0


class TokenBucket:
    """Thread-safe: `acquire` blocks until a request may be sent at `rate` per second (bursts of `burst`).

    In any T seconds at most `burst` + `rate` x T requests start. The default burst of 2 lets a request make
    up for one slot it missed (a scheduling hiccup, a GC pause, or the first page's round trip before the
    first GetStreamSession) instead of losing it for good, as a burst of 1 does; the sustained pace is
    unchanged, and at 18/s under a 20/s quota even a strict one-second window sees at most 2 + 18 = 20.
    """

    def __init__(
        self,
        rate: float,
        burst: float = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting if needed; return the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0  # may go negative: later callers queue behind this one
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

"""One fault, kill, latency and quota engine for the local servers (GameLift Streams emulator, fault proxy).

The engine only decides *what* happens to a request; each server turns a `Decision` into bytes on the
wire in its own protocol. It also holds the small pieces of HTTP plumbing both servers share (lifecycle,
call log, dropping a connection), so neither copies the other.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import random
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

# Kinds that end the request with an error response (the server picks the protocol's shape).
ERROR_KINDS = frozenset({"throttle", "internal", "access_denied", "not_found", "validation", "throughput", "slowdown"})
# Kinds that change the request without an error: delays, a dropped socket, a partial BatchGetItem.
OTHER_KINDS = frozenset({"latency", "reset", "timeout", "unprocessed"})
KINDS = ERROR_KINDS | OTHER_KINDS
_log = logging.getLogger(__name__)
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
        return Decision(operation, region, fault="reset", killed_before=True, kill_after=tuple(kill_after))

    def _decide_locked(
        self, operation: str, region: str, has_next_token: bool, kill_after: tuple[int, ...]
    ) -> Decision:
        delay = self.base_latency.get(operation, self.base_latency.get("*", 0.0))
        if self._over_quota(operation, region):
            self.fired[(operation, "quota")] += 1
            return Decision(operation, region, "throttle", delay, quota=True, kill_after=kill_after)
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
                return Decision(operation, region, rule.kind, delay, hold, rule.fraction, kill_after=kill_after)
        return Decision(operation, region, None, delay, hold, kill_after=kill_after)

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
        """Run the "after" kills of a request whose response has been flushed."""
        if decision.kill_after:
            with self._lock:
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


# -- call log -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRecord:
    """What one request asked for and what it got: tests assert on these, not on server internals."""

    operation: str
    region: str
    params: dict[str, Any]
    status: int | None
    fault: str | None
    at: float = field(default_factory=time.monotonic)


class CallLog:
    """Bounded, thread-safe request log with exact per-operation counts."""

    def __init__(self, maxlen: int = 200_000) -> None:
        self._lock = threading.Condition()
        self._records: collections.deque[CallRecord] = collections.deque(maxlen=maxlen)
        self._counts: collections.Counter[str] = collections.Counter()

    def record(self, record: CallRecord) -> None:
        with self._lock:
            self._records.append(record)
            self._counts[record.operation] += 1
            self._lock.notify_all()

    def wait_for(self, operation: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until `count` requests for `operation` have been answered (or dropped): a test's
        synchronisation point instead of a sleep."""
        with self._lock:
            return self._lock.wait_for(lambda: self._counts[operation] >= count, timeout)

    @property
    def records(self) -> list[CallRecord]:
        with self._lock:
            return list(self._records)

    def counts(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._counts.clear()


# -- shared HTTP plumbing ---------------------------------------------------------------------------------


def region_from_authorization(header: str | None) -> str | None:
    """Region from a SigV4 credential scope: `Credential=AKID/DATE/REGION/SERVICE/aws4_request`."""
    scope = _credential_scope(header)
    return scope[2] if scope else None


def service_from_authorization(header: str | None) -> str | None:
    """Signing service name from a SigV4 credential scope (e.g. "s3", "dynamodb")."""
    scope = _credential_scope(header)
    return scope[3] if scope else None


def _credential_scope(header: str | None) -> list[str] | None:
    if not header:
        return None
    start = header.find("Credential=")
    if start < 0:
        return None
    value = header[start + len("Credential=") :].split(",", 1)[0].strip()
    parts = value.split("/")
    return parts if len(parts) == 5 else None


def drop_connection(handler: BaseHTTPRequestHandler) -> None:
    """End the exchange with no response (RST on close): what a reset or a killed peer looks like."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Service:
    """Something local that runs between `start()` and `stop()`; a context manager for both."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class TruncatedRequest(ConnectionError):
    """The client went away before its request body was complete."""


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that does not log every request to stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logs: a benchmark makes tens of thousands of them."""

    def serve(self) -> None:
        """Answer the request, whatever its method: each server implements this once."""
        raise NotImplementedError

    def _dispatch(self) -> None:
        try:
            self.serve()
        except TruncatedRequest:
            self.close_connection = True  # the client is gone: nothing to answer, nothing was done

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    _pending_call: Callable[[int | None], None] | None = None

    def expect_call(self, log: CallLog, operation: str, region: str, params: dict[str, Any], fault: str | None) -> None:
        """Arrange for this request to be logged by `log_call` once its status is known."""
        self._pending_call = lambda status: log.record(CallRecord(operation, region, params, status, fault))

    def log_call(self, status: int | None) -> None:
        """Log the pending request (once). Servers call it just before writing the response, so a client
        that has its answer always finds its call in the log; and with None when no response is sent."""
        pending, self._pending_call = self._pending_call, None
        if pending is not None:
            pending(status)

    def read_body(self) -> bytes:
        """The request body, de-chunked if the client used Transfer-Encoding: chunked. A body cut short (the
        client died while sending it) raises TruncatedRequest: AWS never acts on an incomplete request, so
        neither may a server here (a proxy that forwarded it would store a truncated object)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline()
                if not line.endswith(b"\n"):
                    raise TruncatedRequest("the connection closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (trailer := self.rfile.readline()) not in (b"\r\n", b"\n"):
                        if not trailer:
                            raise TruncatedRequest("the connection closed inside the trailers")
                    return b"".join(chunks)
                chunk = self.rfile.read(size)
                if len(chunk) < size or not self.rfile.readline().endswith(b"\n"):
                    raise TruncatedRequest("the connection closed inside a chunk")
                chunks.append(chunk)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            raise TruncatedRequest(f"the connection closed after {len(body)} of {length} body bytes")
        return body


class _LoopbackHTTPServer(ThreadingHTTPServer):
    """Threading server that tracks open sockets so stop() can end idle keep-alive connections."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], app: object) -> None:
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn): skip it, loopback needs no DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # Headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK add ~40 ms.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._open_lock:
            self._open.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that vanish mid-response (killed, timed out) are expected; anything else is a bug."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            _log.error("%s: unhandled error serving %s", type(self.app).__name__, client_address, exc_info=error)

    def close_open_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class BackgroundHTTPServer(Service):
    """Start/stop/context-manager lifecycle on 127.0.0.1 with daemon handler threads."""

    handler_class: type[BaseHTTPRequestHandler] = QuietHandler

    def __init__(self, port: int = 0, seed: int = 0) -> None:
        self._port = port
        self.faults = FaultPlan(seed)
        self.log = CallLog()
        self._server: _LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self so `X().start()` chains."""
        if self._server is not None:
            return self
        self.faults.reopen()
        self._server = _LoopbackHTTPServer(self._port, self.handler_class, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake sleeping handlers, end keep-alive connections, join every thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self.faults.close()
        server.shutdown()
        server.close_open_connections()
        server.server_close()  # joins the handler threads (block_on_close)
        if self._thread is not None:
            self._thread.join()
        self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def calls(self) -> list[CallRecord]:
        """Every request so far (bounded), oldest first; logged just before its response is written."""
        return self.log.records

    def call_counts(self) -> collections.Counter[str]:
        """Requests per operation since the last `reset_calls`."""
        return self.log.counts()

    def reset_calls(self) -> None:
        self.log.reset()

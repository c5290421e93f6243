"""The HTTP server plumbing the local servers share (GameLift Streams emulator, fault proxy).

Lifecycle on 127.0.0.1 (start/stop, a process of its own), the call log tests assert on, reading a
request body, applying a `FaultPlan` decision around a request and dropping a connection: written once
here, so neither server copies the other. What a fault *is* lives in `local.faults`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from local.faults import Decision, FaultPlan

_log = logging.getLogger(__name__)


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


# -- requests and connections ----------------------------------------------------------------------------


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

    @contextlib.contextmanager
    def deciding(
        self,
        faults: FaultPlan,
        log: CallLog,
        operation: str,
        region: str,
        params: dict[str, Any],
        has_next_token: bool,
    ) -> Iterator[Decision]:
        """The plan's decision for this request, logged with the status of the response written inside
        the block (or as dropped if none is); "after" kills run once the exchange is over."""
        decision = faults.decide(operation, region, has_next_token)
        self.expect_call(log, operation, region, params, decision.logged_fault)
        try:
            yield decision
        finally:
            self.log_call(None)  # no response was written (dropped socket, client gone)
            faults.after_response(decision)

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

    def __init__(
        self,
        port: int = 0,
        seed: int = 0,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """`clock` (monotonic seconds) drives the quotas and `sleep` does the injected latencies and held
        responses: tests pass their own to check both without a wall clock."""
        self._port = port
        self.faults = FaultPlan(seed) if clock is None else FaultPlan(seed, clock=clock)
        self._sleep = sleep
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

    def sleep(self, seconds: float) -> None:
        """An injected latency or held response (nothing for 0); by default one that `stop()` cuts short."""
        if seconds > 0:
            (self._sleep or self.faults.sleep)(seconds)

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


def serve_until_signalled(server: BackgroundHTTPServer) -> int:
    """A server as its process's whole job (`python -m local.gls`, `python -m local.fault_proxy`): print its
    URL as the first stdout line once it accepts requests (what a parent waits for), serve until SIGTERM
    or SIGINT, then stop it; the exit status, 0."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with server:
        print(server.endpoint_url, flush=True)
        while not stop.wait(3600):
            pass
    return 0

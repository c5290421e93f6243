"""The worker: the real handler in a subprocess that stays warm between invocations, as a Lambda container.

One module for `make reliability` and `make bench`.

Process side, `python -m local.worker RESULT_FD` (`serve`): imports only the standard library, the Lambda
package and what it needs to report (`local.lambda_context`, `local.memory`), never the harness, so its
peak RSS is the handler's. It reads one JSON request per stdin line, {"env", "timeout", "trace", "event",
"modules", "handler", "context"}, and writes one JSON answer per line to RESULT_FD: {"summary"} or
{"error"}, plus "seconds" (the handler call alone), "maxrss_kb" (peak RSS, VmHWM), "rss_after_import_kb",
"traced_peak_bytes" (with "trace") and "modules" (the names in sys.modules, with "modules"). A failed
invocation prints what the Lambda runtime prints (errorMessage, errorType, stackTrace) to stdout.

"handler" is one of HANDLERS (the scheduled run by default, or the event consumer); "context" sets the Lambda
context's identity (function_name, invoked_function_arn, aws_request_id), as a function's own would; by default
`local.lambda_context`'s, in the emulator's account, so the archiver's ownership check applies as in Lambda.

Orchestrator side (`Worker`, `Invocation`): standard library only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_names = itertools.count(1)

# The two entry points of the Lambda package (one asset, two functions).
SCHEDULED = "archiver.handler.handler"
CONSUMER = "archiver.events.handler"
HANDLERS = (SCHEDULED, CONSUMER)
CONTEXT_FIELDS = ("function_name", "invoked_function_arn", "aws_request_id")


@dataclass
class Invocation:
    """What one invocation of the handler returned, as its caller (the Lambda service) would see it."""

    summary: dict[str, Any] | None = None
    error: str | None = None
    killed: bool = False
    returncode: int | None = None
    seconds: float = 0.0
    maxrss_kb: int = 0
    rss_after_import_kb: int = 0  # the process's peak RSS once the handler was imported (its cold start)
    traced_peak_bytes: int | None = None
    fired: dict[str, int] = field(default_factory=dict)  # "Operation:kind" -> faults the servers injected
    calls: dict[str, int] = field(default_factory=dict)  # operation -> requests the servers saw
    modules: tuple[str, ...] = ()  # sys.modules of the worker after the call, when asked for

    @property
    def failed(self) -> bool:
        return self.error is not None or self.killed

    def total(self, name: str) -> int:
        return int((self.summary or {}).get("total", {}).get(name, 0))

    def region(self, region: str) -> dict[str, Any]:
        regions: dict[str, Any] = (self.summary or {}).get("regions", {})
        return dict(regions.get(region, {}))


class _Process:
    """A started worker: its Popen, the pipe it answers on and the file its stdout/stderr go to."""

    def __init__(self, log_path: Path, env: Mapping[str, str]) -> None:
        self.log_path = log_path
        read_fd, write_fd = os.pipe()
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "local.worker", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                env=dict(env),
            )
        os.close(write_fd)
        self.results = os.fdopen(read_fd, "rb")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def request(self, payload: Mapping[str, Any], deadline: float) -> dict[str, Any] | None:
        """Send one request and read its answer; None if the process died first."""
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(json.dumps(payload).encode() + b"\n")
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        ready, _, _ = select.select([self.results], [], [], deadline)
        if not ready:
            self.popen.kill()
            self.stop()
            raise TimeoutError(f"worker {self.pid} gave no answer within {deadline:.0f} s (see {self.log_path})")
        line = self.results.readline()
        return json.loads(line) if line else None

    def stop(self) -> int:
        """End the process: closing its stdin ends its loop; a hung one is killed. Returns its exit code."""
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        try:
            code = self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait()
        with contextlib.suppress(OSError):
            self.results.close()
        return code


class Worker:
    """Runs the real handler in a subprocess that stays warm between invocations.

    With `standby`, a second process is started ahead of need (it imports the handler while the current
    one works), so a killed worker is replaced without paying the import again.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        standby: bool = True,
        deadline: float = 900.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.env = dict(env or {})  # fixed for the process's life, like a function's configuration (log level)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.standby = standby
        self.deadline = deadline
        self.spawned = 0
        self.kills = 0
        self.log_paths: list[Path] = []
        self._current: _Process | None = None
        self._spare: _Process | None = None
        self._tag = f"{os.getpid()}-{next(_names)}"

    def _spawn(self) -> _Process:
        self.spawned += 1
        path = self.log_dir / f"worker-{self._tag}-{self.spawned}.log"
        self.log_paths.append(path)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARCHIVE_", "POWERTOOLS_"))}
        env["PYTHONUNBUFFERED"] = "1"  # a line printed before a SIGKILL is still in the log, as in CloudWatch
        env.update(self.env)
        return _Process(path, env)

    def _process(self) -> _Process:
        if self._current is None:
            self._current, self._spare = (self._spare or self._spawn()), None
        if self.standby and self._spare is None:
            self._spare = self._spawn()
        return self._current

    @property
    def pid(self) -> int:
        """The pid that the next invocation runs in (a kill rule targets it)."""
        return self._process().pid

    def invoke(
        self,
        env: Mapping[str, str],
        *,
        timeout: float | None = None,
        trace: bool = False,
        event: Any = None,
        modules: bool = False,
        handler: str = SCHEDULED,
        context: Mapping[str, str] | None = None,
    ) -> Invocation:
        """One handler invocation with exactly `env` (ARCHIVE_*, AWS_*, ...) and a context of `timeout` s;
        with `modules`, the answer lists the worker's sys.modules after the call. `handler`: one of HANDLERS;
        `context`: CONTEXT_FIELDS of the Lambda context."""
        if handler not in HANDLERS:
            raise ValueError(f"handler must be one of {HANDLERS}, not {handler!r}")
        unknown = set(context or {}) - set(CONTEXT_FIELDS)
        if unknown:
            raise ValueError(f"unknown context fields {sorted(unknown)}; expected some of {CONTEXT_FIELDS}")
        process = self._process()
        started = time.monotonic()
        request = {
            "env": dict(env),
            "timeout": timeout,
            "trace": trace,
            "event": event or {},
            "modules": modules,
            "handler": handler,
            "context": dict(context or {}),
        }
        answer = process.request(request, self.deadline)
        seconds = time.monotonic() - started
        if answer is None:
            self._current = None
            code = process.stop()
            killed = code == -signal.SIGKILL
            self.kills += killed
            return Invocation(killed=killed, returncode=code, seconds=seconds, error=f"worker exited with {code}")
        return Invocation(
            summary=answer.get("summary"),
            error=answer.get("error"),
            seconds=float(answer.get("seconds", seconds)),
            maxrss_kb=int(answer.get("maxrss_kb", 0)),
            rss_after_import_kb=int(answer.get("rss_after_import_kb", 0)),
            traced_peak_bytes=answer.get("traced_peak_bytes"),
            modules=tuple(answer.get("modules", ())),
        )

    def logs(self) -> str:
        """Everything every process of this worker printed (Powertools logs, EMF, runtime errors)."""
        return "".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def close(self) -> None:
        for process in (self._current, self._spare):
            if process is not None:
                process.stop()
        self._current = self._spare = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def serve(result_fd: int) -> int:
    """The worker process: import the handler once, then run it for every request line on stdin."""
    # Imported here, not at the top: the orchestrator never runs the handler in its own process.
    from archiver.handler import handler  # noqa: PLC0415
    from archiver.wiring import wiring  # noqa: PLC0415
    from local.lambda_context import LambdaContext  # noqa: PLC0415
    from local.memory import peak_rss_kb  # noqa: PLC0415

    rss_after_import_kb = peak_rss_kb()
    results = os.fdopen(result_fd, "w", encoding="utf-8")
    configured: dict[str, str] | None = None
    for line in sys.stdin:
        request = json.loads(line)
        env: dict[str, str] = dict(request["env"])
        if env != configured:
            # A new configuration is a new container. The one the process started with (Worker(env=...))
            # was wired at import, its INIT: the first request in that environment keeps that wiring.
            if configured is not None or any(os.environ.get(k) != v for k, v in env.items()):
                _apply(env, configured or {})
                wiring.cache_clear()  # settings and clients built again on the next call
            configured = env
        if request.get("trace"):
            tracemalloc.start()
        context = LambdaContext(timeout_seconds=float(request.get("timeout") or 900.0))
        for name, value in (request.get("context") or {}).items():
            if name in CONTEXT_FIELDS:
                setattr(context, name, str(value))
        entry = handler
        if request.get("handler") == CONSUMER:  # imported on first use: a scheduled worker's RSS stays its own
            from archiver.events import handler as entry  # noqa: PLC0415
        answer: dict[str, Any] = {}
        started = time.perf_counter()
        try:
            answer["summary"] = entry(request.get("event") or {}, context)
        except Exception as error:  # what the Lambda runtime prints for a failed invocation
            print(
                json.dumps(
                    {
                        "errorMessage": str(error),
                        "errorType": type(error).__name__,
                        "stackTrace": traceback.format_exception(error),
                    }
                ),
                flush=True,
            )
            answer["error"] = f"{type(error).__name__}: {error}"
        answer["seconds"] = time.perf_counter() - started
        if request.get("trace"):
            answer["traced_peak_bytes"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        answer["maxrss_kb"] = peak_rss_kb()
        answer["rss_after_import_kb"] = rss_after_import_kb
        if request.get("modules"):
            answer["modules"] = sorted(sys.modules)
        results.write(json.dumps(answer) + "\n")
        results.flush()
    return 0


def _apply(env: Mapping[str, str], previous: Mapping[str, str]) -> None:
    """Exactly `env` on top of the process's own environment: names the previous request set are removed."""
    for name in previous.keys() - env.keys():
        os.environ.pop(name, None)
    os.environ.update(env)


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))

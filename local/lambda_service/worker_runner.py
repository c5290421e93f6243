"""What a function registered over the control API runs: the real handler in a warm subprocess
(`local.worker`, the project's "Lambda container"), with the function's environment and timeout."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local.worker import Worker

_GRACE_SECONDS = 10.0  # past the timeout before a worker that gave no answer is killed


class FunctionError(Exception):
    """The handler failed in the worker (an exception, a timeout, a killed process)."""


class WorkerRunner:
    """A runner (`event -> result`) backed by one `local.worker.Worker`: `archiver.handler.handler` with
    `env` (on this process's environment minus its AWS_*, ARCHIVE_* and POWERTOOLS_*) and a context of
    `timeout_seconds`; its output goes to `log_dir` (a temporary directory, removed by `close`, unless
    given). One invocation at a time, which the backend guarantees per function.

    The worker builds its own `LambdaContext`, so the handler sees the context's default function ARN, not
    the one it was invoked by (a change of `local.worker` would pass it)."""

    def __init__(self, env: Mapping[str, str], *, timeout_seconds: float = 900.0, log_dir: str | None = None) -> None:
        self._env = dict(env)
        self._timeout = timeout_seconds
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if log_dir:
            directory = Path(log_dir)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="lambda-service-")
            directory = Path(self._tmp.name)
        self._worker = Worker(directory, standby=False, deadline=timeout_seconds + _GRACE_SECONDS, env=self._env)

    def __call__(self, event: Any) -> Any:
        try:
            outcome = self._worker.invoke(self._env, timeout=self._timeout, event=event)
        except TimeoutError:
            raise FunctionError(f"Task timed out after {self._timeout:.2f} seconds") from None
        if outcome.failed:
            raise FunctionError(outcome.error or "the worker failed")
        return outcome.summary

    def logs(self) -> str:
        """Everything the handler printed (Powertools logs, EMF, runtime errors)."""
        return self._worker.logs()

    def close(self) -> None:
        self._worker.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

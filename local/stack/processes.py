"""A local server in its own process: started with its stderr in a log file, ready when it prints its URL
(the first stdout line), stopped with SIGTERM (SIGKILL if it lingers), and gone if its parent dies."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

_STOP_TIMEOUT = 10.0


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies, so no server outlives a killed run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


class ServerProcess:
    """One server process. `stdin=True` keeps a pipe for line commands (`request`)."""

    def __init__(
        self, name: str, command: Sequence[str], *, env: Mapping[str, str], log_dir: Path, stdin: bool = False
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_dir / f"{name}.log"
        self._lock = threading.Lock()
        with self.log_path.open("w", encoding="utf-8") as log:
            self.process: subprocess.Popen[str] = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=dict(env),
                preexec_fn=die_with_parent,  # noqa: PLW1509 - nothing in it can deadlock on a lock
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def _line(self, timeout: float, what: str) -> str:
        """The next stdout line, or an error with the server's stderr if none comes in `timeout` seconds."""
        stdout = self.process.stdout
        if stdout is None:
            raise RuntimeError(f"{self.name} has no stdout pipe")
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(stdout.readline()), name=f"{self.name}-read", daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive() or not got or not got[0].strip():
            self.stop()  # also ends a readline still waiting
            raise RuntimeError(
                f"{self.name} ({' '.join(self.command)}) gave no {what} within {timeout:g} s "
                f"(exit code {self.process.poll()}); its stderr:\n{self.stderr_tail()}"
            )
        return got[0].strip()

    def url(self, timeout: float) -> str:
        """The URL the server prints once it accepts requests."""
        return self._line(timeout, "URL")

    def request(self, line: str, timeout: float) -> str:
        """Send one command line on stdin; its one-line answer."""
        with self._lock:
            stdin = self.process.stdin
            if stdin is None:
                raise RuntimeError(f"{self.name} takes no commands")
            stdin.write(line.rstrip("\n") + "\n")
            stdin.flush()
            return self._line(timeout, "answer")

    def stderr_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; reaped and its pipes closed (idempotent)."""
        self.terminate()
        try:
            self.process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()

"""moto server and the emulator in processes of their own (their own GIL), for load and the independent run."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

from local.reliability.constants import REGION


def _read_until(stream: IO[str], pattern: re.Pattern[str], what: str) -> str:
    for line in stream:
        match = pattern.search(line)
        if match:
            return match.group(1)
    raise RuntimeError(f"{what} exited before it was ready")


@contextlib.contextmanager
def separate_moto() -> Iterator[str]:
    """A moto server in its own process (its own GIL): faster under load than the in-process one."""
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        url = _read_until(process.stderr, re.compile(r"Running on (http://\S+)"), "moto server")
        stderr = process.stderr
        threading.Thread(target=lambda: all(True for _ in stderr), name="moto-log-drain", daemon=True).start()
        yield url
    finally:
        _end(process)


def _end(process: subprocess.Popen[str]) -> None:
    """SIGTERM a server we started, SIGKILL it if it does not go."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def separate_emulator(seed: int, *, latency_ms: float = 0.0) -> Iterator[str]:
    """`python -m local.gls_emulator` in its own process, controlled only over its HTTP control API."""
    command = [sys.executable, "-m", "local.gls_emulator", "--port", "0", "--seed", str(seed), "--region", REGION]
    if latency_ms:
        command += ["--latency-ms", str(latency_ms)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield _read_until(process.stdout, re.compile(r"(http://\S+)"), "emulator")
    finally:
        _end(process)

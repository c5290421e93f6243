"""The two programs a benchmark run measures, each in a fresh process of its own: the archiver's real
Lambda handler (`local.worker`, the reliability runs' worker, one fresh process per run), and the naive
script (`python -m bench.naive`).

Both report the same figures: the wall time of the run alone (imports and clients excluded: cold start is
measured on its own), the process's peak RSS and its RSS after imports (VmHWM), and what the program
returned.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.stack.processes import die_with_parent
from local.worker import Worker


@dataclass
class Measured:
    seconds: float
    peak_rss_kb: int
    rss_after_import_kb: int
    report: dict[str, Any]


def _run_process(name: str, command: list[str], env: Mapping[str, str], log_dir: Path) -> Measured:
    result_path = log_dir / f"{name}.json"
    log_path = log_dir / f"{name}.log"
    with log_path.open("w", encoding="utf-8") as log:
        done = subprocess.run(
            [*command, str(result_path)],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            preexec_fn=die_with_parent,
        )
    if done.returncode != 0:
        tail = log_path.read_text(encoding="utf-8")[-3000:]
        raise RuntimeError(f"{name} failed (exit {done.returncode}):\n{tail}")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    return Measured(
        seconds=float(result["seconds"]),
        peak_rss_kb=int(result["peak_rss_kb"]),
        rss_after_import_kb=int(result["rss_after_import_kb"]),
        report=dict(result["report"]),
    )


def run_archiver(env: Mapping[str, str], log_dir: Path, name: str) -> Measured:
    """`archiver.handler.handler({}, context)` once, in a fresh process started with `env`: its import (the
    Lambda INIT: modules and clients) comes before, and outside, the measured call."""
    with Worker(log_dir / name, standby=False, env=env) as worker:
        run = worker.invoke(env)
        if run.failed or run.summary is None:
            raise RuntimeError(f"{name} failed ({run.error}):\n{worker.logs()[-3000:]}")
    return Measured(
        seconds=run.seconds,
        peak_rss_kb=run.maxrss_kb,
        rss_after_import_kb=run.rss_after_import_kb,
        report=run.summary,
    )


def run_naive(env: Mapping[str, str], log_dir: Path, name: str, cap_seconds: float | None) -> Measured:
    """bench.naive in a fresh process; stopped after `cap_seconds` if given."""
    command = [sys.executable, "-m", "bench.naive"]
    if cap_seconds is not None:
        command += ["--cap", str(cap_seconds)]
    return _run_process(name, command, env, log_dir)

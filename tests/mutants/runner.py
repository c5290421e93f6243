"""Apply each mutant to a temporary copy of the archiver, run the fast tests against it, tabulate.

Every run is a child process (`tests.mutants.boot`) that puts the copy first on sys.path and reports the
file of every `archiver` module it imported: a run that tested the installed package instead is an error,
never a pass. A first run without any mutant must pass, or the figures would mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.mutants.catalogue import ARCHIVER, MUTANTS, Mutant, apply, rot

REPO = ARCHIVER.parents[1]
PYTEST_ARGS = (
    "tests/unit",
    "-x",
    "-q",
    "-p",
    "no:cacheprovider",
    "--ignore=tests/unit/test_mutants_catalogue.py",  # it reads the real package, never the copy
)
FAILED_TEST = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Outcome:
    name: str
    verdict: str  # caught, survived, timeout, error
    seconds: float
    detail: str  # the first failing test, or what went wrong


def _copy(workdir: Path) -> Path:
    root = workdir / "src"
    shutil.copytree(ARCHIVER, root / "archiver", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing may shadow the copy but the copy
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_tests(candidate: Mutant | None, timeout: float) -> Outcome:
    """The fast tests against a fresh copy of the package, with `candidate` applied (None: unchanged)."""
    name = candidate.name if candidate else "(no mutant)"
    with tempfile.TemporaryDirectory(prefix="mutant-") as temp:
        workdir = Path(temp)
        root = _copy(workdir)
        if candidate is not None:
            apply(candidate, root / "archiver")
        probe = workdir / "imported.json"
        command = [sys.executable, "-m", "tests.mutants.boot", str(root), str(probe), *PYTEST_ARGS]
        started = time.monotonic()
        try:
            done = subprocess.run(
                command, cwd=REPO, env=_environment(), capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return Outcome(name, "timeout", time.monotonic() - started, f"no verdict within {timeout:g} s")
        seconds = time.monotonic() - started
        if not probe.is_file():
            return Outcome(
                name, "error", seconds, f"the child reported nothing (exit {done.returncode}): {done.stderr[-300:]}"
            )
        imported = json.loads(probe.read_text())
        outside = sorted(n for n, f in imported.items() if f and not Path(f).resolve().is_relative_to(root.resolve()))
        if "archiver" not in imported or outside:
            return Outcome(name, "error", seconds, f"tested the installed package, not the copy: {outside or 'none'}")
    failed = FAILED_TEST.search(done.stdout)
    if done.returncode == 0:
        return Outcome(name, "survived", seconds, "every test passed")
    if done.returncode in (1, 2):  # tests failed, or the mutated package did not even import
        return Outcome(name, "caught", seconds, failed[1] if failed else done.stdout.strip().splitlines()[-1])
    tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    return Outcome(name, "error", seconds, f"pytest exit {done.returncode}: {tail}")


def _table(outcomes: Sequence[Outcome]) -> str:
    width = max(len(o.name) for o in outcomes)
    lines = [f"{'mutant':<{width}}  {'result':<8}  {'seconds':>7}  caught by"]
    lines += [f"{o.name:<{width}}  {o.verdict:<8}  {o.seconds:7.1f}  {o.detail}" for o in outcomes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__)
    parser.add_argument("names", nargs="*", help="run only these mutants (default: all)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per mutant (default 60)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1: cores are shared)")
    args = parser.parse_args(argv)
    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"no such mutant: {', '.join(sorted(unknown))}")
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]

    problems = [problem for m in MUTANTS for problem in rot(m)]
    if problems:
        print("The catalogue no longer matches the code:\n  " + "\n  ".join(problems))
        return 1

    started = time.monotonic()
    sanity = run_tests(None, args.timeout)
    if sanity.verdict != "survived":
        print(f"The fast tests do not pass on an unchanged copy ({sanity.verdict}: {sanity.detail}); no figures.")
        return 1
    print(f"unchanged copy: tests pass in {sanity.seconds:.1f} s, archiver imported from the copy", flush=True)

    outcomes = []
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for outcome in pool.map(lambda candidate: run_tests(candidate, args.timeout), chosen):
            outcomes.append(outcome)
            print(f"  {outcome.name}: {outcome.verdict} ({outcome.seconds:.1f} s)", flush=True)
    caught = sum(o.verdict == "caught" for o in outcomes)
    print()
    print(_table(outcomes))
    print(
        f"\ncaught {caught}/{len(outcomes)} mutants; slowest {max(o.seconds for o in outcomes):.1f} s; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    return 0 if caught == len(outcomes) else 1

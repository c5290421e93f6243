"""`python -m local.reliability` (`make reliability`): every suite at full size (or `--quick`), the figures
printed and written into docs/RELIABILITY.md. `--events-only` runs the event path's suite alone (and prints
it: a partial run does not replace the figures)."""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from local.reliability import __doc__ as package_doc
from local.reliability.constants import DEFAULT_LOG_DIR, REGION
from local.reliability.oracle import Audit
from local.reliability.report import Figures, machine, render, render_events, write_figures
from local.reliability.scenarios import MATRIX
from local.reliability.suites import events
from local.reliability.suites.events_independent import run_events_independent
from local.reliability.suites.fuzz import fuzz_check
from local.reliability.suites.independent import run_independent
from local.reliability.suites.kills import KILL_POINTS_FAST, KILL_POINTS_FULL, run_kill
from local.reliability.suites.load import LoadResult, run_load
from local.reliability.suites.matrix import run_scenario
from local.reliability.suites.properties import property_check
from local.reliability.world import WorldFactory, shared_moto, world_factory
from local.stack import LocalStack
from local.worker import Worker


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    command = "python -m local.reliability " + " ".join(argv) if argv else "make reliability"
    figures = Figures(command=f"{command}  (seed {seed})", started=datetime.now(UTC), machine=machine())
    started = time.monotonic()
    log_dir = DEFAULT_LOG_DIR / f"run-{figures.started:%Y%m%d-%H%M%S}"
    _progress(f"reliability: seed {seed}, logs in {log_dir}")
    with (
        shared_moto() as moto_url,
        Worker(log_dir) as worker,
        Worker(log_dir / "consumer-1") as first,
        Worker(log_dir / "consumer-2") as second,
    ):
        make = world_factory(moto_url, worker, seed=seed)
        if not args.events_only:
            _run_suites(figures, args, make, seed)
        if not args.no_events:
            _run_events(figures, args, make, (first, second), seed)
    if not args.no_events and not args.no_independent:
        _progress("[events independent] separate emulator and moto processes, a contract-only driver ...")
        try:
            figures.events.append(run_events_independent(log_dir / "events-independent", seed=seed + 2))
        except Exception as error:
            figures.events_error = _first_line(error)
    if args.events_only:
        figures.seconds = time.monotonic() - started
        print("\n".join(render_events(figures.events, figures.events_error)))
        return 0 if figures.ok else 1
    if not args.no_load:
        listed, new = (2_000, 500) if args.quick else (args.listed, args.new)
        figures.settings, figures.load = _load(log_dir, listed, new, args.load_timeout, seed)
    if not args.no_independent:
        _progress("[independent] separate emulator and moto processes ...")
        try:
            figures.independent = run_independent(log_dir / "independent", seed=seed + 1)
        except Exception as error:
            figures.independent_error = _first_line(error)
    figures.seconds = time.monotonic() - started
    text = render(figures)
    print(text)
    if not args.no_write:
        write_figures(args.output, text)
        _progress(f"written to {args.output}")
    return 0 if figures.ok else 1


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.reliability", description=(package_doc or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in a few minutes")
    parser.add_argument("--examples", type=int, default=60, help="property-based sequences")
    parser.add_argument("--fuzz-examples", type=int, default=200, help="hostile-input cases")
    parser.add_argument("--listed", type=int, default=100_000, help="load: sessions listed")
    parser.add_argument("--new", type=int, default=10_000, help="load: of which new")
    parser.add_argument(
        "--load-timeout", type=float, default=300.0, help="load: Lambda timeout per run (s; the stack's default)"
    )
    parser.add_argument("--burst", type=int, default=events.FULL.burst, help="events: exports in the burst")
    parser.add_argument("--no-load", action="store_true")
    parser.add_argument("--no-independent", action="store_true")
    parser.add_argument("--no-events", action="store_true", help="leave out the event path's suite")
    parser.add_argument(
        "--events-only",
        action="store_true",
        help="only the event path's suite (printed, docs/RELIABILITY.md untouched)",
    )
    parser.add_argument("--seed", type=int, default=None, help="hypothesis and random seed (default: random)")
    parser.add_argument("--output", type=Path, default=Path("docs/RELIABILITY.md"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser


def _run_suites(figures: Figures, args: argparse.Namespace, make: WorldFactory, seed: int) -> None:
    """Fault matrix, kill matrix, property-based sequences and hostile input, in that order."""
    scale, runs = (0.25, 2) if args.quick else (1.0, None)
    kill_points = KILL_POINTS_FAST if args.quick else KILL_POINTS_FULL
    examples, fuzz_examples = (5, 10) if args.quick else (args.examples, args.fuzz_examples)
    for n, scenario in enumerate(MATRIX, 1):
        result = run_scenario(make, scenario.scaled(scale, runs))
        figures.matrix.append(result)
        _progress(f"[matrix {n}/{len(MATRIX)}] {scenario.name}: {_verdict(result.ok, result.audit, result.violations)}")
    for n, (operation, nth, when) in enumerate(kill_points, 1):
        kill = run_kill(make, operation, nth, when)
        figures.kills.append(kill)
        _progress(f"[kill {n}/{len(kill_points)}] {kill.label}: {_verdict(kill.ok, kill.audit, kill.violations)}")
    _progress(f"[property] {examples} hypothesis sequences ...")
    try:
        figures.properties = property_check(make, examples=examples, derandomize=False, seed=seed)
    except Exception as error:  # reported with the others; hypothesis printed the failing example
        figures.property_error = _first_line(error)
    _progress(f"[fuzz] {fuzz_examples} hypothesis hostile inputs ...")
    try:
        figures.fuzz = fuzz_check(make, examples=fuzz_examples, derandomize=False, seed=seed)
    except Exception as error:
        figures.fuzz_error = _first_line(error)


def _run_events(
    figures: Figures, args: argparse.Namespace, make: WorldFactory, consumers: Sequence[Worker], seed: int
) -> None:
    """The event path's cases (`suites.events`), at full size or --quick's."""
    sizes = dataclasses.replace(events.FAST if args.quick else events.FULL, burst=500 if args.quick else args.burst)

    def progress(case: events.EventCase) -> None:
        _progress(f"[events] {case.name}: {_verdict(case.ok, case.audit, case.violations)} ({case.seconds:.0f} s)")

    try:
        figures.events += events.run_events(make, consumers, sizes, seed, progress)
    except Exception as error:
        figures.events_error = _first_line(error)


def _load(log_dir: Path, listed: int, new: int, timeout: float, seed: int) -> tuple[dict[str, str], list[LoadResult]]:
    """A small listing (`new` // 10, all new) and the large one (`listed`, `new` of them new), each followed
    by a traced run of `new` // 10 more: the peak Python heap at the same number new, N small and large.
    Each on a stack of its own: moto and the emulator (no quota) in processes of their own, no fault proxy."""
    settings = {
        "MAX_CONCURRENCY": "16",
        "LIST_RATE_PER_SECOND": "2000",
        "GET_RATE_PER_SECOND": "2000",
        "TIME_BUDGET_MARGIN_SECONDS": "30",  # the stack's default
    }
    small = max(1, new // 10)
    results: list[LoadResult] = []
    for n_listed, n_new in ((small, small), (listed, new)):
        _progress(f"[load] {n_listed:,} listed, {n_new:,} new, then {small:,} more traced ...")
        with LocalStack(seed, REGION, processes=True, fault_proxy=False) as stack:
            arns = stack.gls.seed(n_listed, succeeded_fraction=1.0)
            chosen = random.Random(seed + n_listed).sample(arns, n_new)
            result = run_load(
                stack,
                log_dir=log_dir / "load",
                listed=arns,
                new=chosen,
                timeout=timeout,
                settings=settings,
                follow_up=small,
            )
        results.append(result)
        _progress(f"[load] {result.archived:,} archived in {result.runs}+1 runs, {result.seconds:.0f} s")
    return settings, results


def _verdict(ok: bool, audit: Audit, violations: Sequence[str]) -> str:
    return ("ok: " if ok else "FAILED: ") + audit.describe() + (f"; {list(violations[:3])}" if violations else "")


def _first_line(error: BaseException) -> str:
    """One line for the table; the whole failure (hypothesis's falsifying example) goes to stderr."""
    _progress("".join(traceback.format_exception(error)) + "\n".join(getattr(error, "__notes__", [])))
    notes = "; ".join(str(n).splitlines()[0] for n in getattr(error, "__notes__", [])[:1])
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} {notes}"[:1000]


if __name__ == "__main__":
    sys.exit(main())

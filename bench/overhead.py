"""`make bench-overhead`: the reconcile run's fixed overhead, measured as a new user would see it.

One point (N sessions listed, k of them new), the Lambda's DEFAULT pacing (LIST/GET_RATE_PER_SECOND and
MAX_CONCURRENCY left unset, as a new user leaves them), against the quota-enforcing emulator in processes
mode (bench.run's stack: 20/s per API and Region, 40 ms GameLift Streams latency, 10 ms DynamoDB/S3
latency), several times, each on fresh servers and in a fresh process (bench.programs, the way `make bench`
runs the handler).

Per repetition: the handler invocation's wall time (what `make bench` reports), the whole process's (start,
imports, client creation, the invocation, exit), the calls the servers saw and the throttles the emulator
counted. The floor is the run's own pace: max(k / get rate, pages / list rate, pages x page latency), with
the page latency the injected one (a lower bound: parsing is not counted). The target is judged on the
handler's median (the process's is printed beside it: in Lambda, imports and clients are the INIT phase).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from archiver.settings import Settings, load_settings
from bench import day_doc, programs
from bench.results import expected_calls, pages_of
from bench.run import BUCKET, REGION, TABLE, Config, bench_stack, program_env, server_calls

PACING_VARIABLES = ("LIST_RATE_PER_SECOND", "GET_RATE_PER_SECOND", "MAX_CONCURRENCY")
TARGET_RATIO = 1.05
ROOT = Path(__file__).resolve().parent.parent
OVERHEAD_JSON = ROOT / "docs" / "overhead.json"
BEGIN, END = "<!-- overhead:begin -->", "<!-- overhead:end -->"


@dataclass
class Repetition:
    handler_s: float  # the invocation alone (imports and clients before it, in the process's INIT)
    process_s: float  # spawn -> exit of the fresh process: interpreter, imports, clients, invocation, exit
    load: float  # 1-minute load average when the repetition started
    calls: dict[str, int]
    throttled: int
    archived: int


def floors(settings: Settings, sessions: int, new: int, gls_latency_s: float) -> tuple[float, float]:
    """(the run's floor, the listing's floor) at the run's own pace."""
    pages = pages_of(sessions)
    listing = max(pages / settings.list_rate_per_second, pages * gls_latency_s)
    return max(new / settings.get_rate_per_second, listing), listing


def default_settings() -> Settings:
    """The settings the Lambda reads when the pacing variables are left unset (its defaults, not retyped)."""
    return load_settings({"ARCHIVE_TABLE_NAME": TABLE, "ARCHIVE_BUCKET_NAME": BUCKET, "AWS_REGION": REGION})


def repeat_once(config: Config, sessions: int, new: int, log_dir: Path, name: str) -> Repetition:
    with bench_stack(config, sessions, new) as stack:
        env = {k: v for k, v in program_env(stack, config).items() if k not in PACING_VARIABLES}
        load = os.getloadavg()[0]
        started = time.perf_counter()
        measured = programs.run_archiver(env, log_dir, name)
        process_s = time.perf_counter() - started
        counts, throttled = server_calls(stack)
    return Repetition(
        handler_s=measured.seconds,
        process_s=process_s,
        load=load,
        calls=dict(sorted(counts.items())),
        throttled=sum(throttled.values()),
        archived=int(measured.report.get("total", {}).get("archived", 0)),
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1_200, help="N listed")
    parser.add_argument("--new", type=int, default=200, help="k of them not archived yet")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--quota", type=float, default=Config.quota, help="emulator quota, requests/s per API")
    parser.add_argument("--gls-latency-ms", type=float, default=Config.gls_latency_ms)
    parser.add_argument("--backend-latency-ms", type=float, default=Config.backend_latency_ms)
    parser.add_argument(
        "--write", action="store_true", help="write docs/overhead.json and its section of docs/PERFORMANCE.md"
    )
    return parser.parse_args(argv)


@dataclass
class Measured:
    floor_s: float
    listing_floor_s: float
    repetitions: list[Repetition]
    wrong: list[str]  # repetitions that did not do exactly the minimal work

    @property
    def handler_s(self) -> float:
        return statistics.median(r.handler_s for r in self.repetitions)

    @property
    def process_s(self) -> float:
        return statistics.median(r.process_s for r in self.repetitions)

    @property
    def throttled(self) -> int:
        return sum(r.throttled for r in self.repetitions)

    @property
    def holds(self) -> bool:
        return self.handler_s / self.floor_s <= TARGET_RATIO and self.throttled == 0 and not self.wrong


def measure(args: argparse.Namespace) -> Measured:
    """Every repetition, printed as it ends."""
    config = Config(quota=args.quota, gls_latency_ms=args.gls_latency_ms, backend_latency_ms=args.backend_latency_ms)
    settings = default_settings()
    floor, listing = floors(settings, args.sessions, args.new, config.gls_latency_ms / 1000)
    print(
        f"N={args.sessions:,} k={args.new:,}, quota {config.quota:g}/s, latency {config.gls_latency_ms:g} ms / "
        f"{config.backend_latency_ms:g} ms, default pacing ({settings.list_rate_per_second:g}/s lists, "
        f"{settings.get_rate_per_second:g}/s gets, {settings.max_concurrency} at once): "
        f"floor {floor:.2f} s (listing {listing:.2f} s)",
        flush=True,
    )
    measured = Measured(floor, listing, [], [])
    expected = expected_calls(args.sessions, args.new)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as logs:
        for n in range(1, args.repetitions + 1):
            rep = repeat_once(config, args.sessions, args.new, Path(logs), f"overhead-{n}")
            measured.repetitions.append(rep)
            print(
                f"[{n}/{args.repetitions}] handler {rep.handler_s:.2f} s ({rep.handler_s / floor:.3f} x floor), "
                f"process {rep.process_s:.2f} s ({rep.process_s / floor:.3f} x), throttled {rep.throttled}, "
                f"archived {rep.archived}, load {rep.load:.2f}",
                flush=True,
            )
            if {k: rep.calls.get(k, 0) for k in expected} != expected or rep.archived != args.new:
                measured.wrong.append(f"repetition {n}: archived {rep.archived}, calls {rep.calls}")
    return measured


def summary(measured: Measured) -> str:
    """The medians against the floor, and the target's verdict."""
    floor, reps = measured.floor_s, measured.repetitions
    handler, process = measured.handler_s, measured.process_s
    lines = [
        f"median of {len(reps)}: handler {handler:.2f} s = {handler / floor:.3f} x floor "
        f"({handler - floor:+.2f} s), process {process:.2f} s = {process / floor:.3f} x floor "
        f"({process - floor:+.2f} s); throttled {measured.throttled}; "
        f"loads {', '.join(f'{r.load:.2f}' for r in reps)}"
    ]
    lines += [f"NOT the minimal work: {line}" for line in measured.wrong]
    verdict = "holds" if measured.holds else "MISSED"
    lines.append(f"target: handler <= {TARGET_RATIO} x floor, 0 throttled, minimal calls: {verdict}")
    return "\n".join(lines)


class Record(TypedDict):
    when: str
    machine: str
    command: str
    sessions: int
    new: int
    floor_s: float
    handler_s: list[float]
    process_s: list[float]
    loads: list[float]
    throttled: int
    minimal: bool
    holds: bool


def record(measured: Measured, args: argparse.Namespace) -> Record:
    """What the section is rendered from (docs/overhead.json)."""
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}",
        "command": "make bench-overhead",
        "sessions": args.sessions,
        "new": args.new,
        "floor_s": measured.floor_s,
        "handler_s": [r.handler_s for r in measured.repetitions],
        "process_s": [r.process_s for r in measured.repetitions],
        "loads": [r.load for r in measured.repetitions],
        "throttled": measured.throttled,
        "minimal": not measured.wrong,
        "holds": measured.holds,
    }


def section(data: Record) -> str:
    """The overhead section of docs/PERFORMANCE.md."""
    handler, process = statistics.median(data["handler_s"]), statistics.median(data["process_s"])
    floor = data["floor_s"]
    loads = ", ".join(f"{load:.2f}" for load in data["loads"])
    return "\n".join(
        [
            BEGIN,
            "## The reconcile run's fixed overhead",
            "",
            f"`{data['command']}` ({data['when']}, {data['machine']}): N = {data['sessions']:,} listed, k = "
            f"{data['new']:,} new, the emulator's 20/s quota, 40 ms / 10 ms latency, the Lambda's default pacing "
            f"(18/s), each repetition on fresh servers and in a fresh process, as a new user runs it. Floor at the "
            f"run's own pace: {floor:.2f} s.",
            "",
            f"| | median of {len(data['handler_s'])} | x floor | above the floor |",
            "|---|---|---|---|",
            f"| the handler's invocation | {handler:.2f} s | {handler / floor:.3f} | {handler - floor:+.2f} s |",
            f"| the whole process (interpreter, imports, clients, invocation, exit) | {process:.2f} s | "
            f"{process / floor:.3f} | {process - floor:+.2f} s |",
            "",
            f"Throttled: {data['throttled']}; minimal calls: {'yes' if data['minimal'] else 'NO'}; 1-minute loads "
            f"{loads}. Target: the handler within {TARGET_RATIO} x the floor: "
            f"**{'holds' if data['holds'] else 'missed'}**.",
            END,
        ]
    )


def section_from_json(path: Path = OVERHEAD_JSON) -> str:
    """The section rendered from docs/overhead.json, or "" (bench.report appends it after a full bench)."""
    if not path.exists():
        return ""
    data: Record = json.loads(path.read_text(encoding="utf-8"))
    return section(data)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    measured = measure(args)
    print(summary(measured))
    if args.write:
        data = record(measured, args)
        OVERHEAD_JSON.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        doc = ROOT / "docs" / "PERFORMANCE.md"
        doc.write_text(day_doc.replace_section(doc.read_text(encoding="utf-8"), section(data), BEGIN, END))
    return 0


if __name__ == "__main__":
    sys.exit(main())

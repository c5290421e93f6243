"""The benchmark's data: one run, all results, the floor, the minimal calls and the targets judged on them.

`bench.run` measures and fills these in; `bench.report` renders them. Neither imports the other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

PAGE_SIZE = 100  # sessions per ListStreamSessionsByAccount page, and keys per BatchGetItem
ARCHIVER_CALLS = ("ListStreamSessionsByAccount", "BatchGetItem", "GetStreamSession", "PutObject", "PutItem")
NAIVE_CALLS = ("ListStreamSessionsByAccount", "GetItem", "GetStreamSession", "PutObject", "PutItem")
RATIO_TARGET = 1.15
THROTTLE_TARGET = 0.01
MEMORY_TARGET_MB = 5.0


def pages_of(sessions: int) -> int:
    return max(1, math.ceil(sessions / PAGE_SIZE))


def floor_seconds(sessions: int, new: int, quota: float, page_latency: float) -> float:
    """max(ceil(N/100) x page latency, ceil(N/100) / quota, k / quota)."""
    pages = pages_of(sessions)
    return max(pages * page_latency, pages / quota, new / quota)


def expected_calls(sessions: int, new: int) -> dict[str, int]:
    """The archiver's minimal calls: one list and one BatchGetItem per page, one Get/PutObject/PutItem per new."""
    pages = pages_of(sessions)
    return {
        "ListStreamSessionsByAccount": pages,
        "BatchGetItem": pages,
        "GetStreamSession": new,
        "PutObject": new,
        "PutItem": new,
    }


@dataclass
class Calibration:
    """Median round trips of single calls, sequential, by a bare boto3 client (seconds)."""

    list_page: float
    get_stream_session: float
    batch_get_item: float
    get_item: float
    put_object: float
    put_item: float
    samples: int


@dataclass
class Run:
    program: str
    sessions: int
    new: int
    seconds: float  # measured wall time of the run (after imports and clients)
    finished: bool
    calls: dict[str, int]
    throttled: dict[str, int]
    peak_rss_mb: float
    rss_after_import_mb: float
    load_average: float  # 1-minute load average when the run started (other processes on the machine)
    report: dict[str, Any] = field(default_factory=dict)
    estimated_seconds: float | None = None  # naive only: measured, or extrapolated if it was stopped

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_throttled(self) -> int:
        return sum(self.throttled.values())


@dataclass
class Results:
    config: dict[str, Any]
    command: str
    machine: dict[str, str]
    calibration: dict[str, Any]
    runs: list[Run]
    points: list[tuple[int, int]]
    cold_start: dict[str, Any] | None
    package: dict[str, Any] | None
    started: float
    seconds: float

    def run(self, program: str, sessions: int, new: int) -> Run | None:
        for run in self.runs:
            if (run.program, run.sessions, run.new) == (program, sessions, new):
                return run
        return None

    def floor(self, sessions: int, new: int) -> float:
        return floor_seconds(sessions, new, float(self.config["quota"]), float(self.calibration["list_page"]))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        run_fields = {f.name for f in fields(Run)}
        return cls(
            config=data["config"],
            command=data["command"],
            machine=data["machine"],
            calibration=data["calibration"],
            runs=[Run(**{k: v for k, v in run.items() if k in run_fields}) for run in data["runs"]],
            points=[(int(n), int(k)) for n, k in data["points"]],
            cold_start=data.get("cold_start"),
            package=data.get("package"),
            started=float(data["started"]),
            seconds=float(data["seconds"]),
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["runs"] = [asdict(r) | {"floor_seconds": self.floor(r.sessions, r.new)} for r in self.runs]
        out["targets"] = [asdict(t) for t in targets(self)]
        return out


@dataclass
class Target:
    name: str
    holds: bool
    detail: str


def targets(results: Results) -> list[Target]:
    """The issue's targets, each judged on the archiver's runs."""
    out: list[Target] = []
    archiver_runs = [r for r in results.runs if r.program == "archiver"]
    checked = [r for r in archiver_runs if r.sessions and r.new / r.sessions >= 0.10]
    ratios = {(r.sessions, r.new): r.seconds / results.floor(r.sessions, r.new) for r in checked}
    out.append(
        Target(
            f"archiver / floor <= {RATIO_TARGET} where k >= 10% of N",
            bool(ratios) and all(v <= RATIO_TARGET for v in ratios.values()),
            ", ".join(f"N={n:,} k={k:,}: {v:.3f}" for (n, k), v in ratios.items()) or "no such point",
        )
    )
    worst = max(archiver_runs, key=lambda r: r.total_throttled / max(1, r.total_calls), default=None)
    out.append(
        Target(
            "archiver throttled < 1% of calls",
            all(r.total_throttled < THROTTLE_TARGET * max(1, r.total_calls) for r in archiver_runs),
            f"{sum(r.total_throttled for r in archiver_runs)} throttled of "
            f"{sum(r.total_calls for r in archiver_runs):,} calls in all"
            + (f"; worst point {worst.total_throttled / max(1, worst.total_calls):.2%}" if worst else ""),
        )
    )
    pairs = []
    for new in sorted({r.new for r in archiver_runs}):
        same = sorted((r for r in archiver_runs if r.new == new), key=lambda r: r.sessions)
        if len(same) >= 2 and same[-1].sessions > same[0].sessions:
            pairs.append((same[0], same[-1]))
    out.append(
        Target(
            f"peak memory flat in N (largest N within {MEMORY_TARGET_MB:g} MB of smallest, same k)",
            bool(pairs) and all(big.peak_rss_mb - small.peak_rss_mb <= MEMORY_TARGET_MB for small, big in pairs),
            "; ".join(
                f"k={small.new:,}: N={small.sessions:,} {small.peak_rss_mb:.1f} MB, "
                f"N={big.sessions:,} {big.peak_rss_mb:.1f} MB ({big.peak_rss_mb - small.peak_rss_mb:+.1f} MB)"
                for small, big in pairs
            )
            or "no two points with the same k",
        )
    )
    wrong = [
        f"N={r.sessions:,} k={r.new:,}: {r.calls}"
        for r in archiver_runs
        if {name: r.calls.get(name, 0) for name in ARCHIVER_CALLS} != expected_calls(r.sessions, r.new)
        or set(r.calls) - set(ARCHIVER_CALLS)
    ]
    out.append(
        Target(
            "archiver makes the minimal calls (ceil(N/100) List and BatchGetItem, k Get, PutObject, PutItem)",
            not wrong,
            "exact at every point" if not wrong else "; ".join(wrong),
        )
    )
    bad = [
        f"N={r.sessions:,} k={r.new:,}: {r.report.get('total')}"
        for r in archiver_runs
        if (r.report.get("total") or {}).get("archived") != r.new or (r.report.get("total") or {}).get("failed")
    ]
    out.append(Target("archiver archived every new session, none failed", not bad, "; ".join(bad) or "yes"))
    return out


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown CPU" elsewhere): every figure names its machine."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"

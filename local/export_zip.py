"""The export ZIP the emulator writes when a session with a pending export ends: small, valid and the same
bytes for the same seed and session, laid out as GameLift Streams lays it out.

`application/` (what the game wrote: a log), `profile/` and `temp/` (empty here), and
`stats/perf_stats_v1.csv`: the documented header ("Real-time performance stats") and one row a second of
the session's streaming time, capped (a day-long session would otherwise be 86,400 rows). Standard library
only, so the emulator process stays light; readers (issue 11) get a real ZIP to open member by member.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

PERF_STATS_MEMBER: Final = "stats/perf_stats_v1.csv"
PERF_STATS_COLUMNS: Final = (
    "timestamp",
    "app_cpu_normalized",
    "app_mem_mb",
    "app_mem_normalized",
    "shared_sys_cpu_pct",
    "shared_sys_mem_mb",
    "shared_sys_mem_pct",
    "shared_sys_gpu_pct",
    "shared_sys_vram_mb",
    "shared_sys_vram_pct",
)
APPLICATION_LOG_MEMBER: Final = "application/logs/game.log"
FOLDERS: Final = ("application/", "profile/", "temp/", "stats/")
MAX_STATS_ROWS: Final = 600
_SYSTEM_MEM_MB: Final = 16_384
_SYSTEM_VRAM_MB: Final = 8_192
_EPOCH: Final = datetime(1980, 1, 1, tzinfo=UTC)  # ZIP timestamps start here


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def streaming_window(detail: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """When the session streamed: StreamingStartedAt (else CreatedAt) to StreamingEndedAt (else the start)."""
    start = _aware(detail.get("StreamingStartedAt")) or _aware(detail.get("CreatedAt")) or _EPOCH
    end = _aware(detail.get("StreamingEndedAt")) or start
    return start, max(start, end)


def stats_rows(detail: Mapping[str, Any], rng: random.Random, max_rows: int = MAX_STATS_ROWS) -> list[list[str]]:
    """One row a second of streaming time (at most `max_rows`), a plausible random walk per column."""
    start, end = streaming_window(detail)
    count = min(max_rows, int((end - start).total_seconds()))
    cpu, mem, sys_cpu, gpu, vram = 0.35, 2_400.0, 40.0, 55.0, 3_000.0
    rows: list[list[str]] = []
    for second in range(count):
        cpu = min(1.0, max(0.02, cpu + rng.uniform(-0.04, 0.04)))
        mem = min(_SYSTEM_MEM_MB * 0.9, max(300.0, mem + rng.uniform(-20.0, 25.0)))
        sys_cpu = min(100.0, max(cpu * 100 * 0.6, sys_cpu + rng.uniform(-3.0, 3.0)))
        gpu = min(100.0, max(5.0, gpu + rng.uniform(-4.0, 4.0)))
        vram = min(_SYSTEM_VRAM_MB * 0.95, max(500.0, vram + rng.uniform(-30.0, 30.0)))
        sys_mem = mem + 1_800.0
        rows.append(
            [
                _iso(start + timedelta(seconds=second)),
                f"{cpu:.4f}",
                f"{mem:.1f}",
                f"{mem / _SYSTEM_MEM_MB:.4f}",
                f"{sys_cpu:.1f}",
                f"{sys_mem:.1f}",
                f"{100 * sys_mem / _SYSTEM_MEM_MB:.1f}",
                f"{gpu:.1f}",
                f"{vram:.1f}",
                f"{100 * vram / _SYSTEM_VRAM_MB:.1f}",
            ]
        )
    return rows


def perf_stats_csv(detail: Mapping[str, Any], rng: random.Random, max_rows: int = MAX_STATS_ROWS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PERF_STATS_COLUMNS)
    writer.writerows(stats_rows(detail, rng, max_rows))
    return out.getvalue()


def application_log(detail: Mapping[str, Any]) -> str:
    """What a game might log: start, map, end. No secrets: the session's env values and signals stay out."""
    start, end = streaming_window(detail)
    args = detail.get("AdditionalLaunchArgs")
    launch = " ".join(str(a) for a in args) if isinstance(args, list) else ""
    lines = [
        f"{_iso(start)} INFO  game started, args: {launch}",
        f"{_iso(start)} INFO  user {detail.get('UserId', '')} connected from {detail.get('Location', '')}",
        f"{_iso(end)} INFO  session ended ({detail.get('StatusReason', 'unknown')})",
    ]
    return "\n".join(lines) + "\n"


def export_zip(detail: Mapping[str, Any], *, seed: int = 0, max_rows: int = MAX_STATS_ROWS) -> bytes:
    """The ZIP's bytes for one ended session: deterministic from `seed` and the session's Arn and times."""
    rng = random.Random(f"{seed}:{detail.get('Arn', '')}")
    _, end = streaming_window(detail)
    stamp = max(end, _EPOCH).astimezone(UTC).timetuple()[:6]
    members: list[tuple[str, str]] = [
        (APPLICATION_LOG_MEMBER, application_log(detail)),
        (PERF_STATS_MEMBER, perf_stats_csv(detail, rng, max_rows)),
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for folder in FOLDERS:
            info = zipfile.ZipInfo(folder, date_time=stamp)
            info.external_attr = 0o40755 << 16 | 0x10  # a directory, for unzip and for Windows
            archive.writestr(info, b"")
        for name, text in members:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()

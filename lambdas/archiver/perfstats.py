"""The session's `stats/perf_stats_v1.csv` as typed rows: one gzip JSON-lines object per session for Athena.

STATS_COLUMNS is the one definition of the documented columns (developer guide, "Real-time performance
stats"); STATS_TABLE_COLUMNS adds `session_arn` and the `extra` map, and is what the Glue table and the docs
import. The CSV is read leniently and nothing in it can crash the run:

- a UTF-8 BOM is dropped; lines end with LF or CRLF; bytes that are not UTF-8 become U+FFFD (and so bad values);
- the first line is the header: names are matched case-insensitively after stripping; it must name
  `timestamp` and no name twice (else status `bad_header`, no rows); empty names are ignored; documented
  columns it lacks are null in every row; other columns go, as text, into `extra` (at most
  MAX_EXTRA_COLUMNS of them, the rest ignored and counted);
- a value that is empty is null; one that is not a finite decimal number is null and counted (`bad_values`);
- `timestamp` is ISO 8601 (with Z, with an offset, or without, meaning UTC) and becomes Athena `timestamp`
  text (records.athena_timestamp); one that does not parse is null, the row kept and counted (`bad_timestamps`);
- a row with too few or too many fields keeps what maps to the header and is counted (`ragged_rows`);
  a line that is not CSV, or longer than MAX_LINE_CHARS, is skipped and counted (`bad_lines`); blank lines
  (or only commas) are skipped;
- at most MAX_ROWS rows (or the ZIP reader's inflated-bytes cap): the rest is not read, status `truncated`.

Statuses (STATS_STATUSES), one per session:
  stored       the whole CSV was read; its rows are in the stats object (possibly none).
  truncated    a cap stopped the reading; the rows before it are in the stats object.
  absent       the ZIP has no member named exactly stats/perf_stats_v1.csv.
  bad_header   the CSV's first line is missing, lacks `timestamp` or repeats a name: no rows.
  unsupported  the ZIP or member is one this reader does not read (compression method, encryption, spanning).
  malformed    the ZIP or member is inconsistent (truncated, offsets outside the file, CRC or size lies).
  too_large    the central directory exceeds its caps (bytes or entries): not read.
Only `stored` and `truncated` produce a stats object (StatsSummary.has_rows_object); for every other status
whatever was written to `out` must be discarded, and `rows` is 0.

Standard library only, no AWS: the S3 adapter supplies the RangeReader and uploads what `out` received.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Final

from archiver.manifest import PERF_STATS_MEMBER, Column, Manifest, build_manifest
from archiver.timestamps import athena_timestamp
from archiver.ziprange import (
    DEFAULT_LIMITS,
    CountingReader,
    RangeReader,
    ZipError,
    ZipLimitExceeded,
    ZipLimits,
    ZipUnsupported,
    open_member,
    read_central_directory,
)

MAX_ROWS: Final = 1_000_000  # 11.5 days of one row a second: more than any session lasts
MAX_LINE_CHARS: Final = 64 * 1024
MAX_EXTRA_COLUMNS: Final = 64
TIMESTAMP: Final = "timestamp"
EXTRA: Final = "extra"

STATS_COLUMNS: Final[tuple[Column, ...]] = (
    Column(
        TIMESTAMP, "timestamp", "When the sample was taken (UTC; the CSV's ISO 8601 time, UTC when it has no offset)."
    ),
    Column("app_cpu_normalized", "double", "The application's CPU use, normalised by the service (as in the CSV)."),
    Column("app_mem_mb", "double", "The application's memory use, in MB."),
    Column("app_mem_normalized", "double", "The application's memory use, normalised by the service (as in the CSV)."),
    Column("shared_sys_cpu_pct", "double", "CPU use of the shared compute, in percent."),
    Column("shared_sys_mem_mb", "double", "Memory use of the shared compute, in MB."),
    Column("shared_sys_mem_pct", "double", "Memory use of the shared compute, in percent."),
    Column("shared_sys_gpu_pct", "double", "GPU use of the shared compute, in percent."),
    Column("shared_sys_vram_mb", "double", "VRAM use of the shared compute, in MB."),
    Column("shared_sys_vram_pct", "double", "VRAM use of the shared compute, in percent."),
)
STATS_TABLE_COLUMNS: Final[tuple[Column, ...]] = (
    Column("session_arn", "string", "ARN of the stream session the sample belongs to."),
    *STATS_COLUMNS,
    Column(EXTRA, "map<string,string>", "The CSV's undocumented columns, by header name, as text."),
)
_NUMERIC: Final = tuple(column.name for column in STATS_COLUMNS if column.name != TIMESTAMP)
_DOCUMENTED: Final = frozenset(column.name for column in STATS_COLUMNS)
_NUMERIC_SET: Final = frozenset(_NUMERIC)
_EMPTY_ROW: Final[Mapping[str, object]] = dict.fromkeys((column.name for column in STATS_COLUMNS), None)
_JSON: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # ensure_ascii: the lines are ASCII
_BATCH: Final = 1000  # rows per gzip write

STATS_STATUSES: Final = ("stored", "truncated", "absent", "bad_header", "unsupported", "malformed", "too_large")
ROW_STATUSES: Final = frozenset({"stored", "truncated"})

STATS_SUMMARY_COLUMNS: Final[tuple[Column, ...]] = (
    Column(
        "status", "string", "What happened to the stats: " + ", ".join(STATS_STATUSES) + " (docs: archiver.perfstats)."
    ),
    Column("rows", "bigint", "Rows in the stats object (0 unless the status is stored or truncated)."),
    Column("bad_values", "bigint", "Values that were not finite decimal numbers, stored as null."),
    Column("bad_timestamps", "bigint", "Rows whose timestamp was missing or not ISO 8601, kept with a null timestamp."),
    Column("ragged_rows", "bigint", "Rows with more or fewer fields than the header, kept with what maps."),
    Column("bad_lines", "bigint", "Lines skipped: not CSV, or longer than the line cap."),
    Column("ignored_columns", "bigint", "Undocumented columns beyond the cap of the extra map, not kept."),
    Column("missing_columns", "array<string>", "Documented columns the CSV's header lacks (null in every row)."),
    Column("extra_columns", "array<string>", "Undocumented columns of the CSV's header, kept in the extra map."),
    Column("reason", "string", "Why the stats are not stored, or what cap truncated them (fixed text)."),
)

_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class StatsSummary:
    """What happened to one session's stats: the status and the counts of what was repaired or skipped."""

    status: str
    rows: int = 0
    bad_values: int = 0
    bad_timestamps: int = 0
    ragged_rows: int = 0
    bad_lines: int = 0
    ignored_columns: int = 0
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    reason: str | None = None  # fixed text from the reader (never CSV or ZIP content)

    @property
    def truncated(self) -> bool:
        return self.status == "truncated"

    @property
    def has_rows_object(self) -> bool:
        """True when `out` holds the stats object to store; otherwise discard it."""
        return self.status in ROW_STATUSES

    def to_record(self) -> dict[str, object]:
        """JSON-able, keyed and ordered by STATS_SUMMARY_COLUMNS (for the session's record)."""
        values: dict[str, object] = {
            "status": self.status,
            "rows": self.rows,
            "bad_values": self.bad_values,
            "bad_timestamps": self.bad_timestamps,
            "ragged_rows": self.ragged_rows,
            "bad_lines": self.bad_lines,
            "ignored_columns": self.ignored_columns,
            "missing_columns": list(self.missing_columns),
            "extra_columns": list(self.extra_columns),
            "reason": self.reason,
        }
        return {column.name: values[column.name] for column in STATS_SUMMARY_COLUMNS}


def _number(text: str) -> float | None:
    """A finite decimal number, or None; raises ValueError for anything else (the caller counts it)."""
    value = text.strip()
    if not value:
        return None
    if not _NUMBER.fullmatch(value):
        raise ValueError("not a decimal number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _timestamp(text: str) -> str | None:
    """Athena timestamp text of an ISO 8601 time (no offset = UTC); ValueError if it does not parse."""
    try:
        moment = datetime.fromisoformat(text.strip())
        formatted = athena_timestamp(moment)
    except OverflowError as error:  # an offset that moves the time out of datetime's years 1..9999
        raise ValueError("out of range") from error
    if formatted is None:
        raise ValueError("not a time")
    return formatted


class _Line:
    """The line being assembled; one longer than `limit` is dropped whole and counted, never held."""

    def __init__(self, limit: int, on_too_long: Callable[[], None]) -> None:
        self.limit = limit
        self.on_too_long = on_too_long
        self.pieces: list[str] = []
        self.chars = 0
        self.skipping = False

    @property
    def pending(self) -> bool:
        return bool(self.pieces)

    def add(self, piece: str) -> None:
        if self.skipping or not piece:
            return
        if self.chars + len(piece) > self.limit:
            self.skipping = True
            self.on_too_long()
            self.pieces, self.chars = [], 0
            return
        self.pieces.append(piece)
        self.chars += len(piece)

    def end(self) -> str | None:
        """The finished line (a CRLF's CR is left for csv, which drops it), or None if it was too long."""
        text = None if self.skipping else "".join(self.pieces)
        self.pieces, self.chars, self.skipping = [], 0, False
        return text


class StatsParser:
    """Turns CSV text into typed rows, keeping the counts a StatsSummary reports. Use one per CSV."""

    def __init__(self, *, max_rows: int = MAX_ROWS, max_line_chars: int = MAX_LINE_CHARS) -> None:
        self.max_rows = max_rows
        self.max_line_chars = max_line_chars
        self.rows_out = 0
        self.bad_values = 0
        self.bad_timestamps = 0
        self.ragged_rows = 0
        self.bad_lines = 0
        self.ignored_columns = 0
        self.header_problem: str | None = None
        self.truncated = False
        self.missing_columns: tuple[str, ...] = ()
        self.extra_columns: tuple[str, ...] = ()
        self._columns: list[str | None] = []  # per CSV field: its documented or extra name, None to ignore
        self._timestamp_index = 0

    def lines(self, chunks: Iterable[bytes], *, cut: Callable[[], bool] = lambda: False) -> Iterator[str]:
        """Decode and split bytes into lines (BOM dropped, LF or CRLF); when `cut()` is true at the end, the
        last, unterminated line is dropped (the reader stopped mid-line at its cap). Memory: a chunk, a line."""
        decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        line = _Line(self.max_line_chars, self._bad_line)
        for chunk in chunks:
            *ended, rest = decoder.decode(chunk).split("\n")
            for piece in ended:
                line.add(piece)
                if (text := line.end()) is not None:
                    yield text
            line.add(rest)
        line.add(decoder.decode(b"", final=True))
        if line.pending and not cut() and (text := line.end()) is not None:
            yield text

    def _bad_line(self) -> None:
        self.bad_lines += 1

    def _read_header(self, fields: list[str]) -> bool:
        names = [name.strip().lstrip("\ufeff").strip() for name in fields]
        lowered = [name.lower() for name in names]
        if TIMESTAMP not in lowered:
            self.header_problem = "header has no timestamp column"
            return False
        named = [name for name in lowered if name]
        if len(set(named)) != len(named):
            self.header_problem = "header names a column twice"
            return False
        extras: list[str] = []
        for name, low in zip(names, lowered, strict=True):
            if not low:
                self._columns.append(None)
            elif low in _DOCUMENTED:
                self._columns.append(low)
            elif len(extras) < MAX_EXTRA_COLUMNS:
                extras.append(name)
                self._columns.append(name)
            else:
                self.ignored_columns += 1
                self._columns.append(None)
        self.missing_columns = tuple(column.name for column in STATS_COLUMNS if column.name not in lowered)
        self._timestamp_index = lowered.index(TIMESTAMP)
        self.extra_columns = tuple(extras)
        return True

    def _row(self, fields: list[str]) -> dict[str, object]:
        if len(fields) != len(self._columns):
            self.ragged_rows += 1
        row: dict[str, object] = dict(_EMPTY_ROW)
        extra: dict[str, str] = {}
        for name, value in zip(self._columns, fields, strict=False):
            if name is None:
                continue
            if name in _NUMERIC_SET:
                try:
                    row[name] = _number(value)
                except ValueError:
                    self.bad_values += 1
            elif name == TIMESTAMP:
                try:
                    row[TIMESTAMP] = _timestamp(value)
                except ValueError:
                    self.bad_timestamps += 1
            else:
                extra[name] = value
        if self._timestamp_index >= len(fields):
            self.bad_timestamps += 1  # a short row without its timestamp field
        row[EXTRA] = extra
        return row

    def rows(self, lines: Iterable[str]) -> Iterator[dict[str, object]]:
        """Typed rows keyed by STATS_COLUMNS plus `extra`; stops (truncated) after max_rows."""
        header_seen = False
        for line in lines:
            try:
                # One reader per line: a stray quote cannot join the lines after it into one field.
                fields = next(csv.reader((line,)), [])
            except csv.Error:
                fields = None
            if fields is None:
                self.bad_lines += 1
                if not header_seen:
                    self.header_problem = "header is not CSV"
                    return
                continue
            if not header_seen:
                header_seen = True
                if not self._read_header(fields):
                    return
                continue
            if all(not value.strip() for value in fields):
                continue  # a blank line (or only commas)
            if self.rows_out >= self.max_rows:
                self.truncated = True
                return
            row = self._row(fields)
            self.rows_out += 1
            yield row
        if not header_seen:
            self.header_problem = "no header"

    def summary(self, *, input_truncated: bool = False) -> StatsSummary:
        """The summary once the rows were consumed; `input_truncated`: the ZIP reader stopped at its cap."""
        if self.header_problem is not None:
            return StatsSummary(status="bad_header", bad_lines=self.bad_lines, reason=self.header_problem)
        truncated = self.truncated or input_truncated
        reason = "more rows than the row cap" if self.truncated else "member larger than the inflated-bytes cap"
        return StatsSummary(
            status="truncated" if truncated else "stored",
            rows=self.rows_out,
            bad_values=self.bad_values,
            bad_timestamps=self.bad_timestamps,
            ragged_rows=self.ragged_rows,
            bad_lines=self.bad_lines,
            ignored_columns=self.ignored_columns,
            missing_columns=self.missing_columns,
            extra_columns=self.extra_columns,
            reason=reason if truncated else None,
        )


def write_rows(rows: Iterable[Mapping[str, object]], out: IO[bytes], *, session_arn: str) -> int:
    """Gzip JSON lines into `out`, one object a row with `session_arn` first, as it goes (bounded memory).

    The gzip header has no name and no time, so the same rows give the same bytes: a retried write-once
    upload of a session's stats object is byte-identical.
    """
    count = 0
    batch: list[str] = []
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0, filename="") as packed:
        for row in rows:
            batch.append(_JSON.encode({"session_arn": session_arn, **row}))
            count += 1
            if len(batch) >= _BATCH:
                packed.write(("\n".join(batch) + "\n").encode("ascii"))
                batch = []
        if batch:
            packed.write(("\n".join(batch) + "\n").encode("ascii"))
    return count


@dataclass(frozen=True)
class StatsResult:
    """The ZIP's manifest (None when its central directory could not be read), the stats' summary, the reads."""

    manifest: Manifest | None
    summary: StatsSummary
    bytes_read: int
    requests: int


def _failure(error: ZipError) -> str:
    if isinstance(error, ZipLimitExceeded):
        return "too_large"
    if isinstance(error, ZipUnsupported):
        return "unsupported"
    return "malformed"


def extract_stats(
    reader: RangeReader,
    out: IO[bytes],
    *,
    session_arn: str,
    limits: ZipLimits = DEFAULT_LIMITS,
    max_rows: int = MAX_ROWS,
) -> StatsResult:
    """Manifest and stats of one exported ZIP, reading only its tail, central directory and stats member.

    Never raises for what the ZIP or CSV contains (only what `reader` itself raises, e.g. S3 errors);
    `out` receives the stats object, to be stored only when `summary.has_rows_object`.
    """
    counting = CountingReader(reader)

    def result(manifest: Manifest | None, summary: StatsSummary) -> StatsResult:
        return StatsResult(manifest, summary, counting.bytes_read, counting.requests)

    try:
        directory = read_central_directory(counting, limits)
        manifest = build_manifest(directory)
        entry = directory.find(PERF_STATS_MEMBER)
    except ZipError as error:
        return result(None, StatsSummary(status=_failure(error), reason=error.reason))
    if entry is None:
        return result(manifest, StatsSummary(status="absent"))
    try:
        stream = open_member(directory, entry, limits)
        parser = StatsParser(max_rows=max_rows)
        rows = parser.rows(parser.lines(stream, cut=lambda: stream.truncated))
        write_rows(rows, out, session_arn=session_arn)
    except ZipError as error:
        return result(manifest, StatsSummary(status=_failure(error), reason=error.reason))
    return result(manifest, parser.summary(input_truncated=stream.truncated))

"""What is correct, written independently of `archiver.records`: the audit of an archive against the
sessions that should be in it, and what each record and its key must be."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from archiver.records import ITEM_VALUE_LIMIT, REDACTED, SCHEMA
from local.reliability.constants import PREFIX, STATS_PREFIX


@dataclass
class Audit:
    """The archive judged from outside against the sessions whose export SUCCEEDED."""

    expected: int = 0
    archived: int = 0  # expected sessions with exactly one object and one item that points at it
    lost: list[str] = field(default_factory=list)  # expected sessions lacking an object or an item
    duplicated: list[str] = field(default_factory=list)  # >1 object key for a session, or item without object
    extra: list[str] = field(default_factory=list)  # objects or items of sessions that should not be archived
    overwrites: int = 0  # object versions beyond one per key (a retried write; harmless)
    problems: list[str] = field(default_factory=list)  # bad key, bad JSON, record != GetStreamSession
    unequal: list[str] = field(default_factory=list)  # a ledger item that differs from its S3 record
    leaks: list[str] = field(default_factory=list)  # a canary found in S3, DynamoDB or the logs
    objects: int = 0
    items: int = 0
    log_bytes: int = 0

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.extra or self.problems or self.unequal or self.leaks)

    def describe(self) -> str:
        parts = [f"expected {self.expected}", f"archived {self.archived}"]
        for name in ("lost", "duplicated", "extra", "problems", "unequal", "leaks"):
            values: list[str] = getattr(self, name)
            if values:
                parts.append(f"{name} {len(values)}: {values[:3]}")
        return ", ".join(parts)


def judge(
    expected: set[str], versions: Mapping[str, int], records: Mapping[str, Mapping[str, Any]], items: Mapping[str, Any]
) -> Audit:
    """Lost, duplicated and extra sessions from what S3 (key -> versions, key -> record) and DynamoDB hold."""
    audit = Audit(expected=len(expected), objects=len(versions), items=len(items))
    audit.overwrites = sum(n - 1 for n in versions.values())
    by_session: dict[str, list[str]] = {}
    for key in versions:
        record = records.get(key)
        by_session.setdefault(str(record["session_arn"]) if record else f"<unreadable {key}>", []).append(key)
    for arn in expected:
        objects, item = by_session.get(arn, []), items.get(arn)
        if not objects or item is None:
            audit.lost.append(arn)
        elif len(objects) > 1:
            audit.duplicated.append(arn)
        elif item.get("s3_key") != objects[0]:
            audit.problems.append(f"item of {arn} points at {item.get('s3_key')}, its object is {objects[0]}")
        else:
            audit.archived += 1
    for arn, objects in by_session.items():
        if arn not in expected:
            audit.extra.append(arn)
            if len(objects) > 1:
                audit.duplicated.append(arn)
    for arn, item in items.items():
        if item.get("s3_key") not in versions:
            audit.duplicated.append(f"item without object: {arn}")
        if arn not in expected:
            audit.extra.append(f"item: {arn}")
    return audit


# The ledger item, as docs/schema.md describes it: the partition key, the record's key and schema version, and
# three of the record's values (each left out when null, longer than ITEM_VALUE_LIMIT or not valid UTF-8).
ITEM_COPIES: Final = ("archived_at", "created_at", "export_output_uri")
ITEM_NAMES: Final = frozenset({"session_arn", "s3_key", "schema_version", *ITEM_COPIES})


def item_problems(key: str, record: Mapping[str, Any], item: Mapping[str, str]) -> list[str]:
    """How a ledger item differs from the S3 record it points at (nothing, when it was made from it)."""
    where = f"item of {record.get('session_arn')}"
    problems = [f"{where}: unknown attribute {name}" for name in sorted(set(item) - ITEM_NAMES)]
    if item.get("session_arn") != record.get("session_arn"):
        problems.append(f"{where}: session_arn {item.get('session_arn')!r} is not the record's")
    if item.get("s3_key") != key:
        problems.append(f"{where}: s3_key {item.get('s3_key')!r} is not its record's key {key!r}")
    if item.get("schema_version") != str(record.get("schema_version")):
        problems.append(f"{where}: schema_version {item.get('schema_version')!r} != {record.get('schema_version')!r}")
    for name in ITEM_COPIES:
        value = record.get(name)
        kept = isinstance(value, str) and value != "" and len(value) <= ITEM_VALUE_LIMIT and _utf8(value)
        if kept and item.get(name) != value:
            problems.append(f"{where}: {name} {item.get(name)!r:.80} != record {value!r:.80}")
        elif not kept and name in item:
            problems.append(f"{where}: {name} {item[name]!r:.80} should be left out (record: {value!r:.80})")
    return problems


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


KEY_PATTERN: Final = re.compile(
    re.escape(PREFIX) + r"source_region=(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})/"
    r"created_date=(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})/(?P<group>[A-Za-z0-9-]{1,32})_(?P<session>[A-Za-z0-9-]{1,32})"
    r"\.json"
)
SESSION_ARN: Final = re.compile(
    r"arn:aws:gameliftstreams:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}):(?P<account>[0-9]{12}):"
    r"streamsession/(?P<group>[A-Za-z0-9-]{1,32})/(?P<session>[A-Za-z0-9-]{1,32})"
)
TIMESTAMP: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}")
INT32: Final = (-(2**31), 2**31 - 1)
# column -> (Athena type, path in GetStreamSession's answer)
API_COLUMNS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "description": ("string", ("Description",)),
    "user_id": ("string", ("UserId",)),
    "status": ("string", ("Status",)),
    "status_reason": ("string", ("StatusReason",)),
    "protocol": ("string", ("Protocol",)),
    "location": ("string", ("Location",)),
    "application_arn": ("string", ("ApplicationArn",)),
    "created_at": ("timestamp", ("CreatedAt",)),
    "last_updated_at": ("timestamp", ("LastUpdatedAt",)),
    "application_started_at": ("timestamp", ("ApplicationStartedAt",)),
    "streaming_started_at": ("timestamp", ("StreamingStartedAt",)),
    "streaming_ended_at": ("timestamp", ("StreamingEndedAt",)),
    "connection_timeout_seconds": ("int", ("ConnectionTimeoutSeconds",)),
    "session_length_seconds": ("int", ("SessionLengthSeconds",)),
    "additional_launch_args": ("array<string>", ("AdditionalLaunchArgs",)),
    "performance_stats_shared_with_client": ("boolean", ("PerformanceStatsConfiguration", "SharedWithClient")),
    "display_resolution_width": ("int", ("DisplayConfiguration", "Resolution", "Width")),
    "display_resolution_height": ("int", ("DisplayConfiguration", "Resolution", "Height")),
    "log_file_location_uri": ("string", ("LogFileLocationUri",)),
    "web_sdk_protocol_url": ("string", ("WebSdkProtocolUrl",)),
    "export_status": ("string", ("ExportFilesMetadata", "Status")),
    "export_status_reason": ("string", ("ExportFilesMetadata", "StatusReason")),
    "export_output_uri": ("string", ("ExportFilesMetadata", "OutputUri")),
}


def utc_date(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"


def _timestamp(value: object) -> str | None:
    if not isinstance(value, datetime):
        return None
    utc = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return f"{utc_date(utc)} {utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}"


def _convert(kind: str, value: object) -> object:
    if kind == "string":
        return value if isinstance(value, str) else None
    if kind == "timestamp":
        return _timestamp(value)
    if kind == "int":
        return value if _is_int32(value) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "array<string>":
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None
    raise ValueError(kind)


def expected_record(detail: Mapping[str, Any], listed_arn: str) -> dict[str, object]:
    """The record the archiver must write for this GetStreamSession answer (except `archived_at`)."""
    match = SESSION_ARN.fullmatch(listed_arn)
    assert match is not None, listed_arn
    want: dict[str, object] = {
        "schema_version": 2,
        "session_arn": listed_arn,
        "session_id": match["session"],
        "stream_group_id": match["group"],
        "region": match["region"],
        "account_id": match["account"],
    }
    for column, (kind, path) in API_COLUMNS.items():
        value: object = detail
        for name in path:
            value = value.get(name) if isinstance(value, Mapping) else None
        want[column] = _convert(kind, value)
    app = detail.get("ApplicationArn")
    app_match = (
        re.fullmatch(r"arn:aws(?:-[a-z]+)*:gameliftstreams:[^:]*:[0-9]{12}:application/([a-zA-Z0-9-]{1,32})", app)
        if isinstance(app, str)
        else None
    )
    want["application_id"] = app_match[1] if app_match else None
    env = detail.get("AdditionalEnvironmentVariables")
    want["additional_environment_variables"] = (
        {str(name): "<redacted>" for name in env} if isinstance(env, Mapping) else None
    )
    return want


def check_record_line(key: str, body: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """A stored object as Athena's JSON SerDe reads it: one ASCII line, the schema's columns, each value of
    its column's type. Returns the record (if readable) and what is wrong."""
    problems: list[str] = []
    match = KEY_PATTERN.fullmatch(key)
    if match is None:
        problems.append(f"key outside the record layout: {key!r}")
    if not body.endswith(b"\n") or body.count(b"\n") != 1 or not body.isascii():
        problems.append(f"{key}: not one ASCII line")

    def no_constants(name: str) -> object:
        raise ValueError(f"non-JSON constant {name}")

    try:
        record = json.loads(body, parse_constant=no_constants)
    except ValueError as error:
        return None, [*problems, f"{key}: invalid JSON ({error})"]
    if not isinstance(record, dict):
        return None, [*problems, f"{key}: not a JSON object"]
    types = {f.name: f.athena_type for f in SCHEMA}
    if list(record) != list(types):
        problems.append(f"{key}: columns {list(record)} != schema {list(types)}")
    for column, kind in types.items():
        if not _athena_ok(kind, record.get(column)):
            problems.append(f"{key}: {column}={record.get(column)!r:.80} is not a valid {kind}")
    arn = SESSION_ARN.fullmatch(str(record.get("session_arn")))
    if match is not None and arn is not None:
        for part in ("region", "group", "session"):
            if match[part] != arn[part]:
                problems.append(f"{key}: {part} segment {match[part]!r} is not the ARN's {arn[part]!r}")
        created = record.get("created_at")
        if isinstance(created, str) and not created.startswith(match["date"]):
            problems.append(f"{key}: created_date {match['date']} is not the date of created_at {created}")
    elif arn is None:
        problems.append(f"{key}: session_arn {record.get('session_arn')!r:.80} is not a session ARN")
    return record, problems


def _is_int32(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and INT32[0] <= value <= INT32[1]


_ATHENA_TYPES: Final[dict[str, Callable[[object], bool]]] = {
    "string": lambda v: isinstance(v, str),
    "int": _is_int32,
    "boolean": lambda v: isinstance(v, bool),
    "timestamp": lambda v: isinstance(v, str) and TIMESTAMP.fullmatch(v) is not None,
    "array<string>": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "map<string,string>": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
    "bigint": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63,
    "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def _athena_ok(kind: str, value: object) -> bool:
    """Whether Athena's JSON SerDe reads `value` as a `kind` column (null always reads)."""
    return value is None or _ATHENA_TYPES[kind](value)


_FLAG_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def expected_launch_args(args: object, *, keep: bool) -> list[str] | None:
    """docs/schema.md's rule for `additional_launch_args`, restated without archiver.redaction: the strings
    as given with the opt-in; else `--` kept and every later argument redacted, and before it, `-`/`--` and a
    name (an ASCII letter first, at most 64 of A-Za-z0-9_.-) kept whole, or up to a `=`/`:` that follows the
    name, and anything else redacted."""
    if not isinstance(args, list):
        return None
    strings = [arg for arg in args if isinstance(arg, str)]
    if keep:
        return strings
    out: list[str] = []
    ended = False
    for arg in strings:
        if ended or arg == "--":
            out.append(REDACTED if ended else arg)
            ended = True
            continue
        dashes = 2 if arg.startswith("--") else 1 if arg.startswith("-") else 0
        end = dashes
        while end < len(arg) and arg[end] in _FLAG_NAME_CHARS:
            end += 1
        name = arg[dashes:end]
        flag = dashes > 0 and 0 < len(name) <= 64 and name[0].isascii() and name[0].isalpha()
        if flag and end == len(arg):
            out.append(arg)
        elif flag and arg[end] in "=:":
            out.append(arg[: end + 1] + REDACTED)
        else:
            out.append(REDACTED)
    return out


# --- The export ZIP (issue 11), restated with the standard library's zipfile and csv -----------------------

STATS_KEY_PATTERN: Final = re.compile(
    re.escape(STATS_PREFIX) + r"source_region=(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})/"
    r"created_date=(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})/(?P<group>[A-Za-z0-9-]{1,32})_(?P<session>[A-Za-z0-9-]{1,32})"
    r"\.json\.gz"
)
PERF_STATS: Final = "stats/perf_stats_v1.csv"
DOCUMENTED: Final = (
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
# Every column the record gained in version 2 (docs/schema.md, docs/EXPORTS.md).
EXPORT_COLUMNS: Final = (
    "export_read_status",
    "export_bytes_read",
    "member_count",
    "total_compressed_bytes",
    "total_uncompressed_bytes",
    "top_level_folders",
    "folders_truncated",
    "perf_stats_present",
    "zip_size",
    "zip_etag",
    "stats_status",
    "stats_rows",
    "stats_bad_values",
    "stats_bad_timestamps",
    "stats_ragged_rows",
    "stats_bad_lines",
    "stats_ignored_columns",
    "stats_missing_columns",
    "stats_extra_columns",
    "stats_reason",
    "stats_key",
)


def zip_name_matches(key: str, group: str, session: str) -> bool:
    """docs/EXPORTS.md: a folder's ZIP is the session's when its file name ends -<group>-<session>.zip."""
    name = key.rsplit("/", 1)[-1]
    return name.lower().endswith(".zip") and name[: -len(".zip")].endswith(f"-{group}-{session}")


def csv_rows(zip_bytes: bytes) -> list[dict[str, str]] | None:
    """The stats CSV's rows as the standard library reads them; None when there is no clean CSV to compare
    (no member, not a ZIP zipfile reads, a header other than the documented columns)."""
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            text = archive.read(PERF_STATS).decode("utf-8-sig")
    except (KeyError, zipfile.BadZipFile, ValueError, NotImplementedError, OSError, EOFError):
        return None
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != DOCUMENTED:
        return None
    return [row for row in reader if any(row.values())]


def expected_export(
    zip_bytes: bytes | None, etag: str | None, stats_key: str | None, status_when_missing: str
) -> dict[str, object] | None:
    """The record's export columns for a ZIP (None: it could not be found, `status_when_missing`), where
    they can be known from outside: the manifest, and the stats when the CSV is clean. None when the ZIP is one
    zipfile cannot read (a hostile one): then only the column types are checked."""
    if zip_bytes is None:
        return dict.fromkeys(EXPORT_COLUMNS) | {"export_read_status": status_when_missing, "export_bytes_read": 0}
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return None
    folders = sorted({info.filename.partition("/")[0] for info in infos if "/" in info.filename})
    want: dict[str, object] = {
        "export_read_status": "read",
        "member_count": len(infos),
        "total_compressed_bytes": sum(info.compress_size for info in infos),
        "total_uncompressed_bytes": sum(info.file_size for info in infos),
        "top_level_folders": folders[:100],
        "folders_truncated": len(folders) > 100,
        "perf_stats_present": any(info.filename == PERF_STATS for info in infos),
        "zip_size": len(zip_bytes),
        "zip_etag": etag,
    }
    rows = csv_rows(zip_bytes)
    if not want["perf_stats_present"]:
        want |= {"stats_status": "absent", "stats_rows": 0, "stats_key": None}
    elif rows is not None:
        want |= {"stats_status": "stored", "stats_rows": len(rows), "stats_key": stats_key}
        want |= {"stats_missing_columns": [], "stats_extra_columns": [], "stats_reason": None}
    return want


def stats_problems(key: str, body: bytes, arn: str, rows: int | None) -> list[str]:
    """A stored stats object: gzip JSON lines, each the session's, `rows` of them when the CSV is known."""
    problems = [] if STATS_KEY_PATTERN.fullmatch(key) else [f"stats key outside the layout: {key!r}"]
    try:
        lines = gzip.decompress(body).splitlines()
        parsed = [json.loads(line) for line in lines]
    except (OSError, EOFError, ValueError) as error:
        return [*problems, f"{key}: not gzip JSON lines ({error})"]
    if any(not isinstance(row, dict) or row.get("session_arn") != arn for row in parsed):
        problems.append(f"{key}: a row is not a JSON object of {arn}")
    if rows is not None and len(parsed) != rows:
        problems.append(f"{key}: {len(parsed)} rows, the CSV has {rows}")
    return problems

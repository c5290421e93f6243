"""The archive record and its ledger item: schema, record building, redaction, the S3 key layout and the
DynamoDB item (the launch-argument rule is `archiver.redaction`'s).

This module is the single source of truth for what an archived session looks like. The writer
(`run.py`), the Glue table (`infra/analytics.py`) and `docs/schema.md` (generated from SCHEMA and
LEDGER_ATTRIBUTES by `python -m local.schema_doc`, i.e. `make schema-doc`) all read it, so it must stay free
of AWS SDK imports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from archiver.manifest import MANIFEST_COLUMNS, Column
from archiver.perfstats import STATS_SUMMARY_COLUMNS
from archiver.redaction import REDACTED as REDACTED  # noqa: PLC0414 - re-exported: the one placeholder
from archiver.redaction import redact_launch_args
from archiver.timestamps import athena_timestamp as athena_timestamp  # noqa: PLC0414 - re-exported
from archiver.timestamps import to_utc as to_utc  # noqa: PLC0414 - re-exported

SCHEMA_VERSION = 2  # 2: the export ZIP's columns (manifest, stats summary, stats_key); version 1 records lack them

# --- Session ARNs -----------------------------------------------------------------------------

# Stricter than the service model's pattern on purpose: every part we use ends up in an S3 key,
# so each must be a plain token (no "/", "..", "%", control characters).
_SESSION_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):gameliftstreams:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}):"
    r"(?P<account>[0-9]{12}):streamsession/(?P<group>[a-zA-Z0-9-]{1,32})/(?P<session>[a-zA-Z0-9-]{1,32})"
)
_APPLICATION_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:gameliftstreams:[^:]*:[0-9]{12}:application/([a-zA-Z0-9-]{1,32})")


@dataclass(frozen=True)
class SessionArn:
    """The parts of a stream-session ARN; GetStreamSession needs the stream group ID from it."""

    arn: str
    partition: str
    region: str
    account_id: str
    stream_group_id: str
    session_id: str


def parse_session_arn(value: object) -> SessionArn | None:
    """Return the ARN's parts, or None if `value` is not a well-formed stream-session ARN."""
    if not isinstance(value, str) or len(value) > 128:
        return None
    match = _SESSION_ARN.fullmatch(value)
    if match is None:
        return None
    return SessionArn(
        arn=value,
        partition=match["partition"],
        region=match["region"],
        account_id=match["account"],
        stream_group_id=match["group"],
        session_id=match["session"],
    )


# --- S3 key layout ----------------------------------------------------------------------------

# Hive-style partitions that Athena projects. The Glue table's `storage.location.template` is
# built from PARTITION_TEMPLATE, so the writer and the projection cannot disagree.
PARTITION_KEYS: tuple[tuple[str, str], ...] = (("source_region", "string"), ("created_date", "string"))
PARTITION_TEMPLATE = "source_region=${source_region}/created_date=${created_date}/"
CREATED_DATE_FORMAT = "%Y-%m-%d"  # Athena projection format: yyyy-MM-dd
CREATED_DATE_PROJECTION_FORMAT = "yyyy-MM-dd"
# The key date of a session the API returns without CreatedAt (never seen): fixed, so a retry after a crash
# writes the same key; before GameLift Streams existed, so it cannot be mistaken for a real day; and the
# first day of the Athena projection, so the record stays queryable.
UNDATED_CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)
OBJECT_SUFFIX = ".json"
STATS_SUFFIX = ".json.gz"  # Athena reads gzip by the extension (no Content-Encoding)


def object_key(prefix: str, arn: SessionArn, created_at: datetime) -> str:
    """Key of a session's record: only ARN parts and the immutable creation date, so a retry overwrites."""
    partitions = PARTITION_TEMPLATE.replace("${source_region}", arn.region).replace(
        "${created_date}",
        created_at.astimezone(UTC).date().isoformat(),  # CREATED_DATE_FORMAT, year zero-padded
    )
    return f"{prefix}{partitions}{arn.stream_group_id}_{arn.session_id}{OBJECT_SUFFIX}"


def stats_key(stats_prefix: str, arn: SessionArn, created_at: datetime) -> str:
    """Key of a session's stats object: the record's key layout under the stats prefix, gzip JSON lines."""
    return object_key(stats_prefix, arn, created_at).removesuffix(OBJECT_SUFFIX) + STATS_SUFFIX


def location_template(bucket: str, prefix: str) -> str:
    """`storage.location.template` for partition projection, matching `object_key`."""
    return f"s3://{bucket}/{prefix}{PARTITION_TEMPLATE}"


# --- Value conversion -------------------------------------------------------------------------


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


_INT_RANGE = range(-(2**31), 2**31)  # Athena `int` is 32-bit: a larger value would make the record unreadable


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value in _INT_RANGE else None


def _boolean(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _string_list(value: object) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, str)]


def _path(detail: Mapping[str, Any], *names: str) -> object:
    current: object = detail
    for name in names:
        if not isinstance(current, Mapping):
            return None
        current = current.get(name)
    return current


# --- The schema -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a record is built from besides the API's answer."""

    arn: SessionArn
    archived_at: datetime
    keep_environment_values: bool = False
    keep_launch_argument_values: bool = False
    # The export ZIP's columns (EXPORT_COLUMNS names -> values, see `export_values`); None: all null.
    export: Mapping[str, object] | None = None


@dataclass(frozen=True)
class Field:
    """One column: its name, Athena type, meaning, and how to take it from GetStreamSession."""

    name: str
    athena_type: str
    description: str
    extract: Callable[[Mapping[str, Any], Context], object]


def _api(*names: str, convert: Callable[[object], object] = _text) -> Callable[[Mapping[str, Any], Context], object]:
    return lambda detail, _ctx: convert(_path(detail, *names))


def _environment(detail: Mapping[str, Any], ctx: Context) -> dict[str, str] | None:
    variables = detail.get("AdditionalEnvironmentVariables")
    if not isinstance(variables, Mapping):
        return None
    return {
        str(name): (value if ctx.keep_environment_values and isinstance(value, str) else REDACTED)
        for name, value in variables.items()
    }


def _launch_args(detail: Mapping[str, Any], ctx: Context) -> list[str] | None:
    arguments = _string_list(detail.get("AdditionalLaunchArgs"))
    if arguments is None or ctx.keep_launch_argument_values:
        return arguments
    return redact_launch_args(arguments)


def _application_id(detail: Mapping[str, Any], _ctx: Context) -> str | None:
    arn = detail.get("ApplicationArn")
    match = _APPLICATION_ARN.fullmatch(arn) if isinstance(arn, str) else None
    return match[1] if match else None


STATS_COLUMN_PREFIX = "stats_"  # the stats summary's columns in the record (its `status` is not the session's)
EXPORT_READ_STATUS_DOC = (
    "Reading the export ZIP: read (the stats_ columns say what it held), not_s3, not_found, access_denied, "
    "no_bucket, archived_object (docs/EXPORTS.md); null in version 1 records."
)
EXPORT_COLUMNS: tuple[Column, ...] = (
    Column("export_read_status", "string", EXPORT_READ_STATUS_DOC),
    Column("export_bytes_read", "bigint", "Bytes of the export ZIP read (ranged GETs): its tail, directory, stats."),
    *MANIFEST_COLUMNS,
    *(
        Column(STATS_COLUMN_PREFIX + c.name, c.athena_type, "Stats summary: " + c.description)
        for c in STATS_SUMMARY_COLUMNS
    ),
    Column("stats_key", "string", "Key of the session's stats object in the archive bucket; null when none."),
)


def _export(name: str) -> Callable[[Mapping[str, Any], Context], object]:
    return lambda _detail, ctx: None if ctx.export is None else ctx.export.get(name)


EXPORT_FIELDS: tuple[Field, ...] = tuple(
    Field(column.name, column.athena_type, column.description, _export(column.name)) for column in EXPORT_COLUMNS
)


def export_values(
    read_status: str,
    bytes_read: int,
    manifest: Mapping[str, object] | None,
    stats: Mapping[str, object] | None,
    key: str | None,
) -> dict[str, object]:
    """The export columns' values: the read status, the bytes read, the manifest's and the stats summary's
    `to_record()` (None when not read), and the stats object's key (None when there is none)."""
    values: dict[str, object] = {"export_read_status": read_status, "export_bytes_read": bytes_read}
    values.update(manifest or {})
    values.update({STATS_COLUMN_PREFIX + name: value for name, value in (stats or {}).items()})
    values["stats_key"] = key
    return {column.name: values.get(column.name) for column in EXPORT_COLUMNS}


SCHEMA: tuple[Field, ...] = (
    Field("schema_version", "int", "Version of this schema.", lambda _d, _c: SCHEMA_VERSION),
    Field("session_arn", "string", "Stream session ARN (the archive's key).", lambda _d, c: c.arn.arn),
    Field("session_id", "string", "Stream session ID, from the ARN.", lambda _d, c: c.arn.session_id),
    Field("stream_group_id", "string", "Stream group ID, from the ARN.", lambda _d, c: c.arn.stream_group_id),
    Field("region", "string", "AWS Region of the session's API endpoint, from the ARN.", lambda _d, c: c.arn.region),
    Field("account_id", "string", "AWS account ID, from the ARN.", lambda _d, c: c.arn.account_id),
    Field("description", "string", "Session description given at start.", _api("Description")),
    Field("user_id", "string", "Developer-defined end-user ID (opaque).", _api("UserId")),
    Field("status", "string", "Session status when archived (unknown values kept as given).", _api("Status")),
    Field("status_reason", "string", "Reason for the status, e.g. idleTimeout.", _api("StatusReason")),
    Field("protocol", "string", "Streaming protocol, e.g. WebRTC.", _api("Protocol")),
    Field("location", "string", "Location the session streamed from (may differ from region).", _api("Location")),
    Field("application_arn", "string", "ARN of the streamed application.", _api("ApplicationArn")),
    Field("application_id", "string", "Application ID, from application_arn.", _application_id),
    Field(
        "created_at", "timestamp", "When the session was created (UTC).", _api("CreatedAt", convert=athena_timestamp)
    ),
    Field(
        "last_updated_at",
        "timestamp",
        "When the session last changed (UTC).",
        _api("LastUpdatedAt", convert=athena_timestamp),
    ),
    Field(
        "application_started_at",
        "timestamp",
        "When the application started (UTC).",
        _api("ApplicationStartedAt", convert=athena_timestamp),
    ),
    Field(
        "streaming_started_at",
        "timestamp",
        "When streaming started (UTC).",
        _api("StreamingStartedAt", convert=athena_timestamp),
    ),
    Field(
        "streaming_ended_at",
        "timestamp",
        "When streaming ended (UTC).",
        _api("StreamingEndedAt", convert=athena_timestamp),
    ),
    Field(
        "connection_timeout_seconds",
        "int",
        "Seconds to wait for a client connection.",
        _api("ConnectionTimeoutSeconds", convert=_integer),
    ),
    Field(
        "session_length_seconds",
        "int",
        "Maximum session length in seconds.",
        _api("SessionLengthSeconds", convert=_integer),
    ),
    Field(
        "additional_launch_args",
        "array<string>",
        "Extra command-line arguments given to the application; flags kept (`-name`, `--name=`), every value "
        f"'{REDACTED}' (after a flag, positional, after `--`) unless the operator opts in.",
        _launch_args,
    ),
    Field(
        "additional_environment_variables",
        "map<string,string>",
        f"Extra environment variables; names kept, values '{REDACTED}' unless the operator opts in.",
        _environment,
    ),
    Field(
        "performance_stats_shared_with_client",
        "boolean",
        "Whether performance stats streamed to the client.",
        _api("PerformanceStatsConfiguration", "SharedWithClient", convert=_boolean),
    ),
    Field(
        "display_resolution_width",
        "int",
        "Stream resolution width in pixels.",
        _api("DisplayConfiguration", "Resolution", "Width", convert=_integer),
    ),
    Field(
        "display_resolution_height",
        "int",
        "Stream resolution height in pixels.",
        _api("DisplayConfiguration", "Resolution", "Height", convert=_integer),
    ),
    Field("log_file_location_uri", "string", "Where application logs were written.", _api("LogFileLocationUri")),
    Field("web_sdk_protocol_url", "string", "Web SDK protocol URL of the session.", _api("WebSdkProtocolUrl")),
    Field(
        "export_status",
        "string",
        "Export status (SUCCEEDED for every archived session).",
        _api("ExportFilesMetadata", "Status"),
    ),
    Field(
        "export_status_reason",
        "string",
        "Export status reason, if any.",
        _api("ExportFilesMetadata", "StatusReason"),
    ),
    Field(
        "export_output_uri",
        "string",
        "S3 URI of the exported ZIP (logs, saves, stats/perf_stats_v1.csv).",
        _api("ExportFilesMetadata", "OutputUri"),
    ),
    *EXPORT_FIELDS,
    Field(
        "archived_at",
        "timestamp",
        "When the archiver wrote this record (UTC).",
        lambda _d, c: athena_timestamp(c.archived_at),
    ),
)

# Fields of GetStreamSession that are never stored or logged: the SDKs mark them sensitive
# (SignalRequest/SignalResponse carry WebRTC signalling; RoleArn is sensitive in the 1.44 model).
SENSITIVE_API_FIELDS = frozenset({"SignalRequest", "SignalResponse", "RoleArn"})


def build_record(detail: Mapping[str, Any], ctx: Context) -> dict[str, object]:
    """Build the record from GetStreamSession's answer; wrong-typed values become null, never errors."""
    return {field.name: field.extract(detail, ctx) for field in SCHEMA}


def encode_record(record: Mapping[str, object]) -> bytes:
    """One JSON line, ASCII-escaped so control characters and newlines can never split it."""
    return (json.dumps(record, ensure_ascii=True, separators=(",", ":"), allow_nan=False) + "\n").encode()


def created_at(detail: Mapping[str, Any], fallback: Mapping[str, Any]) -> datetime | None:
    """The session's creation time, from GetStreamSession or else the list item; None if neither has one."""
    return to_utc(detail.get("CreatedAt")) or to_utc(fallback.get("CreatedAt"))


# --- The ledger item --------------------------------------------------------------------------

ITEM_VALUE_LIMIT = 2_048  # characters of an API value copied into the DynamoDB item (an S3 URI is ~1,100 at most)


def _fits_item(value: str) -> bool:
    """Whether DynamoDB accepts this API value in the item: bounded (an item is at most 400 KB) and valid
    UTF-8 (no lone surrogates). Otherwise the item omits it (the S3 record keeps it), or the session could
    never be marked archived and every run would rewrite its object."""
    if len(value) > ITEM_VALUE_LIMIT:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class ItemAttribute:
    """One attribute of the DynamoDB item: its name, DynamoDB type, meaning, and its value from the record and
    its S3 key (None for the partition key, which the ledger sets from the ARN)."""

    name: str
    dynamodb_type: str
    description: str
    value: Callable[[Mapping[str, object], str], object] | None = None
    optional: bool = False  # kept only if a non-empty string that fits the item


def _column(name: str) -> Callable[[Mapping[str, object], str], object]:
    return lambda record, _key: record[name]


LEDGER_ATTRIBUTES: tuple[ItemAttribute, ...] = (
    ItemAttribute("session_arn", "S", "Stream session ARN: the partition key, one item per archived session."),
    ItemAttribute("s3_key", "S", "Key of the session's record in the archive bucket.", lambda _r, key: key),
    ItemAttribute(
        "schema_version", "S", "The record's `schema_version`, as text.", lambda r, _k: str(r["schema_version"])
    ),
    ItemAttribute("archived_at", "S", "The record's `archived_at`.", _column("archived_at"), optional=True),
    ItemAttribute(
        "created_at", "S", "The record's `created_at`; absent if it is null.", _column("created_at"), optional=True
    ),
    ItemAttribute(
        "export_output_uri",
        "S",
        f"The record's `export_output_uri`; absent if it is null, over {ITEM_VALUE_LIMIT:,} characters or not "
        "valid UTF-8 (DynamoDB would refuse the item and the session could never be marked archived).",
        _column("export_output_uri"),
        optional=True,
    ),
)
LEDGER_PARTITION_KEY = LEDGER_ATTRIBUTES[0].name


def ledger_item(record: Mapping[str, object], key: str) -> dict[str, str]:
    """The item's attributes but the partition key (the ledger adds it), from the record and its S3 key."""
    item: dict[str, str] = {}
    for attribute in LEDGER_ATTRIBUTES:
        if attribute.value is None:
            continue
        value = attribute.value(record, key)
        if not attribute.optional:
            item[attribute.name] = str(value)
        elif isinstance(value, str) and value and _fits_item(value):
            item[attribute.name] = value
    return item

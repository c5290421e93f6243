"""Athena contract: what the handler writes is what the synthesized Glue table reads.

Records are written by the real handler on the local stack, read with DuckDB through the column names
and types of the synthesized Glue table and its partition-projection template, and every named query
in the template runs after translation from Athena SQL with sqlglot. Athena itself cannot run here, so
DuckDB plays it; the template, not our Python constants, is what is checked. DuckDB converts leniently
(it reads "12" into an int column), so each JSON value is also checked against the Hive JSON SerDe's
reading of its column type.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot

from archiver import records
from archiver.perfstats import extract_stats
from archiver.records import REDACTED
from archiver.ziprange import MemoryReader
from infra.analytics import STATS_TABLE_NAME, TABLE_NAME
from local import export_zip
from local.stack import LocalStack
from tests.stack_fixtures import REGION, Archive, archive_world

from .conftest import Built

NOW = datetime.now(UTC).replace(microsecond=0)
APPS = ("a-Contract01", "a-Contract02")
USER = "studio/qa/tester-7"

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "array<string>": "VARCHAR[]",
    "map<string,string>": "MAP(VARCHAR, VARCHAR)",
}
# What the Hive JSON SerDe reads as a `timestamp`: `yyyy-MM-dd HH:mm:ss[.fffffffff]`, no zone, no "T".
HIVE_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?")
KEPT_VARIABLES = {"BUILD": "1.4.2-rc1", "BACKEND_API_KEY": "CANARY-KEPT-VALUE-2f9e"}


def json_has_type(value: Any, kind: str) -> bool:
    """Whether a JSON value is what the Hive JSON SerDe reads into a column of this Glue type (null always is)."""
    if value is None:
        return True
    if kind in ("int", "bigint"):
        bits = 32 if kind == "int" else 64
        return type(value) is int and -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
    checks = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "double": lambda v: type(v) in (int, float) and math.isfinite(v),
        "timestamp": lambda v: isinstance(v, str) and HIVE_TIMESTAMP.fullmatch(v) is not None,
        "array<string>": lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
        "map<string,string>": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in (*v, *v.values())),
    }
    return bool(checks[kind](value))


def as_read(value: Any, kind: str) -> Any:
    """The Python value DuckDB gives for a JSON value of this column type."""
    return datetime.fromisoformat(value) if kind == "timestamp" and value is not None else value


def resolve(value: Any, refs: dict[str, str]) -> Any:
    """Resolve the Fn::Join/Ref of a CloudFormation value as the deployment would (refs given)."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, refs)) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return refs.get(value["Ref"], f"<{value['Ref']}>")
    return value


def only(template: dict[str, Any], kind: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]
    assert len(found) == 1, f"expected one {kind}"
    return found[0]


def table_input(template: dict[str, Any], name: str) -> dict[str, Any]:
    """The TableInput of the template's Glue table of this name."""
    found: list[dict[str, Any]] = [
        r["Properties"]["TableInput"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Glue::Table" and r["Properties"]["TableInput"]["Name"] == name
    ]
    assert len(found) == 1, f"expected one Glue table {name}"
    return found[0]


def glue_table(default: Built, bucket: str, name: str = TABLE_NAME) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Glue table input, with the archive bucket's Ref resolved to `bucket`."""
    template = default.json
    table = table_input(template, name)
    buckets = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket"]
    params = {
        name: resolve(value, dict.fromkeys(buckets, bucket) | {"AWS::Region": REGION})
        for name, value in table["Parameters"].items()
    }
    return table, params


def export_bucket(archive: Archive) -> str:
    """The world's own export bucket (moto is shared by the session's worlds), created on first use."""
    name = f"exports-{archive.table}"
    s3 = archive._client("s3")
    if name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def zip_with_stats(text: str) -> bytes:
    """A ZIP in the emulator's layout whose stats member is `text`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(export_zip.APPLICATION_LOG_MEMBER, "log\n")
        archive.writestr(export_zip.PERF_STATS_MEMBER, text)
    return buffer.getvalue()


def seed(archive: Archive) -> list[dict[str, Any]]:
    """Sessions with known values, created over the last days (the named queries look back 7-90 days), each
    with the ZIP the emulator writes (local.export_zip) at its OutputUri, but the oldest: its ZIP is gone."""
    sessions = []
    bucket = export_bucket(archive)
    plan = [
        # (days ago, app, user, location, status, reason, streamed seconds)
        (0, APPS[0], USER, "us-east-2", "TERMINATED", "idleTimeout", 600),
        (1, APPS[0], "player-1", "eu-central-1", "TERMINATED", "applicationExit", 1200),
        (1, APPS[1], USER, "eu-central-1", "ERROR", "internalError", 30),
        (2, APPS[1], "player-2", "us-east-2", "TERMINATED", "idleTimeout", 3600),
        (5, APPS[0], "player-3", "ap-northeast-1", "TERMINATED", "maxSessionLengthTimeout", 86_400),
        (20, APPS[1], USER, "us-west-2", "TERMINATED", None, 45),
    ]
    for days, app, user, location, status, reason, seconds in plan:
        created = NOW - timedelta(days=days, hours=1)
        overrides: dict[str, Any] = {
            "CreatedAt": created,
            "LastUpdatedAt": created + timedelta(seconds=seconds + 120),
            "StreamingStartedAt": created + timedelta(seconds=60),
            "StreamingEndedAt": created + timedelta(seconds=60 + seconds),
            "ApplicationArn": f"arn:aws:gameliftstreams:{REGION}:111122223333:application/{app}",
            "UserId": user,
            "Location": location,
            "Status": status,
            "StatusReason": reason,
            "ExportFilesMetadata": {"Status": "SUCCEEDED", "OutputUri": f"s3://{bucket}/{app}/{days}-{user[-1]}.zip"},
        }
        if days == 20:  # so that every column holds a value in some record
            overrides["ExportFilesMetadata"]["StatusReason"] = "Exported after a retry."
        detail = archive.emulator.add_session(**overrides)
        if days != 20:
            body = export_zip.export_zip(detail, seed=days)
            if days == 5:  # a CSV without a timestamp column: the record says why no stats were stored
                body = zip_with_stats("app_mem_mb,shared_sys_gpu_pct\n1,2\n")
            archive._client("s3").put_object(Bucket=bucket, Key=f"{app}/{days}-{user[-1]}.zip", Body=body)
        sessions.append(detail)
    archive.emulator.add_session(ExportFilesMetadata={"Status": "FAILED"})  # never archived, never counted
    return sessions


@pytest.fixture(scope="module")
def athena(
    local_stack: LocalStack, default: Built, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[dict[str, Any]]]]:
    """Records written once by the handler (default settings), then DuckDB with the Glue table of the template."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("KEEP_ENVIRONMENT_VARIABLE_VALUES", raising=False)
        with archive_world(local_stack, monkeypatch) as archive:
            sessions = seed(archive)
            archive.run()
            con, records = define_table(archive, default, tmp_path_factory.mktemp("athena"))
            assert {r["session_arn"] for r in records} == {s["Arn"] for s in sessions}  # 6: the FAILED one is not
            yield con, records


@pytest.fixture(scope="module")
def athena_kept(
    local_stack: LocalStack, default: Built, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[dict[str, Any]]]]:
    """As `athena`, for sessions with known variables archived with KEEP_ENVIRONMENT_VARIABLE_VALUES=true."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        # Set before the world: it starts the handler's wiring afresh from the environment it sets up.
        monkeypatch.setenv("KEEP_ENVIRONMENT_VARIABLE_VALUES", "true")
        with archive_world(local_stack, monkeypatch) as archive:
            for _ in range(2):
                archive.emulator.add_session(AdditionalEnvironmentVariables=KEPT_VARIABLES)
            archive.emulator.add_session(AdditionalEnvironmentVariables={})
            assert archive.run()["total"]["archived"] == 3
            yield define_table(archive, default, tmp_path_factory.mktemp("athena-kept"))


def define_table(
    archive: Archive, default: Built, tmp_path: Path
) -> tuple[duckdb.DuckDBPyConnection, list[dict[str, Any]]]:
    """Copy the handler's objects to disk as the bucket's layout, check their keys against the projection,
    and define the Glue table in DuckDB over them; returns the connection and the records."""
    s3 = archive._client("s3")
    table, params = glue_table(default, archive.bucket)
    stats_table, stats_params = glue_table(default, archive.bucket, STATS_TABLE_NAME)
    objects: dict[str, dict[str, Any]] = {}
    for glue_params, suffix in ((params, ".json"), (stats_params, ".json.gz")):
        prefix = prefix_of(glue_params["storage.location.template"], archive.bucket)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=archive.bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                key = entry["Key"]
                assert key.endswith(suffix), f"{key} under {prefix}"
                body = s3.get_object(Bucket=archive.bucket, Key=key)["Body"].read()
                if suffix == ".json":
                    assert body.endswith(b"\n") and body.count(b"\n") == 1, f"{key} is not one JSON line"
                    objects[key] = json.loads(body)
                target = tmp_path / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
    assert objects, "the handler wrote no record"

    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    # Every key the writer produced must be one the projection template can address.
    template = params["storage.location.template"]
    pattern = re.escape(template).replace(r"\$\{source_region\}", "(?P<source_region>[^/]+)")
    pattern = pattern.replace(r"\$\{created_date\}", "(?P<created_date>[^/]+)") + r"[^/]+\.json"
    for key, record in objects.items():
        match = re.fullmatch(pattern, f"s3://{archive.bucket}/{key}")
        assert match, f"{key} is not under the projection template {template}"
        assert match["source_region"] in params["projection.source_region.values"].split(",")
        assert params["projection.created_date.format"] == "yyyy-MM-dd"
        day = datetime.strptime(match["created_date"], "%Y-%m-%d").replace(tzinfo=UTC)
        low, high = params["projection.created_date.range"].split(",")
        assert high == "NOW" and datetime.strptime(low, "%Y-%m-%d").replace(tzinfo=UTC) <= day <= NOW
        assert set(record) == set(columns), "record fields and Glue columns differ"

    con = duckdb.connect()
    database = only(default.json, "AWS::Glue::Database")["DatabaseInput"]["Name"]
    con.execute(f'CREATE SCHEMA "{database}"')
    for glue_table_input, glue_params, suffix in ((table, params, ".json"), (stats_table, stats_params, ".json.gz")):
        root = glue_params["storage.location.template"].replace(f"s3://{archive.bucket}/", f"{tmp_path}/")
        if suffix == ".json.gz" and not any(
            tmp_path.glob(f"{prefix_of(glue_params['storage.location.template'], archive.bucket)}**/*{suffix}")
        ):
            continue  # no stats object: DuckDB refuses a view over no file
        create_view(
            con,
            database,
            glue_table_input,
            root.replace("${source_region}", "*").replace("${created_date}", "*") + "*" + suffix,
        )
    partitions = [p["Name"] for p in table["PartitionKeys"]]
    described = dict(
        con.execute(f'SELECT column_name, column_type FROM (DESCRIBE "{database}"."{table["Name"]}")').fetchall()
    )
    assert {name for name in described if name not in columns} == set(partitions)
    return con, list(objects.values())


def select_all(con: duckdb.DuckDBPyConnection, default: Built) -> list[dict[str, Any]]:
    """Every row of the Glue table as DuckDB reads it, by column name."""
    table = table_input(default.json, TABLE_NAME)
    database = only(default.json, "AWS::Glue::Database")["DatabaseInput"]["Name"]
    cursor = con.execute(f'SELECT * FROM "{database}"."{table["Name"]}"')
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def run_named(con: duckdb.DuckDBPyConnection, default: Built, name: str, **replace: str) -> list[dict[str, Any]]:
    queries = {
        r["Properties"]["Name"]: r["Properties"]
        for r in default.json["Resources"].values()
        if r["Type"] == "AWS::Athena::NamedQuery"
    }
    sql = queries[name]["QueryString"]
    for old, new in replace.items():
        sql = sql.replace(old, new)
    translated = sqlglot.transpile(sql, read="athena", write="duckdb")
    assert len(translated) == 1
    cursor = con.execute(translated[0])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_every_named_query_is_covered_here(default: Built) -> None:
    names = {
        r["Properties"]["Name"] for r in default.json["Resources"].values() if r["Type"] == "AWS::Athena::NamedQuery"
    }
    assert names == {
        "stats_peak_and_p95_per_session",
        "stats_sustained_gpu",
        "stats_app_memory_growth",
        "stats_p95_per_application_and_location",
        "sessions_per_day_and_application",
        "sessions_per_location_and_region",
        "session_duration_statistics",
        "user_sessions_with_exports",
        "archive_freshness",
        "session_end_reasons",
    }


def test_records_read_through_the_glue_schema(athena: Any, default: Built) -> None:
    con, records = athena
    table = table_input(default.json, TABLE_NAME)
    database = only(default.json, "AWS::Glue::Database")["DatabaseInput"]["Name"]
    rows = con.execute(
        f"SELECT session_arn, created_at, archived_at, source_region, created_date, additional_launch_args "
        f'FROM "{database}"."{table["Name"]}"'
    ).fetchall()
    assert len(rows) == len(records) == 6
    launch_args = {r["session_arn"]: r["additional_launch_args"] for r in records}
    for arn, created, archived, region, day, args in rows:
        assert isinstance(created, datetime) and isinstance(archived, datetime)  # timestamps, no casts
        assert region == REGION and day == created.strftime("%Y-%m-%d")
        assert arn.startswith(f"arn:aws:gameliftstreams:{REGION}:")
        assert isinstance(args, list) and args == launch_args[arn] and args


def test_every_value_has_its_column_type_and_reads_back_unchanged(athena: Any, default: Built) -> None:
    con, records = athena
    columns = {c["Name"]: c["Type"] for c in table_input(default.json, TABLE_NAME)["StorageDescriptor"]["Columns"]}
    for name, kind in columns.items():
        values = [record[name] for record in records]
        assert any(value is not None for value in values), f"no record has a {name}: its type goes unchecked"
        wrong = [value for value in values if not json_has_type(value, kind)]
        assert wrong == [], f"{name} is declared {kind}"
    rows = {row["session_arn"]: row for row in select_all(con, default)}
    assert len(rows) == len(records)
    for record in records:
        row = rows[record["session_arn"]]
        assert {name: row[name] for name in columns} == {
            name: as_read(record[name], kind) for name, kind in columns.items()
        }


def test_environment_values_read_as_redacted_by_default(athena: Any, default: Built) -> None:
    con, records = athena
    stored = {r["session_arn"]: r["additional_environment_variables"] for r in records}
    read = {row["session_arn"]: row["additional_environment_variables"] for row in select_all(con, default)}
    assert read == stored
    assert {value for variables in read.values() for value in (variables or {}).values()} == {REDACTED}


def test_environment_values_read_as_kept_when_the_operator_opts_in(athena_kept: Any, default: Built) -> None:
    con, _ = athena_kept
    read = sorted((row["additional_environment_variables"] for row in select_all(con, default)), key=len)
    assert read == [{}, KEPT_VARIABLES, KEPT_VARIABLES]
    # An analyst's Athena SQL reaches a kept value by its name.
    table = table_input(default.json, TABLE_NAME)["Name"]
    database = only(default.json, "AWS::Glue::Database")["DatabaseInput"]["Name"]
    athena_sql = f'SELECT element_at(additional_environment_variables, \'BUILD\') AS build FROM "{database}"."{table}"'
    (duckdb_sql,) = sqlglot.transpile(athena_sql, read="athena", write="duckdb")
    assert Counter(build for (build,) in con.execute(duckdb_sql).fetchall()) == {"1.4.2-rc1": 2, None: 1}


def test_sessions_per_day_and_application(athena: Any, default: Built) -> None:
    con, records = athena
    rows = run_named(con, default, "sessions_per_day_and_application")
    expected = Counter((r["created_at"][:10], r["application_id"]) for r in records)
    assert {(r["created_date"], r["application_id"]): r["sessions"] for r in rows} == dict(expected)


def test_sessions_per_location_and_region(athena: Any, default: Built) -> None:
    con, records = athena
    rows = run_named(con, default, "sessions_per_location_and_region")
    recent = [r for r in records if r["created_at"] >= (NOW - timedelta(days=30)).strftime("%Y-%m-%d")]
    expected = Counter((REGION, r["location"]) for r in recent)
    assert {(r["source_region"], r["location"]): r["sessions"] for r in rows} == dict(expected)
    assert rows[0]["sessions"] == max(expected.values())


def test_session_duration_statistics(athena: Any, default: Built) -> None:
    con, _ = athena
    rows = {r["application_id"]: r for r in run_named(con, default, "session_duration_statistics")}
    assert rows[APPS[0]]["sessions"] == 3
    assert rows[APPS[0]]["min_seconds"] == 600 and rows[APPS[0]]["max_seconds"] == 86_400
    assert rows[APPS[1]]["sessions"] == 3
    assert rows[APPS[1]]["min_seconds"] == 30 and rows[APPS[1]]["max_seconds"] == 3600
    assert rows[APPS[1]]["avg_seconds"] == pytest.approx((30 + 3600 + 45) / 3, abs=0.1)
    for row in rows.values():
        assert row["min_seconds"] <= row["p50_seconds"] <= row["p95_seconds"] <= row["max_seconds"]


def test_user_sessions_with_exports(athena: Any, default: Built) -> None:
    con, records = athena
    rows = run_named(con, default, "user_sessions_with_exports", REPLACE_WITH_USER_ID=USER)
    mine = sorted((r for r in records if r["user_id"] == USER), key=lambda r: r["created_at"], reverse=True)
    assert [r["session_arn"] for r in rows] == [r["session_arn"] for r in mine]
    assert [r["export_output_uri"] for r in rows] == [r["export_output_uri"] for r in mine]
    assert all(uri.startswith("s3://") and uri.endswith(".zip") for uri in (r["export_output_uri"] for r in rows))
    assert [r["streamed_seconds"] for r in rows] == [600, 30, 45]


def test_archive_freshness(athena: Any, default: Built) -> None:
    con, records = athena
    before = datetime.now(UTC).replace(tzinfo=None)
    rows = run_named(con, default, "archive_freshness")
    after = datetime.now(UTC).replace(tzinfo=None)
    assert len(rows) == 1 and rows[0]["source_region"] == REGION
    week = [r for r in records if r["created_at"] >= (NOW - timedelta(days=7)).strftime("%Y-%m-%d")]
    assert rows[0]["sessions_archived"] == len(week) == 5
    newest = max(r["archived_at"] for r in week)
    assert rows[0]["newest_archived_at"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] == newest
    # Minutes from the newest archive to the query's own "now", whenever the query ran: the arithmetic, not
    # how long this test took.
    elapsed = [(moment - datetime.fromisoformat(newest)).total_seconds() / 60 for moment in (before, after)]
    assert math.floor(elapsed[0]) <= rows[0]["minutes_since_newest_archive"] <= math.ceil(elapsed[1])


def test_session_end_reasons(athena: Any, default: Built) -> None:
    con, records = athena
    rows = run_named(con, default, "session_end_reasons")
    expected = Counter((r["created_at"][:10], r["status"], r["status_reason"] or "(none)") for r in records)
    assert {(r["created_date"], r["status"], r["status_reason"]): r["sessions"] for r in rows} == dict(expected)


# --- The performance stats table and its named queries ----------------------------------------------------------
#
# Sessions with crafted stats/perf_stats_v1.csv rows, so each query's answer is known exactly: the emulator's ZIP
# layout (local.export_zip, its random rows replaced), read by archiver.perfstats.extract_stats as the handler
# reads it, its output stored under the stats table's projection template; records beside them for the joins.

STATS_BUCKET = "archive-bucket"
ACCOUNT = "111122223333"


def gpu_a(i: int) -> float:
    """Session A: a 70-second stretch at 97% (samples 10-79), a 50-second one (100-149), one sample at 100%."""
    return 97.0 if 10 <= i < 80 or 100 <= i < 150 else 100.0 if i == 180 else 50.0


def gpu_b(i: int) -> float:
    """Session B: exactly 60 seconds at exactly 95% (sustained: both bounds inclusive), later 59 s at 99%."""
    return 95.0 if i < 60 else 99.0 if 120 <= i < 179 else 40.0


# Session C's sample times (seconds from its start), all at 98%: 0-39, a 2-second gap (not a break), 41-70
# (one stretch of 71 seconds), a 7-second gap (a break), 77-126 (50 seconds: not sustained).
C_SECONDS = (*range(40), *range(41, 71), *range(77, 127))


def sample(
    second: int, *, gpu: float, vram: float = 4000.0, cpu: float = 30.0, mem: float = 1000.0
) -> dict[str, float | int]:
    return {"second": second, "gpu": gpu, "vram": vram, "cpu": cpu, "mem": mem}


# name -> (days ago, application, location, samples); E has a record and no stats.
STATS_SESSIONS: dict[str, tuple[int, str, str, list[dict[str, float | int]]]] = {
    "A": (
        0,
        APPS[0],
        "us-east-2",
        [
            sample(i, gpu=gpu_a(i), vram=6000.0 if i == 5 else 4000.0, cpu=90.0 if i == 7 else 30.0, mem=1000.0 + 2 * i)
            for i in range(200)
        ],
    ),
    "A2": (0, APPS[0], "us-east-2", [sample(i, gpu=60.0) for i in range(100)]),
    "B": (1, APPS[0], "eu-central-1", [sample(i, gpu=gpu_b(i), vram=2000, cpu=20, mem=3000) for i in range(180)]),
    "C": (2, APPS[1], "us-east-2", [sample(t, gpu=98.0, vram=3000, cpu=50, mem=5000 - 0.5 * t) for t in C_SECONDS]),
    # Outside the 7-day queries (sustained, but not listed), inside the 30-day one.
    "D": (10, APPS[1], "us-west-2", [sample(i, gpu=99.0, mem=1500) for i in range(100)]),
    "E": (1, APPS[0], "eu-central-1", []),
}


def stats_arn(name: str) -> str:
    return f"arn:aws:gameliftstreams:{REGION}:{ACCOUNT}:streamsession/sg-stats{name}/ses-stats{name}"


def stats_created(name: str) -> datetime:
    return NOW - timedelta(days=STATS_SESSIONS[name][0], hours=1)


def stats_csv_rows(name: str) -> list[list[str]]:
    start = stats_created(name) + timedelta(seconds=60)
    rows = []
    for s in STATS_SESSIONS[name][3]:
        at = (start + timedelta(seconds=int(s["second"]))).strftime("%Y-%m-%dT%H:%M:%SZ")
        mem, vram = float(s["mem"]), float(s["vram"])
        # In export_zip.PERF_STATS_COLUMNS' order.
        fields = (at, "0.5", f"{mem:g}", f"{mem / 16384:.6f}", f"{s['cpu']:g}", f"{mem + 1800:g}", "50")
        rows.append([*fields, f"{s['gpu']:g}", f"{vram:g}", f"{100 * vram / 8192:.3f}"])
    return rows


def prefix_of(template: str, bucket: str) -> str:
    """The key prefix before the partitions of a `storage.location.template`."""
    assert template.startswith(f"s3://{bucket}/") and template.endswith(records.PARTITION_TEMPLATE)
    return template.removeprefix(f"s3://{bucket}/").removesuffix(records.PARTITION_TEMPLATE)


def create_view(con: duckdb.DuckDBPyConnection, database: str, table: dict[str, Any], files: str) -> dict[str, str]:
    """A DuckDB view named as the Glue table, over `files`, read with the table's column types."""
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    spec = ", ".join(f"'{name}': '{DUCKDB_TYPES[kind]}'" for name, kind in columns.items())
    con.execute(
        f'CREATE VIEW "{database}"."{table["Name"]}" AS SELECT * FROM read_json('
        f"'{files}', format='newline_delimited', columns={{{spec}}}, hive_partitioning=true, "
        "hive_types_autocast=false)"
    )
    return columns


@pytest.fixture(scope="module")
def stats_athena(default: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """Both Glue tables of the template in DuckDB: records of the STATS_SESSIONS, and their stats objects as
    extract_stats wrote them from the emulator's ZIP layout, stored at the keys the projection addresses."""
    root = tmp_path_factory.mktemp("athena-stats")
    records_table, records_params = glue_table(default, STATS_BUCKET)
    stats_table, stats_params = glue_table(default, STATS_BUCKET, STATS_TABLE_NAME)
    record_prefix = prefix_of(records_params["storage.location.template"], STATS_BUCKET)
    stats_prefix = prefix_of(stats_params["storage.location.template"], STATS_BUCKET)
    assert stats_prefix != record_prefix
    assert stats_params["projection.source_region.values"] == records_params["projection.source_region.values"]
    assert stats_table["PartitionKeys"] == records_table["PartitionKeys"]
    record_columns = [c["Name"] for c in records_table["StorageDescriptor"]["Columns"]]
    stats_columns = {c["Name"]: c["Type"] for c in stats_table["StorageDescriptor"]["Columns"]}

    for name, (_, app, location, samples) in STATS_SESSIONS.items():
        arn, created = stats_arn(name), stats_created(name)
        parsed = records.parse_session_arn(arn)
        assert parsed is not None
        record = dict.fromkeys(record_columns) | {
            "session_arn": arn,
            "application_id": app,
            "location": location,
            "created_at": records.athena_timestamp(created),
        }
        path = root / records.object_key(record_prefix, parsed, created)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record) + "\n")
        if not samples:
            continue
        detail = {"Arn": arn, "CreatedAt": created, "StreamingStartedAt": created + timedelta(seconds=60)}
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setattr(export_zip, "stats_rows", lambda *_, name=name, **__: stats_csv_rows(name))
            data = export_zip.export_zip(detail)
        out = io.BytesIO()
        result = extract_stats(MemoryReader(data), out, session_arn=arn)
        assert (result.summary.status, result.summary.rows) == ("stored", len(samples))
        assert result.summary.bad_values == result.summary.bad_timestamps == 0
        key = records.stats_key(stats_prefix, parsed, created)
        assert re.fullmatch(
            re.escape(stats_params["storage.location.template"])
            .replace(r"\$\{source_region\}", REGION)
            .replace(r"\$\{created_date\}", created.strftime("%Y-%m-%d"))
            + r"[^/]+\.json\.gz",
            f"s3://{STATS_BUCKET}/{key}",
        )
        lines = gzip.decompress(out.getvalue()).decode().splitlines()
        assert len(lines) == len(samples)
        for line in lines:
            row = json.loads(line)
            assert list(row) == list(stats_columns), "stats row fields and Glue columns differ (or their order)"
            wrong = {k: v for k, v in row.items() if not json_has_type(v, stats_columns[k])}
            assert wrong == {}
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(out.getvalue())

    con = duckdb.connect()
    database = only(default.json, "AWS::Glue::Database")["DatabaseInput"]["Name"]
    con.execute(f'CREATE SCHEMA "{database}"')
    for table, params, suffix in ((records_table, records_params, ".json"), (stats_table, stats_params, ".json.gz")):
        template = params["storage.location.template"].replace(f"s3://{STATS_BUCKET}/", f"{root}/")
        create_view(
            con,
            database,
            table,
            template.replace("${source_region}", "*").replace("${created_date}", "*") + "*" + suffix,
        )
    yield con


def test_stats_rows_read_through_the_glue_schema(stats_athena: duckdb.DuckDBPyConnection, default: Built) -> None:
    database = only(default.json, "AWS::Glue::Database")["DatabaseInput"]["Name"]
    rows = stats_athena.execute(
        f'SELECT session_arn, "timestamp", shared_sys_gpu_pct, app_mem_mb, extra, source_region, created_date '
        f'FROM "{database}"."{STATS_TABLE_NAME}" WHERE session_arn = \'{stats_arn("A")}\' ORDER BY "timestamp"'
    ).fetchall()
    assert len(rows) == 200
    start = (stats_created("A") + timedelta(seconds=60)).replace(tzinfo=None)
    for i, (arn, at, gpu, mem, extra, region, day) in enumerate(rows):
        assert arn == stats_arn("A") and at == start + timedelta(seconds=i)  # a timestamp, no casts
        assert (gpu, mem) == (gpu_a(i), 1000.0 + 2 * i) and extra == {}
        assert (region, day) == (REGION, stats_created("A").strftime("%Y-%m-%d"))
    counts = dict(
        stats_athena.execute(
            f'SELECT session_arn, count(*) FROM "{database}"."{STATS_TABLE_NAME}" GROUP BY session_arn'
        ).fetchall()
    )
    assert counts == {stats_arn(n): len(s[3]) for n, s in STATS_SESSIONS.items() if s[3]}


def test_stats_peak_and_p95_per_session(stats_athena: duckdb.DuckDBPyConnection, default: Built) -> None:
    rows = run_named(stats_athena, default, "stats_peak_and_p95_per_session")
    assert [r["session_arn"] for r in rows] == [stats_arn(n) for n in ("A", "B", "C", "A2")]  # D: 10 days ago
    a, b, c, a2 = rows
    assert (a["samples"], b["samples"], c["samples"], a2["samples"]) == (200, 180, 120, 100)
    assert (a["peak_gpu_pct"], a["p95_gpu_pct"]) == (100.0, 97.0)
    assert (a["peak_vram_mb"], a["p95_vram_mb"]) == (6000.0, 4000.0)
    assert (a["peak_cpu_pct"], a["p95_cpu_pct"]) == (90.0, 30.0)
    assert a["peak_app_mem_mb"] == 1398.0 and a["p95_app_mem_mb"] == pytest.approx(1380.0, abs=6)  # approximate
    assert (b["peak_gpu_pct"], b["p95_gpu_pct"], b["peak_vram_mb"], b["p95_app_mem_mb"]) == (99.0, 99.0, 2000.0, 3000.0)
    assert (c["peak_gpu_pct"], c["p95_gpu_pct"], c["peak_app_mem_mb"]) == (98.0, 98.0, 5000.0)
    start = (stats_created("A") + timedelta(seconds=60)).replace(tzinfo=None)
    assert (a["first_sample_at"], a["last_sample_at"]) == (start, start + timedelta(seconds=199))


def test_stats_sustained_gpu(stats_athena: duckdb.DuckDBPyConnection, default: Built) -> None:
    rows = run_named(stats_athena, default, "stats_sustained_gpu")
    found = {r["session_arn"]: r for r in rows}
    # A: its 70-second stretch, not the 50-second one; B: exactly 60 s at exactly 95%, not its 59 s at 99%;
    # C: 71 s across a 2-second gap, not the 50 s after a 7-second gap; D: older than 7 days; A2: never hot.
    assert [r["session_arn"] for r in rows] == [stats_arn(n) for n in ("C", "A", "B")]
    assert {n: (found[stats_arn(n)]["sustained_stretches"], found[stats_arn(n)]["longest_stretch_seconds"])
            for n in ("A", "B", "C")} == {"A": (1, 70), "B": (1, 60), "C": (1, 71)}  # fmt: skip
    assert {n: found[stats_arn(n)]["application_id"] for n in ("A", "B", "C")} == {
        "A": APPS[0],
        "B": APPS[0],
        "C": APPS[1],
    }
    start = (stats_created("A") + timedelta(seconds=60)).replace(tzinfo=None)
    assert found[stats_arn("A")]["first_started_at"] == start + timedelta(seconds=10)


def test_stats_app_memory_growth(stats_athena: duckdb.DuckDBPyConnection, default: Built) -> None:
    rows = {r["session_arn"]: r for r in run_named(stats_athena, default, "stats_app_memory_growth")}
    assert set(rows) == {stats_arn(n) for n in ("A", "A2", "B", "C")}
    a, b, c = rows[stats_arn("A")], rows[stats_arn("B")], rows[stats_arn("C")]
    assert a["mb_per_second"] == pytest.approx(2.0) and a["mb_per_hour"] == pytest.approx(7200.0)
    assert (a["samples"], a["seconds"], a["first_app_mem_mb"], a["last_app_mem_mb"]) == (200, 199, 1000.0, 1398.0)
    assert b["mb_per_second"] == pytest.approx(0.0, abs=1e-9)
    # The slope is over time, not over samples: C's gaps do not bend its -0.5 MB/s.
    assert c["mb_per_second"] == pytest.approx(-0.5) and (c["first_app_mem_mb"], c["last_app_mem_mb"]) == (
        5000.0,
        4937.0,
    )
    assert c["seconds"] == 126
    assert next(iter(rows)) == stats_arn("A")  # steepest growth first


def test_stats_p95_per_application_and_location(stats_athena: duckdb.DuckDBPyConnection, default: Built) -> None:
    rows = run_named(stats_athena, default, "stats_p95_per_application_and_location")
    day = {n: stats_created(n).strftime("%Y-%m-%d") for n in STATS_SESSIONS}
    got = {(r["created_date"], r["application_id"], r["location"]): r for r in rows}
    assert set(got) == {
        (day["A"], APPS[0], "us-east-2"),
        (day["B"], APPS[0], "eu-central-1"),
        (day["C"], APPS[1], "us-east-2"),
        (day["D"], APPS[1], "us-west-2"),
    }
    a = got[(day["A"], APPS[0], "us-east-2")]
    # A and A2 together: 300 samples, 121 of them (over 5%) at 97% or more, one at 100%.
    assert (a["sessions"], a["samples"], a["p95_gpu_pct"], a["p95_vram_mb"], a["p95_cpu_pct"]) == (
        2,
        300,
        97.0,
        4000.0,
        30.0,
    )
    b = got[(day["B"], APPS[0], "eu-central-1")]
    assert (b["sessions"], b["samples"], b["p95_gpu_pct"]) == (1, 180, 99.0)  # E has a record, no stats
    d = got[(day["D"], APPS[1], "us-west-2")]
    assert (d["sessions"], d["samples"], d["p95_gpu_pct"], d["p95_app_mem_mb"]) == (1, 100, 99.0, 1500.0)
    assert [r["created_date"] for r in rows] == sorted((r["created_date"] for r in rows), reverse=True)


def test_the_handlers_stats_objects_read_through_the_stats_table(athena: Any, default: Built) -> None:
    """What the handler stored from the emulator's ZIPs: every stats object its record names, with as many rows
    as the record says and each value of its column type, and the named queries agree with the CSVs."""
    con, records_written = athena
    database = only(default.json, "AWS::Glue::Database")["DatabaseInput"]["Name"]
    with_stats = {r["session_arn"]: r for r in records_written if r.get("stats_key")}
    assert len(with_stats) == 4  # six sessions: one ZIP gone, one CSV without timestamps
    assert all(r["stats_status"] == "stored" and r["stats_rows"] > 0 for r in with_stats.values())
    cursor = con.execute(f'SELECT * FROM "{database}"."{STATS_TABLE_NAME}"')
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert Counter(row["session_arn"] for row in rows) == {arn: r["stats_rows"] for arn, r in with_stats.items()}
    for row in rows:
        record = with_stats[row["session_arn"]]
        assert (row["source_region"], row["created_date"]) == (REGION, record["created_at"][:10])
        assert isinstance(row["timestamp"], datetime) and isinstance(row["shared_sys_gpu_pct"], float)
    peaks = {r["session_arn"]: r for r in run_named(con, default, "stats_peak_and_p95_per_session")}
    week = {arn for arn, r in with_stats.items() if r["created_at"] >= (NOW - timedelta(days=7)).strftime("%Y-%m-%d")}
    assert set(peaks) == week
    for arn in week:
        gpu = [row["shared_sys_gpu_pct"] for row in rows if row["session_arn"] == arn]
        assert peaks[arn]["peak_gpu_pct"] == max(gpu) and peaks[arn]["samples"] == len(gpu)
    growth = {r["session_arn"] for r in run_named(con, default, "stats_app_memory_growth")}
    assert growth == week
    per_day = run_named(con, default, "stats_p95_per_application_and_location")
    assert sum(r["samples"] for r in per_day) == sum(r["stats_rows"] for r in with_stats.values())

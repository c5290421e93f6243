"""The export ZIPs over the local stack (issue 11): the emulator writes real ZIPs into an export bucket in moto,
the handler finds them from OutputUri (a folder: listed; a .zip: the object) and reads them by ranges through
the fault proxy; the stats object equals the CSV as the standard library reads it; access denied is recorded
and counted, the record still archived; a transient 5xx fails the session for this run only."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from typing import Any

import pytest

from archiver.records import parse_session_arn, stats_key
from local.export_zip import PERF_STATS_MEMBER
from tests.stack_fixtures import Archive

from .conftest import fired, stats_objects


@pytest.fixture
def exports(archive: Archive) -> Archive:
    """The archive world with an export bucket (its own: moto is shared) the emulator writes its ZIPs into."""
    archive.stack.client("s3", direct=True).create_bucket(
        Bucket=bucket(archive), CreateBucketConfiguration={"LocationConstraint": archive.stack.region}
    )
    return archive


def bucket(world: Archive) -> str:
    return f"exports-{world.table}"


def export_and_end(world: Archive, output_uri: str) -> str:
    """A live session exported to `output_uri` and terminated: the emulator writes its ZIP. Its ARN."""
    api = world.stack.client("gameliftstreams")
    arn = str(world.stack.gls.start()["Arn"])
    group, session = arn.split("/")[-2:]
    api.export_stream_session_files(Identifier=group, StreamSessionIdentifier=session, OutputUri=output_uri)
    api.terminate_stream_session(Identifier=group, StreamSessionIdentifier=session)
    return arn


def the_zip(world: Archive, arn: str) -> tuple[str, bytes]:
    """The ZIP the emulator wrote for the session (key, bytes): the one whose name has its ID, or the only one."""
    s3 = world.stack.client("s3", direct=True)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket(world)).get("Contents", [])]
    session = arn.rsplit("/", 1)[-1]
    [key] = [key for key in keys if session in key] or keys
    return key, s3.get_object(Bucket=bucket(world), Key=key)["Body"].read()


def csv_rows(zip_bytes: bytes) -> list[dict[str, str]]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        return list(csv.DictReader(io.StringIO(archive.read(PERF_STATS_MEMBER).decode("utf-8-sig"))))


def check_stats(world: Archive, arn: str, record: dict[str, Any]) -> None:
    """The stats object holds the CSV's rows, typed, with the session's ARN; the record says so."""
    _, zip_bytes = the_zip(world, arn)
    expected = csv_rows(zip_bytes)
    parsed = parse_session_arn(arn)
    assert parsed is not None
    created = record["created_at"]
    assert record["stats_key"] is not None and record["stats_key"].endswith(".json.gz")
    assert f"created_date={created[:10]}/" in record["stats_key"]
    rows = [json.loads(line) for line in gzip.decompress(stats_objects(world)[record["stats_key"]]).splitlines()]
    assert len(rows) == len(expected) == record["stats_rows"] > 0
    assert {row["session_arn"] for row in rows} == {arn}
    for row, source in zip(rows, expected, strict=True):
        assert row["app_mem_mb"] == float(source["app_mem_mb"])
        assert row["shared_sys_vram_pct"] == float(source["shared_sys_vram_pct"])
        assert row["timestamp"] == source["timestamp"].replace("T", " ").replace("Z", ".000")
    assert record["export_read_status"] == "read" and record["stats_status"] == "stored"
    assert record["zip_size"] == len(zip_bytes) and 0 < record["export_bytes_read"] <= len(zip_bytes)
    assert record["perf_stats_present"] is True and record["member_count"] >= 2


@pytest.mark.parametrize("path", ["playtests/", "playtests/one.zip"])
def test_the_reconciler_stores_each_sessions_stats_from_a_folder_or_a_zip_uri(exports: Archive, path: str) -> None:
    arn = export_and_end(exports, f"s3://{bucket(exports)}/{path}")
    summary = exports.run()
    assert summary["total"]["archived"] == 1
    assert summary["exports"]["exports_read"] == 1 and summary["exports"]["stats_stored"] == 1
    [record] = exports.objects().values()
    check_stats(exports, arn, record)
    assert set(stats_objects(exports)) == {record["stats_key"]}
    parsed = parse_session_arn(arn)
    assert parsed is not None and record["stats_key"].startswith("perf-stats/source_region=")
    assert exports.items()[arn]["schema_version"] == "2"

    again = exports.run()  # archived: nothing read, nothing rewritten
    assert again["exports"]["exports_read"] == 0 and exports.object_versions() == 2


def test_access_denied_on_the_zip_is_recorded_counted_and_the_record_archived(exports: Archive) -> None:
    arn = export_and_end(exports, f"s3://{bucket(exports)}/denied/")
    exports.stack.proxy.faults.inject("HeadObject", "access_denied")
    summary = exports.run()
    assert fired(exports)[("HeadObject", "access_denied")] >= 1
    assert summary["total"]["archived"] == 1 and summary["exports"]["exports_unreadable"] == 1
    [record] = exports.objects().values()
    assert record["session_arn"] == arn and record["export_read_status"] == "access_denied"
    assert record["stats_key"] is None and record["stats_status"] is None and stats_objects(exports) == {}
    assert arn in exports.items()


def test_a_5xx_on_the_zip_fails_the_session_this_run_and_the_next_run_archives_it_with_stats(exports: Archive) -> None:
    arn = export_and_end(exports, f"s3://{bucket(exports)}/flaky/")
    exports.stack.proxy.faults.inject("GetObject", "internal", times=3)  # MAX_ATTEMPTS=3: the retries spent
    first = exports.run()
    assert fired(exports)[("GetObject", "internal")] == 3
    assert first["total"]["failed"] == 1 and first["total"]["archived"] == 0
    assert exports.objects() == {} and stats_objects(exports) == {} and exports.items() == {}

    second = exports.run()
    assert second["total"]["archived"] == 1 and second["exports"]["stats_stored"] == 1
    [record] = exports.objects().values()
    check_stats(exports, arn, record)


def test_stats_key_matches_the_layout(exports: Archive) -> None:
    arn = export_and_end(exports, f"s3://{bucket(exports)}/layout/")
    exports.run()
    [record] = exports.objects().values()
    parsed = parse_session_arn(arn)
    assert parsed is not None
    from datetime import datetime

    created = datetime.fromisoformat(record["created_at"] + "+00:00")
    assert record["stats_key"] == stats_key("perf-stats/", parsed, created)


def test_hostile_zips_are_recorded_counted_and_never_block_the_other_sessions(exports: Archive) -> None:
    """Someone else's ZIPs in the export bucket: truncated, not a ZIP, a wrong CSV header, no stats member, a
    central directory pointing outside the file; each session archived with what happened, a good one too."""
    good = zipfile_bytes({"stats/perf_stats_v1.csv": b"timestamp,app_mem_mb\n2026-11-27T18:00:00Z,1.5\n"})
    whole = zipfile_bytes({"application/a.log": b"x" * 1000, "stats/perf_stats_v1.csv": b"timestamp\n"})
    outside = bytearray(whole)
    end = outside.rindex(b"PK\x05\x06")
    outside[end + 16 : end + 20] = (len(whole) * 10).to_bytes(4, "little")  # the directory's offset: far beyond
    cases = {
        "good": (good, "stored"),
        "truncated": (whole[: len(whole) // 2], "malformed"),
        "not-a-zip": (b"this is not a zip file at all" * 10, "malformed"),
        "bad-header": (zipfile_bytes({"stats/perf_stats_v1.csv": b"cpu,mem\n1,2\n"}), "bad_header"),
        "no-stats": (zipfile_bytes({"application/a.log": b"hello"}), "absent"),
        "outside": (bytes(outside), "malformed"),
    }
    s3 = exports.stack.client("s3", direct=True)
    arns = {}
    for name, (body, _) in cases.items():
        key = f"hostile/{name}.zip"
        s3.put_object(Bucket=bucket(exports), Key=key, Body=body)
        detail = exports.emulator.add_session(
            ExportFilesMetadata={"Status": "SUCCEEDED", "OutputUri": f"s3://{bucket(exports)}/{key}"}
        )
        arns[str(detail["Arn"])] = name

    summary = exports.run()

    assert summary["total"]["archived"] == len(cases) and summary["total"]["failed"] == 0
    assert summary["exports"]["exports_read"] == len(cases) and summary["exports"]["stats_stored"] == 1
    assert summary["exports"]["stats_failed"] == 4 and summary["exports"]["stats_absent"] == 1
    for record in exports.objects().values():
        body, status = cases[arns[record["session_arn"]]]
        assert record["export_read_status"] == "read" and record["stats_status"] == status, record["session_arn"]
        assert record["export_bytes_read"] <= len(body)
        assert (record["stats_key"] is not None) == (status == "stored")
    assert len(stats_objects(exports)) == 1


def zipfile_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()

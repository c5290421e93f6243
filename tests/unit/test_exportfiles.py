"""archiver.exportfiles and the Archivist's export steps: the ZIP found from OutputUri (object, folder, the
event's key), read by ranged GETs pinned to one ETag, permanent failures recorded, transient ones raised;
the stats object stored once before the record, the record's export columns, the tally."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from archiver.archive import STATS_CONTENT_TYPE, Archived, Archivist
from archiver.exportfiles import ACCESS_DENIED, NO_BUCKET, NOT_FOUND, NOT_S3, READ, ExportFiles
from archiver.exports import session_of
from archiver.perfstats import STATS_TABLE_COLUMNS
from archiver.records import EXPORT_COLUMNS, SCHEMA, SCHEMA_VERSION, object_key, parse_session_arn, stats_key
from archiver.ziprange import ZipLimits
from local.export_zip import PERF_STATS_MEMBER, export_zip

from .fakes import BUCKET, EPOCH, EXPORT_BUCKET, FIRST_CREATED, GROUP, World
from .zips import zipfile_zip

STATS_PREFIX = "perf-stats/"


def exported_zip(detail: dict[str, Any], seed: int = 0) -> bytes:
    """The emulator's ZIP of the session, 90 seconds of stats (the fake sessions have no streaming times)."""
    return export_zip({**detail, "StreamingEndedAt": detail["CreatedAt"] + timedelta(seconds=90)}, seed=seed)


def folder_session(world: World, folder: str = "studio/run-1/") -> tuple[dict[str, Any], str]:
    """A session whose OutputUri is a folder holding its ZIP under the service's name; (detail, key)."""
    detail = world.gls.add_session()
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    key = f"{folder}20261127-180000-a-1A2b3C4d5-{arn.stream_group_id}-{arn.session_id}.zip"
    detail["ExportFilesMetadata"] = {"Status": "SUCCEEDED", "OutputUri": f"s3://{EXPORT_BUCKET}/{folder}"}
    world.s3.add_object(EXPORT_BUCKET, key, exported_zip(detail))
    return detail, key


def zip_session(world: World, body: bytes | None = None) -> dict[str, Any]:
    """A session whose OutputUri is its ZIP object (the emulator's ZIP unless `body`)."""
    detail = world.gls.add_session()
    key = f"zips/{detail['Arn'].rsplit('/', 1)[-1]}.ZIP"
    detail["ExportFilesMetadata"] = {"Status": "SUCCEEDED", "OutputUri": f"s3://{EXPORT_BUCKET}/{key}"}
    world.s3.add_object(EXPORT_BUCKET, key, exported_zip(detail) if body is None else body)
    return detail


def csv_rows(zip_bytes: bytes) -> list[dict[str, str]]:
    """The stats CSV's rows read with the standard library, the oracle the archiver is checked against."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        text = archive.read(PERF_STATS_MEMBER).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def range_length(header: str) -> int:
    first, last = header.removeprefix("bytes=").split("-")
    return int(last) - int(first) + 1


def writer(world: World, **options: Any) -> Archivist:
    return Archivist(
        world.settings(), world.ledger(), world.store(), world.clock.wall, exports=world.exports(**options)
    )


def stats_objects(world: World) -> dict[str, list[dict[str, Any]]]:
    return {
        key: [json.loads(line) for line in gzip.decompress(body).splitlines()]
        for key, body in world.s3.blobs(BUCKET, ".json.gz").items()
    }


def test_a_folder_output_uri_is_listed_and_the_sessions_zip_read_by_ranges_then_stats_record_and_item() -> None:
    world = World()
    detail, zip_key = folder_session(world)
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    world.s3.add_object(EXPORT_BUCKET, "studio/run-1/20261127-180000-a-1A2b3C4d5-sg-other-s999.zip", b"not ours")

    assert writer(world).archive(arn, detail, {}) is Archived.ARCHIVED

    zip_bytes = world.s3.buckets[EXPORT_BUCKET][zip_key]
    gets = world.s3.calls("GetObject")
    assert gets and all(call.params["Key"] == zip_key and call.params["IfMatch"] for call in gets)
    assert all(call.params["Range"].startswith("bytes=") for call in gets)
    order = [(c.operation, c.params.get("Bucket")) for c in world.log if c.operation != "GetStreamSession"]
    assert order[0] == ("ListObjectsV2", EXPORT_BUCKET) and order[1] == ("HeadObject", EXPORT_BUCKET)
    assert order[-3:] == [("PutObject", BUCKET), ("PutObject", BUCKET), ("PutItem", None)]  # stats, record, item
    key = stats_key(STATS_PREFIX, arn, FIRST_CREATED)
    assert key == f"perf-stats/source_region={arn.region}/created_date=2026-11-27/{GROUP}_{arn.session_id}.json.gz"
    assert world.s3.content_types[key] == STATS_CONTENT_TYPE
    rows = stats_objects(world)[key]
    expected = csv_rows(zip_bytes)
    assert len(rows) == len(expected) > 0
    assert [list(row) for row in rows] == [[c.name for c in STATS_TABLE_COLUMNS]] * len(rows)
    assert all(row["session_arn"] == arn.arn for row in rows)
    assert [row["shared_sys_gpu_pct"] for row in rows] == [float(row["shared_sys_gpu_pct"]) for row in expected]

    [record] = world.s3.objects().values()
    assert record["schema_version"] == SCHEMA_VERSION == 2
    assert record["export_read_status"] == READ and record["stats_status"] == "stored"
    assert record["stats_rows"] == len(expected) and record["stats_key"] == key
    assert record["perf_stats_present"] is True and record["zip_size"] == len(zip_bytes)
    assert record["zip_etag"] == world.s3.etags[(EXPORT_BUCKET, zip_key)]
    assert 0 < record["export_bytes_read"] <= len(zip_bytes)  # a small ZIP: its tail read is the whole ZIP
    assert record["export_bytes_read"] == sum(range_length(call.params["Range"]) for call in gets)
    assert list(record) == [field.name for field in SCHEMA]


def test_the_newest_of_several_zips_of_the_session_in_the_folder_is_read() -> None:
    world = World()
    detail, old_key = folder_session(world)
    new_key = old_key.replace("20261127-180000", "20261127-190000")
    world.s3.add_object(EXPORT_BUCKET, new_key, exported_zip(detail, seed=7), modified=EPOCH + timedelta(days=1))
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    writer(world).archive(arn, detail, {})
    assert {call.params["Key"] for call in world.s3.calls("GetObject")} == {new_key}


def test_the_consumer_s_key_is_read_without_listing() -> None:
    world = World()
    detail, key = folder_session(world)
    arn = parse_session_arn(detail["Arn"])
    known = session_of(EXPORT_BUCKET, key)
    assert arn is not None and known is not None
    writer(world).archive(arn, detail, {}, known=known)
    assert world.s3.calls("ListObjectsV2") == [] and world.s3.calls("HeadObject")[0].params["Key"] == key
    [record] = world.s3.objects().values()
    assert record["stats_status"] == "stored"


@pytest.mark.parametrize(
    ("output_uri", "status"),
    [
        (None, NOT_S3),
        ("https://example.com/files.zip", NOT_S3),
        ("s3://Bad_Bucket/files.zip", NOT_S3),
        ("s3://exports/\ud800.zip", NOT_S3),
        (f"s3://{EXPORT_BUCKET}/missing.zip", NOT_FOUND),
        (f"s3://{EXPORT_BUCKET}/empty-folder/", NOT_FOUND),
        ("s3://no-such-bucket/files.zip", NOT_FOUND),  # HeadObject cannot tell a missing bucket: 404
        ("s3://no-such-bucket/folder/", NO_BUCKET),  # ListObjectsV2 can
    ],
)
def test_an_unreadable_export_is_recorded_and_the_record_still_archived(output_uri: object, status: str) -> None:
    world = World()
    detail = world.gls.add_session(ExportFilesMetadata={"Status": "SUCCEEDED", "OutputUri": output_uri})
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    archivist = writer(world)
    assert archivist.archive(arn, detail, {}) is Archived.ARCHIVED
    [record] = world.s3.objects().values()
    assert record["export_read_status"] == status and record["export_bytes_read"] == 0
    assert record["stats_key"] is None and record["stats_status"] is None and record["zip_size"] is None
    assert world.s3.blobs(BUCKET, ".json.gz") == {}
    tally = archivist.take()
    assert (tally.exports_unreadable, tally.exports_read, tally.stats_stored) == (1, 0, 0)
    assert archivist.take().exports_unreadable == 0  # take resets


@pytest.mark.parametrize("operation", ["HeadObject", "GetObject", "ListObjectsV2"])
def test_access_denied_on_the_export_is_recorded_not_fatal(operation: str) -> None:
    world = World()
    detail, _ = folder_session(world)
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    code = "403" if operation == "HeadObject" else "AccessDenied"
    world.s3.fail(operation, code, 403, when=lambda params: params.get("Bucket") == EXPORT_BUCKET)
    assert writer(world).archive(arn, detail, {}) is Archived.ARCHIVED
    [record] = world.s3.objects().values()
    assert record["export_read_status"] == ACCESS_DENIED and record["stats_key"] is None


@pytest.mark.parametrize(("code", "status"), [("SlowDown", 503), ("InternalError", 500), ("PreconditionFailed", 412)])
def test_a_transient_error_writes_nothing_and_the_next_attempt_archives_with_stats(code: str, status: int) -> None:
    world = World()
    detail, _ = folder_session(world)
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    world.s3.fail("GetObject", code, status, when=lambda params: params.get("Bucket") == EXPORT_BUCKET)
    with pytest.raises(ClientError):
        writer(world).archive(arn, detail, {})
    assert world.s3.buckets[BUCKET] == {} and world.ddb.items() == {}
    assert writer(world).archive(arn, detail, {}) is Archived.ARCHIVED
    [record] = world.s3.objects().values()
    assert record["stats_status"] == "stored" and record["stats_key"] in world.s3.buckets[BUCKET]


def test_a_zip_replaced_mid_read_fails_the_attempt_and_the_next_reads_the_new_zip() -> None:
    world = World()
    detail = zip_session(world)
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    key = detail["ExportFilesMetadata"]["OutputUri"].split("/", 3)[3]
    replacement = zipfile_zip([(PERF_STATS_MEMBER, b"timestamp,app_mem_mb\n2026-11-27T18:00:00Z,5\n")])
    real_head = world.s3.head_object

    def head_then_replace(region: str, **params: Any) -> dict[str, Any]:
        answer = real_head(region, **params)
        world.s3.add_object(EXPORT_BUCKET, key, replacement)  # a new version after HeadObject: its ETag differs
        world.s3.head_object = real_head  # type: ignore[method-assign]
        return answer

    world.s3.head_object = head_then_replace  # type: ignore[method-assign,assignment]
    with pytest.raises(ClientError, match="PreconditionFailed"):
        writer(world).archive(arn, detail, {})
    assert world.s3.buckets[BUCKET] == {}
    writer(world).archive(arn, detail, {})
    [record] = world.s3.objects().values()
    assert record["stats_rows"] == 1 and record["zip_size"] == len(replacement)


def test_a_second_writer_keeps_the_stored_stats_object_and_record() -> None:
    world = World()
    detail = zip_session(world)
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    first, second = writer(world), writer(world)
    assert first.archive(arn, detail, {}) is Archived.ARCHIVED
    stored = dict(world.s3.buckets[BUCKET])
    world.clock.advance(1)
    assert second.archive(arn, detail, {}) is Archived.ALREADY
    assert world.s3.buckets[BUCKET] == stored
    assert (first.take().stats_stored, second.take().stats_stored) == (1, 0)


@pytest.mark.parametrize(
    ("body", "stats_status", "rows"),
    [
        (zipfile_zip([("application/log.txt", b"x")]), "absent", 0),
        (zipfile_zip([(PERF_STATS_MEMBER, b"cpu,mem\n1,2\n")]), "bad_header", 0),
        (b"PK\x03\x04 truncated", "malformed", 0),
        (zipfile_zip([(PERF_STATS_MEMBER, b"timestamp\n" + b"2026-11-27T18:00:00Z\n" * 5000)]), "truncated", None),
    ],
)
def test_a_zip_or_csv_it_cannot_read_whole_is_recorded(body: bytes, stats_status: str, rows: int | None) -> None:
    world = World()
    detail = zip_session(world, body)
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    archivist = writer(world, limits=ZipLimits(max_inflated_bytes=4096))
    assert archivist.archive(arn, detail, {}) is Archived.ARCHIVED
    [record] = world.s3.objects().values()
    assert record["export_read_status"] == READ and record["stats_status"] == stats_status
    stored = stats_objects(world)
    if stats_status == "truncated":
        assert record["stats_key"] in stored and len(stored[record["stats_key"]]) == record["stats_rows"] > 0
        assert archivist.take().stats_truncated == 1
    else:
        assert record["stats_rows"] == rows and record["stats_key"] is None and stored == {}
    assert record["export_bytes_read"] <= len(body)


def test_the_record_s_export_columns_are_null_for_a_record_built_without_an_export() -> None:
    from archiver.records import Context, build_record

    arn = parse_session_arn(f"arn:aws:gameliftstreams:us-east-2:111122223333:streamsession/{GROUP}/s1")
    assert arn is not None
    record = build_record({}, Context(arn, EPOCH))
    assert all(record[column.name] is None for column in EXPORT_COLUMNS)
    assert object_key("sessions/", arn, EPOCH).endswith(".json") and stats_key("p/", arn, EPOCH).endswith(".json.gz")


def test_listing_is_bounded_by_its_pages() -> None:
    world = World()
    detail, _key = folder_session(world, folder="many/")
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    for n in range(25):  # sorted before the session's ZIP
        world.s3.add_object(EXPORT_BUCKET, f"many/0000-{n:03}.zip", b"")
    reads = ExportFiles(world.s3.client(), max_list_pages=2)
    real = world.s3.list_objects_v2
    world.s3.list_objects_v2 = lambda region, **params: real(region, **params, MaxKeys=10)  # type: ignore[method-assign]
    assert reads.locate(arn, detail["ExportFilesMetadata"]["OutputUri"], None) is None
    assert len(world.s3.calls("ListObjectsV2")) == 2
    world.s3.log.clear()
    assert ExportFiles(world.s3.client(), max_list_pages=3).locate(arn, f"s3://{EXPORT_BUCKET}/many", None) is not None

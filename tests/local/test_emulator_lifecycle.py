"""A session's lifecycle in the emulator, driven by the real boto3 client: export while live, terminate, the
ZIP written to moto's S3 when the session ends, and SUCCEEDED only after that (optionally later)."""

from __future__ import annotations

import csv
import io
import itertools
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from archiver import exports
from local.export_zip import (
    APPLICATION_LOG_MEMBER,
    MAX_STATS_ROWS,
    PERF_STATS_COLUMNS,
    PERF_STATS_MEMBER,
    export_zip,
)
from local.gls import EmulatorClient, GameLiftStreamsEmulator
from local.gls.factory import DEFAULT_EXPORT_FOLDER
from local.gls.models import ENDED, IN_PROGRESS, UPLOAD_FAILED_REASON
from tests.local.support import REGION, boto_client, gls_client

_names = itertools.count()


@pytest.fixture
def s3(moto: str) -> Any:
    return boto_client("s3", moto)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A new, empty export bucket (moto's state outlives each test)."""
    name = f"exports-{next(_names)}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


@pytest.fixture
def now() -> list[float]:
    """The emulator's clock (monotonic seconds), moved by hand: no test waits for the success delay."""
    return [5_000.0]


@pytest.fixture
def emulator(moto: str, now: list[float]) -> Iterator[GameLiftStreamsEmulator]:
    with GameLiftStreamsEmulator(seed=13, default_region=REGION, clock=lambda: now[0]) as emu:
        emu.export_s3_endpoint = moto
        yield emu


@pytest.fixture
def api(emulator: GameLiftStreamsEmulator) -> Any:
    return gls_client(emulator)


def ids(arn: str) -> dict[str, str]:
    group, session = arn.split("/")[-2:]
    return {"Identifier": group, "StreamSessionIdentifier": session}


def keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def listed(api: Any, export: str) -> set[str]:
    pages = api.get_paginator("list_stream_sessions_by_account").paginate(ExportFilesStatus=export)
    return {item["Arn"] for page in pages for item in page["Items"]}


# -- export, terminate, the ZIP ------------------------------------------------------------------------------


def test_export_then_terminate_writes_the_zip_and_only_then_succeeds(
    emulator: GameLiftStreamsEmulator, api: Any, s3: Any, bucket: str
) -> None:
    live = emulator.start_session()
    arn = live["Arn"]
    assert live["Status"] == "ACTIVE" and "ExportFilesMetadata" not in live and "StreamingEndedAt" not in live

    assert (
        api.export_stream_session_files(**ids(arn), OutputUri=f"s3://{bucket}/sessions/")["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 200
    )
    pending = api.get_stream_session(**ids(arn))
    assert pending["Status"] == "ACTIVE"
    assert pending["ExportFilesMetadata"]["Status"] == "PENDING"
    assert arn in listed(api, "PENDING") and arn not in listed(api, "SUCCEEDED")
    assert keys(s3, bucket) == []  # nothing is written while the session runs

    assert api.terminate_stream_session(**ids(arn))["ResponseMetadata"]["HTTPStatusCode"] == 204

    ended = api.get_stream_session(**ids(arn))
    assert ended["Status"] == "TERMINATED" and ended["StatusReason"] == "apiTerminated"
    assert ended["StreamingStartedAt"] < ended["StreamingEndedAt"] <= ended["LastUpdatedAt"]
    [key] = keys(s3, bucket)
    group, session = arn.split("/")[-2:]
    app_id = live["ApplicationArn"].rsplit("/", 1)[-1]
    stamp = ended["StreamingEndedAt"].strftime("%Y%m%d-%H%M%S")
    assert key == f"sessions/{stamp}-{app_id}-{group}-{session}.zip"
    assert ended["ExportFilesMetadata"] == {"Status": "SUCCEEDED", "OutputUri": f"s3://{bucket}/{key}"}
    assert arn in listed(api, "SUCCEEDED") and arn in emulator.succeeded_arns()
    # The consumer's own reading of the key names this session, and the API's OutputUri matches it.
    named = exports.session_of(bucket, key)
    assert named is not None and (named.stream_group_id, named.session_id) == (group, session)
    assert exports.output_matches(ended["ExportFilesMetadata"]["OutputUri"], named)


def test_an_output_uri_naming_a_zip_is_that_object(
    emulator: GameLiftStreamsEmulator, api: Any, s3: Any, bucket: str
) -> None:
    arn = emulator.start_session(Status="CONNECTED")["Arn"]
    api.export_stream_session_files(**ids(arn), OutputUri=f"s3://{bucket}/custom/MyGame_Session1.ZIP")
    api.terminate_stream_session(**ids(arn))

    assert keys(s3, bucket) == ["custom/MyGame_Session1.ZIP"]
    meta = api.get_stream_session(**ids(arn))["ExportFilesMetadata"]
    assert meta == {"Status": "SUCCEEDED", "OutputUri": f"s3://{bucket}/custom/MyGame_Session1.ZIP"}


def test_the_success_delay_keeps_the_export_pending_after_the_zip_landed(
    emulator: GameLiftStreamsEmulator, api: Any, s3: Any, bucket: str, now: list[float]
) -> None:
    EmulatorClient(emulator.endpoint_url).config(export_success_delay_ms=2_500)
    arn = emulator.start_session()["Arn"]
    api.export_stream_session_files(**ids(arn), OutputUri=f"s3://{bucket}/")
    api.terminate_stream_session(**ids(arn))

    [key] = keys(s3, bucket)  # the ZIP is there ...
    held = api.get_stream_session(**ids(arn))
    assert held["Status"] == "TERMINATED"
    assert held["ExportFilesMetadata"]["Status"] == "PENDING"  # ... and the API does not say so yet
    assert arn not in listed(api, "SUCCEEDED")
    now[0] += 2.499
    assert api.get_stream_session(**ids(arn))["ExportFilesMetadata"]["Status"] == "PENDING"

    now[0] += 0.001
    assert arn in listed(api, "SUCCEEDED")  # a listing settles it as well as a get
    done = api.get_stream_session(**ids(arn))
    assert done["ExportFilesMetadata"] == {"Status": "SUCCEEDED", "OutputUri": f"s3://{bucket}/{key}"}
    assert done["LastUpdatedAt"] > held["LastUpdatedAt"]


# -- what the service refuses ----------------------------------------------------------------------------------


def test_export_only_from_a_session_in_progress(emulator: GameLiftStreamsEmulator, api: Any, bucket: str) -> None:
    uri = f"s3://{bucket}/"
    for status in IN_PROGRESS:
        arn = emulator.start_session(Status=status)["Arn"]
        api.export_stream_session_files(**ids(arn), OutputUri=uri)
        assert api.get_stream_session(**ids(arn))["ExportFilesMetadata"]["Status"] == "PENDING"
    for status in ("ACTIVATING", "TERMINATING", *ENDED):
        arn = emulator.add_session(Status=status, ExportFilesMetadata=None)["Arn"]
        with pytest.raises(api.exceptions.ValidationException) as refused:
            api.export_stream_session_files(**ids(arn), OutputUri=uri)
        assert status in refused.value.response["Error"]["Message"]
        assert "ExportFilesMetadata" not in api.get_stream_session(**ids(arn))


def test_a_terminated_session_cannot_be_exported_again(
    emulator: GameLiftStreamsEmulator, api: Any, s3: Any, bucket: str
) -> None:
    arn = emulator.start_session()["Arn"]
    api.export_stream_session_files(**ids(arn), OutputUri=f"s3://{bucket}/")
    api.terminate_stream_session(**ids(arn))
    before = api.get_stream_session(**ids(arn))

    with pytest.raises(api.exceptions.ValidationException):
        api.export_stream_session_files(**ids(arn), OutputUri=f"s3://{bucket}/again/")
    api.terminate_stream_session(**ids(arn))  # terminating an ended session changes nothing

    after = api.get_stream_session(**ids(arn))
    assert {k: v for k, v in after.items() if k != "ResponseMetadata"} == {
        k: v for k, v in before.items() if k != "ResponseMetadata"
    }
    assert len(keys(s3, bucket)) == 1


def test_bad_requests_are_refused_as_the_model_says(emulator: GameLiftStreamsEmulator, api: Any) -> None:
    arn = emulator.start_session()["Arn"]
    for uri in ("s3://bucket/file.txt", "https://bucket/", "s3://bucket/" + "x" * 1020 + ".zip"):
        with pytest.raises(api.exceptions.ValidationException):
            api.export_stream_session_files(**ids(arn), OutputUri=uri)
    with pytest.raises(api.exceptions.ResourceNotFoundException):
        api.export_stream_session_files(Identifier="sg-000000000", StreamSessionIdentifier="Nope1", OutputUri="s3://b/")
    with pytest.raises(api.exceptions.ResourceNotFoundException):
        api.terminate_stream_session(Identifier="sg-000000000", StreamSessionIdentifier="Nope1")
    activating = emulator.add_session(Status="ACTIVATING", ExportFilesMetadata=None)["Arn"]
    with pytest.raises(api.exceptions.ValidationException):
        api.terminate_stream_session(**ids(activating))
    assert api.get_stream_session(**ids(arn))["Status"] == "ACTIVE"
    assert emulator.call_counts()["ExportStreamSessionFiles"] == 4
    assert emulator.call_counts()["TerminateStreamSession"] == 2


def test_injected_faults_hit_the_new_operations(emulator: GameLiftStreamsEmulator, api: Any) -> None:
    arn = emulator.start_session()["Arn"]
    emulator.faults.inject("TerminateStreamSession", "throttle", times=1)
    with pytest.raises(api.exceptions.ThrottlingException):
        api.terminate_stream_session(**ids(arn))
    assert api.get_stream_session(**ids(arn))["Status"] == "ACTIVE"  # a throttled call did nothing


# -- exports that fail -----------------------------------------------------------------------------------------


def test_a_missing_bucket_fails_the_export_without_a_crash(
    emulator: GameLiftStreamsEmulator, api: Any, s3: Any
) -> None:
    arn = emulator.start_session()["Arn"]
    api.export_stream_session_files(**ids(arn), OutputUri="s3://no-such-export-bucket/sessions/")
    api.terminate_stream_session(**ids(arn))

    detail = api.get_stream_session(**ids(arn))
    assert detail["Status"] == "TERMINATED"
    assert detail["ExportFilesMetadata"] == {
        "Status": "FAILED",
        "StatusReason": UPLOAD_FAILED_REASON,
        "OutputUri": "s3://no-such-export-bucket/sessions/",
    }
    assert arn in listed(api, "FAILED")
    assert "no-such-export-bucket" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_fail_exports_fails_them_with_no_zip_and_no_endpoint_fails_them_too(
    emulator: GameLiftStreamsEmulator, api: Any, s3: Any, bucket: str
) -> None:
    control = EmulatorClient(emulator.endpoint_url)
    assert control.config(fail_exports=True)["fail_exports"] is True
    first = emulator.start_session()["Arn"]
    api.export_stream_session_files(**ids(first), OutputUri=f"s3://{bucket}/")
    api.terminate_stream_session(**ids(first))
    control.config(fail_exports=False, export_s3_endpoint="")
    second = emulator.start_session()["Arn"]
    api.export_stream_session_files(**ids(second), OutputUri=f"s3://{bucket}/")
    api.terminate_stream_session(**ids(second))

    for arn in (first, second):
        assert api.get_stream_session(**ids(arn))["ExportFilesMetadata"]["Status"] == "FAILED"
    assert keys(s3, bucket) == []
    assert emulator.export_s3_endpoint is None


# -- the control API's shortcuts keep the rule: SUCCEEDED only once ended ------------------------------------


def test_setting_an_export_succeeded_ends_a_live_session(emulator: GameLiftStreamsEmulator, api: Any) -> None:
    control = EmulatorClient(emulator.endpoint_url)
    live = control.start(region=REGION)
    assert live["Status"] == "ACTIVE"

    done = control.set_export(live["Arn"], "SUCCEEDED")

    assert done["Status"] == "TERMINATED" and done["StatusReason"] == "applicationExit"
    assert done["StreamingStartedAt"] < done["StreamingEndedAt"] <= done["LastUpdatedAt"]
    assert done["ExportFilesMetadata"]["OutputUri"].startswith(DEFAULT_EXPORT_FOLDER)
    failed = emulator.set_export_status(emulator.start_session()["Arn"], "FAILED")
    assert failed["Status"] == "TERMINATED" and isinstance(failed["StreamingEndedAt"], datetime)


def test_every_seeded_succeeded_export_belongs_to_an_ended_session(emulator: GameLiftStreamsEmulator) -> None:
    emulator.seed_sessions(400, succeeded_fraction=0.5)
    for _ in range(5):
        emulator.add_session()
    live_pending = [s["Arn"] for s in emulator.sessions() if s.get("Status") in IN_PROGRESS]
    for arn in live_pending[:5]:
        emulator.set_export_status(arn, "SUCCEEDED")

    succeeded = [s for s in emulator.sessions() if (s.get("ExportFilesMetadata") or {}).get("Status") == "SUCCEEDED"]
    assert len(succeeded) > 150 and len(live_pending) >= 5
    for session in succeeded:
        assert session["Status"] == "TERMINATED", session["Arn"]
        assert session["StreamingStartedAt"] < session["StreamingEndedAt"] <= session["LastUpdatedAt"]


def test_a_seeded_live_pending_export_is_written_to_the_default_folder_when_it_ends(
    emulator: GameLiftStreamsEmulator, api: Any, s3: Any
) -> None:
    default_bucket = DEFAULT_EXPORT_FOLDER.split("/")[2]
    s3.create_bucket(Bucket=default_bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    emulator.seed_sessions(60, succeeded_fraction=0.0)
    arn = next(
        s["Arn"]
        for s in emulator.sessions()
        if s["Status"] in IN_PROGRESS and (s.get("ExportFilesMetadata") or {}).get("Status") == "PENDING"
    )

    api.terminate_stream_session(**ids(arn))

    uri = api.get_stream_session(**ids(arn))["ExportFilesMetadata"]["OutputUri"]
    assert uri.startswith(DEFAULT_EXPORT_FOLDER) and uri.endswith(f"-{arn.split('/')[-1]}.zip")
    assert uri.removeprefix(f"s3://{default_bucket}/") in keys(s3, default_bucket)


# -- the ZIP ----------------------------------------------------------------------------------------------------


def test_the_zip_is_valid_deterministic_and_has_one_stats_row_a_second(
    emulator: GameLiftStreamsEmulator, api: Any, s3: Any, bucket: str
) -> None:
    arn = emulator.start_session()["Arn"]
    api.export_stream_session_files(**ids(arn), OutputUri=f"s3://{bucket}/")
    api.terminate_stream_session(**ids(arn))
    [key] = keys(s3, bucket)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    detail = emulator.get_session(arn)

    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    names = archive.namelist()
    assert {"application/", "profile/", "temp/", PERF_STATS_MEMBER} <= set(names)
    assert any(n.startswith("application/") and n.endswith(".log") for n in names)
    rows = list(csv.reader(io.StringIO(archive.read(PERF_STATS_MEMBER).decode("utf-8"))))
    assert tuple(rows[0]) == PERF_STATS_COLUMNS
    seconds = int((detail["StreamingEndedAt"] - detail["StreamingStartedAt"]).total_seconds())
    assert len(rows) - 1 == min(seconds, MAX_STATS_ROWS) > 0
    first = datetime.fromisoformat(rows[1][0])
    assert first == detail["StreamingStartedAt"].replace(microsecond=0)
    assert datetime.fromisoformat(rows[2][0]) - first == timedelta(seconds=1)
    assert all(0.0 <= float(row[1]) <= 1.0 for row in rows[1:])
    game_view = emulator.backend.factory.without_secrets(detail)  # the launch args the game logs
    assert export_zip(game_view, seed=13) == body  # the same bytes from the same seed and session
    assert export_zip(game_view, seed=14) != body
    assert any(emulator.canary in arg for arg in detail["AdditionalLaunchArgs"])  # the session had secrets
    assert emulator.canary not in body.decode("latin-1")  # nothing of the session's secrets
    assert "-windowed" in archive.read(APPLICATION_LOG_MEMBER).decode()  # its harmless arguments are logged


def test_a_long_session_is_capped_in_rows() -> None:
    start = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    detail = {"Arn": "x", "StreamingStartedAt": start, "StreamingEndedAt": start + timedelta(hours=5)}
    archive = zipfile.ZipFile(io.BytesIO(export_zip(detail, max_rows=50)))
    assert len(archive.read(PERF_STATS_MEMBER).decode().splitlines()) == 51


def test_shortening_the_delay_releases_exports_already_waiting(
    emulator: GameLiftStreamsEmulator, api: Any, bucket: str
) -> None:
    emulator.export_success_delay_ms = 60_000
    arn = emulator.start_session()["Arn"]
    api.export_stream_session_files(**ids(arn), OutputUri=f"s3://{bucket}/")
    api.terminate_stream_session(**ids(arn))
    assert api.get_stream_session(**ids(arn))["ExportFilesMetadata"]["Status"] == "PENDING"

    emulator.export_success_delay_ms = 0

    assert api.get_stream_session(**ids(arn))["ExportFilesMetadata"]["Status"] == "SUCCEEDED"

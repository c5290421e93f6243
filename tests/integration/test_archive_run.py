"""The real handler against the local stack: what ends up in S3 and DynamoDB, and what the API was asked."""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import UTC

import boto3
import pytest

from archiver import wiring
from archiver.records import REDACTED, athena_timestamp, object_key, parse_session_arn
from local.httpserver import CallRecord
from local.lambda_context import SCHEDULED_EVENT
from local.reliability.oracle import expected_launch_args

from .conftest import REGION, Archive, cold_start, fired, log_lines

KEY = re.compile(
    r"sessions/source_region=(?P<region>[a-z0-9-]+)/created_date=(?P<date>\d{4}-\d{2}-\d{2})/"
    r"(?P<group>[a-zA-Z0-9-]+)_(?P<session>[a-zA-Z0-9-]+)\.json"
)


def list_calls(archive: Archive) -> list[CallRecord]:
    return [c for c in archive.emulator.calls if c.operation == "ListStreamSessionsByAccount"]


def test_first_run_archives_every_succeeded_session_across_pages(archive: Archive) -> None:
    archive.emulator.seed_sessions(420, succeeded_fraction=0.6)
    expected = archive.emulator.succeeded_arns()
    assert len(expected) > 200  # at least three pages of 100

    summary = archive.run(SCHEDULED_EVENT)

    assert archive.archived_arns() == expected
    assert set(archive.items()) == expected
    assert len(archive.objects()) == len(expected)  # one object per session
    assert summary["ok"] is True
    assert summary["total"]["listed"] == len(expected)
    assert summary["total"]["new"] == summary["total"]["archived"] == len(expected)
    assert summary["total"]["failed"] == summary["total"]["skipped"] == 0
    assert summary["regions"][REGION]["archived"] == len(expected)
    # What the API was asked: every page of SUCCEEDED sessions at 100 a page, one Get per new session.
    calls = list_calls(archive)
    assert len(calls) == math.ceil(len(expected) / 100)
    assert all(c.params.get("ExportFilesStatus") == "SUCCEEDED" for c in calls)
    assert all(c.params.get("MaxResults") == "100" for c in calls)
    assert archive.emulator.call_counts()["GetStreamSession"] == len(expected)
    assert archive.stack.proxy.call_counts()["BatchGetItem"] == math.ceil(len(expected) / 100)


def test_records_match_get_stream_session_and_keys_follow_the_layout(archive: Archive) -> None:
    archive.emulator.seed_sessions(60)
    archive.run()
    gls = boto3.client("gameliftstreams", region_name=REGION)
    items = archive.items()
    objects = archive.objects()
    assert {r["session_arn"] for r in objects.values()} == archive.emulator.succeeded_arns()
    assert len(objects) > 20  # every check below runs on each of them
    assert any(r["additional_environment_variables"] for r in objects.values())  # the map check has names
    for key, record in objects.items():
        arn = parse_session_arn(record["session_arn"])
        assert arn is not None
        truth = gls.get_stream_session(Identifier=arn.stream_group_id, StreamSessionIdentifier=arn.arn)
        match = KEY.fullmatch(key)
        assert match, key
        assert key == object_key("sessions/", arn, truth["CreatedAt"])
        assert match["date"] == truth["CreatedAt"].astimezone(UTC).strftime("%Y-%m-%d")
        assert record["export_output_uri"] == truth["ExportFilesMetadata"]["OutputUri"]
        assert record["export_status"] == "SUCCEEDED"
        assert record["user_id"] == truth.get("UserId")
        assert record["status"] == truth["Status"]
        assert record["location"] == truth.get("Location")
        assert record["stream_group_id"] == truth["StreamGroupId"]
        assert record["application_arn"] == truth.get("ApplicationArn")
        assert record["created_at"] == athena_timestamp(truth["CreatedAt"])
        assert record["last_updated_at"] == athena_timestamp(truth["LastUpdatedAt"])
        assert record["additional_launch_args"] == expected_launch_args(truth.get("AdditionalLaunchArgs"), keep=False)
        assert set(record["additional_environment_variables"] or {}) == set(
            truth.get("AdditionalEnvironmentVariables") or {}
        )
        assert set((record["additional_environment_variables"] or {}).values()) <= {REDACTED}
        item = items[arn.arn]
        assert item["s3_key"] == key
        assert item["export_output_uri"] == record["export_output_uri"]
        assert item["archived_at"] == record["archived_at"]


def test_second_run_archives_nothing_and_writes_nothing(archive: Archive) -> None:
    archive.emulator.seed_sessions(150)
    first = archive.run()
    archive.emulator.reset_calls()
    archive.stack.proxy.reset_calls()
    versions = archive.object_versions()

    second = archive.run()

    assert first["total"]["archived"] > 0
    assert second["total"]["archived"] == second["total"]["new"] == 0
    assert second["total"]["already_archived"] == first["total"]["archived"]
    assert archive.object_versions() == versions >= first["total"]["archived"]
    writes = archive.stack.proxy.call_counts()
    pages = math.ceil(second["total"]["listed"] / 100)  # the call logs saw the second run list and check
    assert pages >= 1 and writes["BatchGetItem"] == pages
    assert archive.emulator.call_counts()["ListStreamSessionsByAccount"] == pages
    assert writes["PutObject"] == writes["PutItem"] == 0
    assert archive.emulator.call_counts()["GetStreamSession"] == 0


def test_sessions_appearing_or_turning_succeeded_between_runs_are_archived_once(archive: Archive) -> None:
    archive.emulator.seed_sessions(80)
    pending = archive.emulator.add_session(ExportFilesMetadata={"Status": "PENDING"})
    archive.run()
    first = archive.archived_arns()
    assert first == set(archive.items()) == archive.emulator.succeeded_arns()
    assert len(first) > 20 and pending["Arn"] not in first

    archive.emulator.set_export_status(pending["Arn"], "SUCCEEDED")
    newcomers = [archive.emulator.add_session()["Arn"] for _ in range(5)]
    summary = archive.run()
    archive.run()

    assert summary["total"]["archived"] == 6
    assert {pending["Arn"], *newcomers} <= archive.archived_arns()
    assert archive.archived_arns() == set(archive.items()) == archive.emulator.succeeded_arns()
    assert len(archive.objects()) == len(archive.emulator.succeeded_arns())


def test_sessions_whose_export_did_not_succeed_are_never_archived(archive: Archive) -> None:
    for export in ("FAILED", "PENDING"):
        archive.emulator.add_session(ExportFilesMetadata={"Status": export})
    archive.emulator.add_session(Status="ACTIVE", ExportFilesMetadata=None)
    ok = archive.emulator.add_session()
    archive.run()
    assert archive.archived_arns() == {ok["Arn"]} == set(archive.items())


def test_secrets_never_reach_s3_dynamodb_or_logs(
    archive: Archive, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    canaries = {
        "SignalRequest": "CANARY-SIGNAL-REQUEST-6f1c",
        "SignalResponse": "CANARY-SIGNAL-RESPONSE-93ab",
        "env": "CANARY-ENV-VALUE-55d0",
        "RoleArn": "arn:aws:iam::111122223333:role/CANARY-ROLE-0e7f",
    }
    for _ in range(3):
        archive.emulator.add_session(
            SignalRequest=canaries["SignalRequest"],
            SignalResponse=canaries["SignalResponse"],
            AdditionalEnvironmentVariables={"API_KEY": canaries["env"], "LEVEL": canaries["env"]},
            RoleArn=canaries["RoleArn"],
        )
    # A session that fails to archive logs an error: that path must not leak either. One worker, so that
    # all three attempts (MAX_ATTEMPTS=3) fail on the same session and it is not archived this run.
    monkeypatch.setenv("MAX_CONCURRENCY", "1")
    cold_start()
    archive.stack.proxy.faults.inject("PutObject", "internal", times=3)
    first = archive.run()
    second = archive.run()

    raw = archive.raw_objects().decode()
    stored = raw + json.dumps(archive.items())
    printed = "".join(logs.readouterr())
    assert fired(archive)[("PutObject", "internal")] == 3
    assert (first["total"]["failed"], first["total"]["archived"], second["total"]["archived"]) == (1, 2, 1)
    assert len(archive.items()) == len(archive.objects()) == 3
    variables = [record["additional_environment_variables"] for record in archive.objects().values()]
    assert variables == [{"API_KEY": REDACTED, "LEVEL": REDACTED}] * 3  # names kept, values redacted
    # the emulator's own canary is in each session's launch args, as values: redacted too
    assert archive.emulator.canary and archive.emulator.canary not in stored
    assert all(REDACTED in record["additional_launch_args"] for record in archive.objects().values())
    messages = [line.get("message") for line in log_lines(printed)]
    assert "Session not archived; retried next run" in messages  # the error path did log
    assert messages.count("Run complete") == 2
    for canary in canaries.values():
        assert canary not in stored
        assert canary not in printed


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


def test_a_root_logger_at_debug_hears_no_secret_from_the_sdk(archive: Archive) -> None:
    """Lambda sets the root logger to DEBUG when the function's log level is DEBUG (JSON log format): botocore
    would then log every response body and the signed headers. archiver.wiring keeps the SDK's loggers quiet."""
    secret = "CANARY-ROOT-DEBUG-71c2"
    archive.emulator.add_session(SignalRequest=secret, AdditionalLaunchArgs=["-token", secret])
    collect, root = _Collect(), logging.getLogger()
    level = root.level
    root.addHandler(collect)
    root.setLevel(logging.DEBUG)
    try:
        cold_start()
        assert archive.run()["total"]["archived"] == 1  # the SDK made every call of a run
        logging.getLogger("probe").debug("probe")  # and the root handler hears DEBUG lines
    finally:
        root.removeHandler(collect)
        root.setLevel(level)
    text = "\n".join(collect.lines)
    assert "probe: probe" in collect.lines  # a DEBUG line reached the root handler: the check is not vacuous
    assert secret not in text and "x-amz-security-token" not in text.lower()
    assert not [line for line in collect.lines if line.startswith(wiring.SDK_LOGGERS)]


def test_summary_is_logged_and_emitted_as_emf_metrics(archive: Archive, logs: pytest.CaptureFixture[str]) -> None:
    archive.emulator.seed_sessions(30)
    summary = archive.run()
    assert summary["total"]["archived"] > 0  # the metric below is not 0 == 0
    out = logs.readouterr().out
    lines = log_lines(out)
    logged = [line for line in lines if line.get("message") == "Run complete"]
    assert logged and logged[-1]["summary"] == summary
    emf = [line for line in lines if "_aws" in line]
    assert emf, "no EMF metrics printed"
    metrics = emf[-1]
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "GameLiftStreamsArchiver"
    assert (
        metrics["SessionsArchived"] == [summary["total"]["archived"]]
        or metrics["SessionsArchived"] == (summary["total"]["archived"])
    )
    assert metrics["RunCompleted"] in (1, [1], 1.0, [1.0])


def test_several_source_regions_are_archived_in_one_run(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_REGIONS", "us-east-2,us-west-2")
    cold_start()
    archive.emulator.seed_sessions(40, region="us-east-2")
    archive.emulator.seed_sessions(40, region="us-west-2")
    summary = archive.run()
    expected = archive.emulator.succeeded_arns()
    assert archive.archived_arns() == expected
    assert {k.split("/")[1] for k in archive.objects()} == {"source_region=us-east-2", "source_region=us-west-2"}
    assert set(summary["regions"]) == {"us-east-2", "us-west-2"}
    assert summary["regions"]["us-west-2"]["archived"] == len(archive.emulator.succeeded_arns("us-west-2"))

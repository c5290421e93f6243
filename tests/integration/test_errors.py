"""Each error path of a run: what is archived, what is counted, what the user sees."""

from __future__ import annotations

from typing import Any

import pytest

from archiver.handler import RunFailed
from archiver.settings import ConfigError
from local.gls import GameLiftStreamsEmulator
from local.lambda_context import LambdaContext

from .conftest import REGION, Archive, cold_start, fired


def test_throttling_and_5xx_are_retried_through(archive: Archive) -> None:
    archive.emulator.seed_sessions(150)
    archive.emulator.faults.inject("ListStreamSessionsByAccount", "throttle", times=1)
    archive.emulator.faults.inject("GetStreamSession", "throttle", times=2)
    archive.emulator.faults.inject("GetStreamSession", "internal", times=1)
    archive.stack.proxy.faults.inject("PutObject", "slowdown", times=1)
    archive.stack.proxy.faults.inject("PutItem", "throughput", times=1)
    archive.stack.proxy.faults.inject("BatchGetItem", "internal", times=1)
    summary = archive.run()
    assert +fired(archive) == {
        ("ListStreamSessionsByAccount", "throttle"): 1,
        ("GetStreamSession", "throttle"): 2,
        ("GetStreamSession", "internal"): 1,
        ("PutObject", "slowdown"): 1,
        ("PutItem", "throughput"): 1,
        ("BatchGetItem", "internal"): 1,
    }
    assert summary["ok"] is True
    assert summary["total"]["failed"] == 0
    assert summary["total"]["archived"] == len(archive.emulator.succeeded_arns()) > 50
    assert archive.archived_arns() == set(archive.items()) == archive.emulator.succeeded_arns()


def test_unprocessed_keys_are_retried_never_treated_as_new(archive: Archive) -> None:
    archive.emulator.seed_sessions(150)
    first = archive.run()
    assert first["total"]["archived"] == len(archive.emulator.succeeded_arns()) > 50
    archive.stack.proxy.reset_calls()
    archive.stack.proxy.faults.inject("BatchGetItem", "unprocessed", times=2)
    summary = archive.run()
    assert fired(archive)[("BatchGetItem", "unprocessed")] == 2
    assert archive.stack.proxy.call_counts()["BatchGetItem"] > 2  # the keys left unprocessed were asked again
    assert summary["total"]["new"] == 0
    assert summary["total"]["already_archived"] == len(archive.emulator.succeeded_arns())
    assert archive.stack.proxy.call_counts()["PutObject"] == 0


def test_a_session_that_vanished_between_list_and_get_is_skipped(archive: Archive) -> None:
    keep = [archive.emulator.add_session()["Arn"] for _ in range(3)]
    gone = archive.emulator.add_session()["Arn"]
    archive.emulator.faults.inject("GetStreamSession", "not_found", times=1, after=0)
    summary = archive.run()
    assert fired(archive)[("GetStreamSession", "not_found")] == 1
    assert summary["ok"] is True
    assert summary["total"]["skipped"] == 1
    assert summary["total"]["archived"] == 3
    # The vanished one is not marked: the next run tries it again (here it exists, so it is archived).
    assert set(archive.items()) == archive.archived_arns() and len(archive.items()) == 3
    archive.run()
    assert archive.archived_arns() == set(archive.items()) == {*keep, gone}


def test_malformed_list_items_never_crash_a_run(archive: Archive) -> None:
    good = archive.emulator.add_session()["Arn"]
    odd = archive.emulator.add_session(
        Status="WARPING",
        StatusReason="cosmicRay",
        Location=None,
        UserId=None,
        ExportFilesMetadata={"Status": "SUCCEEDED", "OutputUri": "s3://exports/odd.zip"},
    )
    undated = archive.emulator.add_session(CreatedAt=None)["Arn"]
    elsewhere = "arn:aws:gameliftstreams:eu-central-1:111122223333:streamsession/sg-elsewhere/s-elsewhere"
    archive.emulator.add_session(Arn=elsewhere)
    archive.emulator.add_session(Arn=None)
    archive.emulator.add_session(Arn="arn:aws:gameliftstreams:us-east-2:111122223333:streamsession/../x")
    archive.emulator.add_session(Arn="not-an-arn")
    summary = archive.run()
    assert summary["ok"] is True
    assert summary["total"]["skipped"] == 3
    assert summary["total"]["foreign"] == 1  # a Region outside SOURCE_REGIONS: never archived (issue 10)
    records = {r["session_arn"]: r for r in archive.objects().values()}
    assert set(records) == {good, odd["Arn"], undated}
    keys = {r["session_arn"]: k for k, r in archive.objects().items()}
    assert "/created_date=2025-01-01/" in keys[undated] and records[undated]["created_at"] is None
    assert not any("source_region=eu-central-1" in key for key in keys.values())
    assert records[odd["Arn"]]["status"] == "WARPING"
    assert records[odd["Arn"]]["status_reason"] == "cosmicRay"
    assert records[odd["Arn"]]["location"] is None
    assert all(key.startswith("sessions/") for key in archive.objects())


def test_a_failing_session_does_not_block_the_others_and_is_retried_next_run(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive.emulator.seed_sessions(40)
    expected = archive.emulator.succeeded_arns()
    # All three attempts (MAX_ATTEMPTS=3) of one session's put fail (one at a time, so it is one session).
    monkeypatch.setenv("MAX_CONCURRENCY", "1")
    cold_start()
    archive.stack.proxy.faults.inject("PutObject", "internal", times=3)
    first = archive.run()
    assert fired(archive)[("PutObject", "internal")] == 3
    assert first["total"]["failed"] == 1
    assert first["ok"] is True  # per-session failures are counted and alarmed on, not fatal
    assert len(archive.items()) == len(expected) - 1
    assert set(archive.items()) <= archive.archived_arns()  # no item without its object
    second = archive.run()
    assert second["total"]["archived"] == 1
    assert archive.archived_arns() == set(archive.items()) == expected


def test_dynamodb_put_failure_leaves_the_session_unmarked_then_overwrites_the_same_key(archive: Archive) -> None:
    arn = archive.emulator.add_session()["Arn"]
    archive.stack.proxy.faults.inject("PutItem", "internal", times=3)
    first = archive.run()
    assert fired(archive)[("PutItem", "internal")] == 3
    assert first["total"]["failed"] == 1
    assert archive.items() == {}
    keys = set(archive.objects())
    assert archive.archived_arns() == {arn} and len(keys) == 1  # S3 first: the object was written
    archive.run()
    assert set(archive.items()) == {arn}
    assert set(archive.objects()) == keys  # same key: one object, overwritten


def test_access_denied_fails_fast_with_one_clear_error(archive: Archive) -> None:
    archive.emulator.seed_sessions(30)
    assert archive.emulator.succeeded_arns()  # there was something to archive
    archive.emulator.faults.inject("ListStreamSessionsByAccount", "access_denied")
    with pytest.raises(RunFailed, match="AccessDeniedException") as caught:
        archive.run()
    assert "ListStreamSessionsByAccount" in str(caught.value)
    assert fired(archive)[("ListStreamSessionsByAccount", "access_denied")] == 1
    assert archive.emulator.call_counts()["ListStreamSessionsByAccount"] == 1  # no retry storm
    assert archive.items() == {} and archive.objects() == {}


def test_access_denied_on_get_stops_the_run_and_marks_nothing(archive: Archive) -> None:
    archive.emulator.seed_sessions(30)
    assert archive.emulator.succeeded_arns()
    archive.emulator.faults.inject("GetStreamSession", "access_denied")
    with pytest.raises(RunFailed, match=r"GetStreamSession.*AccessDeniedException"):
        archive.run()
    assert fired(archive)[("GetStreamSession", "access_denied")] >= 1
    assert archive.items() == {} and archive.objects() == {}


def test_missing_table_fails_fast_and_writes_nothing(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    archive.emulator.seed_sessions(30)
    assert archive.emulator.succeeded_arns()
    monkeypatch.setenv("ARCHIVE_TABLE_NAME", "no-such-table")
    cold_start()
    with pytest.raises(RunFailed, match="no-such-table"):
        archive.run()
    assert archive.stack.proxy.call_counts()["BatchGetItem"] >= 1  # the run did reach the (missing) table
    assert archive.objects() == {}


def test_missing_bucket_fails_fast_and_marks_nothing(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    archive.emulator.seed_sessions(30)
    assert archive.emulator.succeeded_arns()
    monkeypatch.setenv("ARCHIVE_BUCKET_NAME", "no-such-bucket-anywhere")
    cold_start()
    with pytest.raises(RunFailed, match="NoSuchBucket"):
        archive.run()
    assert archive.stack.proxy.call_counts()["PutObject"] >= 1  # the run did try to write a record
    assert archive.items() == {}


def test_missing_configuration_names_the_variable(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVE_BUCKET_NAME")
    with pytest.raises(ConfigError, match="ARCHIVE_BUCKET_NAME is required"):
        archive.run()
    monkeypatch.setenv("ARCHIVE_BUCKET_NAME", "bucket-b")
    monkeypatch.setenv("SOURCE_REGIONS", "us-east-2;us-west-2")
    with pytest.raises(ConfigError, match=r"SOURCE_REGIONS=.*comma-separated list of Regions"):
        archive.run()


def test_a_short_time_budget_defers_work_and_later_runs_drain_the_backlog(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every sixth GetStreamSession answers only after the whole budget has gone by, so a run stops there at
    the latest: it takes no new session, sends no request, and reports the rest deferred. The emulator's delay
    is what ends a budget; no assertion reads a clock. (cold_start builds the clients before the context
    starts counting, as Lambda's INIT phase does.)"""
    for _ in range(10):
        archive.emulator.add_session()
    expected = archive.emulator.succeeded_arns()
    budget = 1.0
    monkeypatch.setenv("TIME_BUDGET_MARGIN_SECONDS", "0")
    monkeypatch.setenv("MAX_CONCURRENCY", "1")
    cold_start()
    archive.emulator.faults.inject("GetStreamSession", "latency", every=6, seconds=budget + 0.1)
    runs: list[dict[str, Any]] = []
    while archive.archived_arns() != expected and len(runs) < 10:
        summary = archive.run(context=LambdaContext(timeout_seconds=budget))
        runs.append(summary)
        assert summary["ok"] is True and summary["total"]["failed"] == 0
        assert set(archive.items()) <= archive.archived_arns()  # never an item without its object
    first = runs[0]["total"]
    assert first["deferred"] > 0 and first["archived"] < len(expected), "the budget never cut the first run short"
    assert first["archived"] + first["deferred"] == len(expected)  # each new session archived or deferred
    assert archive.archived_arns() == set(archive.items()) == expected
    assert sum(r["total"]["archived"] for r in runs) == len(expected)  # each archived exactly once
    assert fired(archive)[("GetStreamSession", "latency")] >= 1


def test_the_handler_finds_gamelift_streams_only_through_the_sdk_variable(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler has no endpoint setting of its own: AWS_ENDPOINT_URL_GAMELIFTSTREAMS alone decides which
    server it asks (AWS_ENDPOINT_URL points at moto, which answers GameLift Streams calls with HTTP 500)."""
    first = archive.emulator.add_session()["Arn"]
    archive.run()
    assert archive.emulator.call_counts() == {"ListStreamSessionsByAccount": 1, "GetStreamSession": 1}
    archive.emulator.reset_calls()
    archive.stack.proxy.reset_calls()
    with GameLiftStreamsEmulator(seed=10_000_019, default_region=REGION) as elsewhere:
        second = elsewhere.add_session()["Arn"]
        monkeypatch.setenv("AWS_ENDPOINT_URL_GAMELIFTSTREAMS", elsewhere.endpoint_url)
        cold_start()
        summary = archive.run()
        assert elsewhere.call_counts() == {"ListStreamSessionsByAccount": 1, "GetStreamSession": 1}
    assert archive.emulator.call_counts() == {}
    assert +archive.stack.proxy.call_counts() == {"BatchGetItem": 1, "HeadObject": 1, "PutObject": 1, "PutItem": 1}
    assert summary["total"]["archived"] == 1 and second != first
    assert archive.archived_arns() == set(archive.items()) == {first, second}

"""The real handler over in-memory AWS: its metrics, its failures, and what a warm invocation keeps.

The handler builds its clients through boto3 as in Lambda; here each boto3 session it makes gets the
in-memory services attached before it builds a client, so nothing leaves the process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from archiver import telemetry, wiring
from archiver.settings import ConfigError
from local.lambda_context import SCHEDULED_EVENT, LambdaContext

from .fakes import ACCOUNT, OTHER_REGION, REGION, World

ENVIRONMENT = {
    "ARCHIVE_TABLE_NAME": "archive",
    "ARCHIVE_BUCKET_NAME": "archive-bucket",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "LIST_RATE_PER_SECOND": "10000",  # the pace itself is tested on a fake clock (test_sessions)
    "GET_RATE_PER_SECOND": "10000",
}


@dataclass
class Lambda:
    """One container: the in-memory world it talks to, and how often it built a boto3 session."""

    world: World
    sessions: int = 0

    def invoke(self, event: Any = None, context: Any = None) -> dict[str, Any]:
        from archiver.handler import handler

        summary: dict[str, Any] = handler({} if event is None else event, context or LambdaContext())
        return summary


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lambda]:
    """A cold container: the environment set, the wiring not built yet, every boto3 session in memory."""
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")] + ["SOURCE_REGIONS"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    running = Lambda(World())
    real_session = boto3.session.Session

    def in_memory_session(*args: Any, **kwargs: Any) -> boto3.session.Session:
        running.sessions += 1
        session = real_session(*args, **kwargs)
        for fake in (running.world.gls, running.world.ddb, running.world.s3, running.world.lambda_):
            fake.attach(session.events)
        return session

    monkeypatch.setattr(boto3.session, "Session", in_memory_session)
    wiring.wiring.cache_clear()
    try:
        yield running
    finally:
        wiring.wiring.cache_clear()  # the next test (or the local stack) wires its own environment


def printed(logs: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the invocations printed: (log lines, EMF metric blobs)."""
    lines = [json.loads(line) for line in logs.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" not in line], [line for line in lines if "_aws" in line]


def value(blob: dict[str, Any], name: str) -> float:
    raw = blob[name]
    values = raw if isinstance(raw, list) else [raw]
    assert len(values) == 1, f"{name} has {len(values)} datapoints"
    return float(values[0])


def test_each_metric_equals_its_summary_counter_and_a_complete_run_says_so(
    container: Lambda, logs: pytest.CaptureFixture[str]
) -> None:
    world = container.world
    arns = world.gls.add_sessions(12)
    for arn in arns[:3]:
        world.ddb.tables["archive"][arn] = {"session_arn": {"S": arn}, "s3_key": {"S": "k"}}
    world.gls.gone.add(arns[3])
    world.gls.add_session(Arn="not-an-arn")
    world.gls.add_session(Arn=arns[5].replace(ACCOUNT, "999999999999"))  # the handler knows its account
    world.s3.fail("PutObject", "InternalError", 500, when=lambda params: arns[4].rsplit("/", 1)[1] in params["Key"])

    summary = container.invoke(SCHEDULED_EVENT)

    total = summary["total"]
    assert total == {
        "listed": 14,
        "already_archived": 3,
        "new": 9,
        "archived": 7,
        "failed": 1,
        "skipped": 2,
        "foreign": 1,
        "deferred": 0,
        "repeated": 0,
        "duration_ms": summary["duration_ms"],
    }
    log_lines, (blob, *others) = printed(logs)
    assert others == []
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == telemetry.NAMESPACE
    emitted = {name: value(blob, name) for name in telemetry.COUNTERS}
    assert emitted == {  # by name, as the alarms and the dashboard read them
        "SessionsListed": 14,
        "SessionsAlreadyArchived": 3,
        "SessionsNew": 9,
        "SessionsArchived": 7,
        "SessionsFailed": 1,
        "SessionsSkipped": 2,
        "SessionsDeferred": 0,
        "SessionsForeign": 1,
    }
    assert value(blob, telemetry.RUN_DURATION) == summary["duration_ms"]
    assert value(blob, telemetry.RUN_COMPLETED) == 1
    # the export ZIPs: each metric is its summary field (the fake sessions' ZIPs do not exist: unreadable)
    exported = {name: value(blob, name) for name in telemetry.EXPORT_FIELDS}
    assert exported == {name: summary["exports"][field] for name, field in telemetry.EXPORT_FIELDS.items()}
    assert summary["exports"]["exports_unreadable"] == 7 + 1  # read before the failed record's PutObject too
    (complete,) = [line for line in log_lines if line["message"] == "Run complete"]
    assert complete["summary"] == summary and complete["event_id"] == SCHEDULED_EVENT["id"]


def test_a_failed_run_raises_naming_the_region_and_emits_no_run_completed(
    container: Lambda, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from archiver.handler import RunFailed

    monkeypatch.setenv("SOURCE_REGIONS", f"{REGION},{OTHER_REGION}")
    world = container.world
    ours = set(world.gls.add_sessions(5, region=REGION))
    world.gls.add_sessions(5, region=OTHER_REGION)
    world.gls.fail("ListStreamSessionsByAccount", "ThrottlingException", 429, times=None, region=OTHER_REGION)

    with pytest.raises(RunFailed, match=rf"^{OTHER_REGION}: ListStreamSessionsByAccount in {OTHER_REGION}"):
        container.invoke()

    assert world.archived() == ours  # the other Region's sessions are archived all the same
    log_lines, (blob,) = printed(logs)
    assert telemetry.RUN_COMPLETED not in blob
    assert value(blob, telemetry.ARCHIVED) == 5 and value(blob, telemetry.LISTED) == 5
    (failed,) = [line for line in log_lines if line["message"] == "Run failed"]
    assert failed["level"] == "ERROR" and failed["summary"]["ok"] is False


def test_warm_invocations_reuse_the_clients_and_start_with_fresh_logger_keys(
    container: Lambda, logs: pytest.CaptureFixture[str]
) -> None:
    container.world.gls.add_sessions(3)
    first = container.invoke(SCHEDULED_EVENT, LambdaContext(aws_request_id="request-1"))
    container.world.gls.add_sessions(2)
    second = container.invoke({}, LambdaContext(aws_request_id="request-2"))

    assert (first["total"]["archived"], second["total"]["archived"]) == (3, 2)
    assert container.sessions == 1  # built once, in the cold start
    world = container.world
    # S3: the archive bucket's client and the export ZIPs' own (archiver.wiring)
    assert (world.gls.clients_built, world.ddb.clients_built, world.s3.clients_built) == (1, 1, 2)
    log_lines, _ = printed(logs)
    by_request: dict[str, list[dict[str, Any]]] = {}
    for line in log_lines:
        by_request.setdefault(line.get("function_request_id", ""), []).append(line)
    assert set(by_request) == {"request-1", "request-2"}
    assert all(line["event_id"] == SCHEDULED_EVENT["id"] for line in by_request["request-1"])
    assert all("event_id" not in line for line in by_request["request-2"])  # nothing left from the first


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_bad_environment_fails_each_invocation_naming_the_variable_until_it_is_fixed(
    container: Lambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARCHIVE_TABLE_NAME")
    for _ in range(2):  # a failure is not cached: each invocation reads the environment again
        with pytest.raises(ConfigError, match="ARCHIVE_TABLE_NAME is required"):
            container.invoke()
    monkeypatch.setenv("ARCHIVE_TABLE_NAME", "archive")
    container.world.gls.add_sessions(1)
    assert container.invoke()["total"]["archived"] == 1


def test_the_time_budget_comes_from_the_lambda_context(container: Lambda) -> None:
    container.world.gls.add_sessions(3)
    summary = container.invoke({}, LambdaContext(timeout_seconds=20.0))  # under the 30 s margin: no new work
    assert summary["ok"] is True and summary["total"]["listed"] == 0
    assert list(container.world.log) == []
    assert container.invoke({}, LambdaContext(timeout_seconds=900.0))["total"]["archived"] == 3


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize("arn", [None, "", "not-an-arn", "arn:aws:lambda:us-east-2:1234:function:f", 7])
def test_without_its_own_arn_in_the_context_the_run_archives_nothing_and_names_the_key(
    container: Lambda, arn: object, logs: pytest.CaptureFixture[str]
) -> None:
    container.world.gls.add_sessions(2)
    context = LambdaContext()
    context.invoked_function_arn = arn  # type: ignore[assignment]
    with pytest.raises(ConfigError, match=r"invoked_function_arn is .*: expected arn:<partition>:lambda:"):
        container.invoke({}, context)
    assert list(container.world.log) == []  # nothing listed, nothing asked, nothing written
    log_lines, _ = printed(logs)
    assert [line["message"] for line in log_lines if line["level"] == "ERROR"] == ["Invalid configuration"]


def test_the_local_lambda_context_is_in_the_emulators_account() -> None:
    """Local runs are checked like real ones: the context's account is the one the emulator's sessions name."""
    from archiver.ownership import function_identity
    from local.gls import GameLiftStreamsEmulator
    from local.reliability.constants import ACCOUNT as HARNESS_ACCOUNT

    assert function_identity(LambdaContext()) == (HARNESS_ACCOUNT, "aws") == (ACCOUNT, "aws")
    assert GameLiftStreamsEmulator().account_id == HARNESS_ACCOUNT

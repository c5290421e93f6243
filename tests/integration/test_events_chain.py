"""The event path end to end on real parts: a session ends, the emulator writes its export ZIP to moto's S3,
moto's S3 -> EventBridge -> the rule -> SQS, and the real consumer (archiver.events.handler, through the
poller that does what Lambda's event source mapping does) archives it, exactly as the reconciler would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.lambda_context import LambdaContext
from local.stack import LocalStack
from tests.stack_fixtures import Archive, archive_world

from .conftest import stats_objects

EXPORTS = "events-exports"
LOCATIONS = f"s3://{EXPORTS}/gamelift/"


@pytest.fixture
def chain(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Archive]:
    """A test's own archive world with the event path for LOCATIONS, and the consumer's environment."""
    with archive_world(local_stack, monkeypatch) as world:
        world.stack.create_event_resources(LOCATIONS, queue_name=f"exports-{world.table}")
        monkeypatch.setenv("EXPORT_LOCATIONS", LOCATIONS)
        monkeypatch.setenv("MAX_PENDING_RECEIVES", "3")
        yield world


def consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from archiver.events import handler

    response: dict[str, Any] = handler(event, context)
    return response


def context() -> LambdaContext:
    return LambdaContext(timeout_seconds=60, function_name="exports-consumer")


def export_and_end(world: Archive, output_uri: str = LOCATIONS) -> str:
    """A live session exported to `output_uri` and terminated through the real boto3 client: its ARN."""
    api = world.stack.client("gameliftstreams")
    arn = str(world.stack.gls.start()["Arn"])
    group, session = arn.split("/")[-2:]
    api.export_stream_session_files(Identifier=group, StreamSessionIdentifier=session, OutputUri=output_uri)
    api.terminate_stream_session(Identifier=group, StreamSessionIdentifier=session)
    return arn


def test_an_export_landing_is_archived_through_the_chain_exactly_as_the_reconciler_archives_it(
    chain: Archive,
) -> None:
    arns = {export_and_end(chain) for _ in range(3)}
    poller = chain.stack.poller(consumer, wait_time_seconds=2, context_factory=context)

    poller.drain(lambda: chain.archived_arns() == arns, timeout=30)

    assert chain.archived_arns() == arns
    by_event = chain.objects()
    items = chain.items()
    assert {record["session_arn"] for record in by_event.values()} == set(items)
    for key, record in by_event.items():
        assert items[record["session_arn"]]["s3_key"] == key
        assert items[record["session_arn"]]["archived_at"] == record["archived_at"]
        assert record["export_status"] == "SUCCEEDED" and record["status"] == "TERMINATED"

    summary = chain.run()  # the reconciler finds nothing left, and rewrites nothing
    assert summary["total"]["archived"] == 0 and summary["total"]["already_archived"] == 3
    assert chain.objects() == by_event and chain.object_versions() == 3 + 3  # records and stats objects, once each
    assert len(stats_objects(chain)) == 3 and all(r["stats_key"] in stats_objects(chain) for r in by_event.values())


def test_a_zip_that_lands_before_the_api_says_succeeded_is_archived_once_it_does(chain: Archive) -> None:
    chain.stack.gls.config(export_success_delay_ms=600_000)
    arn = export_and_end(chain)
    outcomes: list[dict[str, Any]] = []

    def watched(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        response = consumer(event, ctx)
        outcomes.append(response)
        if response["batchItemFailures"]:
            chain.stack.gls.config(export_success_delay_ms=0)  # the API catches up after the first look
        return response

    poller = chain.stack.poller(watched, wait_time_seconds=2, visibility_timeout=1, context_factory=context)
    poller.drain(lambda: arn in chain.archived_arns(), timeout=30)

    assert chain.archived_arns() == {arn}
    assert [len(o["batchItemFailures"]) for o in outcomes] == [1, 0]


def test_the_reconciler_and_the_consumer_on_the_same_session_leave_one_record_equal_to_its_item(
    chain: Archive,
) -> None:
    arn = export_and_end(chain)
    assert chain.run()["total"]["archived"] == 1  # the reconciler first
    stored = chain.objects()
    poller = chain.stack.poller(consumer, wait_time_seconds=2, context_factory=context)

    result = poller.drain(lambda: poller.totals.deleted >= 1, timeout=30)

    assert result.failed == 0
    assert chain.objects() == stored and chain.object_versions() == 2  # the record and its stats object, once
    [record] = stored.values()
    assert chain.items()[arn]["archived_at"] == record["archived_at"]


def test_the_consumer_logs_each_outcome_as_one_json_line(chain: Archive, logs: pytest.CaptureFixture[str]) -> None:
    export_and_end(chain)
    chain.stack.client("s3", direct=True).put_object(Bucket=EXPORTS, Key="gamelift/readme.zip", Body=b"x")
    poller = chain.stack.poller(consumer, wait_time_seconds=2, context_factory=context)
    poller.drain(lambda: poller.totals.deleted >= 2, timeout=30)

    lines = [json.loads(line) for line in logs.readouterr().out.splitlines() if line.startswith("{")]
    batches = [line["outcomes"] for line in lines if line.get("message") == "Batch processed"]
    totals: dict[str, int] = {}
    for batch in batches:
        for outcome, count in batch.items():
            totals[outcome] = totals.get(outcome, 0) + count
    assert totals == {"archived": 1, "unmatched": 1}


def test_the_consumer_stores_each_sessions_stats_equal_to_its_zips_csv(chain: Archive) -> None:
    import csv
    import gzip
    import io
    import zipfile

    arn = export_and_end(chain)
    poller = chain.stack.poller(consumer, wait_time_seconds=2, context_factory=context)
    poller.drain(lambda: chain.archived_arns() == {arn}, timeout=30)

    s3 = chain.stack.client("s3", direct=True)
    session = arn.rsplit("/", 1)[-1]
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=EXPORTS)["Contents"] if session in o["Key"]]
    with zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=EXPORTS, Key=key)["Body"].read())) as archive:
        expected = list(csv.DictReader(io.StringIO(archive.read("stats/perf_stats_v1.csv").decode("utf-8-sig"))))
    [record] = chain.objects().values()
    rows = [json.loads(line) for line in gzip.decompress(stats_objects(chain)[record["stats_key"]]).splitlines()]
    assert record["export_read_status"] == "read" and record["stats_status"] == "stored"
    assert len(rows) == len(expected) == record["stats_rows"] > 0
    assert [row["shared_sys_gpu_pct"] for row in rows] == [float(row["shared_sys_gpu_pct"]) for row in expected]
    assert {row["session_arn"] for row in rows} == {arn}
    assert chain.stack.proxy.call_counts()["ListObjectsV2"] == 0  # the event's key: no listing

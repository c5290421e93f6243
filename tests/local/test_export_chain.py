"""The local half of the event path on real parts: the emulator ends a session and writes its export ZIP to
moto's S3, moto's S3 -> EventBridge notification -> the stack's rule -> SQS, and SqsPoller hands the message
to a handler as Lambda's event source mapping would. The handlers here are small test handlers (the
consumer, archiver.events.handler, is tested on its own)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from archiver import exports
from archiver.rules import export_locations
from local.stack import LocalStack
from local.stack.resources import EXTRA_RECEIVES, create_event_resources, queue_policy
from tests.local.support import REGION

BUCKET = "chain-exports"
OTHER_BUCKET = "chain-other-exports"
LOCATIONS = f"s3://{BUCKET}/sessions/,s3://{OTHER_BUCKET}/"
_queues = itertools.count()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(seed=17, region=REGION, export_locations=LOCATIONS) as local:
        yield local


@pytest.fixture
def chain(stack: LocalStack) -> LocalStack:
    """The module's stack with a queue (and rule) of the test's own, so it starts empty (SQS purges a queue
    once a minute at most), and the emulator's export settings as they start."""
    stack.emulator.export_success_delay_ms = 0
    stack.emulator.fail_exports = False
    stack.create_event_resources(LOCATIONS, queue_name=f"chain-events-{next(_queues)}")
    return stack


class Events:
    """A test handler: records each message's EventBridge event; fails those `pending` says to."""

    def __init__(self, pending: Any = None) -> None:
        self.pending = pending
        self.records: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            self.records.append(record)
            if self.pending is not None and self.pending(json.loads(record["body"])):
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.records]

    def object_keys(self) -> list[str]:
        return [b["detail"]["object"]["key"] for b in self.bodies]


def ids(arn: str) -> dict[str, str]:
    group, session = arn.split("/")[-2:]
    return {"Identifier": group, "StreamSessionIdentifier": session}


def export_and_end(stack: LocalStack, output_uri: str) -> tuple[str, dict[str, Any]]:
    """A live session exported to `output_uri` and terminated through the real boto3 client."""
    api = stack.client("gameliftstreams")
    arn = stack.gls.start()["Arn"]
    api.export_stream_session_files(**ids(arn), OutputUri=output_uri)
    api.terminate_stream_session(**ids(arn))
    return arn, api.get_stream_session(**ids(arn))


def queue_depth(stack: LocalStack, url: str) -> int:
    attributes = stack.client("sqs", direct=True).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_an_export_landing_arrives_as_an_s3_object_created_event(chain: LocalStack) -> None:
    arn, detail = export_and_end(chain, f"s3://{BUCKET}/sessions/")
    handler = Events()

    chain.poller(handler, wait_time_seconds=2).drain(lambda: bool(handler.records), timeout=20)

    [record] = handler.records
    body = json.loads(record["body"])
    assert body["source"] == "aws.s3" and body["detail-type"] == "Object Created"
    assert body["region"] == REGION and body["resources"] == [f"arn:aws:s3:::{BUCKET}"]
    key = body["detail"]["object"]["key"]
    assert body["detail"]["bucket"]["name"] == BUCKET
    assert detail["ExportFilesMetadata"] == {"Status": "SUCCEEDED", "OutputUri": f"s3://{BUCKET}/{key}"}
    named = exports.session_of(BUCKET, key)
    assert named is not None and named.session_id == arn.rsplit("/", 1)[-1]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == chain.event_resources.queue_arn
    assert queue_depth(chain, chain.event_resources.queue_url) == 0


def test_only_zips_under_the_locations_make_messages(chain: LocalStack) -> None:
    s3 = chain.client("s3", direct=True)
    for bucket, key in [
        (BUCKET, "elsewhere/20260101-000000-a-x-sg-abc-Sess1.zip"),  # outside the prefix
        (BUCKET, "sessions/notes.txt"),  # not a ZIP
        (BUCKET, "sessions/archive.zip.part"),
        (BUCKET, "sessionsX/a.zip"),  # a prefix of the prefix's name is not the prefix
    ]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    # moto delivers during PutObject, so these come after anything the ones above could have queued.
    s3.put_object(Bucket=OTHER_BUCKET, Key="any/depth/custom-name.zip", Body=b"x")  # the whole bucket
    _, detail = export_and_end(chain, f"s3://{BUCKET}/sessions/nested/")
    handler = Events()

    chain.poller(handler, wait_time_seconds=2).drain(lambda: len(handler.records) >= 2, timeout=20)

    landed = detail["ExportFilesMetadata"]["OutputUri"].removeprefix(f"s3://{BUCKET}/")
    assert sorted(handler.object_keys()) == sorted(["any/depth/custom-name.zip", landed])
    assert queue_depth(chain, chain.event_resources.queue_url) == 0


def test_a_failed_export_writes_nothing_and_sends_nothing(chain: LocalStack) -> None:
    chain.gls.config(fail_exports=True)
    _, failed = export_and_end(chain, f"s3://{BUCKET}/sessions/")
    chain.gls.config(fail_exports=False)
    _, landed = export_and_end(chain, f"s3://{BUCKET}/sessions/")
    handler = Events()

    chain.poller(handler, wait_time_seconds=2).drain(lambda: bool(handler.records), timeout=20)

    assert failed["ExportFilesMetadata"]["Status"] == "FAILED"
    assert [f"s3://{BUCKET}/{k}" for k in handler.object_keys()] == [landed["ExportFilesMetadata"]["OutputUri"]]


def test_an_event_before_succeeded_comes_back_until_the_api_says_so(chain: LocalStack) -> None:
    """The ZIP lands while GetStreamSession still says PENDING: the handler leaves the message in the queue
    (batchItemFailures), and it is delivered again after the visibility timeout, once the API says SUCCEEDED."""
    api = chain.client("gameliftstreams")
    chain.gls.config(export_success_delay_ms=600_000)
    arn, detail = export_and_end(chain, f"s3://{BUCKET}/sessions/")
    assert detail["ExportFilesMetadata"]["Status"] == "PENDING"
    statuses: list[str] = []

    def still_pending(body: dict[str, Any]) -> bool:
        named = exports.session_of(body["detail"]["bucket"]["name"], body["detail"]["object"]["key"])
        assert named is not None
        meta = api.get_stream_session(Identifier=named.stream_group_id, StreamSessionIdentifier=named.session_id)
        statuses.append(meta["ExportFilesMetadata"]["Status"])
        if statuses[-1] == "PENDING":
            chain.gls.config(export_success_delay_ms=0)  # the API catches up after this first look
        return statuses[-1] == "PENDING"

    handler = Events(still_pending)
    consumer = chain.poller(handler, wait_time_seconds=2, visibility_timeout=1)
    consumer.drain(lambda: queue_depth(chain, chain.event_resources.queue_url) == 0, timeout=30)

    assert statuses == ["PENDING", "SUCCEEDED"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in handler.records] == ["1", "2"]
    assert consumer.totals.deleted == 1 and consumer.totals.failed == 1
    assert api.get_stream_session(**ids(arn))["ExportFilesMetadata"]["Status"] == "SUCCEEDED"


def test_the_resources_are_configured_as_the_stack_configures_them(chain: LocalStack) -> None:
    events = chain.event_resources
    sqs, bridge = chain.client("sqs", direct=True), chain.client("events", direct=True)

    attributes = sqs.get_queue_attributes(QueueUrl=events.queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": events.dlq_arn,
        "maxReceiveCount": 5 + EXTRA_RECEIVES,
    }
    assert json.loads(attributes["Policy"]) == queue_policy(events.queue_arn, events.rule_arn)
    [allow] = [s for s in json.loads(attributes["Policy"])["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": events.rule_arn}}
    rule = bridge.describe_rule(Name=events.rule_name)
    assert rule["Arn"] == events.rule_arn and rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"]) == exports.event_pattern(export_locations(LOCATIONS))
    assert [t["Arn"] for t in bridge.list_targets_by_rule(Rule=events.rule_name)["Targets"]] == [events.queue_arn]
    assert events.buckets == (BUCKET, OTHER_BUCKET)


def test_turning_on_eventbridge_keeps_a_buckets_other_notifications(chain: LocalStack) -> None:
    s3, sqs = chain.client("s3", direct=True), chain.client("sqs", direct=True)
    s3.create_bucket(Bucket="chain-notified", CreateBucketConfiguration={"LocationConstraint": REGION})
    other_queue = sqs.create_queue(QueueName="chain-other-consumer")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    existing = {"Id": "theirs", "QueueArn": other_arn, "Events": ["s3:ObjectCreated:*"]}
    s3.put_bucket_notification_configuration(
        Bucket="chain-notified", NotificationConfiguration={"QueueConfigurations": [existing]}
    )

    ours = create_event_resources(
        chain.moto_url, "s3://chain-notified/", queue_name="chain-notified-events", region=REGION
    )
    s3.put_object(Bucket="chain-notified", Key="x.zip", Body=b"x")

    kept = s3.get_bucket_notification_configuration(Bucket="chain-notified")["QueueConfigurations"]
    assert [(q["Id"], q["QueueArn"]) for q in kept] == [("theirs", other_arn)]
    theirs = [
        json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=other_queue, MaxNumberOfMessages=10)["Messages"]
    ]
    created = [r["s3"]["object"]["key"] for body in theirs for r in body.get("Records", [])]  # not s3:TestEvent
    assert created == ["x.zip"]  # their notification still fires ...
    assert queue_depth(chain, ours.queue_url) == 1  # ... and so does ours
    again = create_event_resources(
        chain.moto_url, "s3://chain-notified/", queue_name="chain-notified-events", region=REGION
    )
    assert again == ours  # safe to run twice


def test_processes_mode_wires_the_emulator_process_to_moto() -> None:
    with LocalStack(seed=3, region=REGION, processes=True, export_locations=f"s3://{BUCKET}/") as local:
        assert local.gls.config()["export_s3_endpoint"] == local.moto_url
        _, detail = export_and_end(local, f"s3://{BUCKET}/")
        handler = Events()
        local.poller(handler, wait_time_seconds=2).drain(lambda: bool(handler.records), timeout=30)

    assert [f"s3://{BUCKET}/{k}" for k in handler.object_keys()] == [detail["ExportFilesMetadata"]["OutputUri"]]


def test_threads_mode_reset_data_recreates_the_event_path() -> None:
    with LocalStack(seed=4, region=REGION, export_locations=f"s3://{BUCKET}/") as local:
        assert local.emulator.export_s3_endpoint == local.moto_url
        local.emulator.export_success_delay_ms = 5
        local.reset_data()
        assert local.emulator.export_success_delay_ms == 0
        _, detail = export_and_end(local, f"s3://{BUCKET}/")
        handler = Events()
        local.poller(handler, wait_time_seconds=2).drain(lambda: bool(handler.records), timeout=20)

    assert detail["ExportFilesMetadata"]["Status"] == "SUCCEEDED" and len(handler.records) == 1


def test_a_stack_without_export_locations_has_no_event_path(chain: LocalStack) -> None:
    with LocalStack(seed=5, region=REGION, moto_url=chain.moto_url) as plain, pytest.raises(RuntimeError):
        _ = plain.event_resources

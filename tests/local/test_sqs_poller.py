"""SqsPoller against moto's SQS: the event as Lambda builds it, deletes only of what succeeded, redelivery
after the visibility timeout, and the dead-letter queue after maxReceiveCount receives. Waits are long polls."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from typing import Any

import pytest

from local.lambda_context import LambdaContext
from local.sqs_poller import PollResult, SqsPoller, failed_ids
from local.stack.resources import EventResources, create_event_resources
from tests.local.support import REGION, boto_client

_names = itertools.count()


@pytest.fixture
def sqs(moto: str) -> Any:
    return boto_client("sqs", moto)


@pytest.fixture
def queue(moto: str) -> EventResources:
    """A fresh queue (visibility 1 s) whose messages go to its dead-letter queue after 1 + 3 receives."""
    n = next(_names)
    return create_event_resources(
        moto,
        f"s3://poller-bucket-{n}/",
        queue_name=f"poller-{n}",
        region=REGION,
        max_pending_receives=1,
        visibility_timeout=1,
    )


class Recorder:
    """A test handler: records every event and context, and fails what it is told to (by body)."""

    def __init__(self, fail: set[str] | None = None, *, raises: bool = False) -> None:
        self.fail = fail or set()
        self.raises = raises
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        self.contexts.append(context)
        if self.raises:
            raise RuntimeError("the whole batch fails")
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] in self.fail]
        return {"batchItemFailures": failures}

    def bodies(self) -> list[str]:
        return [r["body"] for e in self.events for r in e["Records"]]


def send(sqs: Any, queue: EventResources, *bodies: str) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=queue.queue_url, MessageBody=body)


def depth(sqs: Any, url: str) -> int:
    """Messages in the queue, visible or in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def poller(queue: EventResources, handler: Any, **options: Any) -> SqsPoller:
    return SqsPoller(handler, queue_url=queue.queue_url, endpoint_url=queue.endpoint_url, region=REGION, **options)


def test_the_event_is_lambdas_sqs_event(sqs: Any, queue: EventResources) -> None:
    sqs.send_message(
        QueueUrl=queue.queue_url,
        MessageBody='{"foo": 2}',
        MessageAttributes={
            "req-id": {"DataType": "String", "StringValue": "abc"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    handler = Recorder()

    result = poller(queue, handler, wait_time_seconds=2).poll_once()

    assert result == PollResult(received=1, deleted=1, failed=0, invocations=1, batch_errors=0)
    [event] = handler.events
    [record] = event["Records"]
    assert set(event) == {"Records"}
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["body"] == '{"foo": 2}'
    assert record["md5OfBody"] == hashlib.md5(b'{"foo": 2}').hexdigest()  # SQS's checksum
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.queue_arn and record["awsRegion"] == REGION
    attributes = record["attributes"]
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        attributes
    )
    assert attributes["ApproximateReceiveCount"] == "1"
    assert all(isinstance(v, str) for v in attributes.values())
    assert record["messageAttributes"] == {
        "req-id": {"stringValue": "abc", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    json.dumps(event)  # what Lambda hands over is JSON
    [context] = handler.contexts
    assert isinstance(context, LambdaContext) and context.get_remaining_time_in_millis() > 0
    assert context.invoked_function_arn.startswith(f"arn:aws:lambda:{REGION}:")
    assert depth(sqs, queue.queue_url) == 0


def test_only_messages_outside_batch_item_failures_are_deleted_and_the_rest_come_back(
    sqs: Any, queue: EventResources
) -> None:
    send(sqs, queue, "ok-1", "bad", "ok-2")
    handler = Recorder(fail={"bad"})
    consumer = poller(queue, handler, wait_time_seconds=2)

    first = consumer.drain(lambda: len(handler.bodies()) >= 3, timeout=20)

    assert first.received == 3 and first.deleted == 2 and first.failed == 1
    assert sorted(handler.bodies()) == ["bad", "ok-1", "ok-2"]
    # The failed one is redelivered once its visibility timeout (1 s) ends: the long poll waits for it.
    handler.fail.clear()
    consumer.drain(lambda: len(handler.bodies()) >= 4, timeout=20)
    again = handler.events[-1]["Records"]
    assert [r["body"] for r in again] == ["bad"]
    assert again[0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert consumer.totals.deleted == 3
    assert depth(sqs, queue.queue_url) == 0


def test_a_handler_that_raises_deletes_nothing(sqs: Any, queue: EventResources) -> None:
    send(sqs, queue, "a", "b")
    handler = Recorder(raises=True)
    consumer = poller(queue, handler, wait_time_seconds=2)

    result = consumer.drain(lambda: len(handler.bodies()) >= 2, timeout=20)

    assert result.deleted == 0 and result.failed == result.received == 2 and result.batch_errors >= 1
    assert depth(sqs, queue.queue_url) == 2
    handler.raises = False
    consumer.drain(lambda: depth(sqs, queue.queue_url) == 0, timeout=20)
    assert sorted(handler.bodies()[-2:]) == ["a", "b"]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}]}, {"m1"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
        ({"batchItemFailures": [{"itemId": "m1"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, None),
        ({"batchItemFailures": "m1"}, None),
    ],
)
def test_responses_are_judged_as_lambda_judges_them(response: Any, expected: set[str] | None) -> None:
    assert failed_ids(response, ["m1", "m2"]) == expected


def test_an_invalid_response_fails_the_whole_batch(sqs: Any, queue: EventResources) -> None:
    send(sqs, queue, "x")
    calls: list[int] = []

    def bogus(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        return {"batchItemFailures": [{"itemIdentifier": "no-such-message"}]}

    result = poller(queue, bogus, wait_time_seconds=2).drain(lambda: bool(calls), timeout=20)

    assert result.batch_errors == 1 and result.deleted == 0
    assert depth(sqs, queue.queue_url) == 1


def test_batch_size_bounds_each_invocation(sqs: Any, queue: EventResources) -> None:
    send(sqs, queue, *(f"m{i}" for i in range(7)))
    handler = Recorder()
    consumer = poller(queue, handler, batch_size=3, wait_time_seconds=2)

    consumer.drain(lambda: depth(sqs, queue.queue_url) == 0, timeout=30)

    assert sorted(handler.bodies()) == sorted(f"m{i}" for i in range(7))
    assert all(1 <= len(e["Records"]) <= 3 for e in handler.events)
    with pytest.raises(ValueError, match="batch_size"):
        poller(queue, handler, batch_size=11)


def test_a_message_failing_every_time_goes_to_the_dead_letter_queue(sqs: Any, queue: EventResources) -> None:
    send(sqs, queue, "poison", "fine")
    handler = Recorder(fail={"poison"})
    consumer = poller(queue, handler, wait_time_seconds=2)

    consumer.drain(lambda: depth(sqs, queue.dlq_url) == 1, timeout=60)

    poison = [r for e in handler.events for r in e["Records"] if r["body"] == "poison"]
    assert len(poison) == queue.max_receive_count == 4  # received max_pending_receives + 3 times, no more
    assert [r["attributes"]["ApproximateReceiveCount"] for r in poison] == ["1", "2", "3", "4"]
    assert handler.bodies().count("fine") == 1
    assert depth(sqs, queue.queue_url) == 0
    [dead] = sqs.receive_message(QueueUrl=queue.dlq_url, WaitTimeSeconds=1)["Messages"]
    assert dead["Body"] == "poison"


def test_drain_times_out_when_the_condition_never_holds(queue: EventResources) -> None:
    with pytest.raises(TimeoutError, match="within"):
        poller(queue, Recorder(), wait_time_seconds=1).drain(lambda: False, timeout=1.5)


def test_the_background_thread_polls_until_stopped(sqs: Any, queue: EventResources) -> None:
    seen = threading.Event()
    handler = Recorder()

    def signalling(event: dict[str, Any], context: Any) -> dict[str, Any]:
        answer = handler(event, context)
        if len(handler.bodies()) >= 2:
            seen.set()
        return answer

    consumer = poller(queue, signalling, wait_time_seconds=1)
    with consumer:
        send(sqs, queue, "bg-1", "bg-2")
        assert seen.wait(20)
    assert consumer._thread is None  # stopped and joined
    assert sorted(handler.bodies()) == ["bg-1", "bg-2"]
    assert consumer.totals.deleted == 2
    assert depth(sqs, queue.queue_url) == 0

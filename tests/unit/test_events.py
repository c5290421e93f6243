"""The consumer's Lambda entry point over in-memory AWS: the SQS contract, its metrics and its failures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from archiver import telemetry
from archiver.settings import ConfigError
from local.lambda_context import LambdaContext

from .test_consumer import EXPORTS, PREFIX, exported, s3_event, zip_key
from .test_handler import Lambda, container, printed, value

__all__ = ["container"]  # the fixture, shared with the scheduled handler's tests


def sqs_event(*bodies: str, receives: int = 1) -> dict[str, Any]:
    """Lambda's SQS event as the event source mapping builds it (Lambda developer guide, "Using Lambda with SQS")."""
    return {
        "Records": [
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"handle-{n}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receives),
                    "SentTimestamp": "1764268201000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1764268201005",
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-2:111122223333:exports",
                "awsRegion": "us-east-2",
            }
            for n, body in enumerate(bodies)
        ]
    }


@pytest.fixture
def consumer_container(container: Lambda, monkeypatch: pytest.MonkeyPatch) -> Lambda:
    monkeypatch.setenv("EXPORT_LOCATIONS", f"s3://{EXPORTS}/{PREFIX}")
    monkeypatch.setenv("MAX_PENDING_RECEIVES", "3")
    return container


def consume(event: Any, context: Any = None) -> dict[str, Any]:
    from archiver.events import handler

    response: dict[str, Any] = handler(event, context or LambdaContext(function_name="exports-consumer"))
    return response


def test_only_pending_and_throttled_messages_come_back_and_each_outcome_is_a_metric(
    consumer_container: Lambda, logs: pytest.CaptureFixture[str]
) -> None:
    world = consumer_container.world
    archived, archived_key = exported(world)
    _, pending_key = exported(world, status="PENDING")
    throttled, throttled_key = exported(world)
    world.gls.fail(
        "GetStreamSession", "ThrottlingException", 429, when=lambda p: p["StreamSessionIdentifier"] == throttled
    )
    bodies = [
        s3_event(archived_key),
        s3_event(pending_key),
        s3_event(throttled_key),
        s3_event(f"{PREFIX}custom-name.zip"),
        s3_event(zip_key("ABC123def4567")),  # no such session
        "{not json",
        s3_event(archived_key),  # SQS delivered it twice in one batch
    ]

    response = consume(sqs_event(*bodies))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    assert world.archived() == {archived}
    _, (blob,) = printed(logs)
    emitted = {name: value(blob, name) for name in telemetry.EVENT_OUTCOMES}
    assert emitted == {
        "ExportEventsArchived": 1,
        "ExportEventsAlreadyArchived": 1,
        "ExportEventsPending": 1,
        "ExportEventsLeftToReconcile": 0,
        "ExportEventsUnmatched": 1,
        "ExportEventsSkipped": 1,
        "ExportEventsMalformed": 1,
        "ExportEventsForeign": 0,
        "ExportEventsFailed": 1,
    }


def test_after_the_bounded_receives_a_pending_export_is_acknowledged(consumer_container: Lambda) -> None:
    world = consumer_container.world
    _, key = exported(world, status="PENDING")
    assert consume(sqs_event(s3_event(key), receives=2))["batchItemFailures"] == [{"itemIdentifier": "m-0"}]
    assert consume(sqs_event(s3_event(key), receives=3)) == {"batchItemFailures": []}


def test_an_entirely_pending_batch_is_returned_not_raised(consumer_container: Lambda) -> None:
    world = consumer_container.world
    keys = [exported(world, status="PENDING")[1] for _ in range(3)]
    response = consume(sqs_event(*(s3_event(key) for key in keys)))
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m-{n}"} for n in range(3)]}


def test_a_fatal_error_fails_the_invocation(consumer_container: Lambda) -> None:
    from archiver.events import ConsumerFailed

    world = consumer_container.world
    _, key = exported(world)
    world.s3.fail("PutObject", "AccessDenied", 403, times=None)
    with pytest.raises(ConsumerFailed, match="AccessDenied"):
        consume(sqs_event(s3_event(key), s3_event(key)))
    assert len(world.s3.calls("PutObject")) == 1  # the second message is not tried against a denied bucket


@pytest.mark.parametrize("event", [{}, {"Records": "x"}, [], None, {"detail-type": "Scheduled Event"}])
def test_an_event_that_is_not_sqs_is_acknowledged_with_nothing_to_redeliver(
    consumer_container: Lambda, event: Any, logs: pytest.CaptureFixture[str]
) -> None:
    assert consume(event) == {"batchItemFailures": []}
    lines, _ = printed(logs)
    assert any(line["message"] == "Not an SQS event: nothing to process" for line in lines)


def test_without_export_locations_the_consumer_names_the_variable(container: Lambda) -> None:
    with pytest.raises(ConfigError, match="EXPORT_LOCATIONS is required for the event consumer"):
        consume(sqs_event(s3_event("k.zip")))


def test_a_body_is_logged_bounded_and_quoted(consumer_container: Lambda, logs: pytest.CaptureFixture[str]) -> None:
    consume(sqs_event("\x1b[31m" + "x" * 5000))
    lines, _ = printed(logs)
    (line,) = [line for line in lines if line["message"] == "Not an S3 Object Created event"]
    assert len(line["body"]) < 400 and "\x1b" not in line["body"]
    assert json.dumps(line)  # a single JSON line


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_without_its_own_arn_in_the_context_the_consumer_fails_naming_the_key(consumer_container: Lambda) -> None:
    world = consumer_container.world
    _, key = exported(world)
    context = LambdaContext(function_name="exports-consumer")
    context.invoked_function_arn = "arn:aws:lambda:us-east-2:not-an-account:function:exports-consumer"
    with pytest.raises(ConfigError, match="invoked_function_arn"):
        consume(sqs_event(s3_event(key)), context)
    assert list(world.log) == []  # the event's own account never stands in


def test_an_answer_about_another_session_is_acknowledged_and_counted_foreign(
    consumer_container: Lambda, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = consumer_container.world
    arn, key = exported(world)
    real_get = world.gls.get_stream_session

    def get(region: str, **params: Any) -> dict[str, Any]:
        return dict(real_get(region, **params)) | {"Arn": arn.replace("111122223333", "999999999999")}

    monkeypatch.setattr(world.gls, "get_stream_session", get)
    assert consume(sqs_event(s3_event(key))) == {"batchItemFailures": []}
    assert world.ddb.items() == {} and world.s3.objects() == {}
    _, (blob,) = printed(logs)
    assert value(blob, telemetry.EVENTS_FOREIGN) == 1 and value(blob, telemetry.EVENTS_ARCHIVED) == 0

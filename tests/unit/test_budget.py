"""The two points of a run's time: no new work after the margin, no request after the cut-off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from archiver.budget import Budget, OutOfTime, RequestCutoff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_work_stops_at_the_margin_and_requests_at_the_reserve() -> None:
    clock = Clock()
    budget = Budget(30.0, clock, cutoff_seconds=43.0)  # 60 s left, margin 30, reserve 17
    clock.now += 29.9
    assert not budget.expired() and not budget.cut_off()
    clock.now += 0.1
    assert budget.expired() and not budget.cut_off()
    clock.now += 13.0
    assert budget.cut_off()


def test_the_cut_off_never_comes_before_the_end_of_work() -> None:
    clock = Clock()
    budget = Budget(5.0, clock, cutoff_seconds=0.0)  # reserve larger than the margin
    clock.now += 4.9
    assert not budget.cut_off()
    clock.now += 0.1
    assert budget.expired() and budget.cut_off()


def test_from_a_lambda_context() -> None:
    budget = Budget.from_context(Context(60_000), margin_seconds=30.0, reserve_seconds=17.0)
    assert not budget.expired() and not budget.cut_off()
    assert Budget.from_context(Context(10_000), 30.0, 17.0).cut_off()  # less left than either: both at once
    assert Budget.from_context(Context(10_000), 30.0, 17.0).expired()


def test_without_a_lambda_context_nothing_expires() -> None:
    class NotLambda:
        def get_remaining_time_in_millis(self) -> None:
            return None

    for context in (None, object(), NotLambda()):
        budget = Budget.from_context(context, 30.0, 17.0)
        assert not budget.expired() and not budget.cut_off()


class _Body:
    """The raw HTTP body botocore reads from a response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._body


class _Wire:
    """Answers at `before-send`, where HTTP would begin: counts what was sent, and moves the clock."""

    def __init__(self, clock: Clock, status: int, takes: float) -> None:
        self.clock, self.status, self.takes, self.sent = clock, status, takes, 0

    def __call__(self, request: object, **_: object) -> AWSResponse:
        self.sent += 1
        self.clock.now += self.takes
        return AWSResponse("https://dynamodb", self.status, {}, _Body(b"{}"))


def _client_with_cutoff(clock: Clock, status: int = 200, takes: float = 0.0) -> tuple[Any, RequestCutoff, _Wire]:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-2",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
    )
    cutoff = RequestCutoff()
    cutoff.install(client)
    wire = _Wire(clock, status, takes)
    client.meta.events.register("before-send", wire)  # after the cut-off's own hook, as in the Lambda
    return client, cutoff, wire


def test_no_request_is_sent_once_the_budget_is_cut_off() -> None:
    clock = Clock()
    client, cutoff, wire = _client_with_cutoff(clock)
    cutoff.budget = Budget(10.0, clock, cutoff_seconds=20.0)
    client.list_tables()
    clock.now += 20.0
    with pytest.raises(OutOfTime, match="ListTables not sent"):
        client.list_tables()
    assert wire.sent == 1
    cutoff.budget = None  # between invocations nothing is cut off
    client.list_tables()
    assert wire.sent == 2


def test_no_retry_is_sent_past_the_cut_off_but_an_answer_that_came_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    backoffs: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", backoffs.append)  # botocore sleeps there before a retry
    clock = Clock()
    client, cutoff, wire = _client_with_cutoff(clock, status=500, takes=30.0)
    cutoff.budget = Budget(10.0, clock, cutoff_seconds=20.0)
    with pytest.raises(OutOfTime):
        client.list_tables()  # the 500 came back after the cut-off: no backoff, no retry
    assert wire.sent == 1 and backoffs == []

    clock = Clock()
    client, cutoff, wire = _client_with_cutoff(clock, status=200, takes=30.0)
    cutoff.budget = Budget(10.0, clock, cutoff_seconds=20.0)
    assert client.list_tables()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert wire.sent == 1

"""The GameLift Streams adapter alone: what it asks the API, how it pages, restarts, paces and fails."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from botocore.stub import Stubber

from archiver.budget import OutOfTime
from archiver.errors import FatalError
from archiver.ratelimit import TokenBucket
from archiver.records import parse_session_arn
from archiver.sessions import ListingFailed, SessionSource

from .fakes import GROUP, REGION, CountingBucket, FakeClock, FakeGameLiftStreams, real_client, session_arn

FIRST = {"ExportFilesStatus": "SUCCEEDED", "MaxResults": 100}


def item(n: int) -> dict[str, Any]:
    return {
        "Arn": session_arn(n),
        "Status": "TERMINATED",
        "CreatedAt": datetime(2026, 11, 27, tzinfo=UTC),
        "ExportFilesMetadata": {"Status": "SUCCEEDED"},
    }


def page(*numbers: int, token: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"Items": [item(n) for n in numbers]}
    if token:
        answer["NextToken"] = token
    return answer


def after(token: str) -> dict[str, Any]:
    return {**FIRST, "NextToken": token}


@pytest.fixture
def stubbed() -> Iterator[tuple[SessionSource, Stubber, CountingBucket, CountingBucket]]:
    """A source over a real client whose answers are queued in order, each with the exact parameters expected."""
    client = real_client("gameliftstreams")
    clock = FakeClock()
    lists, gets = CountingBucket(clock), CountingBucket(clock)
    with Stubber(client) as stubber:
        yield SessionSource(client, REGION, lists, gets, max_restarts=2), stubber, lists, gets
        stubber.assert_no_pending_responses()


def arns(pages: list[list[dict[str, Any]]]) -> list[list[str]]:
    return [[entry["Arn"] for entry in items] for items in pages]


def test_every_page_is_asked_for_succeeded_exports_at_100_a_page(stubbed: Any) -> None:
    source, stubber, lists, _ = stubbed
    stubber.add_response("list_stream_sessions_by_account", page(1, 2, token="t1"), FIRST)
    stubber.add_response("list_stream_sessions_by_account", page(3, token="t2"), after("t1"))
    stubber.add_response("list_stream_sessions_by_account", page(4), after("t2"))
    listed = arns(list(source.pages(lambda: True)))
    assert listed == [[session_arn(1), session_arn(2)], [session_arn(3)], [session_arn(4)]]
    assert lists.acquired >= 3  # one token before each page
    assert source.restarts == 0


def test_an_expired_next_token_restarts_the_listing_from_the_first_page(stubbed: Any) -> None:
    source, stubber, _, _ = stubbed
    stubber.add_response("list_stream_sessions_by_account", page(1, token="t1"), FIRST)
    stubber.add_client_error("list_stream_sessions_by_account", "ValidationException", "expired", 400, after("t1"))
    stubber.add_response("list_stream_sessions_by_account", page(1, token="t9"), FIRST)
    stubber.add_response("list_stream_sessions_by_account", page(2), after("t9"))
    assert arns(list(source.pages(lambda: True))) == [[session_arn(1)], [session_arn(1)], [session_arn(2)]]
    assert source.restarts == 1


def test_each_page_says_which_token_fetched_it_and_a_restart_starts_again_from_none(stubbed: Any) -> None:
    source, stubber, _, _ = stubbed
    stubber.add_response("list_stream_sessions_by_account", page(1, token="t1"), FIRST)
    stubber.add_response("list_stream_sessions_by_account", page(2, token="t2"), after("t1"))
    stubber.add_client_error("list_stream_sessions_by_account", "ValidationException", "expired", 400, after("t2"))
    stubber.add_response("list_stream_sessions_by_account", page(1, token="t9"), FIRST)
    stubber.add_response("list_stream_sessions_by_account", page(2), after("t9"))
    fetched_by = [source.page_token for _ in source.pages(lambda: True)]
    assert fetched_by == [None, "t1", None, "t9"]


def test_restarts_are_bounded_then_the_listing_fails(stubbed: Any) -> None:
    source, stubber, _, _ = stubbed  # max_restarts=2
    for _ in range(3):
        stubber.add_response("list_stream_sessions_by_account", page(1, token="t1"), FIRST)
        stubber.add_client_error("list_stream_sessions_by_account", "ValidationException", "expired", 400, after("t1"))
    with pytest.raises(ListingFailed, match=rf"{REGION}.*NextToken rejected 3 times"):
        list(source.pages(lambda: True))
    assert source.restarts == 2


def test_each_listing_starts_with_its_own_restart_allowance() -> None:
    """A warm Lambda reuses its sources: one invocation's restarts must not count against the next."""
    gls = FakeGameLiftStreams()
    gls.add_sessions(150)
    clock = FakeClock()
    source = SessionSource(gls.client(), REGION, CountingBucket(clock), CountingBucket(clock), max_restarts=1)

    gls.expire_tokens = 1
    assert sum(len(items) for items in source.pages(lambda: True)) == 250  # 100 + restart 100 + 50
    assert source.restarts == 1

    assert sum(len(items) for items in source.pages(lambda: True)) == 150  # the next invocation: no restart
    assert source.restarts == 0

    gls.expire_tokens = 1
    assert sum(len(items) for items in source.pages(lambda: True)) == 250  # and its allowance is whole again
    assert source.restarts == 1


def test_a_validation_error_on_the_first_page_is_not_an_expired_token(stubbed: Any) -> None:
    source, stubber, _, _ = stubbed
    stubber.add_client_error("list_stream_sessions_by_account", "ValidationException", "bad filter", 400, FIRST)
    with pytest.raises(ListingFailed, match=rf"ListStreamSessionsByAccount in {REGION}.*bad filter"):
        list(source.pages(lambda: True))
    assert source.restarts == 0  # and no second call: the Stubber has nothing else queued


@pytest.mark.parametrize(("code", "status"), [("ThrottlingException", 429), ("InternalServerException", 500)])
def test_throttling_or_5xx_left_after_retries_fail_the_listing(stubbed: Any, code: str, status: int) -> None:
    source, stubber, _, _ = stubbed
    stubber.add_response("list_stream_sessions_by_account", page(1, token="t1"), FIRST)
    stubber.add_client_error("list_stream_sessions_by_account", code, "try later", status, after("t1"))
    pages = source.pages(lambda: True)
    assert arns([next(pages)]) == [[session_arn(1)]]
    with pytest.raises(ListingFailed, match=rf"{REGION}.*{code}"):
        next(pages)


def test_access_denied_on_the_listing_is_fatal_and_names_the_call(stubbed: Any) -> None:
    source, stubber, _, _ = stubbed
    stubber.add_client_error("list_stream_sessions_by_account", "AccessDeniedException", "no", 403, FIRST)
    with pytest.raises(FatalError, match=rf"ListStreamSessionsByAccount in {REGION} failed with AccessDeniedException"):
        list(source.pages(lambda: True))


def test_a_transport_error_reaches_the_caller_as_a_botocore_error() -> None:
    gls = FakeGameLiftStreams()
    gls.fail("ListStreamSessionsByAccount", exception=EndpointConnectionError(endpoint_url="https://gls"))
    clock = FakeClock()
    source = SessionSource(gls.client(), REGION, CountingBucket(clock), CountingBucket(clock), max_restarts=3)
    with pytest.raises(BotoCoreError):
        list(source.pages(lambda: True))


def test_listing_stops_when_the_run_says_so() -> None:
    gls = FakeGameLiftStreams()
    gls.add_sessions(350)
    clock = FakeClock()
    source = SessionSource(gls.client(), REGION, CountingBucket(clock), CountingBucket(clock), max_restarts=3)
    asked = iter([True, True, False])
    assert len(list(source.pages(lambda: next(asked)))) == 2
    assert len(gls.calls("ListStreamSessionsByAccount")) == 2  # the third page is never asked for


def test_a_listing_that_reaches_its_end_leaves_no_position_and_takes_no_token_after_the_last_page(
    stubbed: Any,
) -> None:
    source, stubber, lists, _ = stubbed
    stubber.add_response("list_stream_sessions_by_account", page(1, token="t1"), FIRST)
    stubber.add_response("list_stream_sessions_by_account", page(2, token="t2"), after("t1"))
    stubber.add_response("list_stream_sessions_by_account", page(3), after("t2"))
    pages = source.pages(lambda: True)
    assert arns([next(pages)]) == [[session_arn(1)]]
    assert source.position == "t1"  # the page of t1 is the first one not yet listed
    assert arns(list(pages)) == [[session_arn(2)], [session_arn(3)]]
    assert source.position is None
    assert lists.acquired == 3  # one token per request sent: none waited for after the last page


def test_a_listing_resumes_at_its_start_token(stubbed: Any) -> None:
    source, stubber, _, _ = stubbed
    stubber.add_response("list_stream_sessions_by_account", page(5, token="t6"), after("t5"))
    stubber.add_response("list_stream_sessions_by_account", page(6), after("t6"))
    assert arns(list(source.pages(lambda: True, start_token="t5"))) == [[session_arn(5)], [session_arn(6)]]
    assert source.position is None
    assert source.restarts == 0


def test_a_start_token_that_is_itself_base64_json_reaches_the_api_unchanged(stubbed: Any) -> None:
    """The emulator's tokens are base64 JSON, and AWS's may be: botocore must not decode one into parameters."""
    source, stubber, _, _ = stubbed
    token = base64.b64encode(json.dumps({"f": "a1b2", "k": [1.5, "x", "y"]}).encode()).decode()
    stubber.add_response("list_stream_sessions_by_account", page(5), after(token))
    assert arns(list(source.pages(lambda: True, start_token=token))) == [[session_arn(5)]]


def test_a_stopped_listing_leaves_the_token_of_the_next_page_and_resuming_there_loses_and_repeats_nothing() -> None:
    gls = FakeGameLiftStreams()
    every = gls.add_sessions(350)
    clock = FakeClock()
    source = SessionSource(gls.client(), REGION, CountingBucket(clock), CountingBucket(clock), max_restarts=3)
    asked = iter([True, True, False])
    first = [entry["Arn"] for items in source.pages(lambda: next(asked)) for entry in items]
    assert len(first) == 200
    position = source.position
    assert position is not None
    assert len(gls.calls("ListStreamSessionsByAccount")) == 2  # the page of `position` was never asked for

    rest = [entry["Arn"] for items in source.pages(lambda: True, start_token=position) for entry in items]
    assert first + rest == every  # the fake lists in the order the sessions were added: each exactly once
    assert gls.calls("ListStreamSessionsByAccount")[2].params["NextToken"] == position
    assert source.position is None


def test_a_listing_stopped_before_its_first_page_keeps_its_start_token() -> None:
    gls = FakeGameLiftStreams()
    gls.add_sessions(10)
    clock = FakeClock()
    source = SessionSource(gls.client(), REGION, CountingBucket(clock), CountingBucket(clock), max_restarts=3)
    assert list(source.pages(lambda: False, start_token="next-5")) == []
    assert source.position == "next-5"
    assert list(source.pages(lambda: False)) == []
    assert source.position is None  # no token received: the next listing starts at the first page
    assert gls.calls("ListStreamSessionsByAccount") == []


def test_a_request_cut_off_by_the_budget_leaves_the_token_of_the_page_it_asked_for() -> None:
    gls = FakeGameLiftStreams()
    gls.add_sessions(350)
    clock = FakeClock()
    source = SessionSource(gls.client(), REGION, CountingBucket(clock), CountingBucket(clock), max_restarts=3)
    gls.fail(
        "ListStreamSessionsByAccount",
        exception=OutOfTime("ListStreamSessionsByAccount not sent"),
        when=lambda params: params.get("NextToken") == "next-200",
    )
    pages = source.pages(lambda: True)
    assert [len(items) for items in (next(pages), next(pages))] == [100, 100]
    with pytest.raises(OutOfTime):
        next(pages)
    assert source.position == "next-200"


def test_an_expired_start_token_restarts_from_the_first_page(stubbed: Any) -> None:
    source, stubber, _, _ = stubbed  # max_restarts=2
    stubber.add_client_error("list_stream_sessions_by_account", "ValidationException", "expired", 400, after("old"))
    stubber.add_response("list_stream_sessions_by_account", page(1, token="t1"), FIRST)
    stubber.add_response("list_stream_sessions_by_account", page(2), after("t1"))
    assert arns(list(source.pages(lambda: True, start_token="old"))) == [[session_arn(1)], [session_arn(2)]]
    assert source.restarts == 1
    assert source.position is None


def test_an_expired_start_token_counts_against_the_restart_bound(stubbed: Any) -> None:
    source, stubber, _, _ = stubbed  # max_restarts=2
    stubber.add_client_error("list_stream_sessions_by_account", "ValidationException", "expired", 400, after("old"))
    for _ in range(2):
        stubber.add_response("list_stream_sessions_by_account", page(1, token="t1"), FIRST)
        stubber.add_client_error("list_stream_sessions_by_account", "ValidationException", "expired", 400, after("t1"))
    with pytest.raises(ListingFailed, match="NextToken rejected 3 times"):
        list(source.pages(lambda: True, start_token="old"))
    assert source.restarts == 2


def test_malformed_pages_yield_only_the_items_that_are_objects() -> None:
    client = real_client("gameliftstreams")
    answers = iter([{"Items": [item(1), "junk", None], "NextToken": "t"}, {"Items": None}])
    client.meta.events.register(
        "before-call.gameliftstreams", lambda **_: (AWSResponse(None, 200, {}, None), next(answers))
    )
    clock = FakeClock()
    source = SessionSource(client, REGION, CountingBucket(clock), CountingBucket(clock), max_restarts=3)
    assert arns(list(source.pages(lambda: True))) == [[session_arn(1)], []]


def test_every_list_page_and_every_get_waits_for_its_own_token() -> None:
    """The pace is applied before each call: at 2 lists/s and 4 gets/s the calls arrive 0.5 s and 0.25 s apart."""
    clock = FakeClock(start=100.0)
    gls = FakeGameLiftStreams(clock=clock)
    listed = gls.add_sessions(250)
    lists = TokenBucket(2.0, burst=1, clock=clock, sleep=clock.sleep)
    gets = TokenBucket(4.0, burst=1, clock=clock, sleep=clock.sleep)
    source = SessionSource(gls.client(), REGION, lists, gets, max_restarts=3)

    assert sum(len(items) for items in source.pages(lambda: True)) == 250
    assert [call.at for call in gls.calls("ListStreamSessionsByAccount")] == [100.0, 100.5, 101.0]

    for arn in listed[:3]:
        parsed = parse_session_arn(arn)
        assert parsed is not None
        assert source.get(parsed) is not None
    times = [call.at for call in gls.calls("GetStreamSession")]
    assert [later - earlier for earlier, later in pairwise(times)] == [0.25, 0.25]


def test_get_asks_by_stream_group_and_session_arn_and_drops_the_response_metadata(stubbed: Any) -> None:
    source, stubber, _, gets = stubbed
    arn = parse_session_arn(session_arn(7))
    assert arn is not None
    detail = {
        "Arn": arn.arn,
        "StreamGroupId": GROUP,
        "ExportFilesMetadata": {"Status": "SUCCEEDED", "OutputUri": "s3://x"},
    }
    stubber.add_response("get_stream_session", detail, {"Identifier": GROUP, "StreamSessionIdentifier": arn.arn})
    assert source.get(arn) == detail
    assert gets.acquired == 1


def test_a_session_that_vanished_is_none(stubbed: Any) -> None:
    source, stubber, _, _ = stubbed
    stubber.add_client_error("get_stream_session", "ResourceNotFoundException", "gone", 404)
    arn = parse_session_arn(session_arn(7))
    assert arn is not None
    assert source.get(arn) is None


def test_get_access_denied_is_fatal_and_other_errors_reach_the_caller(stubbed: Any) -> None:
    source, stubber, _, _ = stubbed
    arn = parse_session_arn(session_arn(7))
    assert arn is not None
    stubber.add_client_error("get_stream_session", "ThrottlingException", "slow down", 429)
    with pytest.raises(ClientError, match="ThrottlingException"):
        source.get(arn)
    stubber.add_client_error("get_stream_session", "AccessDeniedException", "no", 403)
    with pytest.raises(FatalError, match=rf"GetStreamSession in {REGION} failed with AccessDeniedException"):
        source.get(arn)

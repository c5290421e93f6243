"""The DynamoDB adapter alone: which sessions are archived, unprocessed keys, and whose item a put found."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from archiver.errors import FatalError
from archiver.ledger import Ledger, LedgerUnavailable

from .fakes import KEY_ATTRIBUTE, TABLE, FakeClock, FakeDynamoDB, real_client, session_arn

OURS = {"s3_key": "sessions/k.json", "archived_at": "2026-12-01 10:00:00.000"}


def stored(arn: str, **values: str) -> dict[str, dict[str, str]]:
    return {KEY_ATTRIBUTE: {"S": arn}, **{name: {"S": value} for name, value in values.items()}}


def ledger_over(ddb: FakeDynamoDB, clock: FakeClock, retries: int = 8) -> Ledger:
    return Ledger(ddb.client(), TABLE, max_unprocessed_retries=retries, sleep=clock.sleep)


def test_archived_asks_in_batches_of_100_for_the_key_only() -> None:
    ddb, clock = FakeDynamoDB(), FakeClock()
    arns = [session_arn(n) for n in range(250)]
    for arn in arns[::3]:
        ddb.tables[TABLE][arn] = stored(arn, s3_key="k")
    found = ledger_over(ddb, clock).archived([*arns, arns[0], arns[1]])  # a repeat is asked for once
    assert found == set(arns[::3])
    calls = ddb.calls("BatchGetItem")
    assert [len(c.params["RequestItems"][TABLE]["Keys"]) for c in calls] == [100, 100, 50]
    asked = [key[KEY_ATTRIBUTE]["S"] for c in calls for key in c.params["RequestItems"][TABLE]["Keys"]]
    assert sorted(asked) == sorted(arns)
    spec = calls[0].params["RequestItems"][TABLE]
    assert spec["ProjectionExpression"] == "#k" and spec["ExpressionAttributeNames"] == {"#k": KEY_ATTRIBUTE}
    assert clock.sleeps == []


def test_nothing_to_ask_makes_no_call() -> None:
    ddb = FakeDynamoDB()
    assert ledger_over(ddb, FakeClock()).archived([]) == set()
    assert ddb.calls("BatchGetItem") == []


def test_unprocessed_keys_are_asked_again_after_a_backoff_until_answered() -> None:
    ddb, clock = FakeDynamoDB(), FakeClock()
    arns = [session_arn(n) for n in range(10)]
    for arn in arns[:6]:
        ddb.tables[TABLE][arn] = stored(arn)
    ddb.leave_unprocessed(times=2, share="half")
    assert ledger_over(ddb, clock).archived(arns) == set(arns[:6])
    keys = [len(c.params["RequestItems"][TABLE]["Keys"]) for c in ddb.calls("BatchGetItem")]
    assert keys == [10, 5, 3]  # only what was left is asked again
    assert len(clock.sleeps) == 2 and all(0 < s <= 2.0 for s in clock.sleeps)


def test_keys_still_unprocessed_after_every_retry_make_the_ledger_unavailable() -> None:
    ddb, clock = FakeDynamoDB(), FakeClock()
    arns = [session_arn(n) for n in range(3)]
    ddb.tables[TABLE][arns[0]] = stored(arns[0])
    ddb.leave_unprocessed(times=None)
    with pytest.raises(LedgerUnavailable, match="unprocessed after 3 retries"):
        ledger_over(ddb, clock, retries=3).archived(arns)
    assert len(ddb.calls("BatchGetItem")) == 4
    assert len(clock.sleeps) == 3
    assert clock.sleeps[0] <= 0.05 and clock.sleeps[-1] >= 0.1  # exponential backoff (50 ms doubling, jittered)


@pytest.mark.parametrize(
    ("code", "fatal"),
    [
        ("ResourceNotFoundException", True),  # the table itself is gone
        ("AccessDeniedException", True),
        ("ProvisionedThroughputExceededException", False),
        ("InternalServerError", False),
    ],
)
def test_batch_get_errors_left_after_retries(code: str, fatal: bool) -> None:
    ddb = FakeDynamoDB()
    ddb.fail("BatchGetItem", code, 400)
    ledger = ledger_over(ddb, FakeClock())
    expected = FatalError if fatal else ClientError
    with pytest.raises(expected, match=code) as caught:
        ledger.archived([session_arn(1)])
    if fatal:
        assert f"BatchGetItem on table {TABLE}" in str(caught.value)


def test_a_missing_table_is_fatal_from_the_service_too() -> None:
    ddb = FakeDynamoDB(tables=())
    ledger = Ledger(ddb.client(), TABLE, sleep=FakeClock().sleep)
    with pytest.raises(FatalError, match=f"BatchGetItem on table {TABLE} failed with ResourceNotFoundException"):
        ledger.archived([session_arn(1)])
    with pytest.raises(FatalError, match=f"PutItem on table {TABLE} failed with ResourceNotFoundException"):
        ledger.mark_archived(session_arn(1), OURS)


def test_mark_archived_puts_only_if_the_key_is_absent_and_asks_for_the_old_item() -> None:
    client = real_client("dynamodb")
    arn = session_arn(1)
    expected = {
        "TableName": TABLE,
        "Item": stored(arn, **OURS),
        "ConditionExpression": "attribute_not_exists(#k)",
        "ExpressionAttributeNames": {"#k": KEY_ATTRIBUTE},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    with Stubber(client) as stubber:
        stubber.add_response("put_item", {}, expected)
        assert Ledger(client, TABLE).mark_archived(arn, OURS) is True
        stubber.assert_no_pending_responses()


def test_a_put_that_finds_its_own_item_is_ours_and_another_writers_is_not() -> None:
    ddb = FakeDynamoDB()
    ledger = ledger_over(ddb, FakeClock())
    arn = session_arn(1)
    assert ledger.mark_archived(arn, OURS) is True
    # an equal item found by a first attempt: another writer made it from the same stored record
    assert ledger.mark_archived(arn, dict(OURS)) is False
    assert ledger.mark_archived(arn, {**OURS, "archived_at": "2026-12-01 10:15:00.000"}) is False  # a later run
    assert ledger.mark_archived(arn, {"s3_key": OURS["s3_key"]}) is False  # fewer attributes: not ours either
    assert ddb.items()[arn] == {KEY_ATTRIBUTE: arn, **OURS}  # the first write stays
    assert len(ddb.calls("PutItem")) == 4


@pytest.mark.parametrize(("retries", "ours"), [(1, True), (0, False)])
def test_an_equal_item_is_ours_only_when_a_retry_found_it(retries: int, ours: bool) -> None:
    """botocore retried a PutItem whose first attempt took effect (its answer was lost): the retry finds it."""
    client = real_client("dynamodb")
    arn = session_arn(1)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "put_item",
            "ConditionalCheckFailedException",
            "The conditional request failed",
            400,
            response_meta={"RetryAttempts": retries},
            modeled_fields={"Item": stored(arn, **OURS)},
        )
        assert Ledger(client, TABLE).mark_archived(arn, OURS) is ours


def test_a_failed_condition_without_the_old_item_is_not_ours() -> None:
    client = real_client("dynamodb")
    with Stubber(client) as stubber:
        stubber.add_client_error("put_item", "ConditionalCheckFailedException", "exists", 400)
        assert Ledger(client, TABLE).mark_archived(session_arn(1), OURS) is False


@pytest.mark.parametrize(("code", "fatal"), [("AccessDeniedException", True), ("InternalServerError", False)])
def test_put_errors_left_after_retries(code: str, fatal: bool) -> None:
    ddb = FakeDynamoDB()
    ddb.fail("PutItem", code, 500)
    with pytest.raises(FatalError if fatal else ClientError, match=code):
        ledger_over(ddb, FakeClock()).mark_archived(session_arn(1), OURS)
    assert ddb.items() == {}

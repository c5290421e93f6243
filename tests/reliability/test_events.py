"""The event path's reliability cases (local/reliability/suites/events.py) at small sizes: the consumer fed by
the real chain (moto's S3 -> EventBridge -> SQS, a local event source mapping), duplicated and reordered,
before the API says SUCCEEDED, racing the reconciler, SIGKILLed between S3 and DynamoDB, given hostile keys,
in a burst; a listing longer than one invocation finished by follow-ups; and the judges themselves.

Each case holds at 0 lost, 0 duplicated, nothing extra, every ledger item equal to its S3 record, no record
written twice, every consumer invocation and reconcile run judged. `make reliability` runs them at full size
(`--events-only` for this suite alone); the `slow` tests here do too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.reliability.accounting import Snapshot, judge_batch
from local.reliability.event_oracle import (
    ALREADY,
    ARCHIVED,
    FAILED,
    LEFT,
    MALFORMED,
    PENDING,
    SKIPPED,
    UNMATCHED,
    Export,
    Facts,
    expected_outcomes,
    feasible,
    object_created,
)
from local.reliability.oracle import item_problems
from local.reliability.suites import events, follow_ups
from local.reliability.suites.events import FAST, FULL, EventCase
from local.reliability.suites.events_independent import run_events_independent
from local.reliability.world import WorldFactory
from local.worker import Worker

BUCKET = "exp-test"
LOCATIONS = [(BUCKET, "exports/")]
OURS = "arn:aws:gameliftstreams:us-east-2:111122223333:streamsession/sg-abc123XYZ/Sess1on2"
NAME = "20261201-000000-a-x-sg-abc123XYZ-Sess1on2.zip"
URI = f"s3://{BUCKET}/exports/{NAME}"


@pytest.fixture(scope="module")
def consumers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, Worker]]:
    """Two consumer "containers" (an event source mapping's maximum concurrency of 2), with standbys."""
    logs = Path(tmp_path_factory.mktemp("consumer-logs"))
    with Worker(logs / "1") as first, Worker(logs / "2") as second:
        yield first, second


def assert_held(case: EventCase) -> None:
    assert case.violations == []
    audit = case.audit
    assert audit.lost == [] and audit.duplicated == [] and audit.extra == []
    assert audit.unequal == [] and audit.problems == [] and audit.leaks == []
    assert audit.overwrites == 0  # records are write-once
    assert audit.archived == audit.expected == case.sessions > 0


# -- the cases ----------------------------------------------------------------------------------------------


def test_duplicate_and_out_of_order_deliveries_archive_each_session_once(
    make_world: WorldFactory, consumers: tuple[Worker, Worker]
) -> None:
    case = events.run_duplicates(make_world, consumers, FAST, seed=1)

    assert_held(case)
    assert case.outcomes[ARCHIVED] == case.sessions
    assert case.outcomes[ALREADY] == case.messages - case.sessions > case.sessions
    assert set(case.outcomes) == {ARCHIVED, ALREADY}
    assert case.reconciled == 0


def test_an_event_before_succeeded_is_delivered_again_then_archived_or_left_to_the_reconciler(
    make_world: WorldFactory, consumers: tuple[Worker, Worker]
) -> None:
    case = events.run_pending(make_world, consumers, FAST, seed=2)

    assert_held(case)
    n = FAST.pending_sessions
    # n archived at their 2nd receive; n PENDING at receives 1 and 2, left to the reconciler at the 3rd
    assert case.outcomes == {PENDING: 3 * n, ARCHIVED: n, LEFT: n}
    assert case.reconciled == n


def test_the_consumer_and_the_reconciler_racing_count_each_session_archived_once(
    make_world: WorldFactory, consumers: tuple[Worker, Worker]
) -> None:
    case = events.run_race(make_world, consumers, FAST, seed=3)

    assert_held(case)
    assert case.outcomes[ARCHIVED] + case.reconciled == case.sessions  # one writer counted each
    assert case.readbacks > 0  # writers found records another had stored (412) and used them


@pytest.mark.parametrize("point", events.KILL_POINTS_FAST, ids=lambda p: f"{p[0]}-{p[1]}-{p[2]}-{p[3]}")
def test_a_consumer_killed_between_s3_and_dynamodb_is_completed_from_the_stored_record(
    make_world: WorldFactory, consumers: tuple[Worker, Worker], point: tuple[str, int, str, str]
) -> None:
    case = events.run_kill(make_world, consumers, FAST, point)

    assert_held(case)
    assert case.kills == 1
    assert case.readbacks >= 1  # the record the killed writer stored was read back, not written again


def test_hostile_keys_and_bodies_are_acknowledged_and_archive_nothing_but_real_exports(
    make_world: WorldFactory, consumers: tuple[Worker, Worker]
) -> None:
    case = events.run_hostile(make_world, consumers, FAST, seed=4, nested=False)

    assert_held(case)
    assert case.outcomes[ARCHIVED] == case.sessions
    assert {UNMATCHED, SKIPPED, MALFORMED} <= set(case.outcomes)
    assert case.outcomes[PENDING] == case.outcomes[FAILED] == 0  # nothing delivered again


def test_a_body_nested_too_deep_for_the_json_module_is_malformed(
    make_world: WorldFactory, consumers: tuple[Worker, Worker]
) -> None:
    case = events.run_hostile(make_world, consumers, dataclasses.replace(FAST, hostile_sessions=2), seed=5)

    assert_held(case)


def test_a_burst_of_exports_is_archived_once_each(make_world: WorldFactory, consumers: tuple[Worker, Worker]) -> None:
    case = events.run_burst(make_world, consumers, FAST, seed=6)

    assert_held(case)
    assert case.outcomes == {ARCHIVED: FAST.burst}
    assert case.sessions == FAST.burst


def test_a_listing_longer_than_one_invocation_finishes_across_follow_up_invocations(
    make_world: WorldFactory,
) -> None:
    case = follow_ups.run_chain(make_world, FAST, seed=7)

    assert case.violations == []  # links 0, 1, ...; the last finished; no page listed but where one resumed
    assert case.audit.clean and case.audit.archived == case.audit.expected == FAST.chain_pages * 100
    assert case.reconciled == 3 * FAST.chain_pages  # the late sessions, each once, by the chain
    assert case.audit.overwrites == 0


def test_an_independent_black_box_run_agrees_with_the_contract(tmp_path: Path) -> None:
    case = run_events_independent(tmp_path, seed=8, sessions=6, nested=False)

    assert_held(case)
    assert case.kills == 1
    assert case.outcomes["delivered again"] > 0  # PENDING, API down and the killed batch came back


# -- at full size (make test-slow; make reliability runs these too) ------------------------------------------

SLOW_SIZES = dataclasses.replace(FULL, burst=2_000)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["duplicates", "pending", "race", "hostile", "burst", "chain"])
def test_event_case_at_full_size(make_world: WorldFactory, consumers: tuple[Worker, Worker], name: str) -> None:
    plan = dict(events.event_plan(make_world, consumers, SLOW_SIZES, seed=11))
    case = plan[name]()

    assert case.violations == [] and case.audit.clean and case.audit.overwrites == 0


@pytest.mark.slow
@pytest.mark.parametrize("point", events.KILL_POINTS_FULL, ids=lambda p: f"{p[0]}-{p[1]}-{p[2]}-{p[3]}")
def test_event_kill_matrix_full(
    make_world: WorldFactory, consumers: tuple[Worker, Worker], point: tuple[str, int, str, str]
) -> None:
    assert_held(events.run_kill(make_world, consumers, FULL, point))


@pytest.mark.slow
def test_independent_black_box_run_at_full_size(tmp_path: Path) -> None:
    assert_held(run_events_independent(tmp_path, seed=12, sessions=20, nested=False))


# -- the judges themselves ------------------------------------------------------------------------------------


def facts(status: str | None = "SUCCEEDED", uri: str | None = URI) -> Facts:
    return lambda arn: Export(status, uri) if arn == OURS else None


def allowed(
    key: str,
    *,
    bucket: str = BUCKET,
    known: Facts | None = None,
    receives: int = 1,
    max_pending_receives: int = 5,
    archived: bool | None = False,
    api_down: bool = False,
) -> frozenset[str]:
    return expected_outcomes(
        object_created(bucket, key),
        LOCATIONS,
        known or facts(),
        receives=receives,
        max_pending_receives=max_pending_receives,
        archived=archived,
        api_down=api_down,
    )


def test_the_oracle_follows_the_contracts_table() -> None:
    assert allowed(f"exports/{NAME}") == {ARCHIVED}
    assert allowed(f"exports/{NAME}", archived=True) == {ALREADY}
    assert allowed(f"exports/{NAME}", archived=None) == {ARCHIVED, ALREADY}
    assert allowed(f"exports/{NAME}", known=facts(uri=f"s3://{BUCKET}/exports/")) == {ARCHIVED}  # its folder
    assert allowed(f"exports/copy-{NAME}") == {UNMATCHED}  # another object naming the session
    assert allowed(f"elsewhere/{NAME}") == {UNMATCHED}
    assert allowed(f"exports/{NAME}", bucket="other") == {UNMATCHED}
    assert allowed("exports/readme.zip") == {UNMATCHED}
    assert allowed(f"exports/{NAME}", known=facts("PENDING")) == {PENDING}
    assert allowed(f"exports/{NAME}", known=facts("PENDING"), receives=5, max_pending_receives=5) == {LEFT}
    assert allowed(f"exports/{NAME}", known=facts("FAILED")) == {SKIPPED}
    assert allowed(f"exports/{NAME.replace('Sess1on2', 'Other')}") == {SKIPPED}  # 404
    assert allowed(f"exports/{NAME}", api_down=True) == {FAILED}
    assert allowed(f"exports/{NAME}", api_down=True, archived=True) == {ALREADY}  # no call needed
    assert allowed("exports/" + "a" * 1020 + NAME) == {UNMATCHED}  # over 1,024 bytes
    for body in ("not json", "[]", json.dumps({"source": "aws.s3"}), "[" * 5000 + "]" * 5000):
        assert expected_outcomes(body, LOCATIONS, facts()) == {MALFORMED}


def test_feasible_matches_counted_outcomes_to_messages() -> None:
    batch = [frozenset({ARCHIVED}), frozenset({ARCHIVED, ALREADY}), frozenset({UNMATCHED})]
    assert feasible(batch, {ARCHIVED: 1, ALREADY: 1, UNMATCHED: 1})
    assert feasible(batch, {ARCHIVED: 2, UNMATCHED: 1})
    assert not feasible(batch, {ALREADY: 2, UNMATCHED: 1})  # the first must be archived
    assert not feasible(batch, {ARCHIVED: 1, ALREADY: 1})  # a message without an outcome


def snapshot(items: dict[str, str], keys: set[str]) -> Snapshot:
    return Snapshot(frozenset(), items, frozenset(keys))


def test_judge_batch_catches_a_consumer_that_miscounts_or_misreports() -> None:
    ids = ["m1", "m2", "m3"]
    ok = {"batchItemFailures": [{"itemIdentifier": "m3"}]}
    before, after = snapshot({}, set()), snapshot({OURS: "k"}, {"k"})

    assert judge_batch(ids, {ARCHIVED: 1, UNMATCHED: 1, PENDING: 1}, ok, before, after, {OURS}) == []
    assert judge_batch(ids, {ARCHIVED: 1, UNMATCHED: 1}, ok)  # a message without an outcome
    assert judge_batch(ids, {ARCHIVED: 1, UNMATCHED: 2}, ok)  # redelivered, but none pending or failed
    assert judge_batch(ids, {ARCHIVED: 1, UNMATCHED: 1, PENDING: 1}, {"batchItemFailures": [{"itemIdentifier": "x"}]})
    assert judge_batch(ids, {ARCHIVED: 2, PENDING: 1}, ok, before, after, {OURS})  # 2 archived, 1 item added
    assert judge_batch(ids, {ARCHIVED: 1, UNMATCHED: 1, PENDING: 1}, ok, before, after, set())  # not named
    assert judge_batch(ids, None, None, before, snapshot({OURS: "k"}, set()))  # an item without its record


def test_item_problems_catches_an_item_not_made_from_its_record() -> None:
    record = {
        "session_arn": OURS,
        "schema_version": 1,
        "archived_at": "2026-12-01 00:00:00.000",
        "created_at": "2026-11-30 00:00:00.000",
        "export_output_uri": URI,
    }
    item = {"session_arn": OURS, "s3_key": "k", "schema_version": "1"} | {
        name: str(record[name]) for name in ("archived_at", "created_at", "export_output_uri")
    }
    assert item_problems("k", record, item) == []
    assert item_problems("k", record, item | {"archived_at": "2026-12-01 00:00:01.000"})  # another writer's
    assert item_problems("other", record, item)
    assert item_problems("k", record | {"export_output_uri": None}, item)  # must be left out
    assert item_problems("k", record, {k: v for k, v in item.items() if k != "created_at"})


def test_the_audit_sees_an_item_that_is_not_its_record(make_world: WorldFactory) -> None:
    world = make_world()
    world.seed(3)
    world.run()
    arn = sorted(world.items())[0]
    world.stack.client("dynamodb", direct=True).update_item(
        TableName=world.table,
        Key={"session_arn": {"S": arn}},
        UpdateExpression="SET archived_at = :other",
        ExpressionAttributeValues={":other": {"S": "1999-01-01 00:00:00.000"}},
    )

    audit = world.audit()

    assert not audit.clean
    assert [p for p in audit.unequal if arn in p and "archived_at" in p]

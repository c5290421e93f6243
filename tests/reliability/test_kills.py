"""Crash safety: SIGKILL the Lambda's process at any request, before it is served or after its answer; the next
run must leave exactly one S3 object and one DynamoDB item per SUCCEEDED session, and at no instant may an item
exist without its object."""

from __future__ import annotations

import pytest

from local.reliability.suites.kills import KILL_POINTS_FULL, run_kill
from local.reliability.world import WorldFactory

# make test: a kill at each stage (list, dedup, get, S3 put, DynamoDB put), before or after its request;
# PutItem before is the test after these. `make reliability` runs all 30 points of KILL_POINTS_FULL.
FAST = (
    ("ListStreamSessionsByAccount", 1, "after"),
    ("BatchGetItem", 1, "before"),
    ("GetStreamSession", 5, "before"),
    ("PutObject", 5, "after"),
    ("PutItem", 5, "after"),
)


def assert_survived(make_world: WorldFactory, operation: str, nth: int, when: str, **sizes: int) -> None:
    result = run_kill(make_world, operation, nth, when, **sizes)
    assert result.killed, result.violations
    assert result.violations == []
    assert result.audit.lost == [] and result.audit.duplicated == [] and result.audit.extra == []
    assert result.audit.problems == [] and result.audit.leaks == []
    assert result.audit.archived == result.audit.expected


@pytest.mark.parametrize(("operation", "nth", "when"), FAST)
def test_kill_then_next_run_completes_the_archive_exactly_once(
    make_world: WorldFactory, operation: str, nth: int, when: str
) -> None:
    assert_survived(make_world, operation, nth, when, archived=5, new=30)


@pytest.mark.slow
@pytest.mark.parametrize(("operation", "nth", "when"), KILL_POINTS_FULL)
def test_kill_matrix_full(make_world: WorldFactory, operation: str, nth: int, when: str) -> None:
    assert_survived(make_world, operation, nth, when)


def test_kill_between_s3_put_and_dynamodb_put_then_the_next_run_completes_it_from_the_stored_record(
    make_world: WorldFactory,
) -> None:
    world = make_world(settings={"MAX_CONCURRENCY": "1"})
    world.seed(10)

    killed = world.run(kill=("PutItem", 4, "before"))  # objects 1-4 written, items 1-3

    assert killed.killed
    assert len(world.object_keys()) == 4 and len(world.items()) == 3
    assert world.crash_consistent() == []
    after = world.run()
    assert after.error is None and after.total("archived") == 7
    audit = world.audit(check_records=True)
    assert audit.clean and audit.archived == 10
    assert audit.overwrites == 0  # records are write-once: the 4th session's record is read back (412)
    assert after.calls["GetObject"] == 1


@pytest.mark.slow
def test_killed_again_and_again_then_one_clean_run(make_world: WorldFactory) -> None:
    world = make_world()
    world.seed(30)
    points = [("GetStreamSession", 3, "after"), ("PutObject", 7, "before"), ("PutItem", 2, "after")]
    for operation, nth, when in points:
        world.seed(10)
        assert world.run(kill=(operation, nth, when)).killed
        assert world.crash_consistent() == []
    assert world.run().error is None
    audit = world.audit(check_records=True)
    assert audit.clean and audit.archived == audit.expected == 60

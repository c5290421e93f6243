"""The fault matrix: every fault AWS produces, armed for several runs, then one clean run. Nothing may be lost
or duplicated; fatal faults fail every run at once with one clear error and no retry storm."""

from __future__ import annotations

import pytest

from local.reliability.constants import REGION
from local.reliability.scenarios import MATRIX, Scenario, fault
from local.reliability.suites.matrix import run_scenario
from local.reliability.world import WorldFactory

BY_NAME = {s.name: s for s in MATRIX}
# The make-test subset, small: tests/integration covers throttling, 5xx, UnprocessedKeys and missing resources
# one at a time; the listing cases and AccessDenied have tests of their own below. `make reliability` runs the
# whole MATRIX at full size.
FAST = ("connection resets, 5%",)
# Every faulted run of these must fail at once with its one clear error and no retry storm, leaving nothing
# marked archived that is not; then the clean run archives everything.
FATAL = ("missing table", "missing bucket", "AccessDenied on PutItem", "expired NextToken, every time")


def assert_survived(make_world: WorldFactory, scenario: Scenario, *, records: bool = True) -> None:
    result = run_scenario(make_world, scenario, records=records)
    assert result.audit.lost == []
    assert result.audit.duplicated == []
    assert result.audit.extra == []
    assert result.audit.problems == [] and result.audit.leaks == []
    assert result.violations == []
    assert result.audit.archived == result.audit.expected > 0
    if scenario.fatal:
        assert result.runs_failed == scenario.runs
        assert result.archived_during == 0 or "NextToken" in scenario.fatal


@pytest.mark.parametrize("name", FAST)
def test_fault_matrix_subset(make_world: WorldFactory, name: str) -> None:
    assert_survived(make_world, BY_NAME[name].scaled(0.2, runs=2), records=False)


@pytest.mark.parametrize("name", FATAL)
def test_fatal_matrix_subset(make_world: WorldFactory, name: str) -> None:
    scenario = BY_NAME[name]
    assert scenario.fatal is not None
    assert_survived(make_world, scenario.scaled(0.2, runs=1), records=False)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", MATRIX, ids=[s.name for s in MATRIX])
def test_fault_matrix_full(make_world: WorldFactory, scenario: Scenario) -> None:
    assert_survived(make_world, scenario)


def test_expired_next_token_restarts_from_the_first_page_without_losing_work(make_world: WorldFactory) -> None:
    world = make_world()
    world.seed(130)  # two pages
    world.faults = [fault("ListStreamSessionsByAccount", "validation", times=2)]

    run = world.run()

    assert run.error is None
    region = run.region(REGION)
    assert region["list_restarts"] == 2
    assert region["repeated"] == 200  # page 1 (already taken this run) listed twice more
    assert region["archived"] == 130
    # page 1, page 2 refused, page 1, page 2 refused, page 1, page 2
    assert run.calls["ListStreamSessionsByAccount"] == 6
    assert run.calls["GetStreamSession"] == 130  # nothing fetched twice
    assert world.audit().clean


def test_expired_next_token_gives_up_after_max_list_restarts_with_one_clear_error(make_world: WorldFactory) -> None:
    world = make_world(settings={"MAX_LIST_RESTARTS": "1"})
    world.seed(130)
    world.faults = [fault("ListStreamSessionsByAccount", "validation")]

    run = world.run()

    assert run.error is not None and run.error.startswith("RunFailed: ")
    assert "NextToken rejected 2 times, giving up until the next run" in run.error
    assert run.calls["ListStreamSessionsByAccount"] == 4  # page 1, refused, page 1, refused: no storm
    # what page 1 brought in is kept, and consistent
    assert world.progress() == 100
    assert world.crash_consistent() == []
    world.faults = []
    assert world.run().error is None
    assert world.audit().clean


def test_the_same_session_on_two_consecutive_pages_is_archived_once(make_world: WorldFactory) -> None:
    world = make_world()
    world.seed(150)
    world.shift(True)  # every page with a NextToken pushes a new session on top: the list shifts by one

    run = world.run()

    assert run.error is None
    assert run.total("repeated") == 1  # the last item of page 1 came again as the first of page 2
    assert run.calls["GetStreamSession"] == 150
    world.shift(False)
    assert world.run().total("archived") == 1  # the session pushed on top while paging
    audit = world.audit()
    assert audit.clean and audit.archived == 151


def test_a_read_timeout_after_the_write_took_effect_never_duplicates_nor_rewrites(make_world: WorldFactory) -> None:
    world = make_world(settings={"READ_TIMEOUT_SECONDS": "1", "MAX_CONCURRENCY": "1"})
    world.seed(20)
    # The proxy forwards the write, then holds the answer past the client's read timeout: botocore retries a
    # PutObject (If-None-Match: * finds the record its first attempt stored: 412, and the record is read back)
    # and a PutItem (the conditional put now finds the item).
    world.faults = [
        fault("PutObject", "timeout", times=1, seconds=1.5),
        fault("PutItem", "timeout", times=1, seconds=1.5),
    ]

    run = world.run()

    assert run.error is None and run.total("failed") == 0
    assert run.fired == {"PutObject:timeout": 1, "PutItem:timeout": 1}
    # the retried PutItem finds the item its first attempt wrote, and knows it for its own
    assert (run.total("archived"), run.total("already_archived")) == (20, 0)
    audit = world.audit(check_records=True)
    assert audit.clean and audit.archived == 20
    assert audit.overwrites == 0  # records are write-once: the retry did not write a second version
    assert run.calls["GetObject"] == 1  # it read back the record its first attempt stored


def test_access_denied_fails_fast_on_every_operation(make_world: WorldFactory) -> None:
    for operation in ("ListStreamSessionsByAccount", "GetStreamSession", "BatchGetItem", "PutObject", "PutItem"):
        world = make_world(settings={"MAX_CONCURRENCY": "4"})
        world.seed(30)
        world.faults = [fault(operation, "access_denied")]
        run = world.run()
        assert run.error is not None and run.error.startswith("RunFailed: "), operation
        assert "AccessDenied" in run.error and operation in run.error
        denied = run.fired[f"{operation}:access_denied"]
        assert denied <= 4 + 2, f"{operation}: {denied} requests denied: a retry storm"
        assert world.crash_consistent() == []
        assert world.progress() == 0

"""The time budget: a run stops taking new work `TIME_BUDGET_MARGIN_SECONDS` before the Lambda's deadline,
finishes what is in flight, returns its partial summary, and the next runs drain the backlog. Closer to the
deadline than one request can take (connect + read timeout + 2 s), no request or retry is sent at all, so a
stuck call cannot make Lambda kill the run before it reports."""

from __future__ import annotations

from typing import Any

from local.reliability.scenarios import fault
from local.reliability.world import WorldFactory


def test_no_time_left_after_the_margin_means_no_new_work_and_a_clean_summary(make_world: WorldFactory) -> None:
    world = make_world(settings={"TIME_BUDGET_MARGIN_SECONDS": "30"})
    world.seed(50)

    short = world.run(timeout=29.0)  # less than the margin: nothing may be started

    assert short.error is None and short.summary is not None and short.summary["ok"] is True
    assert short.total("archived") == 0
    assert short.calls.get("GetStreamSession", 0) == 0 and short.calls.get("PutObject", 0) == 0
    assert world.run(timeout=120.0).total("archived") == 50
    assert world.audit().clean


def test_work_in_flight_when_the_budget_ends_is_finished(make_world: WorldFactory) -> None:
    # No new work after 0.5 s; requests may be sent until 12.5 s (20.5 - 5 connect - 1 read - 2 report).
    world = make_world(
        settings={"MAX_CONCURRENCY": "4", "TIME_BUDGET_MARGIN_SECONDS": "20", "READ_TIMEOUT_SECONDS": "1"}
    )
    world.run()  # a warm container: its clients are built, the short budget below is all the run's
    world.seed(40)
    world.faults = [fault("GetStreamSession", "latency", seconds=0.8)]  # every get is slow

    run = world.run(timeout=20.5)

    assert run.error is None
    gets = run.calls["GetStreamSession"]
    assert 0 < gets < 40
    # every session whose get was sent was carried through to S3 and DynamoDB: nothing half done
    assert run.total("archived") == gets == run.calls["PutObject"] == run.calls["PutItem"]
    assert run.total("deferred") == 40 - gets
    assert world.crash_consistent() == []


def test_a_stuck_call_is_cut_off_instead_of_retried_past_the_deadline(make_world: WorldFactory) -> None:
    # Work until 2 s, requests until 4 s (12 - 5 connect - 1 read - 2 report). Retried to the end, the stuck
    # get would take 5 read timeouts plus backoff (~12 s): the whole Lambda timeout.
    world = make_world(settings={"TIME_BUDGET_MARGIN_SECONDS": "10", "READ_TIMEOUT_SECONDS": "1", "MAX_ATTEMPTS": "5"})
    world.run()  # a warm container
    stuck = world.seed(1)
    world.faults = [fault("GetStreamSession", "latency", seconds=30.0)]

    run = world.run(timeout=12.0)

    assert run.error is None and run.summary is not None and run.summary["ok"] is True
    assert (run.total("deferred"), run.total("failed"), run.total("archived")) == (1, 0, 0)
    # requests received, counted as they arrive (a stuck one is recorded only once answered)
    assert 1 <= run.fired["GetStreamSession:latency"] < 5  # the retries after the cut-off were never sent
    world.faults = []
    assert world.run().total("archived") == 1
    assert world.audit().clean and world.progress(set(stuck)) == 1


def test_writes_after_the_cut_off_are_not_sent_and_the_next_run_does_them(make_world: WorldFactory) -> None:
    # Work and requests both end at 2 s (12 - 5 connect - 5 read - 2 report = 0 < 2): a get answered after
    # that leaves its session to the next run, without an S3 object or a DynamoDB item.
    world = make_world(settings={"TIME_BUDGET_MARGIN_SECONDS": "10", "READ_TIMEOUT_SECONDS": "5"})
    world.run()  # a warm container
    late = world.seed(1)
    world.faults = [fault("GetStreamSession", "latency", seconds=3.0)]

    run = world.run(timeout=12.0)

    assert run.summary is not None and run.summary["ok"] is True
    assert (run.total("deferred"), run.total("archived")) == (1, 0)
    assert run.calls["GetStreamSession"] == 1
    assert run.calls.get("PutObject", 0) == run.calls.get("PutItem", 0) == 0
    world.faults = []
    assert world.run().total("archived") == 1
    assert world.audit().clean and world.progress(set(late)) == 1


def test_a_backlog_larger_than_one_run_drains_over_runs_under_faults(make_world: WorldFactory) -> None:
    world = make_world(settings={"MAX_CONCURRENCY": "2"})
    world.run()  # a warm container
    world.seed(40)
    expected = world.succeeded()
    runs: list[Any] = []
    while len(runs) < 40 and world.progress(expected) < len(expected):
        world.faults = [
            fault("GetStreamSession", "latency", seconds=0.05),
            fault("GetStreamSession", "internal", probability=0.05),
            fault("PutItem", "internal", probability=0.05),
        ]
        run = world.run(timeout=0.4)
        assert run.error is None, run.error  # a budget-cut run is a successful run with a partial summary
        assert world.crash_consistent() == []
        runs.append(run)
    assert len(runs) > 2, "the budget never cut a run short"
    assert any(r.total("deferred") for r in runs)
    audit = world.audit()
    assert audit.clean and audit.archived == len(expected)
    assert sum(r.total("archived") for r in runs) <= len(expected)

"""The time budget: a run stops taking new work `TIME_BUDGET_MARGIN_SECONDS` before the Lambda's deadline,
finishes what is in flight, returns its partial summary, and the next runs drain the backlog. Closer to the
deadline than one request can take (connect + read timeout + 2 s), no request or retry is sent at all, so a
stuck call cannot make Lambda kill the run before it reports.

No assertion here is about how long anything took: each budget is ended by the emulator holding a call for
longer than the window it was sent in, with windows many times a warm run's start (tens of ms), so what the
run did (sent, finished, deferred) is the same on a fast or a loaded machine. The budget arithmetic itself,
on a fake clock, is in tests/unit.
"""

from __future__ import annotations

from typing import Any

from local.reliability.scenarios import fault
from local.reliability.world import WorldFactory


def test_no_time_left_after_the_margin_means_no_new_work_and_a_clean_summary(make_world: WorldFactory) -> None:
    world = make_world(settings={"TIME_BUDGET_MARGIN_SECONDS": "30"})
    world.seed(20)

    short = world.run(timeout=29.0)  # less than the margin: nothing may be started

    assert short.error is None and short.summary is not None and short.summary["ok"] is True
    assert short.total("archived") == 0
    assert short.calls.get("GetStreamSession", 0) == 0 and short.calls.get("PutObject", 0) == 0
    assert world.run(timeout=120.0).total("archived") == 20
    assert world.audit().clean


def test_work_in_flight_when_the_budget_ends_is_finished(make_world: WorldFactory) -> None:
    # New work until 3 s (20 - 17); requests until 8 s (20 - 5 connect - 5 read - 2 report). Every get is
    # held 3.5 s: those sent in the window end after it, and well before requests stop.
    world = make_world(
        settings={"MAX_CONCURRENCY": "4", "TIME_BUDGET_MARGIN_SECONDS": "17", "READ_TIMEOUT_SECONDS": "5"}
    )
    world.run()  # a warm container: its clients are built, the budget below is all the run's
    world.seed(40)
    world.faults = [fault("GetStreamSession", "latency", seconds=3.5)]

    run = world.run(timeout=20.0)

    assert run.error is None
    gets = run.calls["GetStreamSession"]
    assert 0 < gets <= 4  # each worker took one session; none was started once the window had closed
    # every session whose get was sent was carried through to S3 and DynamoDB: nothing half done
    assert run.total("archived") == gets == run.calls["PutObject"] == run.calls["PutItem"]
    assert run.total("deferred") == 40 - gets
    assert world.crash_consistent() == []


def test_a_stuck_call_is_cut_off_instead_of_retried_past_the_deadline(make_world: WorldFactory) -> None:
    # Work until 2 s (12 - 10), requests until 4 s (12 - 5 connect - 1 read - 2 report). The get never
    # answers; retried to its 10 attempts (each a 1 s read timeout, plus backoff) it would outlast the run.
    world = make_world(settings={"TIME_BUDGET_MARGIN_SECONDS": "10", "READ_TIMEOUT_SECONDS": "1", "MAX_ATTEMPTS": "10"})
    world.run()  # a warm container
    stuck = world.seed(1)
    world.faults = [fault("GetStreamSession", "latency", seconds=600.0)]

    run = world.run(timeout=12.0)

    assert run.error is None and run.summary is not None and run.summary["ok"] is True
    assert (run.total("deferred"), run.total("failed"), run.total("archived")) == (1, 0, 0)
    # attempts that reached the emulator (counted as they arrive): the retries after the cut-off were not sent
    assert 1 <= run.fired["GetStreamSession:latency"] < 10
    world.faults = []
    assert world.run().total("archived") == 1
    assert world.audit().clean and world.progress(set(stuck)) == 1


def test_writes_after_the_cut_off_are_not_sent_and_the_next_run_does_them(make_world: WorldFactory) -> None:
    # Work and requests both end at 2 s (14 - 12; 14 - 5 connect - 5 read - 2 report). The get, sent in the
    # window, is answered 2.5 s later, after the cut-off and within its read timeout: its writes are not sent.
    world = make_world(settings={"TIME_BUDGET_MARGIN_SECONDS": "12", "READ_TIMEOUT_SECONDS": "5"})
    world.run()  # a warm container
    late = world.seed(1)
    world.faults = [fault("GetStreamSession", "latency", seconds=2.5)]

    run = world.run(timeout=14.0)

    assert run.summary is not None and run.summary["ok"] is True
    assert (run.total("deferred"), run.total("archived")) == (1, 0)
    assert run.calls["GetStreamSession"] == 1
    assert run.calls.get("PutObject", 0) == run.calls.get("PutItem", 0) == 0
    world.faults = []
    assert world.run().total("archived") == 1
    assert world.audit().clean and world.progress(set(late)) == 1


def test_a_backlog_larger_than_one_run_drains_over_runs_under_faults(make_world: WorldFactory) -> None:
    # Work and requests end at 1 s; every get takes 0.3 s and two run at once: a run archives at most ~8
    # of the 12, so several runs are needed however fast the machine, and each run archives some.
    world = make_world(settings={"MAX_CONCURRENCY": "2"})
    world.run()  # a warm container
    world.seed(12)
    expected = world.succeeded()
    runs: list[Any] = []
    while len(runs) < 20 and world.progress(expected) < len(expected):
        world.faults = [
            fault("GetStreamSession", "latency", seconds=0.3),
            fault("GetStreamSession", "internal", probability=0.05),
            fault("PutItem", "internal", probability=0.05),
        ]
        run = world.run(timeout=1.0)
        assert run.error is None, run.error  # a budget-cut run is a successful run with a partial summary
        runs.append(run)
    assert len(runs) > 1 and all(r.total("deferred") for r in runs[:-1])
    assert all(r.total("archived") for r in runs)
    audit = world.audit()
    assert audit.clean and audit.archived == len(expected)
    assert sum(r.total("archived") for r in runs) <= len(expected)

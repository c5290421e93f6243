"""The property: whatever random sequence of runs, new sessions, exports that succeed later, faults, kills,
short time budgets and list shifts happens, after one final clean run the archive is exactly the set of
SUCCEEDED sessions, one object and one item each, every record equal to GetStreamSession (less redactions)."""

from __future__ import annotations

import pytest

from local.reliability.suites.properties import property_check, run_sequence
from local.reliability.world import WorldFactory

from .conftest import EXAMPLES


def test_random_sequences_of_runs_faults_and_kills_end_in_an_exact_archive(make_world: WorldFactory) -> None:
    results = property_check(make_world, examples=EXAMPLES, derandomize=True, max_steps=8)
    assert len(results) == EXAMPLES
    assert all(r.ok for r in results)
    assert sum(r.runs for r in results) > EXAMPLES  # more than the final clean runs


@pytest.mark.slow
def test_random_sequences_many(make_world: WorldFactory) -> None:
    results = property_check(make_world, examples=max(EXAMPLES, 60), derandomize=False, max_steps=12)
    assert sum(r.kills for r in results) > 0


def test_a_kill_after_a_held_write_does_not_outlive_its_run(make_world: WorldFactory) -> None:
    """Found by `make reliability`: the PutItem is held past the client's timeout, the retry succeeds and the run
    ends; the held response, flushed later, must not SIGKILL the worker during the final clean run."""
    world = make_world(settings={"READ_TIMEOUT_SECONDS": "1"})
    result = run_sequence(world, [("fault", "PutItem", "timeout", 1), ("kill", "PutItem", 1, "after")])
    assert result.ok, (result.audit.describe(), result.violations)
    assert result.runs == 2 and result.faults >= 1


def test_a_fixed_long_sequence_with_every_kind_of_step(make_world: WorldFactory) -> None:
    steps = [
        ("new", 20),
        ("pending", 3),
        ("fault", "GetStreamSession", "throttle", 3),
        ("kill", "PutObject", 6, "after"),
        ("run", 0.0),
        ("succeed", 1),
        ("shift", True),
        ("fault", "BatchGetItem", "unprocessed", 2),
        ("run", 0.3),
        ("shift", False),
        ("kill", "ListStreamSessionsByAccount", 1, "after"),
        ("run", 0.0),
        ("new", 10),
        ("fault", "PutItem", "internal", 4),
        ("run", 0.0),
    ]
    result = run_sequence(make_world(settings={"READ_TIMEOUT_SECONDS": "1"}), steps)
    assert result.ok, (result.audit.describe(), result.violations)
    assert result.kills == 2
    assert result.audit.archived == result.audit.expected

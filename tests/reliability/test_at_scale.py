"""Load and the independent check, at sizes for `make reliability` (marked slow)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from local.reliability.suites.independent import run_independent
from local.reliability.suites.load import LoadResult, run_load
from local.stack import LocalStack

SETTINGS = {"MAX_CONCURRENCY": "16", "LIST_RATE_PER_SECOND": "2000", "GET_RATE_PER_SECOND": "2000"}


def load(tmp_path: Path, listed: int, new: int) -> LoadResult:
    """`listed` sessions of which `new` are new, then 500 more in a traced run, on a stack of its own."""
    with LocalStack(5, processes=True, fault_proxy=False) as stack:
        arns = stack.gls.seed(listed, succeeded_fraction=1.0)
        chosen = random.Random(1).sample(arns, new)
        return run_load(stack, log_dir=tmp_path, listed=arns, new=chosen, settings=SETTINGS, follow_up=500)


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_listed(tmp_path: Path) -> None:
    small = load(tmp_path, 500, 500)
    large = load(tmp_path, 20_000, 500)
    assert small.ok and large.ok, (small.violations, large.violations)
    assert small.archived == large.archived == 1000
    assert (small.traced_new, large.traced_new) == (500, 500)
    assert (small.traced_listed, large.traced_listed) == (1_000, 20_500)
    assert large.traced_peak_bytes < 1.5 * small.traced_peak_bytes + 4 * 2**20
    assert large.maxrss_kb < 1.5 * small.maxrss_kb


@pytest.mark.slow
def test_an_independent_emulator_and_moto_process_agree(tmp_path: Path) -> None:
    result = run_independent(tmp_path, seed=11, steps=20)
    assert all(k.killed for k in result.kills)
    assert result.ok, [(k.label, k.audit.describe(), k.violations) for k in result.kills if not k.ok]

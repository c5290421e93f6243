"""Load and the independent check, at sizes for `make reliability` (marked slow)."""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

import pytest

from local.gls_emulator import GameLiftStreamsEmulator
from local.reliability.constants import ACCOUNT, REGION
from local.reliability.control import GLS
from local.reliability.suites.independent import run_independent
from local.reliability.suites.load import run_load

SETTINGS = {"MAX_CONCURRENCY": "16", "LIST_RATE_PER_SECOND": "2000", "GET_RATE_PER_SECOND": "2000"}


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_listed(moto_url: str, tmp_path: Path) -> None:
    with GameLiftStreamsEmulator(seed=5, default_region=REGION, account_id=ACCOUNT) as emulator:
        gls = GLS(emulator=emulator)
        few = gls.seed(500, region="us-west-2")
        many = gls.seed(20_000)
        load = partial(run_load, moto_url=moto_url, gls=gls, log_dir=tmp_path, settings=SETTINGS, follow_up=500)
        small = load(listed=few, new=few, region="us-west-2")
        large = load(listed=many, new=random.Random(1).sample(many, 500))
    assert small.ok and large.ok
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

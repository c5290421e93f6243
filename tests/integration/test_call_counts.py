"""Minimal calls, counted by the servers: per run ceil(N/100) list calls and BatchGetItem calls, and one
GetStreamSession, one PutObject and one PutItem per new session; nothing else on the data path."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from .conftest import Archive

DATA_PATH = {"ListStreamSessionsByAccount", "GetStreamSession", "BatchGetItem", "PutObject", "PutItem"}


def run_and_count(archive: Archive) -> tuple[dict[str, object], Counter[str]]:
    archive.emulator.reset_calls()
    archive.stack.proxy.reset_calls()
    summary = archive.run()
    return summary, archive.emulator.call_counts() + archive.stack.proxy.call_counts()


def expected(listed: int, new: int) -> Counter[str]:
    pages = max(1, math.ceil(listed / 100))
    return Counter(
        {
            "ListStreamSessionsByAccount": pages,
            "BatchGetItem": math.ceil(listed / 100),
            "GetStreamSession": new,
            "HeadObject": new,  # the export ZIP (these sessions' exports hold none: 404, recorded as not_found)
            "PutObject": new,
            "PutItem": new,
        }
    )


def test_each_run_makes_exactly_the_minimal_calls(archive: Archive) -> None:
    archive.emulator.seed_sessions(250, succeeded_fraction=1.0)

    summary, calls = run_and_count(archive)  # first run: all 250 are new
    assert summary["total"]["archived"] == 250  # type: ignore[index]
    assert +calls == +expected(250, 250)

    for _ in range(30):
        archive.emulator.add_session()
    summary, calls = run_and_count(archive)  # 280 listed, the 30 newest are new
    assert summary["total"]["new"] == 30  # type: ignore[index]
    assert +calls == +expected(280, 30)

    summary, calls = run_and_count(archive)  # nothing new: listing and checking only
    assert summary["total"]["new"] == 0  # type: ignore[index]
    assert +calls == +expected(280, 0)
    assert set(calls) <= DATA_PATH


@pytest.mark.parametrize("listed", [0, 100, 101])
def test_page_boundaries(archive: Archive, listed: int) -> None:
    archive.emulator.seed_sessions(listed, succeeded_fraction=1.0)
    summary, calls = run_and_count(archive)
    assert summary["total"]["archived"] == listed  # type: ignore[index]
    assert +calls == +expected(listed, listed)

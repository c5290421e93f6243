"""Fixtures of the reliability tests: a moto server in its own process, one warm worker (the real handler in a
subprocess that faults may SIGKILL), and fresh worlds (emulator, fault proxy, table, bucket) per case.

`make test` runs the fast subset (few hypothesis examples, derandomized); `make reliability` runs everything at
full size. RELIABILITY_EXAMPLES overrides the number of hypothesis examples here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.reliability.world import World, WorldFactory, shared_moto, world_factory
from local.worker import Worker

EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", "3"))


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with shared_moto() as url:
        yield url


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    with Worker(Path(tmp_path_factory.mktemp("worker-logs"))) as running:
        yield running


@pytest.fixture
def make_world(moto_url: str, worker: Worker) -> Iterator[WorldFactory]:
    """Fresh worlds; any a test creates itself are closed after it."""
    created: list[World] = []
    factory = world_factory(moto_url, worker)

    def make(**kwargs: object) -> World:
        world = factory(**kwargs)
        created.append(world)
        return world

    yield make
    for world in created:
        world.close()
    # Every run of every world was judged (consistency, counts, archive before and after): a test passes
    # only if all of them were right, including those it did not look at itself.
    assert [v for world in created for v in world.violations] == []

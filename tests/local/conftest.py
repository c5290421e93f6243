"""Fixtures of the tests of the local stack: one stack in threads mode per test module, with the module's
archive table and bucket, handed to each test with no faults armed and empty call logs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from local.stack import LocalStack
from local.stack.moto_server import start_moto, stop_moto
from tests.local.support import REGION


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    """A moto server of the module's own (its state is the process's: each module starts afresh)."""
    server: ThreadedMotoServer
    server, url = start_moto()
    try:
        yield url
    finally:
        stop_moto(server)


@pytest.fixture(scope="module")
def threads(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    """Moto, the fault proxy and the emulator as threads of this process, for the whole module, with the
    table and bucket named by the module's TABLE and BUCKET: moto's state is the process's, so each module
    names its own."""
    with LocalStack(seed=5, region=REGION) as local:
        local.create_archive_resources(request.module.TABLE, request.module.BUCKET)
        yield local


@pytest.fixture
def fresh(threads: LocalStack) -> LocalStack:
    """The module's stack with no faults and empty call logs (the data stays: tests use unique keys)."""
    for server in (threads.proxy, threads.emulator):
        server.faults.clear()
        server.reset_calls()
    return threads

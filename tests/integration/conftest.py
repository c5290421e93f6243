"""The local-stack fixtures live in tests/stack_fixtures.py (shared with tests/infra); re-exported here,
with the few helpers the integration tests share."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from typing import Any

from archiver import wiring
from tests.stack_fixtures import REGION, Archive

__all__ = ["REGION", "Archive", "cold_start", "fired", "log_lines", "stats_objects"]


def stats_objects(archive: Archive) -> dict[str, bytes]:
    """The stats objects in the archive bucket, by key (gzip bytes)."""
    s3 = archive.stack.client("s3", direct=True)
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=archive.bucket):
        for entry in page.get("Contents", []):
            if entry["Key"].endswith(".json.gz"):
                found[entry["Key"]] = s3.get_object(Bucket=archive.bucket, Key=entry["Key"])["Body"].read()
    return found


def cold_start() -> None:
    """A new Lambda container: settings read and clients built again, in the INIT phase as the handler's
    import does (a bad environment is reported by the invocation, as there).

    A test that changes the environment after the handler may have been wired (between runs, or after the
    `logs` fixture imported the handler) calls this: a warm container never sees a changed environment.
    """
    wiring.wiring.cache_clear()
    with contextlib.suppress(Exception):
        wiring.wiring()


def fired(archive: Archive) -> Counter[tuple[str, str]]:
    """Faults the emulator and the proxy actually injected, per (operation, kind): proof a fault took place."""
    return archive.emulator.faults.fired + archive.stack.proxy.faults.fired


def log_lines(printed: str) -> list[dict[str, Any]]:
    """The JSON lines the handler printed (Powertools log records and EMF metrics)."""
    return [json.loads(line) for line in printed.splitlines() if line.startswith("{")]

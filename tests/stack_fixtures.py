"""The local stack for tests: moto server + fault proxy + GameLift Streams emulator, over HTTP.

One moto server per test session (fast); each test gets a stack of its own on it (`LocalStack(moto_url=...)`:
its own fault proxy and emulator, threads of this process) and its own table and bucket, so tests never
see each other's data or faults. The handler under test is the real one; it only learns where the
services are from the SDK's AWS_ENDPOINT_URL_* variables.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from archiver import telemetry, wiring
from archiver.records import OBJECT_SUFFIX
from local.gls import GameLiftStreamsEmulator
from local.lambda_context import LambdaContext
from local.stack import LocalStack

REGION = "us-east-2"
_names = itertools.count(1)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    with LocalStack(seed=7, region=REGION) as stack:
        yield stack


@dataclass
class Archive:
    """One test's world: an emulator, a table, a bucket, and helpers to run and inspect."""

    stack: LocalStack
    emulator: GameLiftStreamsEmulator
    table: str
    bucket: str
    prefix: str = "sessions/"

    def _client(self, service: str) -> Any:
        # Inspection goes straight to moto, past the fault proxy, so faults never disturb assertions.
        return self.stack.client(service, direct=True)

    def run(self, event: Any = None, context: Any = None) -> dict[str, Any]:
        from archiver.handler import handler

        summary: dict[str, Any] = handler({} if event is None else event, context or LambdaContext())
        return summary

    def objects(self) -> dict[str, dict[str, Any]]:
        """Every record in the bucket, by key (not the stats objects, .json.gz beside them)."""
        s3 = self._client("s3")
        found: dict[str, dict[str, Any]] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for entry in page.get("Contents", []):
                if not entry["Key"].endswith(OBJECT_SUFFIX):
                    continue
                body = s3.get_object(Bucket=self.bucket, Key=entry["Key"])["Body"].read()
                found[entry["Key"]] = json.loads(body)
        return found

    def object_versions(self) -> int:
        versions = self._client("s3").list_object_versions(Bucket=self.bucket)
        return len(versions.get("Versions", []))

    def raw_objects(self) -> bytes:
        s3 = self._client("s3")
        return b"".join(s3.get_object(Bucket=self.bucket, Key=key)["Body"].read() for key in self.objects())

    def items(self) -> dict[str, dict[str, Any]]:
        """Every DynamoDB item, by session ARN (a Scan is fine in a test)."""
        ddb = self._client("dynamodb")
        items: dict[str, dict[str, Any]] = {}
        for page in ddb.get_paginator("scan").paginate(TableName=self.table):
            for item in page["Items"]:
                items[item["session_arn"]["S"]] = {k: v["S"] for k, v in item.items()}
        return items

    def archived_arns(self) -> set[str]:
        return {record["session_arn"] for record in self.objects().values()}


class _CurrentStdout:
    """Writes to whatever sys.stdout is now (pytest swaps it per test; Powertools binds it once at import)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    """Everything the handler prints (Powertools log lines and EMF metrics), as a user would see it."""
    import archiver.handler  # noqa: F401 - creates the Powertools logger whose stream is redirected

    for handler in logging.getLogger(telemetry.SERVICE).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = _CurrentStdout()
    return capfd


@contextlib.contextmanager
def archive_world(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Archive]:
    """A fresh emulator, fault proxy, table and bucket on the session's moto, and the environment the
    handler reads them from."""
    n = next(_names)
    table, bucket = f"archive-{n}", f"archive-bucket-{n}"
    with LocalStack(seed=n, region=REGION, moto_url=local_stack.moto_url) as stack:
        stack.create_archive_resources(table, bucket)
        stack.apply_env(monkeypatch)
        monkeypatch.setenv("ARCHIVE_TABLE_NAME", table)
        monkeypatch.setenv("ARCHIVE_BUCKET_NAME", bucket)
        monkeypatch.delenv("SOURCE_REGIONS", raising=False)
        # Keep failing tests fast: few attempts, and no client-side pacing beyond the emulator's own.
        monkeypatch.setenv("MAX_ATTEMPTS", "3")
        monkeypatch.setenv("LIST_RATE_PER_SECOND", "1000")
        monkeypatch.setenv("GET_RATE_PER_SECOND", "1000")
        wiring.wiring.cache_clear()  # the handler's clients were built from the previous environment
        yield Archive(stack, stack.emulator, table, bucket)


@pytest.fixture
def archive(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Archive]:
    """One test's own world on the shared local stack."""
    with archive_world(local_stack, monkeypatch) as world:
        yield world

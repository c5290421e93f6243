"""`make demo`: the archiver on the local stack, as deployed with `export_locations` set.

A first reconcile run archives the backlog (what a new deployment finds). Then sessions end, one after
another: the emulator writes each export ZIP into moto's S3, moto's S3 -> EventBridge -> the rule -> SQS
carries the event, and the local poller hands it to the real consumer (archiver.events.handler) as Lambda's
event source mapping would: each session is archived a fraction of a second after its ZIP lands. One ZIP
lands before the API says SUCCEEDED: delivered again, archived once it does. A last reconcile run finds
nothing left.

Everything crosses HTTP on 127.0.0.1: DynamoDB, S3, EventBridge and SQS from moto's server, GameLift Streams
from the project's emulator (enforcing the 20 requests/second quota, with 40 ms of latency). The handlers
find them only through the SDK's AWS_ENDPOINT_URL_* variables, exactly as they would find AWS.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from archiver.records import OBJECT_SUFFIX, STATS_SUFFIX
from local.gls import GameLiftStreamsEmulator
from local.lambda_context import SCHEDULED_EVENT, LambdaContext
from local.stack import LocalStack

TABLE, BUCKET, REGION = "gameliftstreams-archive", "gameliftstreams-archive-demo", "us-east-2"
EXPORTS = "s3://studio-exports/gamelift/"  # the `export_locations` context value
STATS_PREFIX = "perf-stats/"  # the stats objects, beside the records (docs/EXPORTS.md)
LIVE_SESSIONS = 6
LOG_FILE = Path(".cache/demo/handler.log")
COLUMNS = ("listed", "already_archived", "new", "archived", "failed", "skipped", "foreign", "deferred")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, right-aligned numbers."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [bool(rows) and all(row[i].replace(".", "").isdigit() for row in cells[1:]) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = (c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(padded).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])


def archived_rows(stack: LocalStack, keys: set[str]) -> list[dict[str, Any]]:
    """Records as Athena would read them: straight from the bucket."""
    s3 = stack.client("s3", direct=True)
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for entry in page.get("Contents", []):
            if entry["Key"] not in keys and entry["Key"].endswith(OBJECT_SUFFIX):
                rows.append(json.loads(s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()))
    return sorted(rows, key=lambda r: (r["created_at"] or "", r["session_id"]))


def all_keys(stack: LocalStack, suffix: str = OBJECT_SUFFIX) -> set[str]:
    """The archive bucket's keys ending with `suffix`: the records by default, STATS_SUFFIX the stats objects."""
    s3 = stack.client("s3", direct=True)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {entry["Key"] for page in pages for entry in page.get("Contents", []) if entry["Key"].endswith(suffix)}


def show_rows(out: TextIO, rows: list[dict[str, Any]], limit: int = 8) -> None:
    if not rows:
        out.write("  (no new records)\n")
        return
    headers = ("session_id", "user_id", "location", "status", "created_at", "export_output_uri")
    shown = [[str(r[h])[:60] for h in headers] for r in rows[:limit]]
    out.write("\n".join("  " + line for line in table(headers, shown).splitlines()) + "\n")
    if len(rows) > limit:
        out.write(f"  ... and {len(rows) - limit} more\n")


def reconcile(log: TextIO, name: str, out: TextIO, stack: LocalStack, note: str) -> dict[str, Any]:
    """One scheduled run of the real handler, its table and what it archived."""
    known = all_keys(stack)
    with contextlib.redirect_stdout(log):
        # Imported here on purpose: Powertools binds its log stream (now the log file) at import.
        from archiver.handler import handler  # noqa: PLC0415

        summary: dict[str, Any] = handler(SCHEDULED_EVENT, LambdaContext(timeout_seconds=300))
    total = summary["total"]
    out.write(f"== {name}: {note}\n")
    rows = [
        (region, *(counts[c] for c in COLUMNS), f"{counts['duration_ms'] / 1000:.1f}")
        for region, counts in summary["regions"].items()
    ]
    out.write(table(("region", *COLUMNS, "seconds"), rows) + "\n")
    out.write(f"archived by this run ({total['archived']}):\n")
    show_rows(out, archived_rows(stack, known))
    out.write("\n")
    return summary


def consumer(log: TextIO) -> Any:
    """archiver.events.handler, logging to the log file like the scheduled handler."""

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with contextlib.redirect_stdout(log):
            from archiver.events import handler  # noqa: PLC0415

            response: dict[str, Any] = handler(event, context)
        return response

    return handle


def end_with_export(stack: LocalStack) -> str:
    """A live session exported to EXPORTS and ended through the real boto3 client (the ZIP lands as it ends)."""
    api = stack.client("gameliftstreams")
    arn = str(stack.gls.start()["Arn"])
    group, session = arn.split("/")[-2:]
    api.export_stream_session_files(Identifier=group, StreamSessionIdentifier=session, OutputUri=EXPORTS)
    api.terminate_stream_session(Identifier=group, StreamSessionIdentifier=session)
    return arn


def is_archived(stack: LocalStack, arn: str) -> bool:
    item = stack.client("dynamodb", direct=True).get_item(TableName=TABLE, Key={"session_arn": {"S": arn}})
    return "Item" in item


def main() -> int:
    out = sys.stdout
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    # The service's quota (20 requests/second per API and Region), enforced, and 40 ms per call.
    stack = LocalStack(seed=2026, region=REGION, gls_quota=20.0, gls_latency_ms=40.0, export_locations=EXPORTS)
    with stack, LOG_FILE.open("w") as log:
        emulator: GameLiftStreamsEmulator = stack.emulator
        stack.apply_env()
        stack.create_archive_resources(TABLE, BUCKET)
        os.environ.update(
            ARCHIVE_TABLE_NAME=TABLE,
            ARCHIVE_BUCKET_NAME=BUCKET,
            STATS_PREFIX=STATS_PREFIX,
            POWERTOOLS_LOG_LEVEL="INFO",
            EXPORT_LOCATIONS=EXPORTS,
        )
        emulator.seed_sessions(200, succeeded_fraction=0.6)
        out.write(f"Local stack up: moto {stack.moto_url}, GameLift Streams emulator {emulator.endpoint_url}\n")
        out.write(f"Table {TABLE}, bucket {BUCKET}; exports land in {EXPORTS} (EventBridge -> SQS -> consumer)\n")
        out.write(f"Handler logs and EMF metrics go to {LOG_FILE}\n\n")
        backlog = f"{len(emulator.sessions())} sessions in the API, {len(emulator.succeeded_arns())} exported files"
        first = reconcile(log, "reconcile run 1 (a new deployment)", out, stack, backlog)

        poller = stack.poller(consumer(log), wait_time_seconds=1, visibility_timeout=1)
        out.write(f"== {LIVE_SESSIONS} sessions end, one after another; each export ZIP lands as its session ends\n")
        waits: list[float] = []
        for n in range(1, LIVE_SESSIONS + 1):
            if n == LIVE_SESSIONS:
                stack.gls.config(export_success_delay_ms=1500)  # this ZIP lands before the API says SUCCEEDED
            arn = end_with_export(stack)
            landed = time.monotonic()
            poller.drain(functools.partial(is_archived, stack, arn), timeout=30)
            waits.append(time.monotonic() - landed)
            late = " (the API said PENDING at first: delivered again, then archived)" if n == LIVE_SESSIONS else ""
            out.write(f"  {arn.rsplit('/', 1)[-1]}: archived {waits[-1]:.2f} s after its ZIP landed{late}\n")
        stack.gls.config(export_success_delay_ms=0)
        totals = poller.totals
        out.write(
            f"consumer: {totals.invocations} batches, {totals.received} messages received, "
            f"{totals.deleted} acknowledged, {totals.failed} delivered again\n\n"
        )

        last = reconcile(log, "reconcile run 2 (six hours later)", out, stack, "every export already archived")

        expected = emulator.succeeded_arns()
        ledger = stack.client("dynamodb", direct=True).scan(TableName=TABLE, Select="COUNT")["Count"]
        objects = len(all_keys(stack))
        stats = len(all_keys(stack, STATS_SUFFIX))
        calls = emulator.call_counts()
        out.write(
            f"In the end: {len(expected)} sessions with exports SUCCEEDED; "
            f"{objects} S3 records, {stats} stats objects, {ledger} DynamoDB items; "
            f"GameLift Streams calls: {calls['ListStreamSessionsByAccount']} list, {calls['GetStreamSession']} get, "
            f"{sum(n for (_, kind), n in emulator.faults.fired.items() if kind in ('quota', 'throttle'))} throttled.\n"
        )
        ok = objects == ledger == len(expected) and first["total"]["failed"] == 0
        ok = ok and last["total"]["archived"] == 0 and len(waits) == LIVE_SESSIONS
        out.write("Demo OK: every SUCCEEDED session archived exactly once.\n" if ok else "Demo FAILED: see above.\n")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

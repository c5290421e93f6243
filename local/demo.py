"""`make demo`: scheduled runs of the real handler on the local stack, sessions appearing between runs.

Everything crosses HTTP on 127.0.0.1: DynamoDB and S3 from moto's server, GameLift Streams from the
project's emulator (enforcing the 20 requests/second quota, with 40 ms of latency). The handler finds
them only through the SDK's AWS_ENDPOINT_URL_* variables, exactly as it would find AWS.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from local.gls import GameLiftStreamsEmulator
from local.lambda_context import SCHEDULED_EVENT, LambdaContext
from local.stack import LocalStack

TABLE, BUCKET, REGION = "gameliftstreams-archive", "gameliftstreams-archive-demo", "us-east-2"
LOG_FILE = Path(".cache/demo/handler.log")
COLUMNS = ("listed", "already_archived", "new", "archived", "failed", "skipped", "deferred")


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
            if entry["Key"] not in keys:
                rows.append(json.loads(s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()))
    return sorted(rows, key=lambda r: (r["created_at"] or "", r["session_id"]))


def all_keys(stack: LocalStack) -> set[str]:
    s3 = stack.client("s3", direct=True)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {entry["Key"] for page in pages for entry in page.get("Contents", [])}


def show_rows(out: TextIO, rows: list[dict[str, Any]], limit: int = 8) -> None:
    if not rows:
        out.write("  (no new records)\n")
        return
    headers = ("session_id", "user_id", "location", "status", "created_at", "export_output_uri")
    shown = [[str(r[h])[:60] for h in headers] for r in rows[:limit]]
    out.write("\n".join("  " + line for line in table(headers, shown).splitlines()) + "\n")
    if len(rows) > limit:
        out.write(f"  ... and {len(rows) - limit} more\n")


def main() -> int:
    out = sys.stdout
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    # The service's quota (20 requests/second per API and Region), enforced, and 40 ms per call.
    stack = LocalStack(seed=2026, region=REGION, gls_quota=20.0, gls_latency_ms=40.0)
    with stack, LOG_FILE.open("w") as log:
        emulator: GameLiftStreamsEmulator = stack.emulator
        stack.apply_env()
        stack.create_archive_resources(TABLE, BUCKET)
        os.environ.update(ARCHIVE_TABLE_NAME=TABLE, ARCHIVE_BUCKET_NAME=BUCKET, POWERTOOLS_LOG_LEVEL="INFO")
        emulator.seed_sessions(200, succeeded_fraction=0.6)
        pending = [
            s["Arn"] for s in emulator.sessions() if (s.get("ExportFilesMetadata") or {}).get("Status") == "PENDING"
        ]

        def add_new_sessions() -> str:
            for _ in range(12):
                emulator.add_session()
            for arn in pending[:4]:
                emulator.set_export_status(arn, "SUCCEEDED")
            return "12 new sessions ended with exported files; 4 pending exports succeeded"

        def nothing() -> str:
            return "nothing new"

        def first() -> str:
            return f"{len(emulator.sessions())} sessions in the API, {len(emulator.succeeded_arns())} exported files"

        steps: list[tuple[str, Callable[[], str]]] = [
            ("run 1", first),
            ("run 2", nothing),
            ("run 3", add_new_sessions),
            ("run 4", nothing),
        ]
        out.write(f"Local stack up: moto {stack.moto_url}, GameLift Streams emulator {emulator.endpoint_url}\n")
        out.write(f"Table {TABLE}, bucket {BUCKET}; handler logs and EMF metrics go to {LOG_FILE}\n\n")
        summaries = []
        for name, before in steps:
            note = before()
            known = all_keys(stack)
            with contextlib.redirect_stdout(log):
                # Imported here on purpose: Powertools binds its log stream (now the log file) at import.
                from archiver.handler import handler  # noqa: PLC0415

                summary = handler(SCHEDULED_EVENT, LambdaContext(timeout_seconds=300))
            summaries.append((name, summary))
            total = summary["total"]
            out.write(f"== {name}: {note}\n")
            out.write(
                table(
                    ("region", *COLUMNS, "seconds"),
                    [
                        (region, *(counts[c] for c in COLUMNS), f"{counts['duration_ms'] / 1000:.1f}")
                        for region, counts in summary["regions"].items()
                    ],
                )
                + "\n"
            )
            out.write(f"archived this run ({total['archived']}):\n")
            show_rows(out, archived_rows(stack, known))
            out.write("\n")

        expected = emulator.succeeded_arns()
        ledger = stack.client("dynamodb", direct=True).scan(TableName=TABLE, Select="COUNT")["Count"]
        objects = len(all_keys(stack))
        calls = emulator.call_counts()
        out.write(
            f"In the end: {len(expected)} sessions with exports SUCCEEDED; "
            f"{objects} S3 records, {ledger} DynamoDB items; "
            f"GameLift Streams calls: {calls['ListStreamSessionsByAccount']} list, {calls['GetStreamSession']} get, "
            f"{sum(n for (_, kind), n in emulator.faults.fired.items() if kind in ('quota', 'throttle'))} throttled.\n"
        )
        ok = objects == ledger == len(expected) and summaries[1][1]["total"]["archived"] == 0
        ok = ok and summaries[3][1]["total"]["archived"] == 0
        out.write("Demo OK: every SUCCEEDED session archived exactly once.\n" if ok else "Demo FAILED: see above.\n")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

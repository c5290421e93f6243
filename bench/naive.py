"""The obvious script: what one would write first to archive GameLift Streams sessions.

Page through ListStreamSessionsByAccount (100 a page, one page after another); for each listed session ask
DynamoDB whether it is archived (one GetItem each); for each new one GetStreamSession, put the record in S3,
put the item in DynamoDB. Sequential, default boto3 clients, no client-side rate limit.

It writes the same record under the same key, and the same ledger item, as the archiver (it reuses
`archiver.records`), so both do the same work on the same data. `deadline` stops it early (the benchmark
caps its wall time); it then reports how far it got and how long each kind of step took, so the rest can be
extrapolated, clearly labelled.

`python -m bench.naive RESULT.json [--cap SECONDS]` runs it once in a fresh process (bench.programs): the
environment says where the servers are; the result holds the run's wall time (imports excluded), the
process's peak RSS and its report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from archiver.records import (
    LEDGER_PARTITION_KEY,
    Context,
    build_record,
    created_at,
    encode_record,
    ledger_item,
    object_key,
    parse_session_arn,
)
from local.memory import peak_rss_kb


@dataclass
class NaiveReport:
    pages: int = 0
    listed: int = 0  # sessions looked at (GetItem done)
    already_archived: int = 0
    archived: int = 0
    skipped: int = 0
    finished: bool = False  # False: stopped at the deadline
    seconds_listing: float = 0.0  # time in ListStreamSessionsByAccount
    seconds_old: float = 0.0  # time in GetItem for sessions found archived
    seconds_new: float = 0.0  # time in GetItem + GetStreamSession + PutObject + PutItem for new sessions


def archive(deadline: float | None = None) -> dict[str, Any]:
    """Archive every new session of the Region in AWS_REGION; stop at time.monotonic() >= deadline."""
    table = os.environ["ARCHIVE_TABLE_NAME"]
    bucket = os.environ["ARCHIVE_BUCKET_NAME"]
    region = os.environ["AWS_REGION"]
    gls = boto3.client("gameliftstreams", region_name=region)
    ddb = boto3.client("dynamodb", region_name=region)
    s3 = boto3.client("s3", region_name=region)
    report = NaiveReport()
    token = None
    while True:
        started = time.perf_counter()
        request: dict[str, Any] = {"ExportFilesStatus": "SUCCEEDED", "MaxResults": 100}
        if token:
            request["NextToken"] = token
        page = gls.list_stream_sessions_by_account(**request)
        report.seconds_listing += time.perf_counter() - started
        report.pages += 1
        for item in page.get("Items", []):
            if deadline is not None and time.monotonic() >= deadline:
                return asdict(report)
            started = time.perf_counter()
            report.listed += 1
            arn = item["Arn"]
            found = ddb.get_item(TableName=table, Key={LEDGER_PARTITION_KEY: {"S": arn}})
            if "Item" in found:
                report.already_archived += 1
                report.seconds_old += time.perf_counter() - started
                continue
            parsed = parse_session_arn(arn)
            if parsed is None:
                report.skipped += 1
                continue
            detail = gls.get_stream_session(Identifier=parsed.stream_group_id, StreamSessionIdentifier=arn)
            created = created_at(detail, item)
            if created is None:
                report.skipped += 1
                continue
            record = build_record(detail, Context(parsed, datetime.now(UTC), False))
            key = object_key("sessions/", parsed, created)
            s3.put_object(Bucket=bucket, Key=key, Body=encode_record(record), ContentType="application/json")
            attributes = {name: {"S": value} for name, value in ledger_item(record, key).items()}
            ddb.put_item(TableName=table, Item={**attributes, LEDGER_PARTITION_KEY: {"S": arn}})
            report.archived += 1
            report.seconds_new += time.perf_counter() - started
        token = page.get("NextToken")
        if not token:
            report.finished = True
            return asdict(report)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive", description=__doc__.split("\n\n")[0])
    parser.add_argument("result")
    parser.add_argument("--cap", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"program": "naive", "rss_after_import_kb": peak_rss_kb()}
    started = time.perf_counter()
    deadline = None if args.cap is None else time.monotonic() + args.cap
    result["report"] = archive(deadline)
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_kb"] = peak_rss_kb()
    with open(args.result, "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The DynamoDB adapter against moto over HTTP: whose item a conditional put found."""

from __future__ import annotations

import boto3

from archiver.ledger import Ledger

from .conftest import REGION, Archive


def test_a_put_finding_an_existing_item_is_another_writers(archive: Archive) -> None:
    ledger = Ledger(boto3.client("dynamodb", region_name=REGION, endpoint_url=archive.stack.moto_url), archive.table)
    arn = "arn:aws:gameliftstreams:us-east-2:111122223333:streamsession/sg-1A2b3C4d5/ABC123def4567"
    ours = {"s3_key": "sessions/k.json", "archived_at": "2026-12-01 10:00:00.000"}

    assert ledger.mark_archived(arn, ours) is True
    # equal, but found by a first attempt: another writer's (a retry that finds it is tested through the
    # fault proxy in tests/reliability/test_faults.py)
    assert ledger.mark_archived(arn, dict(ours)) is False
    assert ledger.mark_archived(arn, {**ours, "archived_at": "2026-12-01 10:15:00.000"}) is False  # a later run
    assert archive.items()[arn]["archived_at"] == "2026-12-01 10:00:00.000"

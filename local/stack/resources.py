"""The archive's table and bucket as the CDK stack configures them, and ledger items put straight into
moto's backend (a benchmark's 100k archived sessions in seconds, not minutes of PutItem).

Names come from `archiver.records` (the partition key, the object key layout), never retyped.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from archiver import records
from archiver.records import LEDGER_PARTITION_KEY, object_key, parse_session_arn
from local.stack.aws import aws_client

# The creation day written into preloaded ledger items' keys (any fixed day: nothing reads those objects).
PRELOAD_CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def create_archive_resources(
    moto_url: str, table: str, bucket: str, *, region: str = "us-east-2", s3_url: str | None = None
) -> None:
    """The ledger table (on-demand, SSE, keyed by `LEDGER_PARTITION_KEY`) and the archive bucket (versioned,
    so overwrites show; default encryption; public access blocked), directly on moto (`s3_url`: the
    bucket's own moto, if S3 has one)."""
    ddb, s3 = aws_client("dynamodb", moto_url, region), aws_client("s3", s3_url or moto_url, region)
    try:
        ddb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": LEDGER_PARTITION_KEY, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": LEDGER_PARTITION_KEY, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True},
        )
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    finally:
        ddb.close()
        s3.close()


def archived_item(arn: str, prefix: str = "sessions/") -> dict[str, dict[str, str]]:
    """The ledger item of an archived session, as the archiver writes it (`records.ledger_item`) for a record
    of which nothing but its key is known."""
    parsed = parse_session_arn(arn)
    if parsed is None:
        raise ValueError(f"not a stream-session ARN: {arn!r}")
    unknown: collections.defaultdict[str, object] = collections.defaultdict(lambda: None)
    item = records.ledger_item(unknown, object_key(prefix, parsed, PRELOAD_CREATED_AT))
    return {name: {"S": value} for name, value in item.items()} | {LEDGER_PARTITION_KEY: {"S": arn}}


def preload_in_process(region: str, table: str, arns: Iterable[str], prefix: str = "sessions/") -> int:
    """Put one ledger item per ARN into the moto backend of *this* process (the moto server it runs)."""
    backend: Any = dynamodb_backends[DEFAULT_ACCOUNT_ID][region]
    count = 0
    for arn in arns:
        if arn:
            backend.put_item(table, archived_item(arn, prefix))
            count += 1
    return count

"""The archive's table and bucket as the CDK stack configures them, the event path's bucket notifications,
rule and queues (`create_event_resources`), and ledger items put straight into moto's backend (a
benchmark's 100k archived sessions in seconds, not minutes of PutItem).

Names come from `archiver.records` (the partition key, the object key layout) and the rule's pattern from
`archiver.exports.event_pattern`, never retyped.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import ClientError
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from archiver import exports, records, rules
from archiver.records import LEDGER_PARTITION_KEY, object_key, parse_session_arn
from archiver.rules import ExportLocation
from local.stack.aws import aws_client

# Receives beyond the consumer's bound on PENDING exports before the dead-letter queue: the CDK stack's
EXTRA_RECEIVES: Final = rules.EXTRA_RECEIVES  # the stack's queue's, from the one rule both read
DEFAULT_VISIBILITY_TIMEOUT: Final = 30
_RULE_TARGET_ID: Final = "export-events-queue"

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
    unknown["schema_version"] = records.SCHEMA_VERSION
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


# -- the event path: S3 -> EventBridge -> SQS ---------------------------------------------------------------


@dataclass(frozen=True)
class EventResources:
    """What `create_event_resources` made: the queues and rule live on `endpoint_url`, the moto that holds the
    export buckets (moto's S3 delivers its events to the EventBridge of its own process)."""

    endpoint_url: str
    region: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    rule_name: str
    rule_arn: str
    buckets: tuple[str, ...]
    locations: tuple[ExportLocation, ...]
    max_receive_count: int
    visibility_timeout: int


def _locations(value: str | Sequence[str] | Sequence[ExportLocation]) -> tuple[ExportLocation, ...]:
    if isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, ExportLocation) for v in value):
        found = tuple(v for v in value if isinstance(v, ExportLocation))
    else:
        found = rules.export_locations(value)
    if not found:
        raise ValueError("create_event_resources needs at least one export location")
    return found


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def _send_to_eventbridge(s3: Any, bucket: str) -> None:
    """Turn on "Send notifications to Amazon EventBridge" the safe way DEPLOY.md gives: read the bucket's
    notification configuration and write it back with EventBridgeConfiguration added (a plain put replaces
    every existing notification)."""
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    config = {k: v for k, v in current.items() if k != "ResponseMetadata"}
    config["EventBridgeConfiguration"] = {}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)


def queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """The queue's resource policy as the stack writes it: only the export rule may send (events.amazonaws.com
    with aws:SourceArn = the rule), and no request over plain HTTP (enforce_ssl; moto does not evaluate it)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyTheExportRuleSends",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def create_event_resources(
    moto_url: str,
    locations: str | Sequence[str] | Sequence[ExportLocation],
    *,
    queue_name: str,
    region: str = "us-east-2",
    max_pending_receives: int = 5,
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
    rule_name: str | None = None,
) -> EventResources:
    """The event path on the moto at `moto_url` (the one serving the export buckets), configured as the CDK
    stack configures it: each location's bucket (created if missing) sending to EventBridge; a rule on the
    default bus with `exports.event_pattern(locations)` targeting an SQS queue (SSE, visibility timeout,
    redrive to a dead-letter queue after `max_pending_receives` + EXTRA_RECEIVES receives) whose policy
    lets only that rule send. Safe to call again (existing buckets and notifications are kept)."""
    found = _locations(locations)
    max_pending_receives = rules.PENDING_RECEIVES.parse(max_pending_receives)
    max_receive_count = max_pending_receives + EXTRA_RECEIVES
    rule_name = rule_name or f"{queue_name}-rule"
    sqs, events = aws_client("sqs", moto_url, region), aws_client("events", moto_url, region)
    s3 = aws_client("s3", moto_url, region)
    try:
        dlq_url = sqs.create_queue(
            QueueName=f"{queue_name}-dlq",
            Attributes={"SqsManagedSseEnabled": "true", "MessageRetentionPeriod": str(14 * 86_400)},
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName=queue_name,
            Attributes={
                "SqsManagedSseEnabled": "true",
                "MessageRetentionPeriod": str(4 * 86_400),
                "VisibilityTimeout": str(visibility_timeout),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule_arn = events.put_rule(
            Name=rule_name,
            EventPattern=json.dumps(exports.event_pattern(found)),
            State="ENABLED",
            Description="GameLift Streams export ZIPs created under the export locations",
        )["RuleArn"]
        events.put_targets(Rule=rule_name, Targets=[{"Id": _RULE_TARGET_ID, "Arn": queue_arn}])
        sqs.set_queue_attributes(
            QueueUrl=queue_url, Attributes={"Policy": json.dumps(queue_policy(queue_arn, rule_arn))}
        )
        buckets = tuple(dict.fromkeys(location.bucket for location in found))
        for bucket in buckets:
            _ensure_bucket(s3, bucket, region)
            _send_to_eventbridge(s3, bucket)
    finally:
        for client in (sqs, events, s3):
            client.close()
    return EventResources(
        endpoint_url=moto_url,
        region=region,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        rule_name=rule_name,
        rule_arn=rule_arn,
        buckets=buckets,
        locations=found,
        max_receive_count=max_receive_count,
        visibility_timeout=visibility_timeout,
    )

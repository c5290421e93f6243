"""Where the archive lives: the record bucket, its access-log bucket and the DynamoDB ledger.

These hold the only lasting copy of session history (the service keeps ~90 days), so they are retained
by default, versioned (the bucket) or point-in-time recoverable (the table), and locked down. Both are
encrypted with the archive key (`infra.encryption`): only the principals its policy names can read them.
With `object_lock_days` the bucket is created with S3 Object Lock, governance mode, that many days by default.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from archiver import records
from infra.config import ArchiverConfig
from infra.encryption import ArchiveKey, grant_named_roles


def removal_policy(config: ArchiverConfig) -> RemovalPolicy:
    """The configured fate of data-bearing resources on stack deletion."""
    return RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY


def secure_bucket(
    scope: Construct,
    construct_id: str,
    config: ArchiverConfig,
    *,
    encryption_key: kms.IKey | None = None,
    access_logs: s3.IBucket | None = None,
    access_logs_prefix: str | None = None,
    versioned: bool = False,
    lifecycle_rules: list[s3.LifecycleRule] | None = None,
    object_lock_days: int = 0,
) -> s3.Bucket:
    """A bucket with the baseline every bucket here gets: no public access, TLS 1.2+ only, encrypted, owner-only."""
    return s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=encryption_key,
        bucket_key_enabled=True if encryption_key else None,
        versioned=versioned,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_logs_prefix,
        lifecycle_rules=lifecycle_rules,
        object_lock_enabled=True if object_lock_days else None,
        object_lock_default_retention=object_lock_retention(object_lock_days),
        removal_policy=removal_policy(config),
        # With `destroy`, empty the bucket on stack deletion; otherwise CloudFormation cannot delete it.
        auto_delete_objects=not config.retain_data,
    )


def object_lock_retention(days: int) -> s3.ObjectLockRetention | None:
    """The default retention of every new record version: governance mode, so the break-glass roles (with
    s3:BypassGovernanceRetention) can still remove a version; compliance mode would let no one, not even the
    account root, shorten or remove it before it expires (the stricter choice, for a legal hold on the archive)."""
    return s3.ObjectLockRetention.governance(Duration.days(days)) if days else None


class Storage(Construct):
    """The archive bucket (records), the access-log bucket, and the ledger table of archived sessions."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ArchiverConfig) -> None:
        super().__init__(scope, construct_id)
        # The stack's own key, or the one `kms_key_arn` imports.
        self.key = ArchiveKey(self, "ArchiveKey", config=config, removal=removal_policy(config))
        self.encryption_key: kms.IKey = self.key.key
        grant_named_roles(self.key, config)

        # S3 server access logs can only be delivered to SSE-S3 buckets, so this one never uses the KMS key.
        # Versioned: deleting or overwriting a log (to hide who read a record) leaves the old version, which
        # expires with the rest of the logs.
        self.access_log_bucket = secure_bucket(
            self,
            "AccessLogBucket",
            config,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(config.access_log_expiration_days),
                    noncurrent_version_expiration=Duration.days(config.access_log_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )

        self.archive_bucket = secure_bucket(
            self,
            "ArchiveBucket",
            config,
            encryption_key=self.encryption_key,
            access_logs=self.access_log_bucket,
            access_logs_prefix="archive-bucket/",
            # Versioned, and no version ever expires: the record is the only lasting copy of its session.
            versioned=True,
            # Object Lock needs versioning (on). CloudFormation can turn it on for an existing bucket in place
            # (ObjectLockEnabled is not a create-only property), but S3 never turns it off again.
            object_lock_days=config.object_lock_days,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                )
            ],
        )
        self.record_prefix = config.record_prefix

        self.table = dynamodb.Table(
            self,
            "LedgerTable",
            partition_key=dynamodb.Attribute(name=records.LEDGER_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=config.retain_data,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.encryption_key,
            removal_policy=removal_policy(config),
        )

    @property
    def records_arn_pattern(self) -> str:
        """ARN of every record object the archiver may write: `<bucket arn>/<prefix>*`."""
        return self.archive_bucket.arn_for_objects(f"{self.record_prefix}*")

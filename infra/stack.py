"""The one stack a platform team deploys: storage, archiver (function + schedule), analytics, monitoring, and
with `export_locations` the event-driven path (rule, queue, consumer).

Environment-agnostic on purpose (no `env`, no context lookups): it synthesizes without AWS credentials,
and the Region/account come from the deploying credentials as CloudFormation pseudo parameters.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.analytics import Analytics
from infra.archiver import Archiver
from infra.backup import Backup
from infra.config import ArchiverConfig
from infra.events import ExportEvents
from infra.monitoring import Monitoring
from infra.protection import Protection
from infra.storage import Storage

DESCRIPTION = "Archives Amazon GameLift Streams stream sessions with exported files into S3 (Athena) and DynamoDB."


class ArchiverStack(Stack):
    """Composes the constructs and exports what operators and analysts need to find."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ArchiverConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=config.stack_name,
            description=DESCRIPTION,
            analytics_reporting=False,  # no AWS::CDK::Metadata resource: nothing phones home from the template
            **kwargs,
        )
        # Deliver S3 server access logs through a bucket policy (not the LogDeliveryWrite ACL, which
        # BucketOwnerEnforced forbids), even in an app whose cdk.json lacks this feature flag.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.config = config
        self.storage = Storage(self, "Storage", config=config)
        self.archiver = Archiver(self, "Archiver", config=config, storage=self.storage)
        self.events = (
            ExportEvents(self, "ExportEvents", config=config, storage=self.storage, archiver=self.archiver)
            if config.events_enabled
            else None
        )
        self.analytics = Analytics(self, "Analytics", config=config, storage=self.storage)
        self.monitoring = Monitoring(self, "Monitoring", config=config, archiver=self.archiver, events=self.events)
        self.backup = Backup(self, "Backup", config=config, storage=self.storage) if config.backup_plan else None
        # Last: the Deny statements name every role they exempt, so those roles exist first.
        self.protection = Protection(
            self,
            "Protection",
            config=config,
            archive_bucket=self.storage.archive_bucket,
            results_bucket=self.analytics.results_bucket,
            table=self.storage.table,
            key_arn=self.storage.encryption_key.key_arn,
            function_roles=[self.archiver.role, *([self.events.role] if self.events is not None else [])],
            backup_roles=[self.backup.role] if self.backup is not None else [],
        )

        outputs = {
            "LedgerTableName": (self.storage.table.table_name, "DynamoDB ledger of archived sessions"),
            "ArchiveBucketName": (self.storage.archive_bucket.bucket_name, "S3 bucket holding the session records"),
            "RecordPrefix": (config.record_prefix, "Key prefix of the session records in the archive bucket"),
            "AccessLogBucketName": (self.storage.access_log_bucket.bucket_name, "S3 server access logs"),
            "GlueDatabaseName": (self.analytics.database.database_name, "Glue database of the archive"),
            "GlueTableName": (self.analytics.table.table_name, "Glue table (partition projection) over the records"),
            "GlueStatsTableName": (
                self.analytics.stats_table.table_name,
                "Glue table over the sessions' performance stats (one gzip JSON lines object per session)",
            ),
            "StatsPrefix": (config.stats_prefix, "Key prefix of the performance stats objects in the archive bucket"),
            "AthenaWorkGroupName": (self.analytics.workgroup.ref, "Athena workgroup for querying the archive"),
            "AthenaResultsBucketName": (self.analytics.results_bucket.bucket_name, "Athena query results"),
            "FunctionName": (self.archiver.function.function_name, "The archiver Lambda function"),
            "FunctionRoleArn": (
                self.archiver.role.role_arn,
                "The archiver's role: name it in an export bucket's policy to let it read the ZIPs",
            ),
            "FailedRunsQueueUrl": (self.archiver.failure_queue.queue_url, "Failed invocations and schedules"),
            "AlarmTopicArn": (self.monitoring.topic.topic_arn, "SNS topic of the archiver's alarms"),
            "ArchiveKeyArn": (self.storage.encryption_key.key_arn, "KMS key of the records, ledger, results, logs"),
            "AnalystPolicyArn": (
                self.analytics.analyst_policy.policy.managed_policy_arn,
                "Managed policy to attach to the reader_role_arns (docs/QUERY.md)",
            ),
            "DashboardUrl": (self.monitoring.dashboard_url, "CloudWatch dashboard of the archiver"),
        }
        if self.events is not None:
            outputs |= {
                "ConsumerFunctionName": (self.events.function.function_name, "The export event consumer function"),
                "ConsumerRoleArn": (self.events.role.role_arn, "The consumer's role (it reads the export ZIPs too)"),
                "ExportEventsQueueUrl": (self.events.queue.queue_url, "Export events waiting for the consumer"),
                "ExportEventsDeadLetterQueueUrl": (
                    self.events.dead_letter_queue.queue_url,
                    "Export events the consumer failed on too often (the reconciler archives them)",
                ),
                "ExportEventsRuleName": (self.events.rule.rule_name, "EventBridge rule matching export ZIPs"),
            }
        if self.backup is not None:
            outputs["BackupVaultName"] = (self.backup.vault.backup_vault_name, "AWS Backup vault of the archive")
        for output_id, (value, description) in outputs.items():
            CfnOutput(self, output_id, value=value, description=description)

"""The archiver function, its least-privilege role, its failure queue and the schedule that runs it.

EventBridge Scheduler (not an EventBridge rule) starts the runs: it has its own retry policy and
dead-letter queue per target, invokes through a scoped IAM role instead of a Lambda resource policy,
and its free tier (14 million invocations a month) covers a 15-minute schedule many times over.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Aws, CfnElement, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from archiver import telemetry
from infra.bundling import lambda_code
from infra.config import ArchiverConfig
from infra.nag import acknowledge, arn_of
from infra.storage import Storage, removal_policy

HANDLER = "archiver.handler.handler"
# The newest Python runtime of aws-cdk-lib 2.275 (cdk-nag AwsSolutions-L1 flags anything older).
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
_R = logs.RetentionDays
RETENTION: dict[int, logs.RetentionDays] = {
    1: _R.ONE_DAY, 3: _R.THREE_DAYS, 5: _R.FIVE_DAYS, 7: _R.ONE_WEEK, 14: _R.TWO_WEEKS, 30: _R.ONE_MONTH,
    60: _R.TWO_MONTHS, 90: _R.THREE_MONTHS, 120: _R.FOUR_MONTHS, 150: _R.FIVE_MONTHS, 180: _R.SIX_MONTHS,
    365: _R.ONE_YEAR, 400: _R.THIRTEEN_MONTHS, 545: _R.EIGHTEEN_MONTHS, 731: _R.TWO_YEARS, 1096: _R.THREE_YEARS,
    1827: _R.FIVE_YEARS, 2192: _R.SIX_YEARS, 2557: _R.SEVEN_YEARS, 2922: _R.EIGHT_YEARS, 3288: _R.NINE_YEARS,
    3653: _R.TEN_YEARS,
}  # fmt: skip


def number_text(value: float) -> str:
    """A number as the function's settings read it back exactly: '18' for 18.0, else the shortest round-trip form."""
    return str(int(value)) if value.is_integer() else repr(value)


class Archiver(Construct):
    """The scheduled archiver: one run at a time (reserved concurrency 1), failures to an encrypted queue."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ArchiverConfig, storage: Storage) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        period = Duration.minutes(config.schedule_minutes)
        # An invocation older than one period is superseded by the next scheduled run; never run it late.
        max_event_age = Duration.seconds(min(max(config.schedule_minutes * 60, 60), 6 * 3600))

        # Failed runs (after Lambda's async retry) and undeliverable schedules land here, for inspection.
        self.failure_queue = sqs.Queue(
            self,
            "FailedRunsQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.failure_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination of the archiver (Lambda on-failure destination "
            "and Scheduler dead-letter queue); a queue for its own failures would never be read.",
        )

        self.log_group = logs.LogGroup(
            self,
            "FunctionLogGroup",
            retention=RETENTION[config.log_retention_days],
            removal_policy=removal_policy(config),
        )

        self.role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="GameLift Streams session archiver: list/get sessions, write records and ledger, logs.",
        )
        self._grant(config, storage, stack)

        source_regions = ",".join(config.source_regions) if config.source_regions else Aws.REGION
        self.function = lambda_.Function(
            self,
            "Function",
            description="Archives Amazon GameLift Streams sessions with exported files into S3 and DynamoDB.",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_code(LAMBDAS_DIR, RUNTIME, ARCHITECTURE),
            memory_size=config.lambda_memory_mb,
            timeout=Duration.seconds(config.lambda_timeout_seconds),
            reserved_concurrent_executions=1,  # runs never overlap
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            on_failure=destinations.SqsDestination(self.failure_queue),
            # One retry absorbs a transient failure within the same period; the next schedule is the rest.
            retry_attempts=1,
            max_event_age=max_event_age,
            environment={
                "ARCHIVE_TABLE_NAME": storage.table.table_name,
                "ARCHIVE_BUCKET_NAME": storage.archive_bucket.bucket_name,
                "ARCHIVE_PREFIX": config.record_prefix,
                "SOURCE_REGIONS": source_regions,
                "KEEP_ENVIRONMENT_VARIABLE_VALUES": str(config.keep_environment_variable_values).lower(),
                "TIME_BUDGET_MARGIN_SECONDS": str(config.time_budget_margin_seconds),
                "LIST_RATE_PER_SECOND": number_text(config.list_rate_per_second),
                "GET_RATE_PER_SECOND": number_text(config.get_rate_per_second),
                "MAX_CONCURRENCY": str(config.max_concurrency),
                "POWERTOOLS_SERVICE_NAME": telemetry.SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": telemetry.NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": config.log_level,
            },
        )

        # Our own role (rather than the one LambdaInvoke would create at stack level), trusted only by
        # EventBridge Scheduler acting for this account; LambdaInvoke adds the invoke and queue permissions.
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="Lets EventBridge Scheduler invoke the GameLift Streams session archiver.",
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description=f"Runs the GameLift Streams session archiver every {config.schedule_minutes} minutes.",
            schedule=scheduler.ScheduleExpression.rate(period),
            target=targets.LambdaInvoke(
                self.function,
                dead_letter_queue=self.failure_queue,
                role=self.schedule_role,
                retry_attempts=2,
                max_event_age=max_event_age,
            ),
        )
        self.schedule_period = period
        function = self.function.node.default_child
        assert isinstance(function, CfnElement)
        acknowledge(
            self.schedule_role,
            f"AwsSolutions-IAM5[Resource::{arn_of(function)}:*]",
            "lambda:InvokeFunction on this one function and its versions/aliases (`<function arn>:*`), as "
            "the CDK's grantInvoke writes it; no other function can be invoked.",
        )

    def _grant(self, config: ArchiverConfig, storage: Storage, stack: Stack) -> None:
        """Explicit statements, each naming its actions: no wildcard action, resources as narrow as IAM allows."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListSessionsOfAccount",
                # This action has no resource type in IAM: "*" is the only possible resource.
                actions=["gameliftstreams:ListStreamSessionsByAccount"],
                resources=["*"],
            )
        )
        regions = config.source_regions or (Aws.REGION,)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="GetSessionsOfSourceRegions",
                # GetStreamSession is authorized on the stream group (there is no stream-session resource type).
                actions=["gameliftstreams:GetStreamSession"],
                resources=[
                    stack.format_arn(
                        service="gameliftstreams",
                        region=region,
                        resource="streamgroup",
                        resource_name="*",
                        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                    )
                    for region in regions
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadWriteLedger",
                actions=["dynamodb:BatchGetItem", "dynamodb:PutItem"],
                resources=[storage.table.table_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteRecords",
                actions=["s3:PutObject"],
                resources=[storage.records_arn_pattern],
            )
        )
        if storage.encryption_key is not None:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="UseDataKeyThroughS3AndDynamoDB",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[storage.encryption_key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": [
                                f"s3.{Aws.REGION}.amazonaws.com",
                                f"dynamodb.{Aws.REGION}.amazonaws.com",
                            ]
                        }
                    },
                )
            )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only for actions IAM cannot scope to a resource: gameliftstreams:ListStreamSessionsByAccount (no "
            "resource type in the service authorization reference) and X-Ray's PutTraceSegments/PutTelemetryRecords "
            "(added by active tracing). Every action is named; no action wildcard.",
        )
        for region in config.source_regions or ("<AWS::Region>",):
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:gameliftstreams:{region}:<AWS::AccountId>:streamgroup/*]",
                "GetStreamSession is authorized on the stream group, and the archiver must read sessions of every "
                "stream group of the account in this Region (groups come and go); scoped to account and Region.",
            )
        bucket = storage.archive_bucket.node.default_child
        assert isinstance(bucket, CfnElement)
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{arn_of(bucket)}/{config.record_prefix}*]",
            "s3:PutObject only, only under the record prefix: one object per session, whose key is not known "
            "until the session is archived.",
        )

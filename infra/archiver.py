"""The scheduled archiver (the reconciler): its function, least-privilege role, failure queue and schedule.

EventBridge Scheduler (not an EventBridge rule) starts the runs: it has its own retry policy and
dead-letter queue per target, invokes through a scoped IAM role instead of a Lambda resource policy,
and its free tier (14 million invocations a month) covers a 15-minute schedule many times over.

A run that runs out of time while listing invokes itself (asynchronously) to continue; reserved concurrency 1
queues that follow-up behind the run, so runs still never overlap. The environment and the grants both
functions need are module functions here, so the event consumer (`infra/events.py`) reuses them instead of
a copy that could drift.
"""

from __future__ import annotations

from pathlib import Path

import jsii
from aws_cdk import ArnFormat, Aws, CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from archiver import rules, telemetry
from infra.bundling import lambda_code
from infra.config import ArchiverConfig
from infra.nag import acknowledge, arn_of
from infra.storage import Storage, removal_policy

# What a principal needs to put a message on a queue encrypted with the archive key (SQS reuses the data key,
# checking it with Decrypt); receiving needs Decrypt only.
SQS_SEND_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
# CloudWatch Logs' use of a log group's key, the documented statement's wildcards (Encrypt*, Decrypt*,
# ReEncrypt*, GenerateDataKey*, Describe*) spelled out; the key pairs are not used by Logs.
LOGS_KEY_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
)

HANDLER = "archiver.handler.handler"
# The Python the function's package is tested on (`make test` runs its tests on 3.13 too), not the newest
# runtime of aws-cdk-lib 2.275 (3.14), which this build machine cannot install: the code that runs is the code
# that was tested. cdk-nag AwsSolutions-L1 flags it; RUNTIME_REASON is the acknowledgment.
RUNTIME = lambda_.Runtime.PYTHON_3_13
RUNTIME_REASON = (
    "Python 3.13, not the newest runtime (3.14): the function runs the Python version its package's tests run on "
    "(3.14 cannot be installed on the build machine); 3.13 is a supported Lambda runtime."
)
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


# Lambda stops a chain of requests at "approximately 16" invocations (recursive loop detection, which covers
# functions invoking each other or themselves). A chain longer than half of that is allowed explicitly.
LOOP_DETECTION_SAFE_CHAIN = 8


def number_text(value: float) -> str:
    """A number as the function's settings read it back exactly: '18' for 18.0, else the shortest round-trip form."""
    return str(int(value)) if value.is_integer() else repr(value)


def function_environment(config: ArchiverConfig, storage: Storage) -> dict[str, str]:
    """The scheduled function's environment; the consumer's is this plus its own keys."""
    source_regions = ",".join(config.source_regions) if config.source_regions else Aws.REGION
    return {
        "ARCHIVE_TABLE_NAME": storage.table.table_name,
        "ARCHIVE_BUCKET_NAME": storage.archive_bucket.bucket_name,
        "ARCHIVE_PREFIX": config.record_prefix,
        "STATS_PREFIX": config.stats_prefix,
        "SOURCE_REGIONS": source_regions,
        "KEEP_ENVIRONMENT_VARIABLE_VALUES": str(config.keep_environment_variable_values).lower(),
        "KEEP_LAUNCH_ARGUMENT_VALUES": str(config.keep_launch_argument_values).lower(),
        "TIME_BUDGET_MARGIN_SECONDS": str(config.time_budget_margin_seconds),
        "LIST_RATE_PER_SECOND": number_text(config.list_rate_per_second),
        "GET_RATE_PER_SECOND": number_text(config.get_rate_per_second),
        "MAX_CONCURRENCY": str(config.max_concurrency),
        "MAX_CONTINUATIONS": str(config.max_continuations),
        "POWERTOOLS_SERVICE_NAME": telemetry.SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": telemetry.NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": config.log_level,
    }


def log_group_name(config: ArchiverConfig, function: str) -> str:
    """A function's log group name, fixed so the archive key's policy can name the group (a generated name
    would be a cycle: key policy -> log group -> key)."""
    return f"/gameliftstreams-archiver/{config.stack_name}/{function}"


def log_group_arn(stack: Stack, name: str) -> str:
    """The log group's ARN as CloudWatch Logs passes it in the encryption context (no trailing ':*')."""
    return stack.format_arn(
        service="logs", resource="log-group", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
    )


def function_log_group(
    scope: Construct, construct_id: str, config: ArchiverConfig, storage: Storage, function: str
) -> logs.LogGroup:
    """A function's own log group: the configured retention, the data removal policy, and the archive key.

    The key only when the stack owns it: CloudWatch Logs can use a key only if the key's policy names it, and an
    imported key's policy is the operator's (a group associated with a key that does not allow Logs fails the
    deployment); then the group keeps CloudWatch Logs' own encryption.
    """
    name = log_group_name(config, function)
    key = storage.key
    if key.owned:
        key.allow(
            f"LogsEncryptsThe{function.capitalize()}LogGroup",
            iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com"),
            LOGS_KEY_ACTIONS,
            conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn(Stack.of(scope), name)}},
        )
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=RETENTION[config.log_retention_days],
        encryption_key=key.key if key.owned else None,
        removal_policy=removal_policy(config),
    )


@jsii.implements(lambda_.IDestination)
class SendOnlyQueueDestination:
    """The failed-runs queue as the function's on-failure destination: sqs:SendMessage on it, nothing more.

    Not `aws_lambda_destinations.SqsDestination`: its grant adds GetQueueAttributes/GetQueueUrl and, on a
    KMS-encrypted queue, `kms:ReEncrypt*`/`kms:GenerateDataKey*` wildcards to the role; the key use it needs is
    granted by `ArchiveKey.allow` instead (through SQS only).
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self, scope: Construct, fn: lambda_.IFunction, *, type: lambda_.DestinationType
    ) -> lambda_.DestinationConfig:
        """Called by the function's EventInvokeConfig: the role's grant, and the destination's ARN."""
        self._queue.grant(fn, "sqs:SendMessage")
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


def grant_archiving(
    role: iam.Role, log_group: logs.ILogGroup, config: ArchiverConfig, storage: Storage, function: str
) -> None:
    """What archiving one session needs, for either function: explicit statements, each naming its actions
    (no wildcard action), on resources as narrow as IAM allows; each exception acknowledged for cdk-nag.
    `function` ('reconciler', 'consumer') names the function's statements in the archive key's policy."""
    stack = Stack.of(role)
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    regions = config.source_regions or (Aws.REGION,)
    role.add_to_policy(
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
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ReadWriteLedger",
            actions=["dynamodb:BatchGetItem", "dynamodb:PutItem"],
            resources=[storage.table.table_arn],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteAndReadBackRecords",
            # GetObject only to read back the record another writer stored first (412 on the conditional put).
            actions=["s3:PutObject", "s3:GetObject"],
            resources=[storage.records_arn_pattern],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteAndReadBackStatsObjects",
            # The same write-once put as a record's (If-None-Match: *), and the same read-back after a 412.
            actions=["s3:PutObject", "s3:GetObject"],
            resources=[storage.archive_bucket.arn_for_objects(f"{config.stats_prefix}*")],
        )
    )
    grant_export_reads(role, config)
    # Not "encrypt only", which the issue asked for: a write-once put that gets 412 reads the stored record back
    # (s3:GetObject of an SSE-KMS object is kms:Decrypt through S3), and DynamoDB decrypts the table key with the
    # caller's permission on every first access, reads (BatchGetItem of the ledger) and writes alike. So: the
    # data key for new records (GenerateDataKey) and Decrypt, each only through the one service that needs it.
    who = function.capitalize()
    storage.key.allow(
        f"{who}WritesAndReadsBackRecordsThroughS3", role, ("kms:GenerateDataKey", "kms:Decrypt"), via_services=["s3"]
    )
    storage.key.allow(f"{who}UsesTheLedgerThroughDynamoDB", role, ("kms:Decrypt",), via_services=["dynamodb"])
    for region in config.source_regions or ("<AWS::Region>",):
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:gameliftstreams:{region}:<AWS::AccountId>:streamgroup/*]",
            "GetStreamSession is authorized on the stream group, and the archiver must read sessions of every "
            "stream group of the account in this Region (groups come and go); scoped to account and Region.",
        )
    bucket = storage.archive_bucket.node.default_child
    assert isinstance(bucket, CfnElement)
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{arn_of(bucket)}/{config.record_prefix}*]",
        "s3:PutObject and s3:GetObject only, only under the record prefix: one object per session, whose key is "
        "not known until the session is archived; GetObject reads back a record another writer stored first.",
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{arn_of(bucket)}/{config.stats_prefix}*]",
        "s3:PutObject and s3:GetObject only, only under the stats prefix: one stats object per session, whose key "
        "is not known until the session is archived; GetObject reads back an object another writer stored first.",
    )


def export_object_arn(location: rules.ExportLocation) -> str:
    """The ARN pattern of every object under an export location: `arn:<partition>:s3:::<bucket>/<prefix>*`."""
    return f"arn:{Aws.PARTITION}:s3:::{location.bucket}/{location.prefix}*"


def grant_export_reads(role: iam.Role, config: ArchiverConfig) -> None:
    """Reading the exported ZIPs (ranged GETs of the tail, the central directory and the stats member) under each
    configured export location, and listing only those prefixes, so that a missing ZIP is NoSuchKey (404), not
    AccessDenied (S3 answers 403 for a missing key to a caller who may not list). Without export_locations there
    is nothing to name here: the operator grants the read on the export bucket (docs/DEPLOY.md, "Reading the
    exported ZIPs"), and a denied read is counted and recorded, the record kept."""
    if not config.export_locations:
        return
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ReadExportedZips",
            actions=["s3:GetObject"],
            resources=[export_object_arn(location) for location in config.export_locations],
        )
    )
    buckets: dict[str, list[str]] = {}
    for location in config.export_locations:
        buckets.setdefault(location.bucket, []).append(location.prefix)
    for index, (bucket, prefixes) in enumerate(buckets.items(), start=1):
        whole = "" in prefixes  # the whole bucket: no s3:prefix to match (a listing without one too)
        role.add_to_policy(
            iam.PolicyStatement(
                sid=f"ListExportLocations{index}",
                actions=["s3:ListBucket"],
                resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}"],
                conditions=None if whole else {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
            )
        )
    for location in config.export_locations:
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{location.bucket}/{location.prefix}*]",
            "s3:GetObject only, only under a configured export location (export_locations): the exported ZIPs' "
            "keys are the service's, not known in advance; read by ranges, never written.",
        )


class Archiver(Construct):
    """The scheduled archiver: one run at a time (reserved concurrency 1), failures to an encrypted queue."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ArchiverConfig, storage: Storage) -> None:
        super().__init__(scope, construct_id)
        period = Duration.minutes(config.schedule_minutes)
        # An invocation older than one period is superseded by the next scheduled run; never run it late.
        max_event_age = Duration.seconds(min(max(config.schedule_minutes * 60, 60), 6 * 3600))
        self.environment = function_environment(config, storage)
        # One asset for both functions (the event consumer is another handler in the same package).
        self.code = lambda_code(LAMBDAS_DIR, RUNTIME, ARCHITECTURE)

        # Failed runs (after Lambda's async retry) and undeliverable schedules land here, for inspection.
        # Encrypted with the archive key: a failed run's event is the continuation event (a listing position).
        self.failure_queue = sqs.Queue(
            self,
            "FailedRunsQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=storage.encryption_key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.failure_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination of the archiver (Lambda on-failure destination "
            "and Scheduler dead-letter queue); a queue for its own failures would never be read.",
        )

        self.log_group = function_log_group(self, "FunctionLogGroup", config, storage, "reconciler")

        self.role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="GameLift Streams session archiver: list/get sessions, write records and ledger, logs.",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListSessionsOfAccount",
                # This action has no resource type in IAM: "*" is the only possible resource; the Regions it
                # may be called in are the source Regions only.
                actions=["gameliftstreams:ListStreamSessionsByAccount"],
                resources=["*"],
                conditions={"StringEquals": {"aws:RequestedRegion": list(config.source_regions or (Aws.REGION,))}},
            )
        )
        grant_archiving(self.role, self.log_group, config, storage, "reconciler")
        # Lambda sends a failed invocation to the on-failure destination with the function's role.
        storage.key.allow("ReconcilerSendsFailedRunsThroughSQS", self.role, SQS_SEND_KEY_ACTIONS, via_services=["sqs"])
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only for actions IAM cannot scope to a resource: gameliftstreams:ListStreamSessionsByAccount (no "
            "resource type in the service authorization reference) and X-Ray's PutTraceSegments/PutTelemetryRecords "
            "(added by active tracing). Every action is named; no action wildcard.",
        )

        self.max_continuations = config.max_continuations
        self.function = lambda_.Function(
            self,
            "Function",
            description="Archives Amazon GameLift Streams sessions with exported files into S3 and DynamoDB.",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=self.code,
            memory_size=config.lambda_memory_mb,
            timeout=Duration.seconds(config.lambda_timeout_seconds),
            reserved_concurrent_executions=1,  # runs never overlap
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            on_failure=SendOnlyQueueDestination(self.failure_queue),
            # One retry absorbs a transient failure within the same period; the next schedule is the rest.
            retry_attempts=1,
            max_event_age=max_event_age,
            # A chain of follow-ups is bounded by MAX_CONTINUATIONS (and runs one at a time); Lambda's own
            # loop detection would stop a longer chain at ~16 invocations and lose the run's position.
            recursive_loop=(
                lambda_.RecursiveLoop.ALLOW if 1 + self.max_continuations > LOOP_DETECTION_SAFE_CHAIN else None
            ),
            environment=self.environment,
        )
        acknowledge(self.function, "AwsSolutions-L1", RUNTIME_REASON)
        # The follow-up invocation: on this function only (unqualified ARN, what the schedule invokes). A
        # policy of its own, not the role's default policy, which the function depends on (a cycle otherwise).
        self.self_invoke_policy = iam.Policy(
            self,
            "ContinuePolicy",
            statements=[
                iam.PolicyStatement(
                    sid="ContinueListingInAFollowUp",
                    actions=["lambda:InvokeFunction"],
                    resources=[self.function.function_arn],
                )
            ],
            roles=[self.role],
        )

        # The stack's own schedule group, holding its schedule alone: the account's `default` group holds
        # every other schedule of the account (Region) too, and a trust policy naming it would let any of them
        # use this role. It holds no data: it goes with the stack (deleting a group deletes its schedules).
        self.schedule_group = scheduler.ScheduleGroup(self, "ScheduleGroup", removal_policy=RemovalPolicy.DESTROY)
        # Our own role (rather than the one LambdaInvoke would create at stack level), trusted only by
        # EventBridge Scheduler acting for this account; LambdaInvoke adds the invoke and queue permissions.
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            # Both source conditions, as EventBridge Scheduler's guide advises against the confused deputy:
            # this account, and the schedule group this stack's schedule is in (the stack's own group).
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnEquals": {"aws:SourceArn": self.schedule_group.schedule_group_arn},
                },
            ),
            description="Lets EventBridge Scheduler invoke the GameLift Streams session archiver.",
        )
        # Scheduler sends an undeliverable run to its dead-letter queue (the failed-runs queue) with this role.
        storage.key.allow(
            "SchedulerSendsUndeliveredRunsThroughSQS", self.schedule_role, SQS_SEND_KEY_ACTIONS, via_services=["sqs"]
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description=f"Runs the GameLift Streams session archiver every {period_text(config.schedule_minutes)}.",
            schedule=scheduler.ScheduleExpression.rate(period),
            schedule_group=self.schedule_group,
            target=targets.LambdaInvoke(
                self.function,
                dead_letter_queue=self.failure_queue,
                role=self.schedule_role,
                retry_attempts=2,
                max_event_age=max_event_age,
            ),
        )
        # No run before it may continue itself.
        self.schedule.node.add_dependency(self.self_invoke_policy)
        self.schedule_period = period
        function = self.function.node.default_child
        assert isinstance(function, CfnElement)
        acknowledge(
            self.schedule_role,
            f"AwsSolutions-IAM5[Resource::{arn_of(function)}:*]",
            "lambda:InvokeFunction on this one function and its versions/aliases (`<function arn>:*`), as "
            "the CDK's grantInvoke writes it; no other function can be invoked.",
        )


def period_text(minutes: int) -> str:
    """'15 minutes', '6 hours', '1 hour', '90 minutes': the schedule period as people say it."""
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"

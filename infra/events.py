"""The event-driven path: export ZIP created in S3 -> EventBridge rule -> SQS queue -> the consumer function.

Built only with `export_locations`. The rule's pattern is `archiver.exports.event_pattern`, the same one the
local stack installs, so what matches here is what the tests deliver there. The queue decouples S3's bursts
from GetStreamSession's quota: the event source mapping's maximum concurrency bounds the consumers, and
their pace (GET_RATE_PER_SECOND) is the consumers' share split over that many instances. A message whose
export is still PENDING comes back after the visibility timeout, a bounded number of times (the consumer then
leaves it to the reconciler); the dead-letter queue takes what fails more often than that, so nothing cycles
forever. The consumer's role may list nothing and read nothing from the export buckets: the key is the event.
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct

from archiver import exports, rules
from infra.archiver import (
    ARCHITECTURE,
    RUNTIME,
    RUNTIME_REASON,
    SQS_SEND_KEY_ACTIONS,
    Archiver,
    function_log_group,
    grant_archiving,
    number_text,
)
from infra.config import ArchiverConfig
from infra.nag import acknowledge
from infra.storage import Storage

HANDLER = "archiver.events.handler"
# Short: a batch of at most 10 messages is at most 10 sessions' GetStreamSession + writes. Never less than
# twice the time budget margin the environment passes on, the rule the scheduled function's timeout follows.
CONSUMER_TIMEOUT_SECONDS = 60
# AWS: a queue that invokes Lambda should have a visibility timeout of at least six times the function's timeout.
VISIBILITY_TIMEOUT_FACTOR = 6
# Receives beyond the consumer's own bound on PENDING exports before a message goes to the dead-letter queue.
EXTRA_RECEIVES = rules.EXTRA_RECEIVES
QUEUE_RETENTION = Duration.days(4)
# What Lambda's event source mapping does on the queue with the consumer's role (as SqsEventSource grants it).
CONSUMER_SQS_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
)
DEAD_LETTER_RETENTION = Duration.days(14)


def consumer_timeout_seconds(config: ArchiverConfig) -> int:
    """The consumer's timeout: CONSUMER_TIMEOUT_SECONDS, or twice the inherited time budget margin if longer."""
    return max(CONSUMER_TIMEOUT_SECONDS, 2 * config.time_budget_margin_seconds)


def max_receive_count(config: ArchiverConfig) -> int:
    """Receives before the dead-letter queue: more than the consumer's bound on PENDING, so it decides first."""
    return config.max_pending_receives + EXTRA_RECEIVES


def visibility_timeout_seconds(config: ArchiverConfig) -> int:
    """How long a received message stays hidden: also the wait before a PENDING export is tried again."""
    return VISIBILITY_TIMEOUT_FACTOR * consumer_timeout_seconds(config)


def oldest_expected_age_seconds(config: ArchiverConfig) -> int:
    """The age no message reaches while the consumer keeps up: an export PENDING for every allowed receive
    waits one visibility timeout after each, plus one for its last processing."""
    return (config.max_pending_receives + 1) * visibility_timeout_seconds(config)


def consumer_environment(config: ArchiverConfig, archiver: Archiver) -> dict[str, str]:
    """The scheduled function's environment plus the consumer's own keys (the consumer contract)."""
    return {
        **archiver.environment,
        "EXPORT_LOCATIONS": config.export_locations_text,
        "MAX_PENDING_RECEIVES": str(config.max_pending_receives),
        "GET_RATE_PER_SECOND": number_text(config.consumer_instance_rate_per_second),
    }


@jsii.implements(events.IRuleTarget)
class RuleOnlyQueueTarget:
    """The queue as the rule's target, its policy letting EventBridge send only for this rule (aws:SourceArn).

    Not `aws_events_targets.SqsQueue`: for a KMS-encrypted queue it writes `aws:SourceAccount` instead (to
    avoid a cycle with a key in the same stack), so any rule of the account could send. Here the queue policy
    names the rule, and the key policy names no rule (see ExportEvents), so there is no cycle.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        """Called by `Rule.add_target`: the queue policy statement, and the target's ARN."""
        self._queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheExportRuleSends",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self._queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.rule_ref.rule_arn}},
            )
        )
        return events.RuleTargetConfig(arn=self._queue.queue_arn)


class ExportEvents(Construct):
    """Rule, queue (with dead-letter queue) and consumer function of the event-driven path."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: ArchiverConfig, storage: Storage, archiver: Archiver
    ) -> None:
        super().__init__(scope, construct_id)
        if not config.events_enabled:
            raise ValueError("ExportEvents needs export_locations")
        timeout = Duration.seconds(consumer_timeout_seconds(config))
        # The archive key, like the failed-runs queue (a message holds only an export's bucket and key, but one
        # key for everything the stack stores is simpler to reason about and to review).
        key = storage.encryption_key
        encryption = sqs.QueueEncryption.KMS

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=encryption,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=encryption,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=QUEUE_RETENTION,
            visibility_timeout=Duration.seconds(visibility_timeout_seconds(config)),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=max_receive_count(config), queue=self.dead_letter_queue
            ),
        )

        pattern = exports.event_pattern(config.export_locations)
        self.rule = events.Rule(
            self,
            "ExportCreatedRule",
            description="Amazon GameLift Streams export ZIPs created in the export locations, to the archiver.",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
            ),
        )
        self.rule.add_target(RuleOnlyQueueTarget(self.queue))
        # EventBridge delivers to the encrypted queue as its service principal, which needs the key: the
        # statement EventBridge documents for encrypted SQS targets, without source conditions, because the
        # KMS request made for an EventBridge delivery does not carry aws:SourceArn/aws:SourceAccount (a
        # condition on them would drop every event; the ExportEventsNotDelivered alarm would show it). What
        # bounds it: only this rule may send to the queue (its policy), and the principal can only
        # encrypt/decrypt data keys, never read S3 records or ledger items (those are S3's and DynamoDB's).
        storage.key.allow(
            "EventBridgeDeliversExportEventsToTheQueue",
            iam.ServicePrincipal("events.amazonaws.com"),
            SQS_SEND_KEY_ACTIONS,
        )

        self.log_group = function_log_group(self, "ConsumerLogGroup", config, storage, "consumer")
        self.role = iam.Role(
            self,
            "ConsumerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="GameLift Streams archiver event consumer: get sessions, write records and ledger, logs.",
        )
        grant_archiving(self.role, self.log_group, config, storage, "consumer")
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only X-Ray's PutTraceSegments/PutTelemetryRecords (added by active tracing): X-Ray has no resource "
            "types. Every other action of the consumer names its resource.",
        )

        self.function = lambda_.Function(
            self,
            "Consumer",
            description="Archives an Amazon GameLift Streams session seconds after its export lands in S3.",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=archiver.code,
            memory_size=config.lambda_memory_mb,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            environment=consumer_environment(config, archiver),
        )
        acknowledge(self.function, "AwsSolutions-L1", RUNTIME_REASON)
        # The mapping SqsEventSource would make, with its SQS grant but without its unconditioned kms:Decrypt:
        # the consumer decrypts queue messages through SQS only.
        self.queue.grant(self.role, *CONSUMER_SQS_ACTIONS)
        storage.key.allow("ConsumerReceivesExportEventsThroughSQS", self.role, ("kms:Decrypt",), via_services=["sqs"])
        self.function.add_event_source_mapping(
            "SqsEventSource",
            event_source_arn=self.queue.queue_arn,
            batch_size=config.consumer_batch_size,
            report_batch_item_failures=True,
            max_concurrency=config.consumer_max_concurrency,
        )

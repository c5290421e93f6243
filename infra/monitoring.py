"""Alarms, the alarm topic and the dashboard: how the platform team learns that archiving stopped or failed.

The run metrics come from Powertools Metrics (EMF) in the function, namespace telemetry.NAMESPACE with the
single dimension `service` = telemetry.SERVICE (the consumer has the same environment, so the same namespace
and dimension); the names are imported from `archiver.telemetry` so the alarms watch exactly what the code emits.

The scheduled run's alarms use the schedule period; the event-driven path's use EVENTS_PERIOD, because its
point is minutes, not the reconcile period of hours.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from archiver import telemetry
from infra.archiver import Archiver
from infra.config import ArchiverConfig
from infra.events import ExportEvents, oldest_expected_age_seconds

EVENTS_PERIOD = Duration.minutes(5)


def run_metric(name: str, period: Duration, statistic: str = "Sum") -> cloudwatch.Metric:
    """One of the archiver's own metrics, as Powertools emits it."""
    return cloudwatch.Metric(
        namespace=telemetry.NAMESPACE,
        metric_name=name,
        dimensions_map={"service": telemetry.SERVICE},
        statistic=statistic,
        period=period,
    )


def alarm_source_conditions() -> dict[str, dict[str, str]]:
    """The alarms allowed to publish (topic policy) and to use the topic's key (key policy): this account's,
    in this Region."""
    return {
        "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"},
        "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
    }


def function_widget(title: str, function: lambda_.IFunction, period: Duration) -> cloudwatch.GraphWidget:
    """A function's invocations, errors and throttles (sums), and its longest duration."""
    return cloudwatch.GraphWidget(
        title=title,
        left=[
            function.metric_invocations(period=period, statistic="Sum"),
            function.metric_errors(period=period, statistic="Sum"),
            function.metric_throttles(period=period, statistic="Sum"),
        ],
        right=[function.metric_duration(period=period, statistic="Maximum")],
        width=12,
    )


class Monitoring(Construct):
    """Alarms (errors, failed-run queue, failed sessions, no successful run, unreadable export ZIPs; throttles
    while a run cannot continue itself; the consumer's errors, queue age, dead letters and undelivered events) and
    a dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ArchiverConfig,
        archiver: Archiver,
        events: ExportEvents | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        period = Duration.minutes(config.schedule_minutes)
        function = archiver.function

        # CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key, so the topic gets
        # its own customer managed key that lets CloudWatch (and only it, besides the account) use it.
        self.topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the GameLift Streams archiver alarm topic.",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # Only for alarms of this account and Region (the confused deputy: another account's alarm naming this
        # topic). SNS documents aws:SourceArn/aws:SourceAccount for service principals publishing to encrypted
        # topics, with EventBridge as the exception that does not pass them; CloudWatch alarms do.
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseTheKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions=alarm_source_conditions(),
            )
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="GameLift Streams archiver alarms",
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=alarm_source_conditions(),
            )
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._alarm(
            "FunctionErrors",
            function.metric_errors(period=period, statistic="Sum"),
            "The archiver function failed (error or timeout). See its log group and the failed-runs queue.",
        )
        if archiver.max_continuations == 0:
            # With follow-ups, a throttle is the design: the follow-up waits behind the run that invoked it.
            # An invocation that waits longer than a period is dropped to the failed-runs queue (alarmed below).
            self._alarm(
                "FunctionThrottles",
                function.metric_throttles(period=period, statistic="Sum"),
                "An archiver invocation was throttled: a run was still going when the next was due (reserved "
                "concurrency 1). Runs may be too long for the schedule.",
            )
        self._alarm(
            "FailedRunsQueueNotEmpty",
            archiver.failure_queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
            "Failed archiver invocations or undeliverable schedules are waiting in the failed-runs queue.",
        )
        self._alarm(
            "SessionsFailed",
            run_metric(telemetry.FAILED, period),
            "A run could not archive some sessions; they are retried on the next run. See the function's logs.",
        )
        self._alarm(
            "NoSuccessfulRun",
            run_metric(telemetry.RUN_COMPLETED, period),
            f"No archiver run completed in two schedule periods ({2 * config.schedule_minutes} minutes): "
            "the schedule, the function or its permissions are broken.",
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            threshold=1,
            evaluation_periods=2,
            missing=cloudwatch.TreatMissingData.BREACHING,
        )

        # Both functions read the export ZIPs; with events the consumer reads them minutes after they land, so
        # the alarm looks at 5 minutes then, not at the reconcile period of hours.
        self._alarm(
            "ExportsUnreadable",
            run_metric(telemetry.EXPORTS_UNREADABLE, EVENTS_PERIOD if events is not None else period),
            "A session's exported ZIP could not be read (OutputUri not S3, ZIP or bucket missing, or access denied): "
            "the record is archived without its stats, export_read_status says why. Check the functions' read "
            "access to the export bucket (docs/DEPLOY.md, Reading the exported ZIPs).",
        )

        event_rows = self._events(config, events) if events is not None else []

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.days(1),
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title="Sessions per run",
                        left=[run_metric(name, period) for name in telemetry.COUNTERS],
                        width=12,
                        stacked=False,
                    ),
                    cloudwatch.GraphWidget(
                        title="Runs completed and continued, run duration",
                        left=[run_metric(telemetry.RUN_COMPLETED, period), run_metric(telemetry.RUN_CONTINUED, period)],
                        right=[
                            run_metric(telemetry.RUN_DURATION, period, "Maximum"),
                            run_metric(telemetry.RUN_DURATION, period, "Average"),
                        ],
                        width=12,
                    ),
                ],
                [
                    function_widget("Function invocations, errors, throttles", function, period),
                    cloudwatch.GraphWidget(
                        title="Failed-runs queue",
                        left=[
                            archiver.failure_queue.metric_approximate_number_of_messages_visible(
                                period=period, statistic="Maximum"
                            )
                        ],
                        width=12,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Export ZIPs read and unreadable, stats stored, truncated, absent, failed",
                        left=[
                            run_metric(name, period)
                            for name in telemetry.EXPORT_FIELDS
                            if name != telemetry.EXPORT_BYTES_READ
                        ],
                        width=12,
                        stacked=False,
                    ),
                    cloudwatch.GraphWidget(
                        title="Export ZIP bytes read (ranged GETs)",
                        left=[run_metric(telemetry.EXPORT_BYTES_READ, period)],
                        width=12,
                    ),
                ],
                *event_rows,
                [
                    cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=4),
                ],
            ],
        )

    def _events(self, config: ArchiverConfig, events: ExportEvents) -> list[list[cloudwatch.IWidget]]:
        """The event-driven path's alarms, and its dashboard rows."""
        consumer = events.function
        queue_age = events.queue.metric_approximate_age_of_oldest_message(period=EVENTS_PERIOD, statistic="Maximum")
        dead_letters = events.dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=EVENTS_PERIOD, statistic="Maximum"
        )
        undelivered = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="FailedInvocations",
            dimensions_map={"RuleName": events.rule.rule_name},
            statistic="Sum",
            period=EVENTS_PERIOD,
        )
        self._alarm(
            "ConsumerErrors",
            consumer.metric_errors(period=EVENTS_PERIOD, statistic="Sum"),
            "The export event consumer failed a whole batch (error or timeout); its messages come back and, "
            "after too many receives, go to the dead-letter queue. See the consumer's log group.",
        )
        oldest = oldest_expected_age_seconds(config)
        self._alarm(
            "ExportEventsQueueBehind",
            queue_age,
            f"An export event has waited more than {oldest} s in the queue: longer than an export still PENDING "
            "is redelivered. The consumer is failing, throttled or behind a burst; sessions wait for it or for "
            "the reconciler.",
            threshold=oldest,
        )
        self._alarm(
            "ExportEventsDeadLettered",
            dead_letters,
            "Export events the consumer failed on too many times are in the dead-letter queue. The reconciler "
            "archives their sessions; read the messages and the consumer's logs, then purge.",
        )
        self._alarm(
            "ExportEventsNotDelivered",
            undelivered,
            "EventBridge could not deliver export events to the queue (for example a KMS key policy that does "
            "not let EventBridge use the queue's key). The reconciler archives those sessions.",
        )
        outcomes = [run_metric(name, EVENTS_PERIOD) for name in telemetry.EVENT_OUTCOMES]
        return [
            [
                cloudwatch.GraphWidget(title="Export events per outcome", left=outcomes, width=12, stacked=False),
                cloudwatch.GraphWidget(
                    title="Export events unmatched and left to reconcile",
                    left=[
                        run_metric(telemetry.EVENTS_UNMATCHED, EVENTS_PERIOD),
                        run_metric(telemetry.EVENTS_LEFT_TO_RECONCILE, EVENTS_PERIOD),
                    ],
                    width=12,
                ),
            ],
            [
                function_widget("Consumer invocations, errors, throttles", consumer, EVENTS_PERIOD),
                cloudwatch.GraphWidget(
                    title="Export events queue: oldest message (s), dead letters, undelivered",
                    left=[queue_age],
                    right=[
                        events.queue.metric_approximate_number_of_messages_visible(
                            period=EVENTS_PERIOD, statistic="Maximum"
                        ),
                        dead_letters,
                        undelivered,
                    ],
                    width=12,
                ),
            ],
        ]

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        description: str,
        *,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        threshold: float = 0,
        evaluation_periods: int = 1,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        """An alarm (default: any count above 0) that notifies the topic when it fires and when it recovers."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=missing,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms[construct_id] = alarm
        return alarm

    @property
    def dashboard_url(self) -> str:
        """Console link to the dashboard (commercial partition console)."""
        return (
            f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards/dashboard/{self.dashboard.dashboard_name}"
        )

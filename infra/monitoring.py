"""Alarms, the alarm topic and the dashboard: how the platform team learns that archiving stopped or failed.

The run metrics come from Powertools Metrics (EMF) in the function, namespace telemetry.NAMESPACE with the
single dimension `service` = telemetry.SERVICE; the names are imported from `archiver.telemetry` so the
alarms watch exactly what the code emits.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from archiver import telemetry
from infra.archiver import Archiver
from infra.config import ArchiverConfig


def run_metric(name: str, period: Duration, statistic: str = "Sum") -> cloudwatch.Metric:
    """One of the archiver's own metrics, as Powertools emits it."""
    return cloudwatch.Metric(
        namespace=telemetry.NAMESPACE,
        metric_name=name,
        dimensions_map={"service": telemetry.SERVICE},
        statistic=statistic,
        period=period,
    )


class Monitoring(Construct):
    """Five alarms (errors, throttles, failed-run queue, failed sessions, no successful run) and a dashboard."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ArchiverConfig, archiver: Archiver) -> None:
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
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseTheKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" is this key
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
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
                    },
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
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
                        title="Runs completed and run duration",
                        left=[run_metric(telemetry.RUN_COMPLETED, period)],
                        right=[
                            run_metric(telemetry.RUN_DURATION, period, "Maximum"),
                            run_metric(telemetry.RUN_DURATION, period, "Average"),
                        ],
                        width=12,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Function invocations, errors, throttles",
                        left=[
                            function.metric_invocations(period=period, statistic="Sum"),
                            function.metric_errors(period=period, statistic="Sum"),
                            function.metric_throttles(period=period, statistic="Sum"),
                        ],
                        right=[function.metric_duration(period=period, statistic="Maximum")],
                        width=12,
                    ),
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
                    cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=4),
                ],
            ],
        )

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

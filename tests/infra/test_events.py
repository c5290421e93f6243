"""The event-driven path in the template: rule -> encrypted queue (with dead-letter queue) -> consumer function.

Built only with `export_locations`; without it the stack has none of it (the `default` fixture).
"""

from __future__ import annotations

from typing import Any

from archiver import exports, rules, telemetry
from infra.archiver import HANDLER as SCHEDULED_HANDLER
from infra.events import HANDLER as CONSUMER_HANDLER
from infra.events import ExportEvents
from tests.infra.conftest import EXPORT_LOCATIONS, VARIANT, Built, build
from tests.infra.test_stack import actions_of, only

CONSUMER_SQS_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
}


def resource_id(built: Built, token: str) -> str:
    """The logical ID a `Ref` token resolves to."""
    resolved = built.stack.resolve(token)
    assert isinstance(resolved, dict) and "Ref" in resolved, resolved
    return str(resolved["Ref"])


def arn_id(built: Built, token: str) -> str:
    """The logical ID an `Fn::GetAtt <id>.Arn` token resolves to."""
    resolved = built.stack.resolve(token)
    assert isinstance(resolved, dict) and "Fn::GetAtt" in resolved, resolved
    return str(resolved["Fn::GetAtt"][0])


def resource(built: Built, logical: str) -> dict[str, Any]:
    found: dict[str, Any] = built.json["Resources"][logical]
    return found


def event_path(built: Built) -> ExportEvents:
    assert built.stack.events is not None
    return built.stack.events


def consumer_id(built: Built) -> str:
    return resource_id(built, event_path(built).function.function_name)


def consumer(built: Built) -> dict[str, Any]:
    return resource(built, consumer_id(built))


def scheduled(built: Built) -> dict[str, Any]:
    return resource(built, resource_id(built, built.stack.archiver.function.function_name))


def queue_ids(built: Built) -> tuple[str, str]:
    """(queue, dead-letter queue) logical IDs."""
    return (
        arn_id(built, event_path(built).queue.queue_arn),
        arn_id(built, event_path(built).dead_letter_queue.queue_arn),
    )


def role_statements(built: Built, role_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in built.template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def consumer_statements(built: Built) -> list[dict[str, Any]]:
    role = consumer(built)["Properties"]["Role"]
    return role_statements(built, role["Fn::GetAtt"][0])


# --- Off: the stack as it was ---------------------------------------------------------------------------


def test_without_export_locations_there_is_no_event_path(default: Built) -> None:
    assert default.stack.events is None
    assert not default.template.find_resources("AWS::Events::Rule")
    assert not default.template.find_resources("AWS::Lambda::EventSourceMapping")
    assert len(default.template.find_resources("AWS::Lambda::Function")) == 1  # the scheduled one
    assert len(default.template.find_resources("AWS::SQS::Queue")) == 1  # the failed-runs queue
    handlers = [f["Properties"]["Handler"] for f in default.template.find_resources("AWS::Lambda::Function").values()]
    assert handlers == [SCHEDULED_HANDLER]
    assert "EXPORT_LOCATIONS" not in str(default.json)
    assert not [output for output in default.json["Outputs"] if output.startswith(("Consumer", "ExportEvents"))]


# --- The rule ----------------------------------------------------------------------------------------------


def test_rule_pattern_is_the_shared_export_pattern(events: Built, events_variant: Built) -> None:
    for built in (events, events_variant):
        _, rule = only(built, "AWS::Events::Rule")
        props = rule["Properties"]
        expected = exports.event_pattern(rules.export_locations(EXPORT_LOCATIONS))
        assert props["EventPattern"] == expected
        assert props["EventPattern"]["detail"]["$or"]  # two buckets: one rule, one alternative each
        assert props["State"] == "ENABLED"
        assert "EventBusName" not in props  # the default bus, where S3 sends its events
        queue_id, _ = queue_ids(built)
        assert props["Targets"] == [{"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}, "Id": "Target0"}]


def test_one_location_gives_a_pattern_without_or() -> None:
    built = build({"stack_name": "ArchiverOneLocation", "export_locations": "s3://my-exports/gamelift/"})
    _, rule = only(built, "AWS::Events::Rule")
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["my-exports"]}, "object": {"key": [{"wildcard": "gamelift/*.zip"}]}},
    }


# --- The queues --------------------------------------------------------------------------------------------


def test_queue_is_encrypted_with_a_bounded_redrive_to_a_dead_letter_queue(events: Built) -> None:
    queue_id, dead_id = queue_ids(events)
    queue = resource(events, queue_id)["Properties"]
    dead = resource(events, dead_id)["Properties"]
    key = events.stack.resolve(events.stack.storage.encryption_key.key_arn)
    assert queue["KmsMasterKeyId"] == dead["KmsMasterKeyId"] == key  # the archive key
    assert "SqsManagedSseEnabled" not in queue and "SqsManagedSseEnabled" not in dead
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_id, "Arn"]},
        "maxReceiveCount": 5 + 3,  # more receives than the consumer allows a PENDING export: it decides first
    }
    assert dead["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["MessageRetentionPeriod"] <= dead["MessageRetentionPeriod"]
    assert queue["VisibilityTimeout"] == 6 * consumer(events)["Properties"]["Timeout"] == 360
    assert "RedrivePolicy" not in dead


def test_queues_use_the_configured_key(events_variant: Built) -> None:
    queue_id, dead_id = queue_ids(events_variant)
    for logical in (queue_id, dead_id):
        props = resource(events_variant, logical)["Properties"]
        assert props["KmsMasterKeyId"] == VARIANT["kms_key_arn"]
        assert "SqsManagedSseEnabled" not in props


def _queue_policy(built: Built, queue_id: str) -> list[dict[str, Any]]:
    policies = [
        policy["Properties"]
        for policy in built.template.find_resources("AWS::SQS::QueuePolicy").values()
        if policy["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    assert len(policies) == 1
    statements: list[dict[str, Any]] = policies[0]["PolicyDocument"]["Statement"]
    return statements


def test_only_the_rule_may_send_to_the_queue(events: Built, events_variant: Built) -> None:
    """Also with a KMS key, where the CDK's own SQS target would condition on the account instead."""
    for built in (events, events_variant):
        queue_id, dead_id = queue_ids(built)
        rule_id, _ = only(built, "AWS::Events::Rule")
        statements = _queue_policy(built, queue_id)
        allows = [statement for statement in statements if statement["Effect"] == "Allow"]
        assert allows == [
            {
                "Sid": "OnlyTheExportRuleSends",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
                "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}},
            }
        ]
        for logical in (queue_id, dead_id):
            assert any(
                statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                for statement in _queue_policy(built, logical)
            )
        assert not [s for s in _queue_policy(built, dead_id) if s["Effect"] == "Allow"]


# --- The consumer --------------------------------------------------------------------------------------------


def test_event_source_mapping(events: Built) -> None:
    _, mapping = only(events, "AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]
    queue_id, _ = queue_ids(events)
    assert props == {
        "BatchSize": 10,
        "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
        "FunctionName": {"Ref": consumer_id(events)},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 2},
    }  # and no MaximumBatchingWindowInSeconds: a message is handed over as soon as it arrives


def test_consumer_is_the_same_asset_with_its_own_handler_and_log_group(events: Built) -> None:
    props = consumer(events)["Properties"]
    reconciler = scheduled(events)["Properties"]
    assert props["Handler"] == CONSUMER_HANDLER == "archiver.events.handler"
    for key in ("Runtime", "Architectures", "Code", "MemorySize", "TracingConfig"):
        assert props[key] == reconciler[key], key
    assert props["Timeout"] == 60
    assert "ReservedConcurrentExecutions" not in props  # the mapping's maximum concurrency bounds it
    group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert group != reconciler["LoggingConfig"]["LogGroup"]["Ref"]
    assert resource(events, group)["Properties"]["RetentionInDays"] == 90
    assert props["Role"] != reconciler["Role"]


def test_consumer_environment_is_the_scheduled_one_plus_its_own(events: Built, events_variant: Built) -> None:
    for built, per_instance in ((events, "2"), (events_variant, "2")):
        env = consumer(built)["Properties"]["Environment"]["Variables"]
        base = scheduled(built)["Properties"]["Environment"]["Variables"]
        own = {"EXPORT_LOCATIONS", "MAX_PENDING_RECEIVES", "GET_RATE_PER_SECOND"}
        assert set(env) == set(base) | own
        assert {key: env[key] for key in base if key not in own} == {key: base[key] for key in base if key not in own}
        assert rules.export_locations(env["EXPORT_LOCATIONS"]) == rules.export_locations(EXPORT_LOCATIONS)
        assert env["EXPORT_LOCATIONS"] == EXPORT_LOCATIONS
        assert env["MAX_PENDING_RECEIVES"] == "5"
        # 4/s for all consumer instances together, over at most 2 instances.
        assert env["GET_RATE_PER_SECOND"] == per_instance
        assert rules.RATE_PER_SECOND.parse(env["GET_RATE_PER_SECOND"]) == 2


def test_scheduled_function_reconciles_every_six_hours_at_its_share_of_the_quota(events: Built) -> None:
    env = scheduled(events)["Properties"]["Environment"]["Variables"]
    assert env["GET_RATE_PER_SECOND"] == "14"  # 14 + 4 under the 20/s quota
    assert env["MAX_CONTINUATIONS"] == "71"  # 6 hours of 300 s runs, less the first
    assert "EXPORT_LOCATIONS" not in env
    assert scheduled(events)["Properties"]["RecursiveLoop"] == "Allow"
    _, schedule = only(events, "AWS::Scheduler::Schedule")
    assert schedule["Properties"]["ScheduleExpression"] == "rate(6 hours)"
    assert schedule["Properties"]["Description"].endswith("every 6 hours.")
    assert schedule["Properties"]["Target"]["RetryPolicy"]["MaximumEventAgeInSeconds"] == 6 * 3600


def test_consumer_settings_follow_the_context() -> None:
    built = build(
        {
            "stack_name": "ArchiverConsumerSettings",
            "export_locations": "s3://my-exports/",
            "consumer_batch_size": "3",
            "consumer_max_concurrency": "5",
            "consumer_get_rate_per_second": "5",
            "max_pending_receives": "2",
            "time_budget_margin_seconds": "45",
        }
    )
    props = consumer(built)["Properties"]
    env = props["Environment"]["Variables"]
    assert (env["GET_RATE_PER_SECOND"], env["MAX_PENDING_RECEIVES"]) == ("1", "2")
    assert props["Timeout"] == 90  # twice the inherited margin, so the consumer keeps time to work
    _, mapping = only(built, "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["BatchSize"] == 3
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}
    queue_id, _ = queue_ids(built)
    queue = resource(built, queue_id)["Properties"]
    assert queue["VisibilityTimeout"] == 6 * 90
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 2 + 3


def test_consumer_role_is_least_privilege(events: Built, events_variant: Built) -> None:
    """No listing of sessions; on the export buckets only reading the export locations' objects: the consumer
    gets each session it is told about and reads its ZIP."""
    expected = {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "gameliftstreams:GetStreamSession",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListBucket",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        *CONSUMER_SQS_ACTIONS,
    }
    # The stack's key names the consumer in its key policy; an imported key gets identity grants through
    # S3, DynamoDB and SQS (tests/infra/test_encryption.py checks which).
    kms = {"kms:Decrypt", "kms:GenerateDataKey"}
    for built, allowed in ((events, expected), (events_variant, expected | kms)):
        statements = consumer_statements(built)
        actions = {action for statement in statements for action in actions_of(statement)}
        assert actions == allowed
        assert "gameliftstreams:ListStreamSessionsByAccount" not in actions
        assert not any(action.startswith("lambda:") for action in actions)
        bucket_id = built.stack.resolve(built.stack.storage.archive_bucket.bucket_name)["Ref"]
        config = built.stack.config
        s3 = {s["Sid"]: s for s in statements if any(a.startswith("s3:") for a in actions_of(s))}
        assert s3 == export_read_statements(built) | {
            sid: {
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Effect": "Allow",
                "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, f"/{prefix}*"]]},
                "Sid": sid,
            }
            for sid, prefix in (
                ("WriteAndReadBackRecords", config.record_prefix),
                ("WriteAndReadBackStatsObjects", config.stats_prefix),
            )
        }
        queue_id, _ = queue_ids(built)
        sqs = [statement for statement in statements if any(a.startswith("sqs:") for a in actions_of(statement))]
        assert [statement["Resource"] for statement in sqs] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
        assert not [s for s in statements if "kms:Decrypt" in actions_of(s) and "Condition" not in s]


def export_object(bucket_and_prefix: str) -> dict[str, Any]:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{bucket_and_prefix}"]]}


def export_read_statements(built: Built) -> dict[str, dict[str, Any]]:
    """What either function may do on the export buckets of EXPORT_LOCATIONS: GetObject under each location."""
    assert built.stack.config.export_locations == rules.export_locations(EXPORT_LOCATIONS)
    return {
        "ReadExportedZips": {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Resource": [
                export_object(f"{b}*") for b in ("my-exports/gamelift/", "my-exports/more/", "other-exports/")
            ],
            "Sid": "ReadExportedZips",
        },
        "ListExportLocations1": {
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": ["gamelift/*", "more/*"]}},
            "Effect": "Allow",
            "Resource": export_object("my-exports"),
            "Sid": "ListExportLocations1",
        },
        "ListExportLocations2": {
            "Action": "s3:ListBucket",
            "Effect": "Allow",
            "Resource": export_object("other-exports"),
            "Sid": "ListExportLocations2",
        },
    }


def test_reconciler_role_keeps_its_own_grants_with_events(events: Built) -> None:
    role = scheduled(events)["Properties"]["Role"]["Fn::GetAtt"][0]
    actions = {action for statement in role_statements(events, role) for action in actions_of(statement)}
    assert {"gameliftstreams:ListStreamSessionsByAccount", "lambda:InvokeFunction", "s3:GetObject"} <= actions
    assert not actions & CONSUMER_SQS_ACTIONS - {"sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    # Both functions read the ZIPs of the sessions they archive: the same reads of the export locations.
    statements = {s["Sid"]: s for s in role_statements(events, role) if "Sid" in s}
    assert {sid: statements[sid] for sid in export_read_statements(events)} == export_read_statements(events)


# --- Monitoring and outputs ----------------------------------------------------------------------------------


def _alarm(built: Built, fragment: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        alarm["Properties"]
        for alarm_id, alarm in built.template.find_resources("AWS::CloudWatch::Alarm").items()
        if fragment in alarm_id
    ]
    assert len(found) == 1, fragment
    return found[0]


def test_alarms_watch_the_consumer_the_queues_and_the_rule(events: Built) -> None:
    queue_id, dead_id = queue_ids(events)
    rule_id, _ = only(events, "AWS::Events::Rule")

    errors = _alarm(events, "ConsumerErrors")
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": consumer_id(events)}}]

    behind = _alarm(events, "ExportEventsQueueBehind")
    assert (behind["Namespace"], behind["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert behind["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    # Longer than a PENDING export legitimately waits: a visibility timeout after each allowed receive, plus one.
    assert behind["Threshold"] == (5 + 1) * 360
    assert behind["Statistic"] == "Maximum"

    dead = _alarm(events, "ExportEventsDeadLettered")
    assert (dead["MetricName"], dead["Threshold"], dead["ComparisonOperator"]) == (
        "ApproximateNumberOfMessagesVisible",
        0,
        "GreaterThanThreshold",
    )
    assert dead["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_id, "QueueName"]}}]

    undelivered = _alarm(events, "ExportEventsNotDelivered")
    assert (undelivered["Namespace"], undelivered["MetricName"]) == ("AWS/Events", "FailedInvocations")
    assert undelivered["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule_id}}]

    unreadable = _alarm(events, "ExportsUnreadable")  # the consumer reads ZIPs minutes after they land
    for props in (errors, behind, dead, undelivered, unreadable):
        assert props["Period"] == 300  # minutes, not the 6-hour reconcile period
    topic_id, _ = only(events, "AWS::SNS::Topic")
    for alarm in events.template.find_resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    # The reconciler's alarms use its period: "no successful run" after two of them.
    stale = _alarm(events, "NoSuccessfulRun")
    assert stale["Period"] * stale["EvaluationPeriods"] == 2 * 6 * 3600


def test_dashboard_shows_the_consumer_outcomes(events: Built) -> None:
    _, dashboard = only(events, "AWS::CloudWatch::Dashboard")
    body = str(events.stack.resolve(dashboard["Properties"]["DashboardBody"]))
    for name in telemetry.EVENT_OUTCOMES:
        assert name in body
    # The two the issue asks to see on their own: events no session matched, and those left to the reconciler.
    widget = body[body.index("Export events unmatched and left to reconcile") :].split("title", maxsplit=1)[0]
    assert telemetry.EVENTS_UNMATCHED in widget and telemetry.EVENTS_LEFT_TO_RECONCILE in widget
    assert "ApproximateAgeOfOldestMessage" in body
    assert "FailedInvocations" in body
    assert telemetry.NAMESPACE in body and telemetry.SERVICE in body


def test_outputs_name_the_event_resources(events: Built) -> None:
    outputs = events.json["Outputs"]
    for name in (
        "ConsumerFunctionName",
        "ExportEventsQueueUrl",
        "ExportEventsDeadLetterQueueUrl",
        "ExportEventsRuleName",
    ):
        assert name in outputs


def test_event_resource_types(events: Built) -> None:
    """The event path adds exactly a rule and an event source mapping to the kinds of the default stack."""
    kinds = {resource["Type"] for resource in events.json["Resources"].values()}
    assert {"AWS::Events::Rule", "AWS::Lambda::EventSourceMapping"} <= kinds
    assert len(events.template.find_resources("AWS::Lambda::Function")) == 2
    assert len(events.template.find_resources("AWS::SQS::Queue")) == 3  # failed runs, events, dead letters

"""Template assertions: each requirement of the deployed stack, checked on the synthesized CloudFormation."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match

from archiver import perfstats, records, telemetry
from infra import queries
from infra.analytics import HIVE_JSON_SERDE, STATS_TABLE_NAME, TABLE_NAME
from infra.archiver import HANDLER, RUNTIME
from tests.infra.conftest import VARIANT, Built


def only(built: Built, kind: str) -> tuple[str, dict[str, Any]]:
    """The single resource of a type, as (logical id, resource)."""
    found = built.template.find_resources(kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    logical, resource = next(iter(found.items()))
    return logical, dict(resource)


def function(built: Built) -> dict[str, Any]:
    """The archiver function resource (the variant also has the CDK's bucket-emptying provider function)."""
    function_id = built.stack.resolve(built.stack.archiver.function.function_name)["Ref"]
    resource: dict[str, Any] = built.json["Resources"][function_id]
    return resource


def logical_id(built: Built, kind: str) -> str:
    """Logical ID of the single resource of a type."""
    return only(built, kind)[0]


def archive_key_arn(built: Built) -> Any:
    """How the template names the archive key's ARN: `Fn::GetAtt` of the stack's key, or the imported ARN."""
    return built.stack.resolve(built.stack.storage.encryption_key.key_arn)


def statements(built: Built, role_fragment: str) -> list[dict[str, Any]]:
    """All statements of the inline policies attached to the role whose logical ID contains the fragment."""
    result: list[dict[str, Any]] = []
    for policy in built.template.find_resources("AWS::IAM::Policy").values():
        roles = [ref["Ref"] for ref in policy["Properties"]["Roles"]]
        if any(role_fragment in role for role in roles):
            result += policy["Properties"]["PolicyDocument"]["Statement"]
    return result


def actions_of(statement: dict[str, Any]) -> list[str]:
    """A statement's actions as a list."""
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


# --- Environment-agnostic -------------------------------------------------------------------------------


def test_environment_agnostic_and_no_lookups(default: Built) -> None:
    assert cdk.Token.is_unresolved(default.stack.account)
    assert cdk.Token.is_unresolved(default.stack.region)
    manifest = json.loads((Path(default.app.synth().directory) / "manifest.json").read_text())
    assert not manifest.get("missing")  # no context lookups that would need credentials
    assert "AWS::CDK::Metadata" not in str(default.json)


# --- Lambda ----------------------------------------------------------------------------------------------


def test_runtime_is_the_tested_python_not_the_newest() -> None:
    """The function runs the Python its package's tests run on (3.13), one below the newest aws-cdk-lib offers."""
    names = [name for name in dir(lambda_.Runtime) if re.fullmatch(r"PYTHON_3_\d+", name)]
    newest = max(int(name.rsplit("_", 1)[1]) for name in names)
    assert RUNTIME.name == "python3.13"
    assert newest >= 13


def test_function(default: Built) -> None:
    _, function = only(default, "AWS::Lambda::Function")
    props = function["Properties"]
    assert props["Runtime"] == RUNTIME.name == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == HANDLER == "archiver.handler.handler"
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Timeout"] == 300
    assert props["MemorySize"] == 512
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": logical_id(default, "AWS::Logs::LogGroup")}}
    # A chain of at most three invocations stays far below where Lambda's loop detection stops one (~16).
    assert "RecursiveLoop" not in props


def test_long_chains_of_follow_ups_are_allowed_explicitly() -> None:
    """Lambda stops a chain of ~16 invocations of functions invoking each other or themselves; a run that
    may chain more follow-ups (6 hours of 300 s runs: 71) must not lose its position to that."""
    from tests.infra.conftest import build

    built = build({"stack_name": "ArchiverLongChain", "schedule_minutes": "360"})
    props = function(built)["Properties"]
    assert props["Environment"]["Variables"]["MAX_CONTINUATIONS"] == "71"
    assert props["RecursiveLoop"] == "Allow"
    assert props["ReservedConcurrentExecutions"] == 1  # the chain's links still run one at a time


def test_function_environment(default: Built, variant: Built) -> None:
    env = only(default, "AWS::Lambda::Function")[1]["Properties"]["Environment"]["Variables"]
    assert env["ARCHIVE_TABLE_NAME"] == {"Ref": logical_id(default, "AWS::DynamoDB::Table")}
    assert env["ARCHIVE_BUCKET_NAME"] == {
        "Ref": default.stack.resolve(default.stack.storage.archive_bucket.bucket_name)["Ref"]
    }
    assert env["ARCHIVE_PREFIX"] == "sessions/"
    assert env["STATS_PREFIX"] == "perf-stats/"
    assert env["SOURCE_REGIONS"] == {"Ref": "AWS::Region"}
    assert env["POWERTOOLS_SERVICE_NAME"] == telemetry.SERVICE
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == telemetry.NAMESPACE
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert env["KEEP_ENVIRONMENT_VARIABLE_VALUES"] == "false"
    assert env["TIME_BUDGET_MARGIN_SECONDS"] == "30"
    assert env["LIST_RATE_PER_SECOND"] == "18"
    assert env["GET_RATE_PER_SECOND"] == "18"
    assert env["MAX_CONCURRENCY"] == "8"
    assert env["MAX_CONTINUATIONS"] == "2"  # 15 minutes / 300 s, less the first run
    assert "EXPORT_LOCATIONS" not in env  # the consumer's, not the reconciler's
    variant_env = function(variant)["Properties"]["Environment"]["Variables"]
    assert variant_env["SOURCE_REGIONS"] == "us-east-2,us-west-2"
    assert variant_env["ARCHIVE_PREFIX"] == "archive/sessions/"
    assert variant_env["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert variant_env["LIST_RATE_PER_SECOND"] == "40"
    assert variant_env["GET_RATE_PER_SECOND"] == "12.5"
    assert variant_env["MAX_CONCURRENCY"] == "16"
    assert variant_env["MAX_CONTINUATIONS"] == "2"  # 30 minutes / 600 s, less the first run
    variant_props = function(variant)["Properties"]
    assert (variant_props["MemorySize"], variant_props["Timeout"]) == (1024, 600)


def test_log_group_retention_and_removal(default: Built, variant: Built) -> None:
    _, group = only(default, "AWS::Logs::LogGroup")
    assert group["Properties"]["RetentionInDays"] == 90
    assert group["DeletionPolicy"] == "Retain"
    _, variant_group = only(variant, "AWS::Logs::LogGroup")
    assert variant_group["Properties"]["RetentionInDays"] == 365
    assert variant_group["DeletionPolicy"] == "Delete"


def test_failed_invocations_go_to_an_encrypted_tls_only_queue(default: Built) -> None:
    queue_id, queue = only(default, "AWS::SQS::Queue")
    assert queue["Properties"]["KmsMasterKeyId"] == archive_key_arn(default)
    assert "SqsManagedSseEnabled" not in queue["Properties"]
    default.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}},
            "MaximumRetryAttempts": 1,
            "MaximumEventAgeInSeconds": 900,
        },
    )
    default.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


# --- Schedule --------------------------------------------------------------------------------------------


def test_schedule(default: Built, variant: Built) -> None:
    queue_id = logical_id(default, "AWS::SQS::Queue")
    function_id = logical_id(default, "AWS::Lambda::Function")
    default.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "rate(15 minutes)",
            "State": "ENABLED",
            "Target": {
                "Arn": {"Fn::GetAtt": [function_id, "Arn"]},
                "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}},
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 900},
            },
        },
    )
    variant.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {"ScheduleExpression": "rate(30 minutes)", "Description": Match.string_like_regexp("every 30 minutes\\.$")},
    )
    default.template.has_resource_properties(
        "AWS::Scheduler::Schedule", {"Description": Match.string_like_regexp("every 15 minutes\\.$")}
    )


def test_no_schedule_before_the_run_may_continue_itself(default: Built) -> None:
    _, schedule = only(default, "AWS::Scheduler::Schedule")
    policy = default.stack.archiver.self_invoke_policy.node.default_child
    assert isinstance(policy, cdk.CfnElement)
    assert default.stack.get_logical_id(policy) in schedule["DependsOn"]


def test_the_schedule_is_in_the_stacks_own_group(default: Built, variant: Built) -> None:
    """Not the account's `default` group, which holds every other schedule of the account too."""
    for built in (default, variant):
        _, group = only(built, "AWS::Scheduler::ScheduleGroup")
        assert group["DeletionPolicy"] == "Delete"  # no data: it goes with the stack, its schedule with it
        _, schedule = only(built, "AWS::Scheduler::Schedule")
        # The CDK names the group after the stack and construct path (unique to them, at most 64 characters).
        name = group["Properties"]["Name"]
        assert name.startswith(f"{built.stack.config.stack_name}-") and "ScheduleGroup" in name, name
        assert len(name) <= 64
        assert schedule["Properties"]["GroupName"] == name
        assert built.stack.resolve(built.stack.archiver.schedule_group.schedule_group_name) == name
    assert (
        only(default, "AWS::Scheduler::ScheduleGroup")[1]["Properties"]["Name"]
        != only(variant, "AWS::Scheduler::ScheduleGroup")[1]["Properties"]["Name"]
    )


def test_schedule_role_trusts_only_scheduler_of_this_account(default: Built, variant: Built) -> None:
    for built in (default, variant):
        group_id, _ = only(built, "AWS::Scheduler::ScheduleGroup")
        built.template.has_resource_properties(
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": "scheduler.amazonaws.com"},
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                                # The stack's own group, by its ARN: no other schedule may use the role.
                                "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [group_id, "Arn"]}},
                            },
                        }
                    ]
                }
            },
        )
        assert ":schedule-group/default" not in json.dumps(built.json)
    actions = sorted(action for statement in statements(default, "ScheduleRole") for action in actions_of(statement))
    assert actions == ["lambda:InvokeFunction", "sqs:SendMessage"]


# --- DynamoDB --------------------------------------------------------------------------------------------


def test_ledger_table(default: Built, variant: Built) -> None:
    _, table = only(default, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": records.LEDGER_PARTITION_KEY, "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "session_arn", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert props["SSESpecification"] == {
        "KMSMasterKeyId": archive_key_arn(default),
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    _, variant_table = only(variant, "AWS::DynamoDB::Table")
    assert variant_table["Properties"]["SSESpecification"] == {
        "KMSMasterKeyId": VARIANT["kms_key_arn"],
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert variant_table["Properties"]["DeletionProtectionEnabled"] is False
    assert variant_table["DeletionPolicy"] == "Delete"


# --- S3 --------------------------------------------------------------------------------------------------


def test_every_bucket_blocks_public_access_is_encrypted_and_denies_non_tls(default: Built, variant: Built) -> None:
    for built in (default, variant):
        buckets = built.template.find_resources("AWS::S3::Bucket")
        assert len(buckets) == 3  # archive, access logs, Athena results
        policies = built.template.find_resources("AWS::S3::BucketPolicy").values()
        protected = {policy["Properties"]["Bucket"]["Ref"] for policy in policies if _denies_non_tls(policy)}
        for bucket_id, bucket in buckets.items():
            props = bucket["Properties"]
            assert props["PublicAccessBlockConfiguration"] == {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            }
            assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
            assert bucket_id in protected, f"{bucket_id} has no TLS-only policy"


def _denies_non_tls(policy: Mapping[str, Any]) -> bool:
    return any(
        statement["Effect"] == "Deny" and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def _bucket(built: Built, construct: Any) -> dict[str, Any]:
    bucket_id = built.stack.resolve(construct.bucket_name)["Ref"]
    resource: dict[str, Any] = built.json["Resources"][bucket_id]
    return resource


def test_archive_bucket(default: Built, variant: Built) -> None:
    storage = default.stack.storage
    bucket = _bucket(default, storage.archive_bucket)
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {"KMSMasterKeyID": archive_key_arn(default), "SSEAlgorithm": "aws:kms"},
        }
    ]
    assert "ObjectLockEnabled" not in props  # object_lock_days 0: off (tests/infra/test_encryption.py: on)
    log_bucket_id = default.stack.resolve(storage.access_log_bucket.bucket_name)["Ref"]
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_bucket_id}
    # Write-once: no version of a record ever expires.
    rules = props["LifecycleConfiguration"]["Rules"]
    assert not any(
        {"ExpirationInDays", "NoncurrentVersionExpiration", "ExpiredObjectDeleteMarker"} & set(rule) for rule in rules
    )
    assert bucket["DeletionPolicy"] == "Retain"
    assert _bucket(default, storage.access_log_bucket)["DeletionPolicy"] == "Retain"

    variant_bucket = _bucket(variant, variant.stack.storage.archive_bucket)
    assert variant_bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {"KMSMasterKeyID": VARIANT["kms_key_arn"], "SSEAlgorithm": "aws:kms"},
        }
    ]
    assert variant_bucket["DeletionPolicy"] == "Delete"
    # `destroy` empties buckets on deletion, or CloudFormation could not delete them.
    assert variant.template.find_resources("Custom::S3AutoDeleteObjects")
    assert not default.template.find_resources("Custom::S3AutoDeleteObjects")


def test_access_log_bucket_receives_logs_of_every_other_bucket(default: Built) -> None:
    log_bucket_id = default.stack.resolve(default.stack.storage.access_log_bucket.bucket_name)["Ref"]
    others = {k: b for k, b in default.template.find_resources("AWS::S3::Bucket").items() if k != log_bucket_id}
    assert len(others) == 2  # archive and Athena results
    for bucket in others.values():
        assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_bucket_id}


# --- Glue / Athena ---------------------------------------------------------------------------------------


def _glue_table(built: Built, name: str = TABLE_NAME) -> dict[str, Any]:
    """The TableInput of the Glue table of this name (the records' by default)."""
    found = [
        resource["Properties"]["TableInput"]
        for resource in built.template.find_resources("AWS::Glue::Table").values()
        if resource["Properties"]["TableInput"]["Name"] == name
    ]
    assert len(found) == 1, f"expected one Glue table {name}"
    table_input: dict[str, Any] = found[0]
    return table_input


def test_glue_tables_are_the_records_and_the_stats(default: Built) -> None:
    names = sorted(
        r["Properties"]["TableInput"]["Name"] for r in default.template.find_resources("AWS::Glue::Table").values()
    )
    assert names == sorted([TABLE_NAME, STATS_TABLE_NAME]) == ["stream_sessions", "stream_sessions_perf_stats"]


def test_stats_table_matches_the_stats_schema(default: Built) -> None:
    table = _glue_table(default, STATS_TABLE_NAME)
    columns = [(column["Name"], column["Type"]) for column in table["StorageDescriptor"]["Columns"]]
    assert columns == [(column.name, column.athena_type) for column in perfstats.STATS_TABLE_COLUMNS]
    assert ("shared_sys_gpu_pct", "double") in columns and ("extra", "map<string,string>") in columns
    assert table["PartitionKeys"] == _glue_table(default)["PartitionKeys"]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == HIVE_JSON_SERDE
    assert table["StorageDescriptor"]["Compressed"] is True


def test_glue_database_follows_the_data_removal_policy(default: Built, variant: Built) -> None:
    assert only(default, "AWS::Glue::Database")[1]["DeletionPolicy"] == "Retain"
    assert only(variant, "AWS::Glue::Database")[1]["DeletionPolicy"] == "Delete"


def test_glue_table_matches_the_record_schema(default: Built) -> None:
    table = _glue_table(default)
    assert table["Name"] == TABLE_NAME
    columns = [(column["Name"], column["Type"]) for column in table["StorageDescriptor"]["Columns"]]
    assert columns == [(field.name, field.athena_type.replace(" ", "")) for field in records.SCHEMA]
    partitions = [(column["Name"], column["Type"]) for column in table["PartitionKeys"]]
    assert partitions == list(records.PARTITION_KEYS)
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == HIVE_JSON_SERDE
    assert table["StorageDescriptor"]["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"


def test_projection_template_is_the_key_layout_the_lambda_writes(default: Built, variant: Built) -> None:
    cases = [(default, TABLE_NAME, "sessions/"), (variant, TABLE_NAME, "archive/sessions/")]
    cases += [(built, STATS_TABLE_NAME, "perf-stats/") for built in (default, variant)]  # the same layout
    for built, name, prefix in cases:
        bucket = built.stack.storage.archive_bucket
        params = _glue_table(built, name)["Parameters"]
        expected = built.stack.resolve(records.location_template(bucket.bucket_name, prefix))
        assert params["storage.location.template"] == expected
        assert params["projection.enabled"] == "true"
        assert params["projection.created_date.type"] == "date"
        assert params["projection.created_date.format"] == records.CREATED_DATE_PROJECTION_FORMAT
        assert params["projection.created_date.range"] == "2025-01-01,NOW"
        assert params["projection.created_date.interval"] == "1"
        assert params["projection.created_date.interval.unit"] == "DAYS"
        assert params["projection.source_region.type"] == "enum"
        location = _glue_table(built, name)["StorageDescriptor"]["Location"]
        assert location == built.stack.resolve(f"s3://{bucket.bucket_name}/{prefix}")
    for name in (TABLE_NAME, STATS_TABLE_NAME):
        assert _glue_table(default, name)["Parameters"]["projection.source_region.values"] == {"Ref": "AWS::Region"}
        assert _glue_table(variant, name)["Parameters"]["projection.source_region.values"] == "us-east-2,us-west-2"


def test_projected_key_of_a_record_matches_object_key() -> None:
    """Substituting projected values into the template gives exactly the key object_key() writes."""
    from datetime import UTC, datetime

    arn = records.parse_session_arn("arn:aws:gameliftstreams:us-east-2:111122223333:streamsession/sg-1/abc123")
    assert arn is not None
    key = records.object_key("sessions/", arn, datetime(2025, 3, 4, 5, 6, tzinfo=UTC))
    template = records.location_template("bucket", "sessions/")
    folder = template.replace("${source_region}", "us-east-2").replace("${created_date}", "2025-03-04")
    assert f"s3://bucket/{key}".startswith(folder)
    assert "/" not in f"s3://bucket/{key}".removeprefix(folder)


def test_athena_workgroup(default: Built, variant: Built) -> None:
    results_id = default.stack.resolve(default.stack.analytics.results_bucket.bucket_name)["Ref"]
    default.template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "Name": "gameliftstreams-archive",
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": 10240 * 1024 * 1024,
                "PublishCloudWatchMetricsEnabled": True,
                "ResultConfiguration": {
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": archive_key_arn(default)},
                    "OutputLocation": {"Fn::Join": ["", ["s3://", {"Ref": results_id}, "/athena-results/"]]},
                },
            },
        },
    )
    variant.template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": {
                "ResultConfiguration": {
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": VARIANT["kms_key_arn"]}
                }
            }
        },
    )


def test_named_queries_are_the_queries_module(default: Built) -> None:
    found = default.template.find_resources("AWS::Athena::NamedQuery")
    assert len(found) == len(queries.NAMED_QUERIES) >= 5
    workgroup_id = logical_id(default, "AWS::Athena::WorkGroup")
    by_name = {query["Properties"]["Name"]: query["Properties"] for query in found.values()}
    for name, (description, sql) in queries.NAMED_QUERIES.items():
        props = by_name[name]
        assert props["Description"] == description
        assert props["QueryString"] == queries.render(sql, "gameliftstreams_archive", TABLE_NAME)
        assert props["WorkGroup"] == {"Ref": workgroup_id}
        assert props["Database"] == {"Ref": logical_id(default, "AWS::Glue::Database")}


# --- IAM -------------------------------------------------------------------------------------------------


def _all_policy_statements(built: Built) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in built.template.find_resources(kind).values():
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    for role in built.template.find_resources("AWS::IAM::Role").values():
        for inline in role["Properties"].get("Policies", []):
            found += inline["PolicyDocument"]["Statement"]
    return found


def test_no_wildcard_actions_and_no_managed_policies(default: Built, variant: Built) -> None:
    for built in (default, variant):
        statements = _all_policy_statements(built)
        assert len(statements) >= 5  # the function's, the schedule's, ...: the check below has work to do
        for statement in statements:
            for action in actions_of(statement):
                assert "*" not in action, statement
        roles = built.template.find_resources("AWS::IAM::Role")
        assert len(roles) >= 2
        for role_id, role in roles.items():
            if "AutoDeleteObjects" not in role_id:  # the CDK's own bucket-emptying provider (destroy only)
                assert "ManagedPolicyArns" not in role["Properties"], role_id


def _function_statements(built: Built) -> dict[str, dict[str, Any]]:
    found = statements(built, "FunctionRole")
    by_action = {}
    for statement in found:
        for action in actions_of(statement):
            by_action[action] = statement
    return by_action


def test_listing_is_allowed_in_the_source_regions_only(variant: Built) -> None:
    listing = _function_statements(variant)["gameliftstreams:ListStreamSessionsByAccount"]
    assert listing["Condition"] == {"StringEquals": {"aws:RequestedRegion": ["us-east-2", "us-west-2"]}}


def test_function_permissions_are_least_privilege(default: Built) -> None:
    by_action = _function_statements(default)
    assert set(by_action) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "gameliftstreams:ListStreamSessionsByAccount",
        "gameliftstreams:GetStreamSession",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "s3:PutObject",
        "s3:GetObject",
        "lambda:InvokeFunction",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sqs:SendMessage",  # the on-failure destination, nothing more on the queue
    }
    listing = by_action["gameliftstreams:ListStreamSessionsByAccount"]
    assert listing["Resource"] == "*"  # no resource type: the Regions are bounded by a condition instead
    assert listing["Condition"] == {"StringEquals": {"aws:RequestedRegion": [{"Ref": "AWS::Region"}]}}
    get = by_action["gameliftstreams:GetStreamSession"]["Resource"]
    assert get == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":gameliftstreams:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":streamgroup/*",
            ],
        ]
    }
    table_id = logical_id(default, "AWS::DynamoDB::Table")
    assert by_action["dynamodb:PutItem"]["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    assert by_action["dynamodb:BatchGetItem"]["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    bucket_id = default.stack.resolve(default.stack.storage.archive_bucket.bucket_name)["Ref"]
    s3 = {s["Sid"]: s for s in statements(default, "FunctionRole") if any(a.startswith("s3:") for a in actions_of(s))}
    # Read-back of a record (or stats object) another writer stored first (412 on the conditional write): the
    # same objects only. Nothing on any export bucket without export_locations (the operator grants it there).
    assert {sid: (sorted(actions_of(s)), s["Resource"]) for sid, s in s3.items()} == {
        "WriteAndReadBackRecords": (
            ["s3:GetObject", "s3:PutObject"],
            {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/sessions/*"]]},
        ),
        "WriteAndReadBackStatsObjects": (
            ["s3:GetObject", "s3:PutObject"],
            {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/perf-stats/*"]]},
        ),
    }
    queue_id = logical_id(default, "AWS::SQS::Queue")
    assert by_action["sqs:SendMessage"]["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    # The stack's own key names the role in its key policy (tests/infra/test_encryption.py): no identity grant.
    assert not any(action.startswith("kms:") for action in by_action)


def test_function_may_invoke_only_itself_through_a_policy_of_its_own(default: Built) -> None:
    """The follow-up invocation: on the function's own unqualified ARN, in a policy the function does not
    depend on (in the role's default policy the function's ARN would be a dependency cycle)."""
    function_id = logical_id(default, "AWS::Lambda::Function")
    invoking = [
        (policy_id, statement)
        for policy_id, policy in default.template.find_resources("AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "lambda:InvokeFunction" in actions_of(statement) and "FunctionRole" in str(policy["Properties"]["Roles"])
    ]
    assert len(invoking) == 1
    policy_id, statement = invoking[0]
    assert actions_of(statement) == ["lambda:InvokeFunction"]
    assert statement["Resource"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert "DefaultPolicy" not in policy_id
    assert policy_id not in default.json["Resources"][function_id].get("DependsOn", [])


def test_function_permissions_with_regions_and_kms(variant: Built) -> None:
    by_action = _function_statements(variant)
    resources = variant.stack.resolve(by_action["gameliftstreams:GetStreamSession"]["Resource"])
    regions = [parts[2].split(":")[2] for parts in (resource["Fn::Join"][1] for resource in resources)]
    assert regions == ["us-east-2", "us-west-2"]
    # An imported key: its use is granted in the role's identity policy, each through one service.
    kms = {s["Sid"]: s for s in statements(variant, "FunctionRole") if actions_of(s)[0].startswith("kms:")}
    assert sorted(kms) == [
        "ReconcilerSendsFailedRunsThroughSQS",
        "ReconcilerUsesTheLedgerThroughDynamoDB",
        "ReconcilerWritesAndReadsBackRecordsThroughS3",
    ]
    for sid, service, actions in (
        ("ReconcilerWritesAndReadsBackRecordsThroughS3", "s3", ["kms:Decrypt", "kms:GenerateDataKey"]),
        ("ReconcilerUsesTheLedgerThroughDynamoDB", "dynamodb", ["kms:Decrypt"]),
        ("ReconcilerSendsFailedRunsThroughSQS", "sqs", ["kms:Decrypt", "kms:GenerateDataKey"]),
    ):
        assert kms[sid]["Resource"] == VARIANT["kms_key_arn"]
        assert sorted(actions_of(kms[sid])) == actions
        assert kms[sid]["Condition"] == {
            "StringEquals": {
                "kms:ViaService": [{"Fn::Join": ["", [f"{service}.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}]
            }
        }
    bucket_id = variant.stack.resolve(variant.stack.storage.archive_bucket.bucket_name)["Ref"]
    s3 = {s["Sid"]: s["Resource"] for s in statements(variant, "FunctionRole") if "s3:PutObject" in actions_of(s)}
    assert s3 == {
        "WriteAndReadBackRecords": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/archive/sessions/*"]]},
        "WriteAndReadBackStatsObjects": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/perf-stats/*"]]},
    }


# --- Monitoring ------------------------------------------------------------------------------------------


def _alarms(built: Built) -> dict[str, dict[str, Any]]:
    return {
        alarm_id: alarm["Properties"]
        for alarm_id, alarm in built.template.find_resources("AWS::CloudWatch::Alarm").items()
    }


def _alarm(built: Built, fragment: str) -> dict[str, Any]:
    matches = [props for alarm_id, props in _alarms(built).items() if fragment in alarm_id]
    assert len(matches) == 1, fragment
    return matches[0]


def test_alarms(default: Built) -> None:
    # No throttles alarm: a follow-up waits (throttled) behind the run that invoked it, by design.
    assert default.stack.archiver.max_continuations == 2
    assert len(_alarms(default)) == 5
    assert not [alarm_id for alarm_id in _alarms(default) if "Throttles" in alarm_id]
    errors = _alarm(default, "FunctionErrors")
    assert (errors["MetricName"], errors["Namespace"]) == ("Errors", "AWS/Lambda")
    queue = _alarm(default, "FailedRunsQueueNotEmpty")
    assert queue["MetricName"] == "ApproximateNumberOfMessagesVisible"
    service = [{"Name": "service", "Value": telemetry.SERVICE}]

    failed = _alarm(default, "SessionsFailed")
    assert (failed["Namespace"], failed["MetricName"], failed["Dimensions"]) == (
        telemetry.NAMESPACE,
        telemetry.FAILED,
        service,
    )
    assert (failed["ComparisonOperator"], failed["Threshold"]) == ("GreaterThanThreshold", 0)

    unreadable = _alarm(default, "ExportsUnreadable")
    assert (unreadable["Namespace"], unreadable["MetricName"], unreadable["Dimensions"]) == (
        telemetry.NAMESPACE,
        telemetry.EXPORTS_UNREADABLE,
        service,
    )
    assert (unreadable["ComparisonOperator"], unreadable["Threshold"], unreadable["Period"]) == (
        "GreaterThanThreshold",
        0,
        15 * 60,
    )

    stale = _alarm(default, "NoSuccessfulRun")
    assert (stale["Namespace"], stale["MetricName"], stale["Dimensions"]) == (
        telemetry.NAMESPACE,
        telemetry.RUN_COMPLETED,
        service,
    )
    assert stale["ComparisonOperator"] == "LessThanThreshold"
    assert stale["Threshold"] == 1
    assert stale["TreatMissingData"] == "breaching"
    assert stale["Period"] * stale["EvaluationPeriods"] == 2 * 15 * 60
    assert stale["DatapointsToAlarm"] == stale["EvaluationPeriods"]

    topic_id = logical_id(default, "AWS::SNS::Topic")
    for props in _alarms(default).values():
        assert props["AlarmActions"] == [{"Ref": topic_id}]
        assert props["OKActions"] == [{"Ref": topic_id}]


def test_throttles_alarm_while_a_run_cannot_continue_itself() -> None:
    """A 900 s run in a 15-minute period has no follow-ups: a throttle then means runs overlap their schedule."""
    from tests.infra.conftest import build

    built = build({"stack_name": "ArchiverNoFollowUps", "lambda_timeout_seconds": "900"})
    assert built.stack.archiver.max_continuations == 0
    assert function(built)["Properties"]["Environment"]["Variables"]["MAX_CONTINUATIONS"] == "0"
    throttles = _alarm(built, "FunctionThrottles")
    assert (throttles["MetricName"], throttles["Namespace"]) == ("Throttles", "AWS/Lambda")
    assert len(_alarms(built)) == 6


def test_alarm_topic_is_encrypted_tls_only_and_email_is_optional(default: Built, variant: Built) -> None:
    key_id = default.stack.resolve(default.stack.monitoring.topic_key.key_arn)["Fn::GetAtt"][0]
    default.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}})
    default.template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    default.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    default.template.resource_count_is("AWS::SNS::Subscription", 0)
    variant.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_dashboard_shows_the_run_metrics(default: Built) -> None:
    _, dashboard = only(default, "AWS::CloudWatch::Dashboard")
    body = str(default.stack.resolve(dashboard["Properties"]["DashboardBody"]))
    for name in (*telemetry.COUNTERS, telemetry.RUN_COMPLETED, telemetry.RUN_DURATION, telemetry.RUN_CONTINUED):
        assert name in body
    assert telemetry.NAMESPACE in body
    assert not any(name in body for name in telemetry.EVENT_OUTCOMES)  # the consumer's: only with events
    # The export ZIPs' counters (issue 11): both functions emit them, so the dashboard shows them always.
    for name in telemetry.EXPORT_FIELDS:
        assert f"'{name}'" in body or f'"{name}"' in body, name


# --- Outputs ---------------------------------------------------------------------------------------------


def test_outputs(default: Built) -> None:
    outputs = default.json["Outputs"]
    for name in (
        "LedgerTableName",
        "ArchiveBucketName",
        "GlueDatabaseName",
        "GlueTableName",
        "GlueStatsTableName",
        "StatsPrefix",
        "AthenaWorkGroupName",
        "FunctionName",
        "FunctionRoleArn",
        "DashboardUrl",
    ):
        assert name in outputs
    assert "#dashboards/dashboard/" in str(outputs["DashboardUrl"]["Value"])


def test_the_key_and_the_analyst_policy_are_outputs(default: Built, variant: Built) -> None:
    """docs/QUERY.md names both: the key (its ${ArchiveKeyArn} placeholder) and the policy to attach."""
    stack = default.stack
    outputs = default.json["Outputs"]
    key = outputs["ArchiveKeyArn"]["Value"]
    assert key == stack.resolve(stack.storage.encryption_key.key_arn)
    (logical, attribute) = key["Fn::GetAtt"]
    assert (default.json["Resources"][logical]["Type"], attribute) == ("AWS::KMS::Key", "Arn")
    default.template.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": "alias/GameLiftStreamsSessionArchiver/archive", "TargetKeyId": key}
    )
    policy = stack.analytics.analyst_policy.policy
    assert outputs["AnalystPolicyArn"]["Value"] == stack.resolve(policy.managed_policy_arn)
    assert outputs["AnalystPolicyArn"]["Value"] == {"Ref": logical_id(default, "AWS::IAM::ManagedPolicy")}
    # An imported key is output as the ARN it was given.
    assert variant.json["Outputs"]["ArchiveKeyArn"]["Value"] == VARIANT["kms_key_arn"]


def test_template_has_no_unexpected_resource_types(default: Built) -> None:
    """A new resource type is a review point (cost, IAM, nag), not an accident."""
    kinds = {resource["Type"] for resource in default.json["Resources"].values()}
    assert kinds == {
        "AWS::Athena::NamedQuery",
        "AWS::Athena::WorkGroup",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::DynamoDB::Table",
        "AWS::Glue::Database",
        "AWS::Glue::Table",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::IAM::ManagedPolicy",  # the analyst policy, attached to no one
        "AWS::KMS::Alias",
        "AWS::KMS::Key",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::Lambda::Function",
        "AWS::Logs::LogGroup",
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::Scheduler::Schedule",
        "AWS::Scheduler::ScheduleGroup",  # the schedule's own group (no cost; the role trusts it alone)
    }

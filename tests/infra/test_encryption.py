"""The archive key (issue 10, "only named readers"): who can use it, checked by evaluating its key policy.

The policy is resolved with concrete values (Region, account, role ARNs) and each request is judged the way KMS
judges a key policy: an Allow statement whose action, principal and every condition match. A principal in the
account that the policy does not name is modelled at its strongest, an administrator whose IAM policies allow
everything: it gets what the key policy grants the account root (delegation to IAM), and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam

from infra.archiver import log_group_arn, log_group_name
from infra.config import load_config_from_mapping
from infra.encryption import ADMINISTRATION_ACTIONS, BREAK_GLASS_ACTIONS, DATA_ACTIONS, ArchiveKey
from infra.nag import PACK
from tests.infra.conftest import ADMINS, EVENTS_VARIANT, READERS, SECURED, VARIANT, Built, build
from tests.infra.policy_eval import ACCOUNT, REGION, ROOT, allows, concrete, listed
from tests.infra.test_nag import _lint, nag_findings

ANY_ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Administrator"  # AdministratorAccess, not named anywhere
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-{REGION}"
READER, ADMIN = READERS[0], ADMINS[0]
LOGS = f"service:logs.{REGION}.amazonaws.com"
EVENTS = "service:events.amazonaws.com"


def key_policy(built: Built) -> list[dict[str, Any]]:
    """The archive key's policy statements, concrete. A key policy here has no Deny: what it does not allow is
    denied."""
    key = built.stack.storage.encryption_key
    assert isinstance(key, cdk.aws_kms.Key)
    logical = built.stack.resolve(key.key_arn)["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = concrete(built.json["Resources"][logical]["Properties"]["KeyPolicy"])[
        "Statement"
    ]
    assert {statement["Effect"] for statement in statements} == {"Allow"}
    return statements


def logical_of(built: Built, construct: Any) -> str:
    """The logical ID of an L2 construct's resource."""
    element = construct.node.default_child
    assert isinstance(element, cdk.CfnElement)
    return built.stack.get_logical_id(element)


def role_arn(built: Built, role: iam.IRole) -> str:
    return str(concrete(built.stack.resolve(role.role_arn)))


SERVICES = (None, "s3", "dynamodb", "sqs", "athena", "glue", "logs")


def data_uses(statements: list[dict[str, Any]], principal: str, **context: str) -> set[tuple[str, str | None]]:
    """Every (data action, service) the principal may make."""
    return {
        (action, service)
        for action in sorted(DATA_ACTIONS)
        for service in SERVICES
        if allows(statements, principal, action, service=service, **context)
    }


@pytest.fixture(scope="module")
def policy(secured: Built) -> list[dict[str, Any]]:
    return key_policy(secured)


# --- The key ------------------------------------------------------------------------------------------------


def test_key_rotates_has_an_alias_and_follows_the_data(default: Built) -> None:
    key = default.stack.storage.encryption_key
    logical = default.stack.resolve(key.key_arn)["Fn::GetAtt"][0]
    resource = default.json["Resources"][logical]
    assert resource["Properties"]["EnableKeyRotation"] is True
    assert resource["Properties"]["PendingWindowInDays"] == 30
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"  # retained records need it
    default.template.has_resource_properties(
        "AWS::KMS::Alias",
        {"AliasName": "alias/GameLiftStreamsSessionArchiver/archive", "TargetKeyId": {"Fn::GetAtt": [logical, "Arn"]}},
    )
    destroyed = build({"stack_name": "ArchiverDestroyed", "data_removal_policy": "destroy"})
    logical = destroyed.stack.resolve(destroyed.stack.storage.encryption_key.key_arn)["Fn::GetAtt"][0]
    assert destroyed.json["Resources"][logical]["DeletionPolicy"] == "Delete"
    assert default.stack.storage.key.owned and not build(VARIANT).stack.storage.key.owned


def test_no_wildcard_and_no_kms_star_in_the_key_policy(policy: list[dict[str, Any]]) -> None:
    sids = [statement["Sid"] for statement in policy]
    assert len(sids) == len(set(sids))
    for statement in policy:
        for action in listed(statement["Action"]):
            assert "*" not in action, statement["Sid"]
        assert statement["Resource"] == "*"  # in a key policy: this key


def test_the_account_administers_the_key_but_cannot_use_it(policy: list[dict[str, Any]]) -> None:
    """CDK's default key policy gives the account kms:*; this one gives it no data action at all."""
    for statement in policy:
        if ROOT in listed(statement["Principal"].get("AWS", [])):
            data = set(listed(statement["Action"])) & DATA_ACTIONS
            assert data <= {"kms:CreateGrant"}, statement["Sid"]
            if data:  # DynamoDB's grant, asked for by the deployment, and only that
                assert statement["Condition"] == {
                    "ArnEquals": {"aws:PrincipalArn": DEPLOYER},
                    "StringEquals": {"kms:ViaService": f"dynamodb.{REGION}.amazonaws.com"},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                }
    # An administrator of the account (IAM allows it everything), or a holder of ReadOnlyAccess: no data use.
    assert data_uses(policy, ANY_ADMIN) == set()
    for action in ADMINISTRATION_ACTIONS:
        assert allows(policy, ANY_ADMIN, action)
    for action in BREAK_GLASS_ACTIONS:
        assert not allows(policy, ANY_ADMIN, action), action


def test_only_the_deployment_and_break_glass_change_the_policy_or_disable_the_key(
    policy: list[dict[str, Any]], secured: Built
) -> None:
    for action in BREAK_GLASS_ACTIONS:
        assert allows(policy, DEPLOYER, action)  # stack updates, deletion with destroy, KMS's lockout check
        assert allows(policy, ADMIN, action)
        assert not allows(policy, READER, action)
        assert not allows(policy, role_arn(secured, secured.stack.archiver.role), action)
    assert data_uses(policy, DEPLOYER) == set()
    assert allows(policy, DEPLOYER, "kms:CreateGrant", service="dynamodb", **{"kms:GrantIsForAWSResource": "true"})
    assert not allows(policy, DEPLOYER, "kms:CreateGrant", service="dynamodb")  # a grant for anyone else
    assert not allows(policy, DEPLOYER, "kms:CreateGrant", service="s3", **{"kms:GrantIsForAWSResource": "true"})


def test_who_can_use_the_data_exactly(policy: list[dict[str, Any]], secured: Built) -> None:
    """Every principal with data use, and through which service: the functions, the schedule, the named readers
    and break-glass roles, CloudWatch Logs for its two log groups, EventBridge; nothing directly."""
    reconciler = role_arn(secured, secured.stack.archiver.role)
    assert secured.stack.events is not None
    consumer = role_arn(secured, secured.stack.events.role)
    schedule = role_arn(secured, secured.stack.archiver.schedule_role)
    decrypt, generate = "kms:Decrypt", "kms:GenerateDataKey"
    expected = {
        reconciler: {(decrypt, "s3"), (generate, "s3"), (decrypt, "dynamodb"), (decrypt, "sqs"), (generate, "sqs")},
        consumer: {(decrypt, "s3"), (generate, "s3"), (decrypt, "dynamodb"), (decrypt, "sqs")},
        schedule: {(decrypt, "sqs"), (generate, "sqs")},
        READERS[0]: {(decrypt, "s3"), (generate, "s3")},
        READERS[1]: {(decrypt, "s3"), (generate, "s3")},
        ADMIN: {(action, service) for action in (decrypt, generate) for service in ("s3", "dynamodb", "sqs")},
        # EventBridge as its documentation for encrypted SQS targets has it: no source conditions (the KMS
        # request of a delivery carries none), any way it calls.
        EVENTS: {(action, service) for action in (decrypt, generate) for service in SERVICES},
    }
    for principal, uses in expected.items():
        assert data_uses(policy, principal) == uses, principal
    named = set()
    for statement in policy:
        if set(listed(statement["Action"])) & (DATA_ACTIONS - {"kms:CreateGrant"}):
            named |= set(listed(statement["Principal"].get("AWS", [])))
            named |= {f"service:{name}" for name in listed(statement["Principal"].get("Service", []))}
    assert named == {*expected, LOGS}  # and no one else is named for data use


def test_cloudwatch_logs_uses_the_key_for_the_two_log_groups_only(policy: list[dict[str, Any]]) -> None:
    for function in ("reconciler", "consumer"):
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:" + log_group_name(
            load_config_from_mapping(SECURED), function
        )
        context = {"kms:EncryptionContext:aws:logs:arn": arn}
        assert allows(policy, LOGS, "kms:GenerateDataKey", **context)
        assert allows(policy, LOGS, "kms:Decrypt", **context)
    other = {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/other"}
    assert not allows(policy, LOGS, "kms:Decrypt", **other)
    assert data_uses(policy, LOGS) == set()  # without its log group's context: nothing


def test_log_groups_are_named_for_the_key_policy(secured: Built) -> None:
    groups = secured.template.find_resources("AWS::Logs::LogGroup")
    names = sorted(group["Properties"]["LogGroupName"] for group in groups.values())
    assert names == [
        "/gameliftstreams-archiver/ArchiverSecured/consumer",
        "/gameliftstreams-archiver/ArchiverSecured/reconciler",
    ]
    stack = cdk.Stack()
    assert stack.resolve(log_group_arn(stack, names[0]))["Fn::Join"][1][-1] == f":log-group:{names[0]}"


# --- What the key encrypts -----------------------------------------------------------------------------------


def test_everything_the_stack_stores_is_encrypted_with_the_key(secured: Built) -> None:
    stack = secured.stack
    key = stack.resolve(stack.storage.encryption_key.key_arn)
    resources = secured.json["Resources"]

    def props(construct: Any) -> dict[str, Any]:
        found: dict[str, Any] = resources[logical_of(secured, construct)]["Properties"]
        return found

    for bucket in (stack.storage.archive_bucket, stack.analytics.results_bucket):
        assert props(bucket)["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
            {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {"KMSMasterKeyID": key, "SSEAlgorithm": "aws:kms"},
            }
        ]
    # S3 server access logs can be delivered only to an SSE-S3 bucket.
    assert props(stack.storage.access_log_bucket)["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props(stack.storage.table)["SSESpecification"] == {
        "KMSMasterKeyId": key,
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert stack.events is not None
    for queue in (stack.archiver.failure_queue, stack.events.queue, stack.events.dead_letter_queue):
        assert props(queue)["KmsMasterKeyId"] == key
    for group in (stack.archiver.log_group, stack.events.log_group):
        assert props(group)["KmsKeyId"] == key
    workgroup = resources[stack.get_logical_id(stack.analytics.workgroup)]["Properties"]
    assert workgroup["WorkGroupConfiguration"]["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": key,
    }
    kinds = {resource["Type"] for resource in resources.values()}
    assert kinds & {"AWS::SecretsManager::Secret", "AWS::SSM::Parameter", "AWS::EFS::FileSystem"} == set()


# --- An imported key (kms_key_arn) ---------------------------------------------------------------------------


def test_an_imported_key_is_used_through_identity_policies(events_variant: Built) -> None:
    stack = events_variant.stack
    key = VARIANT["kms_key_arn"]
    assert not stack.storage.key.owned
    assert [r for r in events_variant.template.find_resources("AWS::KMS::Key")] == [
        stack.resolve(stack.monitoring.topic_key.key_arn)["Fn::GetAtt"][0]
    ]  # the alarm topic's only
    assert stack.events is not None
    roles = {
        "reconciler": stack.archiver.role,
        "consumer": stack.events.role,
        "schedule": stack.archiver.schedule_role,
    }
    granted: dict[str, set[tuple[str, str]]] = {name: set() for name in roles}
    for policy in events_variant.template.find_resources("AWS::IAM::Policy").values():
        for name, role in roles.items():
            if stack.resolve(role.role_name) in policy["Properties"]["Roles"]:
                for statement in concrete(policy["Properties"]["PolicyDocument"]["Statement"]):
                    if listed(statement["Action"])[0].startswith("kms:"):
                        assert statement["Resource"] == key
                        (service,) = statement["Condition"]["StringEquals"]["kms:ViaService"]
                        granted[name] |= {(action, service.split(".")[0]) for action in listed(statement["Action"])}
    assert granted == {
        "reconciler": {("kms:Decrypt", "s3"), ("kms:GenerateDataKey", "s3"), ("kms:Decrypt", "dynamodb")}
        | {("kms:Decrypt", "sqs"), ("kms:GenerateDataKey", "sqs")},
        "consumer": {("kms:Decrypt", "s3"), ("kms:GenerateDataKey", "s3"), ("kms:Decrypt", "dynamodb")}
        | {("kms:Decrypt", "sqs")},
        "schedule": {("kms:Decrypt", "sqs"), ("kms:GenerateDataKey", "sqs")},
    }
    # What only the key's own policy can allow is listed for the operator: EventBridge's delivery.
    operator = [stack.resolve(statement.to_statement_json()) for statement in stack.storage.key.operator_statements]
    assert [statement["Sid"] for statement in operator] == ["EventBridgeDeliversExportEventsToTheQueue"]
    # The log groups keep CloudWatch Logs' own encryption: Logs can use only a key whose policy names it.
    for group in events_variant.template.find_resources("AWS::Logs::LogGroup").values():
        assert "KmsKeyId" not in group["Properties"]


def test_an_imported_key_lists_named_readers_for_the_operator() -> None:
    built = build({**EVENTS_VARIANT, "stack_name": "ArchiverImportedReaders", "reader_role_arns": READER})
    operator = [built.stack.resolve(s.to_statement_json()) for s in built.stack.storage.key.operator_statements]
    readers = [statement for statement in operator if statement["Sid"] == "NamedReadersReadThroughS3"]
    assert readers and readers[0]["Principal"] == {"AWS": READER}


# --- ArchiveKey.allow, the API other constructs grant through --------------------------------------------------


def _bare_key(context: Mapping[str, object]) -> tuple[cdk.Stack, ArchiveKey]:
    stack = cdk.Stack(cdk.App(), "Bare")
    config = load_config_from_mapping(context)
    return stack, ArchiveKey(stack, "Key", config=config, removal=cdk.RemovalPolicy.RETAIN)


def test_allow_merges_via_services_with_conditions_and_refuses_duplicates() -> None:
    stack, key = _bare_key({})
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("backup.amazonaws.com"))
    key.allow(
        "BackupCopies",
        role,
        ["kms:Decrypt"],
        via_services=["s3", "backup.us-east-2.amazonaws.com"],
        conditions={
            "StringEquals": {"kms:CallerAccount": "111122223333"},
            "Bool": {"kms:GrantIsForAWSResource": "true"},
        },
    )
    cfn_key = key.key.node.default_child
    assert isinstance(cfn_key, cdk.aws_kms.CfnKey)
    document = stack.resolve(cfn_key.key_policy)
    (statement,) = [s for s in document["Statement"] if s["Sid"] == "BackupCopies"]
    assert concrete(statement["Condition"]) == {
        "StringEquals": {
            "kms:ViaService": [f"s3.{REGION}.amazonaws.com", "backup.us-east-2.amazonaws.com"],
            "kms:CallerAccount": "111122223333",
        },
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }
    with pytest.raises(ValueError, match="BackupCopies"):
        key.allow("BackupCopies", role, ["kms:Decrypt"])
    with pytest.raises(ValueError, match="no action"):
        key.allow("Nothing", role, [])
    with pytest.raises(ValueError, match="kms:ViaService"):
        key.allow(
            "Twice", role, ["kms:Decrypt"], via_services=["s3"], conditions={"StringEquals": {"kms:ViaService": "x"}}
        )


def test_the_key_needs_to_know_the_deployment_role() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Legacy", synthesizer=cdk.CliCredentialsStackSynthesizer())
    with pytest.raises(ValueError, match="CloudFormation execution role"):
        ArchiveKey(stack, "Key", config=load_config_from_mapping({}), removal=cdk.RemovalPolicy.RETAIN)


# --- Object Lock -------------------------------------------------------------------------------------------------


def test_object_lock_is_off_by_default_and_governance_when_set(default: Built, secured: Built) -> None:
    def bucket(built: Built) -> dict[str, Any]:
        archive = built.stack.storage.archive_bucket
        found: dict[str, Any] = built.json["Resources"][logical_of(built, archive)]
        return found

    assert "ObjectLockEnabled" not in bucket(default)["Properties"]
    props = bucket(secured)["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Days": 30, "Mode": "GOVERNANCE"}},
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    for other in (secured.stack.storage.access_log_bucket, secured.stack.analytics.results_bucket):
        logical = logical_of(secured, other)
        assert "ObjectLockEnabled" not in secured.json["Resources"][logical]["Properties"]


# --- The alarm topic's key ---------------------------------------------------------------------------------------


def test_the_alarm_topic_key_serves_this_accounts_alarms_only(default: Built) -> None:
    logical = default.stack.resolve(default.stack.monitoring.topic_key.key_arn)["Fn::GetAtt"][0]
    statements = concrete(default.json["Resources"][logical]["Properties"]["KeyPolicy"])["Statement"]
    (cloudwatch,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }
    alarm = {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:x", "aws:SourceAccount": ACCOUNT}
    foreign = {
        "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:444455556666:alarm:x",
        "aws:SourceAccount": "444455556666",
    }
    assert allows(statements, "service:cloudwatch.amazonaws.com", "kms:GenerateDataKey", **alarm)
    assert not allows(statements, "service:cloudwatch.amazonaws.com", "kms:GenerateDataKey", **foreign)


# --- The secured stack passes the checks -------------------------------------------------------------------------


def test_secured_stack_is_nag_and_lint_clean(secured: Built) -> None:
    findings = nag_findings(secured)
    assert [(rule, path) for rule, path, reason in findings if reason is None] == []
    assert any(rule.startswith("AwsSolutions-IAM5") for rule, _, _ in findings)  # the checks ran
    assert _lint(secured.json) == []
    assert PACK == "AwsSolutions"

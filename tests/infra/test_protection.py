"""Nothing can erase or rewrite the archive, only named roles read it (issue 10), by evaluating the synthesized
bucket policies, the ledger's resource policy and the functions' role policies request by request.

A principal the policies do not name is modelled at its strongest: an administrator of the account whose IAM
policies allow everything. An explicit Deny in a resource policy stops it anyway; that is what is checked.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_iam as iam

from infra.protection import (
    BUCKET_SETTING_ACTIONS,
    LEDGER_ERASE_ACTIONS,
    LEDGER_SETTING_ACTIONS,
    RECORD_ERASE_ACTIONS,
)
from tests.infra.conftest import ADMINS, READERS, SECURED, Built, build
from tests.infra.policy_eval import ACCOUNT, REGION, ROOT, SECURE, allows, concrete, denies, listed

ANY_ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Administrator"  # AdministratorAccess, named nowhere
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-{REGION}"
READER, ADMIN = READERS[0], ADMINS[0]
S3_SERVICE = "service:s3.amazonaws.com"
# The list, spelled out here so that shortening the module's constants fails a test.
FORBIDDEN_SETTINGS = (
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketLogging",
    "s3:PutBucketPublicAccessBlock",
)
FORBIDDEN_ERASES = (
    "s3:DeleteObjectVersion",
    "s3:DeleteObject",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
)
CONDITIONAL = {"s3:if-none-match": "*"}


# --- Reading the template ----------------------------------------------------------------------------------------


def _logical(built: Built, construct: Any) -> str:
    return str(built.stack.get_logical_id(construct.node.default_child))


def _arn(built: Built, token: str) -> str:
    return str(concrete(built.stack.resolve(token), built.json["Resources"]))


def bucket_policy(built: Built, bucket: Any) -> list[dict[str, Any]]:
    """The concrete statements of the bucket's policy."""
    logical = _logical(built, bucket)
    resources = built.json["Resources"]
    (policy,) = [
        resource
        for resource in resources.values()
        if resource["Type"] == "AWS::S3::BucketPolicy" and resource["Properties"]["Bucket"] == {"Ref": logical}
    ]
    statements: list[dict[str, Any]] = concrete(policy["Properties"]["PolicyDocument"], resources)["Statement"]
    return statements


def ledger_policy(built: Built) -> list[dict[str, Any]]:
    table = built.json["Resources"][_logical(built, built.stack.storage.table)]
    statements: list[dict[str, Any]] = concrete(
        table["Properties"]["ResourcePolicy"]["PolicyDocument"], built.json["Resources"]
    )["Statement"]
    return statements


def role_statements(built: Built, role: iam.IRole) -> list[dict[str, Any]]:
    """Every statement of the identity policies attached to the role (inline and managed by this stack)."""
    name = built.stack.resolve(role.role_name)
    found: list[dict[str, Any]] = []
    for resource in built.json["Resources"].values():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and name in resource["Properties"].get(
            "Roles", []
        ):
            found += concrete(resource["Properties"]["PolicyDocument"], built.json["Resources"])["Statement"]
    return found


class Archive:
    """The archive bucket's policy and the principals of a stack, concrete."""

    def __init__(self, built: Built) -> None:
        stack = built.stack
        self.built = built
        self.statements = bucket_policy(built, stack.storage.archive_bucket)
        self.bucket = _arn(built, stack.storage.archive_bucket.bucket_arn)
        self.record = (
            f"{self.bucket}/{stack.config.record_prefix}source_region=us-east-2/created_date=2026-12-01/x.json"
        )
        self.key = _arn(built, stack.storage.encryption_key.key_arn)
        self.reconciler = _arn(built, stack.archiver.role.role_arn)
        self.functions = [self.reconciler] + ([_arn(built, stack.events.role.role_arn)] if stack.events else [])

    def denies(self, principal: str, action: str, resource: str | None = None, **context: str) -> bool:
        target = resource or (self.bucket if action in BUCKET_SETTING_ACTIONS else self.record)
        return denies(self.statements, principal, action, target, **SECURE, **context)


@pytest.fixture(scope="module")
def archive(secured: Built) -> Archive:
    return Archive(secured)


# --- The archive's settings --------------------------------------------------------------------------------------


def test_the_settings_that_could_erase_records_are_the_deployments_and_break_glass_only(archive: Archive) -> None:
    assert set(FORBIDDEN_SETTINGS) <= set(BUCKET_SETTING_ACTIONS)
    for action in BUCKET_SETTING_ACTIONS:
        for principal in (ANY_ADMIN, ROOT, READER, S3_SERVICE, *archive.functions):
            assert archive.denies(principal, action), (principal, action)
        # cdk deploy can still update the stack: the CloudFormation execution role is exempt, and the break-glass.
        assert not archive.denies(DEPLOYER, action), action
        assert not archive.denies(ADMIN, action), action


def test_only_break_glass_erases_a_record(archive: Archive) -> None:
    assert set(FORBIDDEN_ERASES) <= set(RECORD_ERASE_ACTIONS)
    for action in RECORD_ERASE_ACTIONS:
        # The deployment changes settings, never records; nor does anyone else.
        for principal in (ANY_ADMIN, ROOT, READER, DEPLOYER, S3_SERVICE, *archive.functions):
            assert archive.denies(principal, action), (principal, action)
        assert not archive.denies(ADMIN, action), action


def test_records_are_written_once_by_the_functions_only(archive: Archive) -> None:
    for function in archive.functions:
        assert not archive.denies(function, "s3:PutObject", **CONDITIONAL)
        assert archive.denies(function, "s3:PutObject")  # an overwrite: no If-None-Match
        # If-None-Match with an ETag overwrites every record whose ETag differs: only `*` is write-once.
        for etag in ('"d41d8cd98f00b204e9800998ecf8427e"', "**", ""):
            assert archive.denies(function, "s3:PutObject", **{"s3:if-none-match": etag}), etag
        # CopyObject and UploadPart carry no If-None-Match: refused too (records are one small put each).
    for principal in (ANY_ADMIN, READER, DEPLOYER, S3_SERVICE):
        assert archive.denies(principal, "s3:PutObject", **CONDITIONAL), principal
        assert archive.denies(principal, "s3:ReplicateObject"), principal
    # The break-glass roles restore a version by copying it over its key.
    assert not archive.denies(ADMIN, "s3:PutObject")
    assert not archive.denies(ADMIN, "s3:PutObject", **{"s3:if-none-match": '"an-etag"'})


def test_no_record_is_encrypted_with_another_key(archive: Archive) -> None:
    other_key = f"arn:aws:kms:{REGION}:444455556666:key/00000000-0000-0000-0000-000000000000"
    ransom: list[dict[str, str]] = [
        {"s3:x-amz-server-side-encryption-customer-algorithm": "AES256"},  # SSE-C
        {"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": other_key},
        {"s3:x-amz-server-side-encryption-aws-kms-key-id": other_key},
        {"s3:x-amz-server-side-encryption": "AES256"},
        {"s3:x-amz-server-side-encryption": "aws:kms:dsse"},
        # aws:kms without a key ID: S3 would use the AWS managed key aws/s3, which the account's principals read.
        {"s3:x-amz-server-side-encryption": "aws:kms"},
    ]
    for headers in ransom:
        for principal in (*archive.functions, ADMIN):  # no exemption, not even the break-glass roles
            assert archive.denies(principal, "s3:PutObject", **CONDITIONAL, **headers), (principal, headers)
    own = {"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": archive.key}
    for principal in archive.functions:
        assert not archive.denies(principal, "s3:PutObject", **CONDITIONAL, **own)
        assert not archive.denies(principal, "s3:PutObject", **CONDITIONAL)  # the bucket's default: the key


def test_no_one_but_break_glass_changes_a_records_lock(archive: Archive) -> None:
    """A retention (a shortened governance lock, or a compliance lock of years) or a legal hold on a version is the
    break-glass roles' only; the functions' puts name no lock (the bucket's default applies) and still pass."""
    for action in ("s3:PutObjectRetention", "s3:PutObjectLegalHold"):
        for principal in (ANY_ADMIN, ROOT, READER, DEPLOYER, *archive.functions):
            assert archive.denies(principal, action), (principal, action)
        assert not archive.denies(ADMIN, action)
    for function in archive.functions:
        assert not archive.denies(function, "s3:PutObject", **CONDITIONAL)


@pytest.mark.parametrize("fixture", ["default", "secured", "variant", "events_variant"])
def test_the_bucket_policies_follow_their_buckets(fixture: str, request: pytest.FixtureRequest) -> None:
    """With `retain` the archive and results buckets' policies are kept with the buckets (a kept bucket without
    its policy would have lost every Deny); with `destroy` they go with the stack, like the buckets."""
    built: Built = request.getfixturevalue(fixture)
    expected = "Retain" if built.stack.config.retain_data else "Delete"
    resources = built.json["Resources"]
    for bucket in (built.stack.storage.archive_bucket, built.stack.analytics.results_bucket):
        assert bucket.policy is not None
        policy = resources[_logical(built, bucket.policy)]
        assert policy["Type"] == "AWS::S3::BucketPolicy"
        assert policy["Properties"]["Bucket"] == {"Ref": _logical(built, bucket)}
        assert policy["DeletionPolicy"] == expected, fixture
        assert policy["UpdateReplacePolicy"] == expected, fixture
        assert resources[_logical(built, bucket)]["DeletionPolicy"] == expected  # the same fate as the bucket


def test_only_named_roles_read_records(archive: Archive) -> None:
    for action in ("s3:GetObject", "s3:GetObjectVersion"):
        for principal in (*archive.functions, *READERS, ADMIN):
            assert not archive.denies(principal, action), (principal, action)
        for principal in (ANY_ADMIN, ROOT, DEPLOYER, S3_SERVICE, f"arn:aws:iam::{ACCOUNT}:role/Analyst3"):
            assert archive.denies(principal, action), (principal, action)


def test_the_policy_keeps_tls_and_names_every_exemption_exactly(archive: Archive) -> None:
    assert denies(archive.statements, ADMIN, "s3:GetObject", archive.record, **{"aws:SecureTransport": "false"})
    for statement in archive.statements:
        for operator, keys in statement.get("Condition", {}).items():
            if "aws:PrincipalArn" in keys:
                assert operator == "ArnNotLike"
                assert not any("*" in arn or "?" in arn for arn in listed(keys["aws:PrincipalArn"]))


# --- The exemptions' scope ----------------------------------------------------------------------------------------


def test_an_update_still_synthesizes_and_the_deployment_stays_exempt(secured: Built) -> None:
    """The next `cdk deploy` (here: a changed setting) runs as the same CloudFormation execution role, which every
    setting statement exempts by its ARN; another bootstrap qualifier names another role, and only that one."""
    updated = Archive(build({**SECURED, "log_retention_days": "365"}))
    for action in BUCKET_SETTING_ACTIONS:
        assert not updated.denies(DEPLOYER, action)
    ledger = ledger_policy(updated.built)
    for action in LEDGER_SETTING_ACTIONS:
        assert not denies(ledger, DEPLOYER, action)
    qualified = Archive(build({**SECURED, "@aws-cdk/core:bootstrapQualifier": "abc123"}))
    own = f"arn:aws:iam::{ACCOUNT}:role/cdk-abc123-cfn-exec-role-{ACCOUNT}-{REGION}"
    for action in BUCKET_SETTING_ACTIONS:
        assert not qualified.denies(own, action)
        assert qualified.denies(DEPLOYER, action)  # the default qualifier's role is just another role


def test_destroy_exempts_the_bucket_emptying_role_from_object_deletes_only(variant: Built, default: Built) -> None:
    archive = Archive(variant)
    assert not variant.stack.config.retain_data
    provider = next(
        logical
        for logical, resource in variant.json["Resources"].items()
        if logical.startswith("CustomS3AutoDeleteObjectsCustomResourceProviderRole")
        and resource["Type"] == "AWS::IAM::Role"
    )
    emptier = f"arn:aws:iam::{ACCOUNT}:role/{provider}"
    assert not archive.denies(emptier, "s3:DeleteObjectVersion")
    assert not archive.denies(emptier, "s3:DeleteObject")
    for action in (*BUCKET_SETTING_ACTIONS, "s3:GetObject", "s3:PutObject"):
        assert archive.denies(emptier, action, **CONDITIONAL), action
    for principal in (ANY_ADMIN, DEPLOYER, archive.reconciler):
        assert archive.denies(principal, "s3:DeleteObjectVersion")
    # With `retain` there is no such role, and so no exemption.
    assert "CustomS3AutoDeleteObjects" not in str(Archive(default).statements)


def test_the_imported_key_is_the_only_key(variant: Built) -> None:
    archive = Archive(variant)
    assert archive.key == variant.stack.config.kms_key_arn
    other = {"s3:x-amz-server-side-encryption-aws-kms-key-id": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/other"}
    assert archive.denies(archive.reconciler, "s3:PutObject", **CONDITIONAL, **other)
    own = {"s3:x-amz-server-side-encryption-aws-kms-key-id": archive.key}
    assert not archive.denies(archive.reconciler, "s3:PutObject", **CONDITIONAL, **own)


def test_without_named_roles_no_one_else_reads_or_erases(default: Built) -> None:
    archive = Archive(default)
    for principal in (ANY_ADMIN, ROOT, DEPLOYER):
        assert archive.denies(principal, "s3:GetObject")
        for action in RECORD_ERASE_ACTIONS:
            assert archive.denies(principal, action)
    assert not archive.denies(archive.reconciler, "s3:GetObject")


# --- Query results -------------------------------------------------------------------------------------------------


def test_query_results_are_the_named_roles_only(secured: Built, default: Built) -> None:
    for built, allowed in ((secured, (*READERS, ADMIN)), (default, ())):
        results = built.stack.analytics.results_bucket
        statements = bucket_policy(built, results)
        result = f"{_arn(built, results.bucket_arn)}/athena-results/1234.csv"
        for action in ("s3:GetObject", "s3:PutObject"):
            for principal in allowed:
                assert not denies(statements, principal, action, result, **SECURE)
            for principal in (ANY_ADMIN, DEPLOYER, _arn(built, built.stack.archiver.role.role_arn)):
                assert denies(statements, principal, action, result, **SECURE), (principal, action)


# --- The ledger ----------------------------------------------------------------------------------------------------


def test_the_ledger_is_put_by_the_functions_and_erased_by_no_one_but_break_glass(
    secured: Built, archive: Archive
) -> None:
    ledger = ledger_policy(secured)
    for function in archive.functions:
        assert not denies(ledger, function, "dynamodb:PutItem")
        for action in (*LEDGER_ERASE_ACTIONS, *LEDGER_SETTING_ACTIONS):
            assert denies(ledger, function, action), action
    for principal in (ANY_ADMIN, ROOT, READER):
        assert denies(ledger, principal, "dynamodb:PutItem")
        for action in (*LEDGER_ERASE_ACTIONS, *LEDGER_SETTING_ACTIONS):
            assert denies(ledger, principal, action), (principal, action)
    for action in LEDGER_SETTING_ACTIONS:
        assert not denies(ledger, DEPLOYER, action)
    for action in LEDGER_ERASE_ACTIONS:
        assert denies(ledger, DEPLOYER, action)
    for action in ("dynamodb:PutItem", *LEDGER_ERASE_ACTIONS, *LEDGER_SETTING_ACTIONS):
        assert not denies(ledger, ADMIN, action)
    for action in ("dynamodb:DeleteTable", "dynamodb:UpdateTimeToLive", "dynamodb:UpdateContinuousBackups"):
        assert action in LEDGER_SETTING_ACTIONS


# --- The functions' own roles --------------------------------------------------------------------------------------


def test_the_functions_may_only_put_and_read_back_records_and_put_ledger_items(
    secured: Built, archive: Archive
) -> None:
    stack = secured.stack
    assert stack.events is not None
    table = _arn(secured, stack.storage.table.table_arn)
    for role in (stack.archiver.role, stack.events.role):
        identity = role_statements(secured, role)
        s3_actions = {action for s in identity for action in listed(s["Action"]) if action.startswith("s3:")}
        assert s3_actions == {"s3:PutObject", "s3:GetObject", "s3:ListBucket"}
        ddb_actions = {action for s in identity for action in listed(s["Action"]) if action.startswith("dynamodb:")}
        assert ddb_actions == {"dynamodb:PutItem", "dynamodb:BatchGetItem"}
        for action in ("s3:PutObject", "s3:GetObject"):
            assert allows(identity, "role", action, archive.record)
        for action in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl", "s3:PutObjectRetention"):
            assert not allows(identity, "role", action, archive.record), action
        assert not allows(identity, "role", "s3:PutObject", f"{archive.bucket}/elsewhere/x.json")
        for action in ("dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:Scan", "dynamodb:DeleteTable"):
            assert not allows(identity, "role", action, table), action
        assert allows(identity, "role", "dynamodb:PutItem", table)

"""The optional AWS Backup plan (context `backup_plan`): vault, preset plan, selection, role, key use, access policy."""

from __future__ import annotations

from typing import Any

import pytest

from infra.backup import (
    MANAGED_POLICIES,
    PRESETS,
    RECOVERY_POINT_COPY_ACTIONS,
    RECOVERY_POINT_ERASE_ACTIONS,
    VAULT_SETTING_ACTIONS,
)
from infra.config import BACKUP_PLANS
from tests.infra.conftest import ADMINS, VARIANT, Built, build
from tests.infra.policy_eval import ACCOUNT, REGION, ROOT, allows, concrete, denies
from tests.infra.test_encryption import DEPLOYER, data_uses, key_policy
from tests.infra.test_nag import all_options
from tests.infra.test_protection import ANY_ADMIN, Archive, role_statements

ADMIN = ADMINS[0]
# The presets' rules as (name, days kept): AWS Backup's daily 35 days, weekly 90 days, monthly 1/5/7 years.
EXPECTED_RULES = {
    "daily35": [("Daily", 35)],
    "daily-monthly-1y": [("Daily", 35), ("Monthly1Year", 365)],
    "daily-weekly-monthly-5y": [("Daily", 35), ("Weekly", 90), ("Monthly5Year", 1825)],
    "daily-weekly-monthly-7y": [("Daily", 35), ("Weekly", 90), ("Monthly7Year", 2555)],
}


@pytest.fixture(scope="module")
def backed_up() -> Built:
    """Every option on, with the daily35 plan (test_nag's all_options stack)."""
    return all_options()


def only(built: Built, kind: str) -> dict[str, Any]:
    (resource,) = built.template.find_resources(kind).values()
    found: dict[str, Any] = dict(resource)
    return found


def test_no_backup_by_default(default: Built) -> None:
    assert default.stack.backup is None
    assert not [
        kind for kind in (r["Type"] for r in default.json["Resources"].values()) if kind.startswith("AWS::Backup")
    ]
    assert "BackupVaultName" not in default.json["Outputs"]


def test_every_preset_is_built_with_its_rules() -> None:
    assert set(PRESETS) == set(BACKUP_PLANS) == set(EXPECTED_RULES)
    for preset, rules in EXPECTED_RULES.items():
        built = build({"stack_name": "ArchiverBackedUp", "backup_plan": preset})
        plan = only(built, "AWS::Backup::BackupPlan")["Properties"]["BackupPlan"]
        assert plan["BackupPlanName"] == "ArchiverBackedUp-archive"  # plan names are the account's
        assert [(rule["RuleName"], rule["Lifecycle"]["DeleteAfterDays"]) for rule in plan["BackupPlanRule"]] == rules
        assert built.stack.backup is not None
        vault = built.stack.resolve(built.stack.backup.vault.backup_vault_name)
        for rule in plan["BackupPlanRule"]:
            assert rule["TargetBackupVault"] == vault


def test_the_vault_is_encrypted_with_the_archive_key_and_kept_with_the_data(backed_up: Built) -> None:
    vault = only(backed_up, "AWS::Backup::BackupVault")
    key = backed_up.stack.resolve(backed_up.stack.storage.encryption_key.key_arn)
    assert vault["Properties"]["EncryptionKeyArn"] == key
    assert vault["DeletionPolicy"] == "Retain"  # a backup plan needs retained data (tests/infra/test_config.py)
    assert "BackupVaultName" in backed_up.json["Outputs"]


def test_the_selection_is_the_bucket_and_the_ledger_with_its_own_role(backed_up: Built) -> None:
    stack = backed_up.stack
    assert stack.backup is not None
    selection = only(backed_up, "AWS::Backup::BackupSelection")["Properties"]["BackupSelection"]
    assert selection["Resources"] == [
        stack.resolve(stack.storage.archive_bucket.bucket_arn),
        stack.resolve(stack.storage.table.table_arn),
    ]
    assert selection["IamRoleArn"] == stack.resolve(stack.backup.role.role_arn)
    role = backed_up.json["Resources"][stack.resolve(stack.backup.role.role_arn)["Fn::GetAtt"][0]]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}}
    ]
    managed = [concrete(arn) for arn in role["ManagedPolicyArns"]]
    assert managed == [f"arn:aws:iam::aws:policy/{name}" for name in MANAGED_POLICIES]  # no restore policy
    # S3 backups need versioning.
    bucket = backed_up.json["Resources"][stack.resolve(stack.storage.archive_bucket.bucket_arn)["Fn::GetAtt"][0]]
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_the_backup_role_uses_the_key_through_s3_dynamodb_and_backup_only(backed_up: Built) -> None:
    stack = backed_up.stack
    assert stack.backup is not None
    policy = key_policy(backed_up)
    role = str(concrete(stack.resolve(stack.backup.role.role_arn)))
    assert data_uses(policy, role) == {("kms:Decrypt", "s3"), ("kms:Decrypt", "dynamodb")}  # SERVICES lacks backup
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert allows(policy, role, action, service="backup")
    grant = {"kms:GrantIsForAWSResource": "true"}
    assert allows(policy, role, "kms:CreateGrant", service="backup", **grant)
    assert not allows(policy, role, "kms:CreateGrant", service="backup")
    assert not allows(policy, role, "kms:GenerateDataKey", service="s3")
    # The deployment creates the vault: through AWS Backup only.
    assert allows(policy, DEPLOYER, "kms:CreateGrant", service="backup", **grant)
    assert allows(policy, DEPLOYER, "kms:GenerateDataKey", service="backup")
    assert not allows(policy, DEPLOYER, "kms:Decrypt", service="s3")
    assert not allows(policy, ANY_ADMIN, "kms:Decrypt", service="backup")


def test_only_break_glass_deletes_a_recovery_point(backed_up: Built) -> None:
    statements = vault_policy(backed_up)
    point = f"arn:aws:backup:{REGION}:{ACCOUNT}:recovery-point:1234"
    for action in RECOVERY_POINT_ERASE_ACTIONS:
        for principal in (ANY_ADMIN, ROOT, DEPLOYER):
            assert denies(statements, principal, action, point), (principal, action)
        assert not denies(statements, ADMIN, action, point)
    for action in VAULT_SETTING_ACTIONS:
        assert denies(statements, ANY_ADMIN, action)
        assert not denies(statements, DEPLOYER, action)
        assert not denies(statements, ADMIN, action)


def vault_policy(built: Built) -> list[dict[str, Any]]:
    vault = only(built, "AWS::Backup::BackupVault")
    statements: list[dict[str, Any]] = concrete(vault["Properties"]["AccessPolicy"], built.json["Resources"])[
        "Statement"
    ]
    return statements


def test_only_break_glass_restores_or_copies_a_recovery_point(backed_up: Built) -> None:
    """A restore or a copy takes the data out of the vault (into a resource or another vault the caller picks):
    only the break-glass roles, not an administrator of the account, the deployment or the backup role."""
    assert set(RECOVERY_POINT_COPY_ACTIONS) == {
        "backup:StartRestoreJob",
        "backup:StartCopyJob",
        "backup:CopyFromBackupVault",
    }
    assert backed_up.stack.backup is not None
    statements = vault_policy(backed_up)
    point = f"arn:aws:backup:{REGION}:{ACCOUNT}:recovery-point:1234"
    vault = f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:archive"
    backup_role = str(concrete(backed_up.stack.resolve(backed_up.stack.backup.role.role_arn)))
    for action in RECOVERY_POINT_COPY_ACTIONS:
        for resource in (point, vault):
            for principal in (ANY_ADMIN, ROOT, DEPLOYER, backup_role, "service:backup.amazonaws.com"):
                assert denies(statements, principal, action, resource), (principal, action)
            assert not denies(statements, ADMIN, action, resource), action
    # The vault's own jobs (the backup role's backups) are not among them.
    assert not denies(statements, backup_role, "backup:StartBackupJob", vault)
    # Without break-glass roles, no one restores or copies.
    plain = vault_policy(build({"stack_name": "ArchiverBackedUpPlain", "backup_plan": "daily35"}))
    for action in RECOVERY_POINT_COPY_ACTIONS:
        assert denies(plain, ADMIN, action, point)


def test_the_backup_role_uses_no_key_but_the_archive_key(backed_up: Built) -> None:
    """Whoever may pass the role to a StartBackupJob of their own cannot make it encrypt a backup with another
    key: an inline Deny on every KMS action outside the archive key; the archive key's uses still pass."""
    stack = backed_up.stack
    assert stack.backup is not None
    identity = role_statements(backed_up, stack.backup.role)
    (guard,) = [statement for statement in identity if statement.get("Sid") == "NoKeyButTheArchiveKey"]
    key = str(concrete(stack.resolve(stack.storage.encryption_key.key_arn), backed_up.json["Resources"]))
    assert guard["Effect"] == "Deny" and guard["Action"] == "kms:*" and guard["NotResource"] == key
    other = f"arn:aws:kms:{REGION}:444455556666:key/00000000-0000-0000-0000-000000000000"
    mine = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/another-key-of-this-account"
    # The managed policies allow KMS on "*" (through S3 and AWS Backup): modelled as an Allow of everything.
    everything = [*identity, {"Effect": "Allow", "Action": "*", "Resource": "*"}]
    for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:Encrypt", "kms:ReEncryptTo"):
        for service in ("s3", "dynamodb", "backup"):
            assert not allows(everything, "role", action, other, service=service), (action, service)
            assert not allows(everything, "role", action, mine, service=service), (action, service)
            assert allows(everything, "role", action, key, service=service), (action, service)
    # The backup itself: the bucket and table (their data is encrypted with the archive key) and the vault's key.
    assert only(backed_up, "AWS::Backup::BackupVault")["Properties"]["EncryptionKeyArn"] == stack.resolve(
        stack.storage.encryption_key.key_arn
    )


def test_the_backup_role_reads_records_and_nothing_more(backed_up: Built) -> None:
    stack = backed_up.stack
    assert stack.backup is not None
    archive = Archive(backed_up)
    role = str(concrete(stack.resolve(stack.backup.role.role_arn)))
    for action in ("s3:GetObject", "s3:GetObjectVersion"):
        assert not archive.denies(role, action)
    for action in ("s3:PutObject", "s3:DeleteObjectVersion", "s3:PutBucketVersioning"):
        assert archive.denies(role, action, **{"s3:if-none-match": "*"}), action


def test_backup_with_an_imported_key_grants_through_the_role() -> None:
    built = build(
        {**VARIANT, "stack_name": "ArchiverImportedBackup", "backup_plan": "daily35", "data_removal_policy": "retain"}
    )
    stack = built.stack
    assert stack.backup is not None
    assert only(built, "AWS::Backup::BackupVault")["Properties"]["EncryptionKeyArn"] == VARIANT["kms_key_arn"]
    role = stack.resolve(stack.backup.role.role_arn)["Fn::GetAtt"][0]
    granted = set()
    for policy in built.template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in concrete(policy["Properties"]["PolicyDocument"]["Statement"]):
                assert statement.get("Resource", statement.get("NotResource")) == VARIANT["kms_key_arn"]
                granted |= {statement["Sid"]}
    assert granted == {
        "NoKeyButTheArchiveKey",
        "BackupReadsRecordsThroughS3",
        "BackupReadsTheLedgerThroughDynamoDB",
        "BackupWritesRecoveryPointsThroughBackup",
        "BackupKeepsItsGrantForTheVault",
    }

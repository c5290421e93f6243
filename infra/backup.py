"""An optional AWS Backup plan of the archive bucket and the ledger (context `backup_plan`).

A second copy outside the bucket: versioning and Object Lock keep every version of a record in the bucket, but
a backup survives what they cannot (the bucket's deletion by a holder of the break-glass or deployment role, a
key policy change that makes the records unreadable is not one of them: the vault uses the same key). The plan
is one of AWS Backup's presets (`aws_backup.BackupPlan`'s factory methods, config.BACKUP_PLANS). The vault is
encrypted with the archive key and its access policy denies deleting a recovery point or shortening its
lifecycle, restoring or copying one, to everyone but the break-glass roles, and changing the vault's policy or
deleting it to everyone but them and the deployment. The backup role may use no KMS key but the archive key.
S3 backups need versioning, which the archive bucket has.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import ArchiverConfig
from infra.encryption import deployment_role_arn
from infra.nag import acknowledge
from infra.protection import deny, except_for
from infra.storage import Storage, removal_policy

PRESETS: dict[str, Callable[[Construct, str, backup.IBackupVault], backup.BackupPlan]] = {
    "daily35": backup.BackupPlan.daily35_day_retention,
    "daily-monthly-1y": backup.BackupPlan.daily_monthly1_year_retention,
    "daily-weekly-monthly-5y": backup.BackupPlan.daily_weekly_monthly5_year_retention,
    "daily-weekly-monthly-7y": backup.BackupPlan.daily_weekly_monthly7_year_retention,
}
# The AWS managed policies of the backup role: AWS Backup's own (DynamoDB and the vault), and S3's, which
# BackupSelection does not add. Restores are not granted: a break-glass role restores, with a role it passes.
MANAGED_POLICIES = ("service-role/AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForS3Backup")
RECOVERY_POINT_ERASE_ACTIONS = ("backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle")
# Taking a recovery point's data out of the vault: a restore (into a resource its caller chooses) or a copy into
# another vault (perhaps another account's, encrypted with another key). Each is authorized on the recovery point
# or the vault, so the vault's access policy governs it: only the break-glass roles.
RECOVERY_POINT_COPY_ACTIONS = ("backup:StartRestoreJob", "backup:StartCopyJob", "backup:CopyFromBackupVault")
VAULT_SETTING_ACTIONS = (
    "backup:DeleteBackupVault",
    "backup:PutBackupVaultAccessPolicy",
    "backup:DeleteBackupVaultAccessPolicy",
    "backup:PutBackupVaultLockConfiguration",
    "backup:DeleteBackupVaultLockConfiguration",
)
# What the backup role needs of the archive key: read the records (through S3) and the ledger (through DynamoDB),
# and write recovery points into the vault (through AWS Backup, which keeps a grant for them).
BACKUP_READ_ACTIONS = ("kms:Decrypt",)
VAULT_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
# Creating a vault encrypted with a customer managed key needs these of its creator (AWS Backup's "Backup vault
# creation" guide): the deployment, through AWS Backup only.
VAULT_CREATOR_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey", "kms:RetireGrant")  # + CreateGrant for AWS Backup


def backup_plan_of(config: ArchiverConfig) -> str | None:
    """The preset's name, or None (no backup); fails synthesis on a name this module cannot build."""
    if config.backup_plan is not None and config.backup_plan not in PRESETS:
        raise ValueError(f"backup_plan {config.backup_plan!r} has no preset in infra/backup.py")
    return config.backup_plan


class Backup(Construct):
    """The vault (archive key), the plan (a preset), the selection (bucket + table) and its role."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ArchiverConfig, storage: Storage) -> None:
        super().__init__(scope, construct_id)
        preset = backup_plan_of(config)
        assert preset is not None, "build Backup only when config.backup_plan is set"
        deployer = deployment_role_arn(Stack.of(self))
        self.vault = backup.BackupVault(
            self,
            "Vault",
            encryption_key=storage.encryption_key,
            # Follows the data: with `destroy` the vault goes with the stack (CloudFormation can delete it only
            # once its recovery points have expired or been deleted by a break-glass role).
            removal_policy=removal_policy(config),
        )
        self.vault.add_to_access_policy(
            deny(
                "OnlyBreakGlassDeletesRecoveryPoints",
                RECOVERY_POINT_ERASE_ACTIONS,
                ["*"],
                except_for(config.admin_role_arns),
            )
        )
        self.vault.add_to_access_policy(
            deny(
                "OnlyBreakGlassRestoresOrCopies",
                RECOVERY_POINT_COPY_ACTIONS,
                ["*"],
                except_for(config.admin_role_arns),
            )
        )
        self.vault.add_to_access_policy(
            deny(
                "OnlyDeploymentAndBreakGlassChangeTheVault",
                VAULT_SETTING_ACTIONS,
                ["*"],
                except_for([deployer, *config.admin_role_arns]),
            )
        )
        # The preset names the plan after its construct ID; plan names are the account's, so the stack's name.
        self.plan = PRESETS[preset](self, f"{config.stack_name}-archive", self.vault)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup: backs up the GameLift Streams session archive (bucket and ledger).",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in MANAGED_POLICIES],
        )
        # Anyone allowed iam:PassRole on this role could name it in a StartBackupJob of their own, into a vault of
        # their own: it may use no key but the archive key (the records', the ledger's and the vault's), so a
        # backup it makes can only be encrypted with, and read by, the archive key's principals.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="NoKeyButTheArchiveKey",
                effect=iam.Effect.DENY,
                actions=["kms:*"],
                not_resources=[storage.encryption_key.key_arn],
            )
        )
        self.selection = self.plan.add_selection(
            "Selection",
            resources=[
                backup.BackupResource.from_arn(storage.archive_bucket.bucket_arn),
                backup.BackupResource.from_dynamo_db_table(storage.table),
            ],
            role=self.role,
            # Our role already has AWS Backup's policy (MANAGED_POLICIES): do not attach it twice.
            disable_default_backup_policy=True,
        )
        key = storage.key
        key.allow("BackupReadsRecordsThroughS3", self.role, BACKUP_READ_ACTIONS, via_services=["s3"])
        key.allow("BackupReadsTheLedgerThroughDynamoDB", self.role, BACKUP_READ_ACTIONS, via_services=["dynamodb"])
        key.allow("BackupWritesRecoveryPointsThroughBackup", self.role, VAULT_KEY_ACTIONS, via_services=["backup"])
        key.allow(
            "BackupKeepsItsGrantForTheVault",
            self.role,
            ("kms:CreateGrant",),
            via_services=["backup"],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
        if key.owned:
            key.allow(
                "DeploymentCreatesTheVaultThroughBackup",
                iam.AccountRootPrincipal(),
                VAULT_CREATOR_ACTIONS,
                via_services=["backup"],
                conditions={"ArnEquals": {"aws:PrincipalArn": deployer}},
            )
            key.allow(
                "DeploymentLetsBackupCreateItsGrant",
                iam.AccountRootPrincipal(),
                ("kms:CreateGrant",),
                via_services=["backup"],
                conditions={"ArnEquals": {"aws:PrincipalArn": deployer}, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]",
            "AWS Backup's own service role policy, which AWS maintains as services add backup features; the role "
            "is assumable by AWS Backup only and selects just the archive bucket and the ledger table.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup]",
            "AWS Backup's managed policy for S3 backups (read objects and versions, decrypt through S3), kept "
            "current by AWS; the bucket policy still denies record reads to every role but the named ones and this.",
        )

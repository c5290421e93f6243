"""The archive's key: a customer managed KMS key whose policy names every principal that may use it.

CDK's default key policy gives the account root `kms:*`, which delegates the key to IAM: then any identity
policy that allows `kms:Decrypt` (an administrator's, or a broad `kms:*` one) reads every record. This key's
policy does not delegate data use: the account gets key *administration* only (so the key stays manageable
and KMS's lockout check passes), and each principal that encrypts or decrypts is named with the services it
may go through (`kms:ViaService`) and, for service principals, its source conditions. Reading a record
without being named needs a change of the key policy first (`kms:PutKeyPolicy`), which only the deployment's
CloudFormation execution role and the break-glass roles (`admin_role_arns`) may make: the one audited path.

With `kms_key_arn` the key is imported: its policy is the operator's. Grants then go to the identity
policies of this stack's roles (effective if that key policy delegates to IAM, as KMS's default one does);
what only a key policy can grant (service principals, roles outside the stack) is collected in
`operator_statements` for the operator to add.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Aws, DefaultStackSynthesizer, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.config import ArchiverConfig

# What the account (through IAM) may do with the key: look at it and keep it running. No data use (Encrypt,
# Decrypt, GenerateDataKey*, ReEncrypt*) and no CreateGrant (a grant can hand out data use). Named, not
# `kms:Describe*`-style wildcards, so a new KMS action is not granted by accident.
ADMINISTRATION_ACTIONS = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:RotateKeyOnDemand",
    "kms:CancelKeyDeletion",
)
# What could expose or destroy the archive: a new key policy (which could name any reader), and disabling,
# deleting or revoking (records that can no longer be decrypted are erased). Only the deployment's
# CloudFormation execution role (stack updates, and deletion with `destroy`) and the break-glass roles.
BREAK_GLASS_ACTIONS = (
    "kms:PutKeyPolicy",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:ScheduleKeyDeletion",
    "kms:RevokeGrant",
)
# The actions that use the key's data: never granted to the account, only to named principals.
DATA_ACTIONS = frozenset(
    {
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:GenerateDataKeyPair",
        "kms:GenerateDataKeyPairWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:CreateGrant",
    }
)
# Named readers (reader_role_arns) read records and query results and write results (Athena writes them with
# the querying identity); break-glass roles (admin_role_arns) also read the ledger and the queues, and restore
# (copy) a record version. All through the data's own service only, never the key directly.
READER_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
READER_SERVICES = ("s3",)
ADMIN_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
ADMIN_SERVICES = ("s3", "dynamodb", "sqs")
# Deletion waits the longest KMS allows: a mistaken ScheduleKeyDeletion can be cancelled for 30 days.
PENDING_WINDOW = Duration.days(30)


def via(service: str) -> str:
    """A `kms:ViaService` value: 's3' -> 's3.<stack Region>.amazonaws.com'; a full name stays as it is."""
    return service if "." in service else f"{service}.{Aws.REGION}.amazonaws.com"


def deployment_role_arn(stack: Stack) -> str:
    """The CloudFormation execution role `cdk deploy` creates and updates the stack with (bootstrap's
    `cfn-exec-role`, or the one the synthesizer names); a token the template resolves (Fn::Sub)."""
    synthesizer = stack.synthesizer
    if not isinstance(synthesizer, DefaultStackSynthesizer):
        raise ValueError(
            f"The stack uses {type(synthesizer).__name__}, not DefaultStackSynthesizer: the archive key's policy "
            "must name the CloudFormation execution role that deploys it, and only DefaultStackSynthesizer says "
            "which role that is."
        )
    return Fn.sub(synthesizer.cloud_formation_execution_role_arn)


def _merge(*blocks: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Condition blocks merged by operator (`StringEquals` of two blocks becomes one with both keys)."""
    merged: dict[str, dict[str, Any]] = {}
    for block in blocks:
        for operator, keys in block.items():
            target = merged.setdefault(operator, {})
            for key, value in keys.items():
                if key in target and target[key] != value:
                    raise ValueError(f"condition {operator} {key} given twice with different values")
                target[key] = value
    return merged


class ArchiveKey(Construct):
    """The key of the archive bucket, the ledger, the query results, the log groups and the queues."""

    key: kms.IKey
    owned: bool  # False when imported through kms_key_arn

    def __init__(self, scope: Construct, construct_id: str, *, config: ArchiverConfig, removal: RemovalPolicy) -> None:
        """`removal` is the data's fate (`infra.storage.removal_policy`): a retained record needs its key."""
        super().__init__(scope, construct_id)
        self.operator_statements: list[iam.PolicyStatement] = []
        self._sids: set[str] = set()
        if config.kms_key_arn:
            self.key = kms.Key.from_key_arn(self, "ConfiguredKey", config.kms_key_arn)
            self.owned = False
            return
        stack = Stack.of(self)
        self.owned = True
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the GameLift Streams session archive: records, ledger, query results, logs, queues.",
            alias=f"alias/{config.stack_name}/archive",
            enable_key_rotation=True,
            pending_window=PENDING_WINDOW,
            removal_policy=removal,
            # Our own policy (given, so CDK adds no `kms:*` for the account); statements follow through allow().
            policy=iam.PolicyDocument(),
        )
        account = iam.AccountRootPrincipal()
        self._add(
            iam.PolicyStatement(
                sid="AccountAdministersTheKeyButCannotUseIt",
                principals=[account],
                actions=list(ADMINISTRATION_ACTIONS),
                resources=["*"],
            )
        )
        # A condition on aws:PrincipalArn (an ARN, not the role's unique ID): a role deleted and created again
        # under the same name (a new bootstrap) still matches, so the key is never locked out.
        deployer = deployment_role_arn(stack)
        self._add(
            iam.PolicyStatement(
                sid="OnlyDeploymentAndBreakGlassChangePolicyOrDisable",
                principals=[account],
                actions=list(BREAK_GLASS_ACTIONS),
                resources=["*"],
                conditions={"ArnEquals": {"aws:PrincipalArn": [deployer, *config.admin_role_arns]}},
            )
        )
        # Creating (or updating) the table encrypted with this key makes DynamoDB create its grant on behalf of
        # the caller: the deployment role, and only for DynamoDB's own grant.
        self._add(
            iam.PolicyStatement(
                sid="DeploymentLetsDynamoDBCreateItsGrant",
                principals=[account],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={
                    "ArnEquals": {"aws:PrincipalArn": deployer},
                    "StringEquals": {"kms:ViaService": via("dynamodb")},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            )
        )

    def allow(
        self,
        sid: str,
        principal: iam.IPrincipal,
        actions: Sequence[str],
        *,
        via_services: Sequence[str] = (),
        conditions: Mapping[str, Any] | None = None,
    ) -> None:
        """Let `principal` use the key: a key-policy statement (owned key) or an identity-policy statement.

        `via_services` ('s3', 'dynamodb', ... or full endpoint names) become one `kms:ViaService` condition;
        `conditions` are merged with it. With an imported key, a principal without an identity policy in this
        stack (a service, a role elsewhere) gets nothing here: its statement goes to `operator_statements`.
        """
        if not actions:
            raise ValueError(f"allow({sid!r}) names no action")
        via_block = {"StringEquals": {"kms:ViaService": [via(s) for s in via_services]}} if via_services else {}
        merged = _merge(via_block, conditions or {})
        if self.owned:
            self._add(
                iam.PolicyStatement(
                    sid=sid, principals=[principal], actions=list(actions), resources=["*"], conditions=merged or None
                )
            )
            return
        self._claim(sid)
        identity = iam.PolicyStatement(
            sid=sid, actions=list(actions), resources=[self.key.key_arn], conditions=merged or None
        )
        if not principal.add_to_principal_policy(identity).statement_added:
            self.operator_statements.append(
                iam.PolicyStatement(
                    sid=sid, principals=[principal], actions=list(actions), resources=["*"], conditions=merged or None
                )
            )

    def _add(self, statement: iam.PolicyStatement) -> None:
        assert statement.sid is not None
        self._claim(statement.sid)
        assert isinstance(self.key, kms.Key)
        self.key.add_to_resource_policy(statement)

    def _claim(self, sid: str) -> None:
        """Each statement's Sid is unique in the key policy: it is what a reviewer reads it by."""
        if sid in self._sids:
            raise ValueError(f"the archive key already has a statement {sid!r}")
        self._sids.add(sid)


def named_roles(arns: Sequence[str]) -> iam.IPrincipal | None:
    """The roles of a context key (reader_role_arns, admin_role_arns) as one principal; None if none."""
    return iam.CompositePrincipal(*(iam.ArnPrincipal(arn) for arn in arns)) if arns else None


def grant_named_roles(key: ArchiveKey, config: ArchiverConfig) -> None:
    """The readers' and the break-glass roles' use of the key. KMS checks that each named role exists when the
    key policy is set: a misspelt ARN fails the deployment (MalformedPolicyDocumentException), it is not ignored."""
    readers = named_roles(config.reader_role_arns)
    if readers is not None:
        key.allow("NamedReadersReadThroughS3", readers, READER_ACTIONS, via_services=READER_SERVICES)
    admins = named_roles(config.admin_role_arns)
    if admins is not None:
        key.allow("BreakGlassReadsAndRestoresThroughS3DynamoDBSQS", admins, ADMIN_ACTIONS, via_services=ADMIN_SERVICES)

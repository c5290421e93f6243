"""Nothing can erase or rewrite the archive, and only named roles read it: explicit Deny statements.

An explicit Deny in a bucket (or table) policy wins over every Allow, an administrator's `s3:*` included, so
these statements bound what any principal of the account can do, whatever its IAM policies say. Each names the
principals it exempts by `aws:PrincipalArn` (`ArnNotLike`), an ARN rather than a role's unique ID, so a role
deleted and created again under the same name (a new bootstrap) is still exempt:

- the deployment's CloudFormation execution role (`infra.encryption.deployment_role_arn`): `cdk deploy` updates
  the bucket's policy, lifecycle, versioning, Object Lock and encryption settings and the table with it, so it
  is exempt from the statements on those settings (never from reading, writing or deleting records);
- the break-glass roles (`admin_role_arns`): exempt from everything here except the encryption rules;
- the functions' roles: may read and write records (write-once: `If-None-Match: *`) and put ledger items;
- the named readers (`reader_role_arns`) and, with a backup plan, AWS Backup's role: may read records;
- with `data_removal_policy=destroy` only: the CDK's bucket-emptying custom resource's role, exempt from the
  object deletes alone (it lists every version and deletes it when the stack is deleted; its attempt to add a
  deny-new-objects statement to the policy first may fail: the handler logs and carries on).

The account's root user can always change or delete a bucket policy (S3) or a table's resource policy
(DynamoDB), however the policy denies it: that is AWS's lock-out protection, and the audited way back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import ArchiverConfig
from infra.encryption import deployment_role_arn
from infra.storage import removal_policy

# Changes of the archive bucket's settings that would let records expire, be erased or be read elsewhere: only
# the deployment (a stack update) and the break-glass roles. PutEncryptionConfiguration: another default key
# (an attacker's) would hold every new record to ransom. PutBucketOwnershipControls: the gate of ACLs; while
# the bucket is BucketOwnerEnforced (which this protects), ACLs are disabled and grant nothing, so PutBucketAcl
# and PutObjectAcl are not listed (they cannot change access). PutReplicationConfiguration: a replication rule
# copies every new record to another bucket, possibly another account's. PutBucketLogging: turning the access
# logs off (or elsewhere) hides who read or tried to erase a record. PutBucketPublicAccessBlock: the gate of a
# public grant (the policy itself is guarded too, but nothing public may ever be one call away).
BUCKET_SETTING_ACTIONS = (
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutReplicationConfiguration",
    "s3:PutBucketLogging",
    "s3:PutBucketPublicAccessBlock",
)
# Erasing or hiding a record: a delete marker (DeleteObject, ReplicateDelete), removing a version, removing a
# version under Object Lock governance retention (BypassGovernanceRetention), and changing a version's lock:
# PutObjectRetention (shortening a governance retention with the bypass, or a compliance lock of years that no
# one can lift: the stack's settings, not a caller's, decide how long a record is locked) and PutObjectLegalHold.
# Only the break-glass roles (and, with `destroy`, the bucket-emptying custom resource). The functions' puts need
# neither: S3 applies the bucket's default retention to a put that names none, and they name none.
RECORD_ERASE_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:ReplicateDelete",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
)
# Writing objects (a new version of a record is a rewrite): the functions (write-once) and the break-glass roles.
RECORD_WRITE_ACTIONS = ("s3:PutObject", "s3:ReplicateObject")
# Reading records, current and earlier versions.
RECORD_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
# Query results: read and written by the querying identity (Athena uses the caller's credentials).
RESULT_ACTIONS = ("s3:GetObject", "s3:PutObject")

# The ledger: erasing or rewriting items, or the table. PutItem is the functions' (and break-glass) only; item
# updates and deletes (also through BatchWriteItem and PartiQL) the break-glass roles' only. Table settings that
# could erase it (deletion, TTL that expires items, PITR off, the resource policy) also the deployment's.
LEDGER_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:PartiQLInsert")
LEDGER_ERASE_ACTIONS = (
    "dynamodb:DeleteItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLDelete",
    "dynamodb:PartiQLUpdate",
)
LEDGER_SETTING_ACTIONS = (
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:PutResourcePolicy",
    "dynamodb:DeleteResourcePolicy",
)

PRINCIPAL_ARN = "aws:PrincipalArn"
# A condition block: operator -> key -> value(s).
Conditions = Mapping[str, Mapping[str, object]]
AUTO_DELETE_PROVIDER = "Custom::S3AutoDeleteObjectsCustomResourceProvider"


def except_for(arns: Sequence[str]) -> Conditions | None:
    """The condition that exempts these principals (None when no one is exempt: the Deny is for everyone)."""
    unique = list(dict.fromkeys(arns))
    return {"ArnNotLike": {PRINCIPAL_ARN: unique}} if unique else None


def _merged(*blocks: Conditions | None) -> dict[str, dict[str, object]] | None:
    merged: dict[str, dict[str, object]] = {}
    for block in blocks:
        for operator, keys in (block or {}).items():
            merged.setdefault(operator, {}).update(keys)
    return merged or None


def deny(
    sid: str, actions: Sequence[str], resources: Sequence[str], *conditions: Conditions | None
) -> iam.PolicyStatement:
    """An explicit Deny for every principal, except whom the conditions exempt."""
    return iam.PolicyStatement(
        sid=sid,
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=list(actions),
        resources=list(resources),
        conditions=_merged(*conditions),
    )


def auto_delete_role_arn(stack: Stack) -> str | None:
    """The ARN of the CDK's bucket-emptying custom resource's role (auto_delete_objects), if the stack has one."""
    provider = stack.node.try_find_child(AUTO_DELETE_PROVIDER)
    if provider is None:
        return None
    role = provider.node.find_child("Role")
    assert isinstance(role, CfnResource)
    return role.get_att("Arn").to_string()


@dataclass(frozen=True)
class Principals:
    """Who is exempt from what: ARNs (tokens that the template resolves, or literal ARNs from the context)."""

    deployer: str
    admins: tuple[str, ...]
    functions: tuple[str, ...]
    readers: tuple[str, ...]
    backup: tuple[str, ...]
    auto_delete: tuple[str, ...]


def archive_statements(
    principals: Principals, bucket_arn: str, key_arn: str, *, versioned_objects: str
) -> list[iam.PolicyStatement]:
    """The archive bucket's Deny statements (`versioned_objects`: the objects' ARN pattern, `<bucket>/*`)."""
    p = principals
    objects = [versioned_objects]
    put = ["s3:PutObject"]
    return [
        deny(
            "OnlyDeploymentAndBreakGlassChangeTheArchiveSettings",
            BUCKET_SETTING_ACTIONS,
            [bucket_arn],
            except_for([p.deployer, *p.admins]),
        ),
        deny(
            "OnlyBreakGlassErasesRecords",
            RECORD_ERASE_ACTIONS,
            objects,
            except_for([*p.admins, *p.auto_delete]),
        ),
        deny(
            "OnlyTheFunctionsAndBreakGlassWriteRecords",
            RECORD_WRITE_ACTIONS,
            objects,
            except_for([*p.functions, *p.admins]),
        ),
        # Write-once: a put must carry If-None-Match (S3 then refuses it when the key exists). S3 accepts the
        # header on PutObject and CompleteMultipartUpload only, so multipart uploads are refused too (records are
        # small single puts). The break-glass roles restore a version by copying it over the key: exempt.
        deny(
            "RecordsAreWriteOnce",
            put,
            objects,
            {"Null": {"s3:if-none-match": "true"}},
            except_for(p.admins),
        ),
        # ... and the header must be `*` (any object): If-None-Match with an ETag would overwrite any record
        # whose ETag differs. StringNotEquals also holds when the key is absent (the statement above, again).
        deny(
            "RecordsAreWriteOnceIfNoneMatchIsStar",
            put,
            objects,
            {"StringNotEquals": {"s3:if-none-match": "*"}},
            except_for(p.admins),
        ),
        deny(
            "OnlyNamedRolesReadRecords",
            RECORD_READ_ACTIONS,
            objects,
            except_for([*p.functions, *p.readers, *p.admins, *p.backup]),
        ),
        # Ransom: no record encrypted with a key the bucket's readers do not hold. Applies to everyone.
        deny(
            "NoCustomerProvidedKeys",
            put,
            objects,
            {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
        ),
        deny(
            "NoEncryptionButTheArchiveKeys",
            put,
            objects,
            {"Null": {"s3:x-amz-server-side-encryption": "false"}},
            {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        ),
        # `aws:kms` without a key ID: S3 would use the AWS managed key aws/s3, whose policy lets every principal of
        # the account decrypt through S3, not the archive key's named readers. A put without any encryption
        # header (the functions') gets the bucket's default, the archive key.
        deny(
            "NoAwsManagedKey",
            put,
            objects,
            {
                "Null": {
                    "s3:x-amz-server-side-encryption": "false",
                    "s3:x-amz-server-side-encryption-aws-kms-key-id": "true",
                }
            },
        ),
        deny(
            "NoKeyButTheArchiveKey",
            put,
            objects,
            {"Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}},
            {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}},
        ),
    ]


def results_statements(principals: Principals, objects: str) -> list[iam.PolicyStatement]:
    """The query results bucket: results are copies of records; only the named readers and break-glass roles."""
    return [
        deny(
            "OnlyNamedRolesReadAndWriteQueryResults",
            RESULT_ACTIONS,
            [objects],
            except_for([*principals.readers, *principals.admins]),
        )
    ]


def ledger_statements(principals: Principals) -> list[iam.PolicyStatement]:
    """The ledger table's resource policy (`*`: this table; naming its ARN would be a cycle)."""
    p = principals
    return [
        deny(
            "OnlyTheFunctionsAndBreakGlassPutLedgerItems",
            LEDGER_WRITE_ACTIONS,
            ["*"],
            except_for([*p.functions, *p.admins]),
        ),
        deny("OnlyBreakGlassErasesLedgerItems", LEDGER_ERASE_ACTIONS, ["*"], except_for(p.admins)),
        deny(
            "OnlyDeploymentAndBreakGlassChangeTheLedger",
            LEDGER_SETTING_ACTIONS,
            ["*"],
            except_for([p.deployer, *p.admins]),
        ),
    ]


class Protection(Construct):
    """Adds the Deny statements to the archive bucket's and the results bucket's policies and the ledger's
    resource policy. Built after every role it exempts exists (functions, backup)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ArchiverConfig,
        archive_bucket: s3.Bucket,
        results_bucket: s3.Bucket,
        table: dynamodb.Table,
        key_arn: str,
        function_roles: Sequence[iam.IRole],
        backup_roles: Sequence[iam.IRole] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        auto_delete = auto_delete_role_arn(stack) if not config.retain_data else None
        self.principals = Principals(
            deployer=deployment_role_arn(stack),
            admins=config.admin_role_arns,
            functions=tuple(role.role_arn for role in function_roles),
            readers=config.reader_role_arns,
            backup=tuple(role.role_arn for role in backup_roles),
            auto_delete=(auto_delete,) if auto_delete else (),
        )
        self.archive_statements = archive_statements(
            self.principals, archive_bucket.bucket_arn, key_arn, versioned_objects=archive_bucket.arn_for_objects("*")
        )
        for statement in self.archive_statements:
            archive_bucket.add_to_resource_policy(statement)
        for statement in results_statements(self.principals, results_bucket.arn_for_objects("*")):
            results_bucket.add_to_resource_policy(statement)
        # The policies follow their buckets: a kept bucket keeps its Deny statements (without this, `cdk destroy`
        # deletes the policy of a retained bucket and every Deny with it).
        for bucket in (archive_bucket, results_bucket):
            assert bucket.policy is not None, "add_to_resource_policy creates the bucket's policy"
            bucket.policy.apply_removal_policy(removal_policy(config))
        for statement in ledger_statements(self.principals):
            table.add_to_resource_policy(statement)

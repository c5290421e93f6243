"""Athena over the archive: Glue database + projected tables, a locked-down workgroup, and named queries.

Two tables: the records (`stream_sessions`, one JSON line per session) and the sessions' performance stats
(`stream_sessions_perf_stats`, one gzip JSON-lines object per session, one row per CSV line). Their columns come
from `archiver.records.SCHEMA` and `archiver.perfstats.STATS_TABLE_COLUMNS`; their partition keys and
`storage.location.template` from `archiver.records`, the module the Lambda writes with (both prefixes share one
key layout), so the key layout Athena projects cannot drift from the one written.
Partition projection (no crawler, no MSCK REPAIR): new days and Regions are queryable the moment a record
lands, and a query reads only the partitions its `created_date`/`source_region` predicates select.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from aws_cdk import ArnFormat, Aws, CfnElement, Duration, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from archiver import perfstats, records
from infra import queries
from infra.config import ArchiverConfig
from infra.encryption import READER_SERVICES, via
from infra.nag import acknowledge, arn_of
from infra.storage import Storage, removal_policy, secure_bucket

TABLE_NAME = "stream_sessions"
STATS_TABLE_NAME = queries.stats_table_name(TABLE_NAME)  # "stream_sessions_perf_stats"
RESULTS_PREFIX = "athena-results/"
RESULTS_EXPIRATION_DAYS = 30
# Before Amazon GameLift Streams existed, so no session is older; also the key date of undated sessions.
PROJECTION_START_DATE = records.UNDATED_CREATED_AT.strftime("%Y-%m-%d")
ENGINE_VERSION = "Athena engine version 3"
HIVE_JSON_SERDE = "org.apache.hive.hcatalog.data.JsonSerDe"
_GLUE_COMMENT_LIMIT = 255

_PRIMITIVES: dict[str, glue.Type] = {
    "string": glue.Schema.STRING,
    "int": glue.Schema.INTEGER,
    "bigint": glue.Schema.BIG_INT,
    "double": glue.Schema.DOUBLE,
    "boolean": glue.Schema.BOOLEAN,
    "timestamp": glue.Schema.TIMESTAMP,
}
_ARRAY = re.compile(r"array<(\w+)>")
_MAP = re.compile(r"map<(\w+),(\w+)>")


# Both tables are JSON lines read by the Hive JSON SerDe (the stats gzip-compressed, by their extension).
JSON_LINES = glue.DataFormat(
    input_format=glue.InputFormat.TEXT,
    output_format=glue.OutputFormat.HIVE_IGNORE_KEY_TEXT,
    serialization_library=glue.SerializationLibrary.HIVE_JSON,
    classification_string=glue.ClassificationString.JSON,
)


def glue_type(athena_type: str) -> glue.Type:
    """Map a records.SCHEMA type string to a Glue type; unknown types fail synthesis instead of guessing."""
    spelled = athena_type.replace(" ", "").lower()
    if spelled in _PRIMITIVES:
        return _PRIMITIVES[spelled]
    if (match := _ARRAY.fullmatch(spelled)) and match[1] in _PRIMITIVES:
        return glue.Schema.array(_PRIMITIVES[match[1]])
    if (match := _MAP.fullmatch(spelled)) and match[1] in _PRIMITIVES and match[2] in _PRIMITIVES:
        return glue.Schema.map(_PRIMITIVES[match[1]], _PRIMITIVES[match[2]])
    raise ValueError(f"records.SCHEMA uses the Athena type {athena_type!r}, which infra/analytics.py cannot map")


class _Described(Protocol):
    """A column definition: records.SCHEMA's fields and perfstats' Columns alike."""

    @property
    def name(self) -> str: ...
    @property
    def athena_type(self) -> str: ...
    @property
    def description(self) -> str: ...


def columns(schema: Iterable[_Described] = records.SCHEMA) -> list[glue.Column]:
    """A table's data columns, in the schema's order (records.SCHEMA by default), descriptions as comments."""
    return [
        glue.Column(name=field.name, type=glue_type(field.athena_type), comment=field.description[:_GLUE_COMMENT_LIMIT])
        for field in schema
    ]


def partition_keys() -> list[glue.Column]:
    """The partition columns, in records.PARTITION_KEYS order (the order of the key layout)."""
    return [glue.Column(name=name, type=glue_type(kind)) for name, kind in records.PARTITION_KEYS]


def projections(source_regions: tuple[str, ...]) -> dict[str, glue.PartitionProjectionConfiguration]:
    """Projection per partition key: an enum of the archived Regions, and a daily date range up to today."""
    known = {
        "source_region": glue.PartitionProjectionConfiguration.enum(values=list(source_regions or (Aws.REGION,))),
        "created_date": glue.PartitionProjectionConfiguration.date(
            format=records.CREATED_DATE_PROJECTION_FORMAT,
            min=PROJECTION_START_DATE,
            max="NOW",
            step=glue.DateProjectionStep(interval=1, interval_unit=glue.DateIntervalUnit.DAYS),
        ),
    }
    names = [name for name, _ in records.PARTITION_KEYS]
    missing = [name for name in names if name not in known]
    if missing:
        raise ValueError(f"records.PARTITION_KEYS has {missing}, for which infra/analytics.py defines no projection")
    return {name: known[name] for name in names}


# Running queries in the archive's workgroup and reading what they return (and its saved queries). Every one of
# these is authorized on the workgroup, so no "*" is needed (ListWorkGroups, a console convenience, would be).
ATHENA_ACTIONS = (
    "athena:StartQueryExecution",
    "athena:StopQueryExecution",
    "athena:GetQueryExecution",
    "athena:BatchGetQueryExecution",
    "athena:ListQueryExecutions",
    "athena:GetQueryResults",
    "athena:GetQueryResultsStream",
    "athena:GetQueryRuntimeStatistics",
    "athena:GetWorkGroup",
    "athena:ListNamedQueries",
    "athena:GetNamedQuery",
    "athena:BatchGetNamedQuery",
)
# Athena reads the table's definition from Glue (partition projection: no partitions are stored, but Athena
# may still ask for them).
GLUE_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
)
RESULT_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")


class AnalystPolicy(Construct):
    """A managed policy for the archive's readers: the workgroup, the catalog entries, the records (read), the
    workgroup's results prefix (read and write), and the archive key through S3. Rendered into docs/QUERY.md
    by `infra.access`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ArchiverConfig,
        storage: Storage,
        results_bucket: s3.IBucket,
        results_prefix: str,
        table_name: str,
        stats_table_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        archive = storage.archive_bucket
        workgroup = stack.format_arn(
            service="athena",
            resource="workgroup",
            resource_name=config.athena_workgroup_name,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        database = config.glue_database_name
        glue = [
            stack.format_arn(service="glue", resource="catalog", arn_format=ArnFormat.NO_RESOURCE_NAME),
            stack.format_arn(service="glue", resource="database", resource_name=database),
            *(
                stack.format_arn(service="glue", resource="table", resource_name=f"{database}/{name}")
                for name in (table_name, stats_table_name)
            ),
        ]
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="Query the GameLift Streams session archive in Athena (attach to the reader_role_arns).",
            statements=[
                iam.PolicyStatement(
                    sid="QueryInTheArchiveWorkGroup", actions=list(ATHENA_ACTIONS), resources=[workgroup]
                ),
                iam.PolicyStatement(sid="ReadTheArchiveTableDefinition", actions=list(GLUE_ACTIONS), resources=glue),
                iam.PolicyStatement(
                    sid="FindTheBuckets",
                    actions=["s3:GetBucketLocation"],
                    resources=[archive.bucket_arn, results_bucket.bucket_arn],
                ),
                iam.PolicyStatement(
                    sid="ListTheRecords",
                    actions=["s3:ListBucket"],
                    resources=[archive.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{config.record_prefix}*", f"{config.stats_prefix}*"]}},
                ),
                iam.PolicyStatement(
                    sid="ReadTheRecords",
                    actions=["s3:GetObject"],
                    resources=[storage.records_arn_pattern, archive.arn_for_objects(f"{config.stats_prefix}*")],
                ),
                iam.PolicyStatement(
                    sid="ListTheQueryResults",
                    actions=["s3:ListBucket"],
                    resources=[results_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{results_prefix}*"]}},
                ),
                iam.PolicyStatement(
                    sid="WriteAndReadTheQueryResults",
                    actions=list(RESULT_OBJECT_ACTIONS),
                    resources=[results_bucket.arn_for_objects(f"{results_prefix}*")],
                ),
                # Effective on its own with an imported key whose policy delegates to IAM; with the stack's key,
                # the key policy must also name the role (reader_role_arns), which it does for exactly those.
                iam.PolicyStatement(
                    sid="DecryptAndEncryptThroughS3",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[storage.encryption_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": [via(s) for s in READER_SERVICES]}},
                ),
            ],
        )
        for bucket, prefix, what in (
            (archive, config.record_prefix, "records: read only, only under the record prefix"),
            (archive, config.stats_prefix, "performance stats: read only, only under the stats prefix"),
            (results_bucket, results_prefix, "query results: the workgroup's output prefix only"),
        ):
            element = bucket.node.default_child
            assert isinstance(element, CfnElement)
            acknowledge(
                self.policy,
                f"AwsSolutions-IAM5[Resource::{arn_of(element)}/{prefix}*]",
                f"One object per record, stats object or query result, whose keys are not known in advance; {what}.",
            )


class Analytics(Construct):
    """Glue catalog + Athena workgroup over the record and stats prefixes of the archive bucket."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ArchiverConfig, storage: Storage) -> None:
        super().__init__(scope, construct_id)
        bucket = storage.archive_bucket

        self.database = glue.Database(
            self,
            "Database",
            database_name=config.glue_database_name,
            description="Archived Amazon GameLift Streams stream sessions (one JSON record per session).",
        )
        # Analysts may add their own tables (e.g. compacted Parquet) here: the database follows the data's fate.
        self.database.apply_removal_policy(removal_policy(config))
        self.table = glue.S3Table(
            self,
            "SessionsTable",
            database=self.database,
            table_name=TABLE_NAME,
            description="One row per archived stream session; partitioned by API Region and creation date.",
            columns=columns(),
            partition_keys=partition_keys(),
            data_format=JSON_LINES,
            storage=glue.S3TableStorage.from_bucket(bucket),
            s3_prefix=config.record_prefix,
            partition_projection=projections(config.source_regions),
            parameters={
                "storage.location.template": records.location_template(bucket.bucket_name, config.record_prefix)
            },
            # Records are encrypted server-side (SSE-KMS), which S3 undoes transparently; `true` here
            # would tell Athena to expect client-side encryption.
            has_encrypted_data=False,
        )
        # The sessions' performance stats: gzip JSON lines (Athena reads `.gz` objects decompressed, by their
        # extension), the same partition layout and projection as the records, under their own prefix.
        self.stats_table = glue.S3Table(
            self,
            "PerfStatsTable",
            database=self.database,
            table_name=STATS_TABLE_NAME,
            description="One row per second of an archived session's stats/perf_stats_v1.csv; partitioned as "
            f"{TABLE_NAME}.",
            columns=columns(perfstats.STATS_TABLE_COLUMNS),
            partition_keys=partition_keys(),
            data_format=JSON_LINES,
            storage=glue.S3TableStorage.from_bucket(bucket),
            s3_prefix=config.stats_prefix,
            compressed=True,
            partition_projection=projections(config.source_regions),
            parameters={
                "storage.location.template": records.location_template(bucket.bucket_name, config.stats_prefix)
            },
            has_encrypted_data=False,
        )

        self.results_bucket = secure_bucket(
            self,
            "ResultsBucket",
            config,
            encryption_key=storage.encryption_key,
            access_logs=storage.access_log_bucket,
            access_logs_prefix="athena-results-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-query-results",
                    expiration=Duration.days(RESULTS_EXPIRATION_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )

        # Results are encrypted with the archive key too (S3 calls KMS with the querying identity): a result is
        # a copy of records, readable only by whom the key's policy names.
        encryption = athena.CfnWorkGroup.EncryptionConfigurationProperty(
            encryption_option="SSE_KMS", kms_key=storage.encryption_key.key_arn
        )
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=config.athena_workgroup_name,
            description="Queries over the GameLift Streams session archive (settings enforced).",
            state="ENABLED",
            recursive_delete_option=not config.retain_data,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=config.athena_bytes_scanned_cutoff_mb * 1024 * 1024,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version=ENGINE_VERSION),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.results_bucket.s3_url_for_object(RESULTS_PREFIX),
                    encryption_configuration=encryption,
                    expected_bucket_owner=Stack.of(self).account,
                    acl_configuration=athena.CfnWorkGroup.AclConfigurationProperty(
                        s3_acl_option="BUCKET_OWNER_FULL_CONTROL"
                    ),
                ),
            ),
        )

        # What an analyst role needs to query all this; attached to no one (docs/QUERY.md shows it).
        self.analyst_policy = AnalystPolicy(
            self,
            "AnalystPolicy",
            config=config,
            storage=storage,
            results_bucket=self.results_bucket,
            results_prefix=RESULTS_PREFIX,
            table_name=TABLE_NAME,
            stats_table_name=STATS_TABLE_NAME,
        )

        self.named_queries: dict[str, athena.CfnNamedQuery] = {}
        for name, (description, sql) in queries.NAMED_QUERIES.items():
            self.named_queries[name] = athena.CfnNamedQuery(
                self,
                f"Query-{name}",
                name=name,
                description=description,
                database=self.database.database_name,
                work_group=self.workgroup.ref,  # Ref: the name, and an implicit dependency on the workgroup
                query_string=queries.render(sql, config.glue_database_name, TABLE_NAME),
            )

"""Athena over the archive: Glue database + projected table, a locked-down workgroup, and named queries.

The table's columns, partition keys and `storage.location.template` all come from `archiver.records`,
the module the Lambda writes with, so the key layout Athena projects cannot drift from the one written.
Partition projection (no crawler, no MSCK REPAIR): new days and Regions are queryable the moment a record
lands, and a query reads only the partitions its `created_date`/`source_region` predicates select.
"""

from __future__ import annotations

import re

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from archiver import records
from infra import queries
from infra.config import ArchiverConfig
from infra.storage import Storage, removal_policy, secure_bucket

TABLE_NAME = "stream_sessions"
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
    "boolean": glue.Schema.BOOLEAN,
    "timestamp": glue.Schema.TIMESTAMP,
}
_ARRAY = re.compile(r"array<(\w+)>")
_MAP = re.compile(r"map<(\w+),(\w+)>")


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


def columns() -> list[glue.Column]:
    """The table's data columns, in records.SCHEMA order, with the field descriptions as comments."""
    return [
        glue.Column(name=field.name, type=glue_type(field.athena_type), comment=field.description[:_GLUE_COMMENT_LIMIT])
        for field in records.SCHEMA
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


class Analytics(Construct):
    """Glue catalog + Athena workgroup over the record prefix of the archive bucket."""

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
            data_format=glue.DataFormat(
                input_format=glue.InputFormat.TEXT,
                output_format=glue.OutputFormat.HIVE_IGNORE_KEY_TEXT,
                serialization_library=glue.SerializationLibrary.HIVE_JSON,
                classification_string=glue.ClassificationString.JSON,
            ),
            storage=glue.S3TableStorage.from_bucket(bucket),
            s3_prefix=config.record_prefix,
            partition_projection=projections(config.source_regions),
            parameters={
                "storage.location.template": records.location_template(bucket.bucket_name, config.record_prefix)
            },
            # Records are encrypted server-side (SSE-S3/SSE-KMS), which S3 undoes transparently; `true` here
            # would tell Athena to expect client-side encryption.
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

        encryption = (
            athena.CfnWorkGroup.EncryptionConfigurationProperty(
                encryption_option="SSE_KMS", kms_key=storage.encryption_key.key_arn
            )
            if storage.encryption_key
            else athena.CfnWorkGroup.EncryptionConfigurationProperty(encryption_option="SSE_S3")
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

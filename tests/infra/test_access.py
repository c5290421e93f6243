"""The analyst policy (issue 10): what docs/QUERY.md shows is what the stack deploys, and it is least privilege.

Each request an analyst's query makes is judged against the policy the way IAM judges an identity policy
(an Allow whose action, resource and conditions match; wildcards in resources as IAM matches them).
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest
from aws_cdk import CfnElement

from infra import access
from infra.analytics import ATHENA_ACTIONS, RESULTS_PREFIX
from tests.infra.conftest import Built, build
from tests.infra.policy_eval import concrete


def deployed(built: Built) -> dict[str, Any]:
    """The AWS::IAM::ManagedPolicy resource the stack deploys for analysts."""
    policy = built.stack.analytics.analyst_policy.policy.node.default_child
    assert isinstance(policy, CfnElement)
    resource: dict[str, Any] = built.json["Resources"][built.stack.resolve(built.stack.get_logical_id(policy))]
    return resource


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(statements: list[dict[str, Any]], action: str, resource: str, **context: str) -> bool:
    for statement in statements:
        assert statement["Effect"] == "Allow"
        if action not in _listed(statement["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in _listed(statement["Resource"])):
            continue
        conditions = statement.get("Condition", {})
        if all(
            key in context
            and any(
                (fnmatch.fnmatchcase(context[key], value) if operator == "StringLike" else context[key] == value)
                for value in _listed(expected)
            )
            for operator, keys in conditions.items()
            for key, expected in keys.items()
        ):
            return True
    return False


def test_query_doc_shows_the_policy_the_default_stack_deploys(default: Built) -> None:
    text = access.QUERY_DOC.read_text()
    document = access.render(default.stack)
    assert access.updated(text, document) == text, "docs/QUERY.md is stale: run `python -m infra.access --write`"
    shown = json.loads(text.split(access.BEGIN)[1].split("```json\n")[1].split("\n```")[0])
    assert shown == document
    # The rendering is the deployed document with only its tokens written as placeholders.
    raw = deployed(default)["Properties"]["PolicyDocument"]["Statement"]
    assert len(raw) >= 8
    assert [(s["Sid"], s["Action"]) for s in shown["Statement"]] == [(s["Sid"], s["Action"]) for s in raw]


def test_placeholders_are_stack_outputs(default: Built) -> None:
    text = json.dumps(access.render(default.stack))
    names = set(re.findall(r"\$\{([^}]+)\}", text))
    assert names == {
        "AWS::Partition",
        "AWS::Region",
        "AWS::AccountId",
        "ArchiveBucketName",
        "AthenaResultsBucketName",
        "ArchiveKeyArn",
    }
    outputs = set(default.json["Outputs"])
    assert {"ArchiveBucketName", "AthenaResultsBucketName", "ArchiveKeyArn", "AnalystPolicyArn"} <= outputs


def test_the_policy_is_attached_to_no_one_and_has_no_wildcard_action(default: Built) -> None:
    props = deployed(default)["Properties"]
    assert not {"Roles", "Users", "Groups"} & set(props)
    for statement in props["PolicyDocument"]["Statement"]:
        for action in _listed(statement["Action"]):
            assert "*" not in action
        assert "*" not in _listed(statement["Resource"])


def test_an_analyst_can_query_and_read_records_and_nothing_else(default: Built) -> None:
    statements = concrete(deployed(default)["Properties"]["PolicyDocument"])["Statement"]
    bucket_id = default.stack.resolve(default.stack.storage.archive_bucket.bucket_name)["Ref"]
    results_id = default.stack.resolve(default.stack.analytics.results_bucket.bucket_name)["Ref"]
    # concrete() writes `Fn::GetAtt X.Arn` as a role ARN; the buckets are matched by that stand-in.
    archive, results = (f"arn:aws:iam::111122223333:role/{logical}" for logical in (bucket_id, results_id))
    workgroup = "arn:aws:athena:us-east-2:111122223333:workgroup/gameliftstreams-archive"
    for action in ATHENA_ACTIONS:
        assert allows(statements, action, workgroup)
    assert not allows(statements, "athena:StartQueryExecution", workgroup.replace("archive", "other"))
    assert not allows(statements, "athena:DeleteWorkGroup", workgroup)
    table = "arn:aws:glue:us-east-2:111122223333:table/gameliftstreams_archive/stream_sessions"
    assert allows(statements, "glue:GetTable", table)
    assert not allows(statements, "glue:GetTable", table.replace("stream_sessions", "other"))
    assert not allows(statements, "glue:UpdateTable", table)

    record = f"{archive}/sessions/source_region=us-east-2/created_date=2025-06-01/sg-1_abc.json"
    assert allows(statements, "s3:GetObject", record)
    assert allows(statements, "s3:ListBucket", archive, **{"s3:prefix": "sessions/source_region=us-east-2/"})
    assert not allows(statements, "s3:ListBucket", archive, **{"s3:prefix": ""})
    assert not allows(statements, "s3:ListBucket", archive)
    assert not allows(statements, "s3:GetObject", f"{archive}/other/file")
    for forbidden in ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:GetObjectVersion"):
        assert not allows(statements, forbidden, record)

    result = f"{results}/{RESULTS_PREFIX}query-id.csv"
    for action in ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"):
        assert allows(statements, action, result)
    assert not allows(statements, "s3:PutObject", f"{results}/elsewhere.csv")
    assert not allows(statements, "s3:DeleteObject", result)

    key = concrete(default.stack.resolve(default.stack.storage.encryption_key.key_arn))
    through_s3 = {"kms:ViaService": "s3.us-east-2.amazonaws.com"}
    assert allows(statements, "kms:Decrypt", key, **through_s3)
    assert allows(statements, "kms:GenerateDataKey", key, **through_s3)
    assert not allows(statements, "kms:Decrypt", key)
    assert not allows(statements, "kms:Decrypt", key, **{"kms:ViaService": "dynamodb.us-east-2.amazonaws.com"})
    assert not any(allows(statements, a, "*") for a in ("dynamodb:GetItem", "sqs:ReceiveMessage", "logs:GetLogEvents"))


def test_the_policy_follows_the_names_in_the_context() -> None:
    built = build(
        {
            "stack_name": "ArchiverNamed",
            "record_prefix": "archive/sessions/",
            "athena_workgroup_name": "analytics-wg",
            "glue_database_name": "sessions_db",
        }
    )
    text = json.dumps(access.render(built.stack))
    assert "${ArchiveBucketName}/archive/sessions/*" in text
    assert '"archive/sessions/*"' in text  # the ListBucket prefix
    assert ":workgroup/analytics-wg" in text
    assert ":table/sessions_db/stream_sessions" in text


def test_an_imported_key_is_named_by_its_arn(variant: Built) -> None:
    text = json.dumps(access.render(variant.stack))
    assert str(variant.stack.config.kms_key_arn) in text
    assert "ArchiveKeyArn" not in text


def test_the_generator_refuses_a_page_without_its_block_and_replaces_a_stale_one(default: Built) -> None:
    document = access.render(default.stack)
    with pytest.raises(ValueError, match="analyst-policy"):
        access.updated("# Query\nno block here\n", document)
    stale = f"before\n{access.BEGIN}\n```json\n{{}}\n```\n{access.END}\nafter\n"
    fresh = access.updated(stale, document)
    assert fresh.startswith("before\n") and fresh.endswith("after\n")
    assert access.markdown(document) in fresh


def test_check_mode_passes_on_the_committed_doc() -> None:
    assert access.main(["--check"]) == 0

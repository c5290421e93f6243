"""The deploy and query docs stay in step with the code they describe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from archiver import records
from infra.analytics import TABLE_NAME
from infra.config import DEFAULTS, FORMS
from infra.queries import NAMED_QUERIES, render
from local import schema_doc

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_deploy_doc_lists_every_context_key_with_default_and_form(key: str) -> None:
    text = (DOCS / "DEPLOY.md").read_text()
    assert f"| `{key}` | `{json.dumps(DEFAULTS[key])}` | {FORMS[key]} |" in text


@pytest.mark.parametrize("name", sorted(NAMED_QUERIES))
def test_query_doc_shows_each_named_query_as_deployed(name: str) -> None:
    text = (DOCS / "QUERY.md").read_text()
    description, sql = NAMED_QUERIES[name]
    assert f"### `{name}`\n\n{description}\n" in text
    assert render(sql, str(DEFAULTS["glue_database_name"]), TABLE_NAME) in text


def test_every_context_key_the_docs_pass_with_dash_c_exists() -> None:
    texts = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    used = {(p.name, key) for p in texts for key in re.findall(r"-c ([A-Za-z_]+)=", p.read_text())}
    assert used, "the docs show no -c example"
    assert sorted((name, key) for name, key in used if key not in {*DEFAULTS, "key"}) == []  # "-c key=value"


def test_schema_doc_is_what_the_generator_writes() -> None:
    """Both generated blocks of docs/schema.md (the record's columns, the DynamoDB item) are current."""
    text = schema_doc.DOC.read_text()
    assert schema_doc.DOC == DOCS / "schema.md"
    assert schema_doc.render(text) == text, "docs/schema.md is stale: run `make schema-doc`"
    assert schema_doc.columns_markdown() in text
    assert schema_doc.ledger_markdown() in text


def test_schema_doc_tables_list_every_column_and_item_attribute() -> None:
    columns = schema_doc.columns_markdown()
    for item in records.SCHEMA:
        assert f"| `{item.name}` | `{item.athena_type}` | {item.description} |" in columns
    for name, kind in records.PARTITION_KEYS:
        assert f"| `{name}` (partition) | `{kind}` |" in columns
    attributes = schema_doc.ledger_markdown()
    for attribute in records.LEDGER_ATTRIBUTES:
        assert f"| `{attribute.name}` | `{attribute.dynamodb_type}` | {attribute.description} |" in attributes


def test_schema_doc_generator_refuses_a_page_without_its_blocks() -> None:
    text = schema_doc.DOC.read_text()
    start = text.index("<!-- ledger:start")
    end = text.index("<!-- ledger:end -->") + len("<!-- ledger:end -->")
    with pytest.raises(ValueError, match="ledger"):
        schema_doc.render(text[:start] + text[end:])
    stale = text.replace("| `s3_key` | `S` |", "| `s3_key` | `N` |")
    assert stale != text
    assert schema_doc.render(stale) == text


def test_deploy_doc_turns_eventbridge_on_without_replacing_the_notification_configuration() -> None:
    text = (DOCS / "DEPLOY.md").read_text()
    section = text[text.index("## Event-driven archiving (export_locations)") :]
    section = section[: section.index("\n## ", 1)]
    steps = [
        "aws s3api get-bucket-notification-configuration --bucket",
        """jq '. + {"EventBridgeConfiguration": {}}'""",
        "aws s3api put-bucket-notification-configuration --bucket",
        "--skip-destination-validation",
    ]
    positions = [section.index(step) for step in steps]
    assert positions[:3] == sorted(positions[:3])  # read, add, put back: in that order
    assert section.count("get-bucket-notification-configuration") >= 2  # and check it afterwards


def test_deploy_doc_figures_are_the_configs() -> None:
    """The auto defaults, the quota split and MAX_CONTINUATIONS as the doc states them."""
    from infra.config import load_config_from_mapping

    text = " ".join((DOCS / "DEPLOY.md").read_text().split())  # line breaks as spaces
    polling = load_config_from_mapping({})
    events = load_config_from_mapping({"export_locations": "s3://my-exports/"})
    split = events.get_rate_per_second + events.consumer_get_rate_per_second
    assert (
        f"{events.get_rate_per_second:g} + {events.consumer_get_rate_per_second:g} = {split:g}/s, "
        f"leaving {events.get_quota_per_second - split:g}/s"
    ) in text
    assert f"({polling.max_continuations} at 15 minutes and 300 s, {events.max_continuations} at 6 hours" in text
    assert f"{events.consumer_instance_rate_per_second:g}/s by default" in text

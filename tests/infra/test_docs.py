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

"""The deploy and query docs stay in step with the code they describe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra.analytics import TABLE_NAME
from infra.config import DEFAULTS, FORMS
from infra.queries import NAMED_QUERIES, render

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

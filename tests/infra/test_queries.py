"""The named queries' shape: placeholders, partition pruning, and SQL that sqlglot can take to DuckDB.

Running them against data is the Athena contract test's job (tests/infra/test_athena_contract.py); this only
keeps the module honest.
"""

from __future__ import annotations

import pytest
import sqlglot

from infra.queries import NAMED_QUERIES, USER_ID_PLACEHOLDER, render

REQUIRED = {
    "sessions_per_day_and_application",
    "sessions_per_location_and_region",
    "session_duration_statistics",
    "user_sessions_with_exports",
    "archive_freshness",
}


def test_the_analysts_queries_are_there() -> None:
    assert set(NAMED_QUERIES) >= REQUIRED


@pytest.mark.parametrize("name", sorted(NAMED_QUERIES))
def test_query_shape(name: str) -> None:
    description, sql = NAMED_QUERIES[name]
    assert 0 < len(description) <= 1024  # Athena's limit for a named query's description
    assert '"{database}"."{table}"' in sql
    assert "created_date >=" in sql  # prunes projected partitions
    for banned in ("from_unixtime", "to_unixtime", "MSCK", ";"):
        assert banned.lower() not in sql.lower()
    rendered = render(sql, "archive_db", "sessions")
    assert "{" not in rendered
    duckdb_sql = sqlglot.transpile(rendered, read="athena", write="duckdb")
    assert len(duckdb_sql) == 1


def test_user_query_has_an_obvious_placeholder() -> None:
    assert f"'{USER_ID_PLACEHOLDER}'" in NAMED_QUERIES["user_sessions_with_exports"][1]
    assert USER_ID_PLACEHOLDER in NAMED_QUERIES["user_sessions_with_exports"][0]

"""The named queries' shape: placeholders, partition pruning, and SQL that sqlglot can take to DuckDB.

Running them against data is the Athena contract test's job (tests/infra/test_athena_contract.py); this only
keeps the module honest.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot

from archiver.perfstats import STATS_TABLE_COLUMNS
from infra.analytics import TABLE_NAME
from infra.queries import NAMED_QUERIES, USER_ID_PLACEHOLDER, render, stats_table_name

REQUIRED = {
    "sessions_per_day_and_application",
    "sessions_per_location_and_region",
    "session_duration_statistics",
    "user_sessions_with_exports",
    "archive_freshness",
    "stats_peak_and_p95_per_session",
    "stats_sustained_gpu",
    "stats_app_memory_growth",
    "stats_p95_per_application_and_location",
}


def test_the_analysts_queries_are_there() -> None:
    assert set(NAMED_QUERIES) >= REQUIRED


@pytest.mark.parametrize("name", sorted(NAMED_QUERIES))
def test_query_shape(name: str) -> None:
    description, sql = NAMED_QUERIES[name]
    assert 0 < len(description) <= 1024  # Athena's limit for a named query's description
    tables = [t for t in ('"{database}"."{table}"', '"{database}"."{stats_table}"') if t in sql]
    assert tables
    # Every table read is pruned by its projected created_date partition.
    assert sql.count("created_date >=") >= len(tables)
    for banned in ("from_unixtime", "to_unixtime", "MSCK", ";"):
        assert banned.lower() not in sql.lower()
    rendered = render(sql, "archive_db", "sessions")
    assert "{" not in rendered
    duckdb_sql = sqlglot.transpile(rendered, read="athena", write="duckdb")
    assert len(duckdb_sql) == 1


def test_user_query_has_an_obvious_placeholder() -> None:
    assert f"'{USER_ID_PLACEHOLDER}'" in NAMED_QUERIES["user_sessions_with_exports"][1]
    assert USER_ID_PLACEHOLDER in NAMED_QUERIES["user_sessions_with_exports"][0]


def test_render_fills_the_stats_table_from_the_records_table() -> None:
    assert stats_table_name("sessions") == "sessions_perf_stats"
    sql = 'SELECT 1 FROM "{database}"."{stats_table}" JOIN "{database}"."{table}" ON {{x}}'
    assert render(sql, "db", "sessions") == 'SELECT 1 FROM "db"."sessions_perf_stats" JOIN "db"."sessions" ON {{x}}'


@pytest.mark.parametrize("name", sorted(n for n in NAMED_QUERIES if n.startswith("stats_")))
def test_stats_queries_read_the_stats_table_and_quote_its_timestamp(name: str) -> None:
    _, sql = NAMED_QUERIES[name]
    assert '"{database}"."{stats_table}"' in sql
    # `timestamp` is a type name in Athena's SQL: the column is always quoted.
    assert "timestamp" not in sql.replace('"timestamp"', "").replace("TIMESTAMP", "")


def test_query_doc_lists_the_stats_table_columns_as_defined() -> None:
    """docs/QUERY.md's stats table is STATS_TABLE_COLUMNS, row for row and in order."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "QUERY.md").read_text()
    rows = "\n".join(f"| `{c.name}` | `{c.athena_type}` | {c.description} |" for c in STATS_TABLE_COLUMNS)
    assert f"| column | type | meaning |\n|---|---|---|\n{rows}\n\n" in text
    assert f"`{stats_table_name(TABLE_NAME)}`" in text

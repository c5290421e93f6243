"""The generated tables of docs/schema.md: the record's columns (records.SCHEMA), the DynamoDB item's
attributes (records.LEDGER_ATTRIBUTES) and the stats table's columns (perfstats.STATS_TABLE_COLUMNS).
`python -m local.schema_doc` (`make schema-doc`) rewrites them; a test fails when the page is not what this
module renders, so the docs cannot drift from the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from archiver.perfstats import STATS_TABLE_COLUMNS
from archiver.records import LEDGER_ATTRIBUTES, PARTITION_KEYS, SCHEMA

DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def columns_markdown() -> str:
    """The record's columns, then the partition keys Athena projects from the object key."""
    lines = ["| column | Athena type | meaning |", "|---|---|---|"]
    lines += [f"| `{f.name}` | `{f.athena_type}` | {f.description} |" for f in SCHEMA]
    lines += [f"| `{name}` (partition) | `{kind}` | Projected from the object key. |" for name, kind in PARTITION_KEYS]
    return "\n".join(lines) + "\n"


def ledger_markdown() -> str:
    """The DynamoDB item's attributes, the partition key first."""
    lines = ["| attribute | DynamoDB type | meaning |", "|---|---|---|"]
    lines += [f"| `{a.name}` | `{a.dynamodb_type}` | {a.description} |" for a in LEDGER_ATTRIBUTES]
    return "\n".join(lines) + "\n"


def stats_markdown() -> str:
    """The stats table's columns (one row per CSV line), then the partition keys, as for the records."""
    lines = ["| column | Athena type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | `{c.athena_type}` | {c.description} |" for c in STATS_TABLE_COLUMNS]
    lines += [f"| `{name}` (partition) | `{kind}` | Projected from the object key. |" for name, kind in PARTITION_KEYS]
    return "\n".join(lines) + "\n"


# Block name (in `<!-- name:start ... -->` ... `<!-- name:end -->`) -> what goes between the markers.
BLOCKS: dict[str, Callable[[], str]] = {
    "schema": columns_markdown,
    "ledger": ledger_markdown,
    "stats": stats_markdown,
}


def _rewrite(text: str, name: str, generated: str) -> str:
    block = re.compile(rf"(<!-- {name}:start[^\n]*-->\n).*?(<!-- {name}:end -->)", re.DOTALL)
    if block.search(text) is None:
        raise ValueError(f"no <!-- {name}:start --> ... <!-- {name}:end --> block to rewrite")
    return block.sub(lambda m: m[1] + generated + m[2], text)


def render(text: str) -> str:
    """`text` with every generated block rewritten; ValueError if a block's markers are missing."""
    for name, table in BLOCKS.items():
        text = _rewrite(text, name, table())
    return text


def main() -> None:
    text = DOC.read_text()
    updated = render(text)
    DOC.write_text(updated)
    print(f"{DOC}: {'updated' if updated != text else 'already current'}")


if __name__ == "__main__":
    main()

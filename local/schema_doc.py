"""Rewrite the generated column table in docs/schema.md from records.SCHEMA (`make schema-doc`)."""

from __future__ import annotations

import re
from pathlib import Path

from archiver.records import schema_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"
_BLOCK = re.compile(r"(<!-- schema:start[^\n]*-->\n).*?(<!-- schema:end -->)", re.DOTALL)


def main() -> None:
    text = DOC.read_text()
    updated = _BLOCK.sub(lambda m: m[1] + schema_markdown() + m[2], text)
    DOC.write_text(updated)
    print(f"{DOC}: {'updated' if updated != text else 'already current'}")


if __name__ == "__main__":
    main()

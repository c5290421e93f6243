"""The prices the cost figures use, read from docs/DEPLOY.md's "What it costs" table, never typed here.

So the simulated day's $/month (bench.day) and the cost table in DEPLOY.md cannot drift apart: change a price
there and the next `make bench-day` uses it. A price the table does not list (SQS, EventBridge) is None: the
figures then count those requests and leave them unpriced, rather than invent a price.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEPLOY_MD = Path(__file__).resolve().parent.parent / "docs" / "DEPLOY.md"
_SECTION = "## What it costs"
_AMOUNT = r"\$([0-9][0-9,]*(?:\.[0-9]+)?)"


class PriceMissing(ValueError):
    """DEPLOY.md's price table no longer states a price the figures need."""


@dataclass(frozen=True)
class Prices:
    """US East (Ohio) on-demand list prices as DEPLOY.md states them, and the month it assumes."""

    hours_per_month: float
    lambda_gb_second: float
    lambda_request: float
    dynamodb_read_unit: float
    dynamodb_write_unit: float
    s3_put: float
    s3_get: float
    sqs_request: float | None  # not in DEPLOY.md's table (it counts SQS within the free tier)
    source: str  # where they were read

    @property
    def days_per_month(self) -> float:
        return self.hours_per_month / 24.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _row(section: str, name: str) -> str | None:
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].lower().startswith(name.lower()):
            return cells[1]
    return None


def _price(row: str | None, pattern: str, what: str) -> float:
    match = re.search(_AMOUNT + pattern, row or "")
    if match is None:
        raise PriceMissing(f"docs/DEPLOY.md's price table states no {what} (looked for {pattern!r})")
    return _number(match[1])


def _per_million(row: str | None, unit: str, what: str) -> float:
    return _price(row, rf" per million {unit}", what) / 1e6


def parse_prices(text: str, source: str = "docs/DEPLOY.md") -> Prices:
    """The prices of the "What it costs" section of DEPLOY.md's text (PriceMissing if one is gone)."""
    start = text.find(_SECTION)
    if start < 0:
        raise PriceMissing(f"{source} has no '{_SECTION}' section")
    end = text.find("\n## ", start + len(_SECTION))
    section = text[start : end if end > 0 else len(text)]
    hours = re.search(r"a ([0-9][0-9,]*)-hour month", section)
    if hours is None:
        raise PriceMissing(f"{source} states no month length ('a N-hour month')")
    lambda_row, dynamodb_row, s3_row = _row(section, "Lambda"), _row(section, "DynamoDB"), _row(section, "S3")
    sqs_row = _row(section, "SQS") or _row(section, "Amazon SQS")
    return Prices(
        hours_per_month=_number(hours[1]),
        lambda_gb_second=_price(lambda_row, " per GB-second", "Lambda GB-second price"),
        lambda_request=_per_million(lambda_row, "requests", "Lambda request price"),
        dynamodb_read_unit=_per_million(dynamodb_row, "read request units", "DynamoDB read unit price"),
        dynamodb_write_unit=_per_million(dynamodb_row, "write request units", "DynamoDB write unit price"),
        s3_put=_price(s3_row, " per 1,000 PUT", "S3 PUT price") / 1000,
        s3_get=_price(s3_row, " per 1,000 GET", "S3 GET price") / 1000,
        sqs_request=_per_million(sqs_row, "requests", "SQS request price") if sqs_row else None,
        source=source,
    )


def load_prices(path: Path = DEPLOY_MD) -> Prices:
    return parse_prices(path.read_text(encoding="utf-8"), source=f"docs/{path.name}")

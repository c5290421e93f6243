"""The forms and ranges that both the function's settings and the stack's context validate.

Written once so that a value the stack deploys is one the function accepts at cold start. Each rule returns
the parsed value or raises RuleError whose message is the expected form; `archiver.settings` adds the
environment variable's name, `infra/config.py` the context key's. Standard library only: the CDK app imports
it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
# S3 "safe characters" only, segments ending in "/" (and none "." or "..", checked apart): the prefix is part
# of every key and of the Athena projection template. Not "*" (nor "?"): the prefix is also the resource of
# the function's s3:PutObject/GetObject grant, where they are IAM wildcards ("*/" would grant "<bucket>/*/*").
_SEGMENT = r"[A-Za-z0-9!_.'()-]+/"  # one path segment of a prefix: the record prefix's and the export locations'
PREFIX = re.compile(f"(?:{_SEGMENT})+")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
TABLE = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})

REGIONS_FORM = "a comma-separated list of Regions such as 'us-east-2,us-west-2'"
PREFIX_FORM = "path segments of letters, digits and !_.'()- each ending in '/', such as 'sessions/'"
BUCKET_FORM = "an S3 bucket name (3-63 of a-z 0-9 . -)"
TABLE_FORM = "a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)"
FLAG_FORM = "true or false"


class RuleError(ValueError):
    """A value that breaks a rule. The message is the expected form; `found` names the offending parts."""

    def __init__(self, form: str, found: str = "") -> None:
        super().__init__(form)
        self.form = form
        self.found = found


def region(text: str) -> str:
    """One AWS Region name, such as 'us-east-2'."""
    if not REGION.fullmatch(text):
        raise RuleError(REGIONS_FORM, repr(text))
    return text


def regions(parts: Iterable[str]) -> tuple[str, ...]:
    """Region names in their first order, without repeats; RuleError.found lists those that are not Regions."""
    unique = tuple(dict.fromkeys(parts))
    bad = [part for part in unique if not REGION.fullmatch(part)]
    if bad:
        raise RuleError(REGIONS_FORM, ", ".join(repr(part) for part in bad))
    return unique


def _dot_segment(text: str) -> bool:
    """Whether a prefix has a '.' or '..' segment (S3 takes them literally; people read them as paths)."""
    return any(part in {".", ".."} for part in text.split("/"))


def prefix(text: str) -> str:
    """A key prefix: safe characters, every segment ending in '/', none of them '.' or '..'."""
    if not PREFIX.fullmatch(text) or _dot_segment(text):
        raise RuleError(PREFIX_FORM)
    return text


def bucket_name(text: str) -> str:
    if not BUCKET.fullmatch(text):
        raise RuleError(BUCKET_FORM)
    return text


def table_name(text: str) -> str:
    if not TABLE.fullmatch(text):
        raise RuleError(TABLE_FORM)
    return text


def flag(value: object) -> bool:
    """A boolean, or one of the words (any case, outer spaces ignored); JSON 1 and 0 read as their words."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str | int):
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise RuleError(FLAG_FORM)


@dataclass(frozen=True)
class Number:
    """A decimal number from `low` to `high`, read with float() (so '1e3', '.5' and '1_000' are numbers)."""

    low: float
    high: float

    @property
    def form(self) -> str:
        return f"a number from {self.low:g} to {self.high:g}"

    def parse(self, value: object) -> float:
        """From text (outer spaces ignored) or a JSON number; never a boolean, NaN or infinity."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise RuleError(self.form)
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (ValueError, OverflowError):
            raise RuleError(self.form) from None
        if not self.low <= number <= self.high:  # also rejects NaN
            raise RuleError(self.form)
        return number


@dataclass(frozen=True)
class WholeNumber:
    """A whole number from `low` to `high`."""

    low: int
    high: int

    @property
    def form(self) -> str:
        return f"a whole number from {self.low} to {self.high}"

    def parse(self, value: object) -> int:
        """From ASCII digits (outer ASCII spaces ignored: not '²', which int() refuses, nor '٣'), a JSON whole
        number, or a float with no fraction (JSON 8.0); never a boolean."""
        if isinstance(value, bool):
            raise RuleError(self.form)
        if isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and value.strip().isdecimal() and value.isascii():
            number = int(value.strip())
        else:
            raise RuleError(self.form)
        if not self.low <= number <= self.high:
            raise RuleError(self.form)
        return number


# Client-side pace per Region (ListStreamSessionsByAccount, GetStreamSession), under the 20/s quota by default.
RATE_PER_SECOND = Number(0.1, 10_000.0)
CONCURRENCY = WholeNumber(1, 64)  # sessions archived at once per Region
# Lambda settings only (the stack does not set them, or, for the margin, validates its own whole-second form).
MARGIN_SECONDS = Number(0.0, 900.0)
READ_TIMEOUT_SECONDS = Number(1.0, 900.0)
LIST_RESTARTS = WholeNumber(0, 10)
ATTEMPTS = WholeNumber(1, 20)

# --- The event-driven path: where exports land, and the quota both functions share ----------------------

# `s3://bucket/` (the whole bucket) or `s3://bucket/prefix/`: the prefix in S3-safe characters, each segment
# ending in "/". The same text is the `export_locations` context key and the EXPORT_LOCATIONS variable.
EXPORT_LOCATION = re.compile(f"s3://(?P<bucket>{BUCKET.pattern})/(?P<prefix>(?:{_SEGMENT})*)")
EXPORT_LOCATIONS_FORM = (
    "a comma-separated list of S3 locations such as 's3://my-exports/gamelift/,s3://other-bucket/' "
    "(bucket, then an optional key prefix of letters, digits and !_.'()- segments each ending in '/'; "
    "empty: the event-driven path is off)"
)


@dataclass(frozen=True)
class ExportLocation:
    """Where GameLift Streams writes export ZIPs: a bucket and a key prefix ('' = the whole bucket)."""

    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def holds(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix)


def export_locations(value: object) -> tuple[ExportLocation, ...]:
    """Comma-separated `s3://bucket/prefix/` locations (or a JSON list of them), in order, without repeats."""
    if isinstance(value, list | tuple):
        parts = list(value)
    elif isinstance(value, str):
        parts = [part.strip() for part in value.split(",")] if value.strip() else []
    else:
        raise RuleError(EXPORT_LOCATIONS_FORM)
    found: list[ExportLocation] = []
    bad: list[str] = []
    for part in parts:
        text = part.strip() if isinstance(part, str) else part
        match = EXPORT_LOCATION.fullmatch(text) if isinstance(text, str) else None
        if match is None or _dot_segment(match["prefix"]):
            bad.append(repr(part))
            continue
        location = ExportLocation(match["bucket"], match["prefix"])
        if location not in found:
            found.append(location)
    if bad:
        raise RuleError(EXPORT_LOCATIONS_FORM, ", ".join(bad))
    return tuple(found)


# Receives of a message whose export the API still shows PENDING before the consumer lets it go
# (`left_to_reconcile`); the queue's dead-letter redrive must allow more receives than this.
PENDING_RECEIVES = WholeNumber(1, 100)
# The queue's redrive allows max_pending_receives + this many receives (the stack's queue and the local one).
EXTRA_RECEIVES = 3
# Follow-up invocations a run may chain when it runs out of time while listing (per scheduled run).
CONTINUATIONS = WholeNumber(0, 1000)

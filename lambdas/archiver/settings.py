"""Environment -> validated settings, once per cold start, with errors that name the variable."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
# S3 "safe characters" only, ending in "/", no empty or dot-only segments: the prefix is part of
# every key and of the Athena projection template.
_PREFIX = re.compile(r"(?:[A-Za-z0-9!_.*'()-]+/)+")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_TABLE = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable and the expected form."""


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know that is not in the event."""

    table_name: str
    bucket_name: str
    prefix: str
    source_regions: tuple[str, ...]
    keep_environment_values: bool = False
    safety_margin_seconds: float = 30.0
    list_rate_per_second: float = 18.0
    get_rate_per_second: float = 18.0
    max_concurrency: int = 8
    max_list_restarts: int = 3
    max_attempts: int = 5
    read_timeout_seconds: float = 10.0


def _required(env: Mapping[str, str], name: str, pattern: re.Pattern[str], form: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required: set it to {form}.")
    if not pattern.fullmatch(value):
        raise ConfigError(f"{name}={value!r} is malformed: expected {form}.")
    return value


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # also rejects NaN
        raise ConfigError(f"{name}={raw!r} is malformed: expected a number from {low:g} to {high:g}.")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdecimal() or not raw.isascii() or not low <= int(raw) <= high:
        raise ConfigError(f"{name}={raw!r} is malformed: expected a whole number from {low} to {high}.")
    return int(raw)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is malformed: expected true or false.")


def _regions(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("SOURCE_REGIONS", "").strip()
    if not raw:
        own = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
        if not _REGION.fullmatch(own):
            raise ConfigError(
                "SOURCE_REGIONS is not set and AWS_REGION is missing: set SOURCE_REGIONS to a comma-separated "
                "list of Regions such as 'us-east-2,us-west-2'."
            )
        return (own,)
    regions = tuple(dict.fromkeys(part.strip() for part in raw.split(",")))
    bad = [region for region in regions if not _REGION.fullmatch(region)]
    if bad:
        raise ConfigError(
            f"SOURCE_REGIONS={raw!r} is malformed ({', '.join(repr(b) for b in bad)}): "
            "expected a comma-separated list of Regions such as 'us-east-2,us-west-2'."
        )
    return regions


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError on the first bad value."""
    env = os.environ if env is None else env
    prefix = env.get("ARCHIVE_PREFIX", "sessions/").strip()
    if not _PREFIX.fullmatch(prefix) or any(part in {".", ".."} for part in prefix.split("/")):
        raise ConfigError(
            f"ARCHIVE_PREFIX={prefix!r} is malformed: expected path segments of letters, digits and !_.*'()- "
            "each ending in '/', such as 'sessions/'."
        )
    return Settings(
        table_name=_required(env, "ARCHIVE_TABLE_NAME", _TABLE, "a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)"),
        bucket_name=_required(env, "ARCHIVE_BUCKET_NAME", _BUCKET, "an S3 bucket name (3-63 of a-z 0-9 . -)"),
        prefix=prefix,
        source_regions=_regions(env),
        keep_environment_values=_flag(env, "KEEP_ENVIRONMENT_VARIABLE_VALUES"),
        safety_margin_seconds=_number(env, "TIME_BUDGET_MARGIN_SECONDS", 30.0, 0.0, 900.0),
        list_rate_per_second=_number(env, "LIST_RATE_PER_SECOND", 18.0, 0.1, 10_000.0),
        get_rate_per_second=_number(env, "GET_RATE_PER_SECOND", 18.0, 0.1, 10_000.0),
        max_concurrency=_integer(env, "MAX_CONCURRENCY", 8, 1, 64),
        max_list_restarts=_integer(env, "MAX_LIST_RESTARTS", 3, 0, 10),
        max_attempts=_integer(env, "MAX_ATTEMPTS", 5, 1, 20),
        read_timeout_seconds=_number(env, "READ_TIMEOUT_SECONDS", 10.0, 1.0, 900.0),
    )

"""Environment -> validated settings, once per cold start, with errors that name the variable.

The forms and ranges are `archiver.rules`, shared with the stack's context; this module reads the
environment, applies the defaults and names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from archiver import rules
from archiver.rules import ExportLocation, RuleError

T = TypeVar("T")


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable and the expected form."""


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know that is not in the event."""

    table_name: str
    bucket_name: str
    prefix: str
    source_regions: tuple[str, ...]
    stats_prefix: str = "perf-stats/"  # the stats objects' prefix in the archive bucket (docs/EXPORTS.md)
    keep_environment_values: bool = False
    keep_launch_argument_values: bool = False  # archiver.redaction: values of AdditionalLaunchArgs stored as given
    safety_margin_seconds: float = 30.0
    list_rate_per_second: float = 18.0
    get_rate_per_second: float = 18.0
    max_concurrency: int = 8
    max_list_restarts: int = 3
    max_attempts: int = 5
    read_timeout_seconds: float = 10.0
    # The event-driven path (archiver.events): where exports land; empty in the scheduled function's
    # environment unless the stack sets it (the consumer requires it, see `require_export_locations`).
    export_locations: tuple[ExportLocation, ...] = ()
    max_pending_receives: int = 5
    max_continuations: int = 0  # follow-up invocations a scheduled run may chain (0: none)

    def require_export_locations(self) -> tuple[ExportLocation, ...]:
        """The consumer's locations: it cannot tell an export from any other object without them."""
        if not self.export_locations:
            raise ConfigError(
                f"EXPORT_LOCATIONS is required for the event consumer: set it to {rules.EXPORT_LOCATIONS_FORM}."
            )
        return self.export_locations


def _malformed(name: str, raw: str, error: RuleError) -> ConfigError:
    return ConfigError(f"{name}={raw!r} is malformed: expected {error.form}.")


def _required(env: Mapping[str, str], name: str, rule: Callable[[str], str], form: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required: set it to {form}.")
    try:
        return rule(value)
    except RuleError as error:
        raise _malformed(name, value, error) from None


def _optional(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except RuleError as error:
        raise _malformed(name, raw, error) from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return False
    try:
        return rules.flag(raw)
    except RuleError as error:
        raise _malformed(name, raw, error) from None


def _regions(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("SOURCE_REGIONS", "").strip()
    if not raw:
        own = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
        try:
            return (rules.region(own),)
        except RuleError:
            raise ConfigError(
                f"SOURCE_REGIONS is not set and AWS_REGION is missing: set SOURCE_REGIONS to {rules.REGIONS_FORM}."
            ) from None
    try:
        return rules.regions(part.strip() for part in raw.split(","))
    except RuleError as error:
        raise ConfigError(f"SOURCE_REGIONS={raw!r} is malformed ({error.found}): expected {error.form}.") from None


def _prefix(env: Mapping[str, str]) -> str:
    prefix = env.get("ARCHIVE_PREFIX", "sessions/").strip()
    try:
        return rules.prefix(prefix)
    except RuleError as error:
        raise _malformed("ARCHIVE_PREFIX", prefix, error) from None


def _stats_prefix(env: Mapping[str, str], prefix: str) -> str:
    stats = env.get("STATS_PREFIX", "perf-stats/").strip()
    try:
        stats = rules.prefix(stats)
    except RuleError as error:
        raise _malformed("STATS_PREFIX", stats, error) from None
    if stats.startswith(prefix) or prefix.startswith(stats):
        raise ConfigError(
            f"STATS_PREFIX={stats!r} and ARCHIVE_PREFIX={prefix!r} overlap: neither may be a prefix of the other."
        )
    return stats


def _export_locations(env: Mapping[str, str]) -> tuple[ExportLocation, ...]:
    raw = env.get("EXPORT_LOCATIONS", "").strip()
    try:
        return rules.export_locations(raw)
    except RuleError as error:
        raise ConfigError(f"EXPORT_LOCATIONS={raw!r} is malformed ({error.found}): expected {error.form}.") from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError on the first bad value."""
    env = os.environ if env is None else env
    prefix = _prefix(env)
    return Settings(
        table_name=_required(env, "ARCHIVE_TABLE_NAME", rules.table_name, rules.TABLE_FORM),
        bucket_name=_required(env, "ARCHIVE_BUCKET_NAME", rules.bucket_name, rules.BUCKET_FORM),
        prefix=prefix,
        source_regions=_regions(env),
        stats_prefix=_stats_prefix(env, prefix),
        keep_environment_values=_flag(env, "KEEP_ENVIRONMENT_VARIABLE_VALUES"),
        keep_launch_argument_values=_flag(env, "KEEP_LAUNCH_ARGUMENT_VALUES"),
        safety_margin_seconds=_optional(env, "TIME_BUDGET_MARGIN_SECONDS", 30.0, rules.MARGIN_SECONDS.parse),
        list_rate_per_second=_optional(env, "LIST_RATE_PER_SECOND", 18.0, rules.RATE_PER_SECOND.parse),
        get_rate_per_second=_optional(env, "GET_RATE_PER_SECOND", 18.0, rules.RATE_PER_SECOND.parse),
        max_concurrency=_optional(env, "MAX_CONCURRENCY", 8, rules.CONCURRENCY.parse),
        max_list_restarts=_optional(env, "MAX_LIST_RESTARTS", 3, rules.LIST_RESTARTS.parse),
        max_attempts=_optional(env, "MAX_ATTEMPTS", 5, rules.ATTEMPTS.parse),
        read_timeout_seconds=_optional(env, "READ_TIMEOUT_SECONDS", 10.0, rules.READ_TIMEOUT_SECONDS.parse),
        export_locations=_export_locations(env),
        max_pending_receives=_optional(env, "MAX_PENDING_RECEIVES", 5, rules.PENDING_RECEIVES.parse),
        max_continuations=_optional(env, "MAX_CONTINUATIONS", 0, rules.CONTINUATIONS.parse),
    )

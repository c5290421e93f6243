"""CDK context -> one validated, typed configuration, so a bad value fails synthesis before any resource exists.

Every key has a default here and the same default in `cdk.json` (a test keeps them equal). Values come from
`cdk.json` (JSON types) or from `-c key=value` (always strings), so each parser accepts both. Errors name the
context key and the expected form. The rules the function's settings apply too (prefix, Regions, pacing, export
locations) are `archiver.rules`, the one module both import, so a value that synthesizes is one the function accepts.

Two keys default to "" = auto, because their right value depends on whether the event-driven path is on
(`export_locations`): the schedule (15 minutes of polling, or a 6-hour reconcile) and the reconciler's
GetStreamSession pace (18/s alone, 14/s beside the consumer's 4/s under the shared 20/s quota).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from archiver import rules
from archiver.rules import RuleError, WholeNumber

T = TypeVar("T")

# Deliberately simple: one "@", no spaces, a dot in the domain. SNS does the real check by mailing it.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ROLE_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}")
_KMS_KEY_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:kms:[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:key/[a-zA-Z0-9-]{1,128}")
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_GLUE_NAME = re.compile(r"[a-z0-9_]{1,255}")  # Athena folds Glue names to lower case; keep them so
_WORKGROUP_NAME = re.compile(r"[a-zA-Z0-9._-]{1,128}")

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731),
    *(1096, 1827, 2192, 2557, 2922, 3288, 3653),
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
REMOVAL_POLICIES = ("retain", "destroy")
# AWS Backup's predefined plans (aws_backup.BackupPlan's factory methods); "" = no backup plan.
BACKUP_PLANS = ("daily35", "daily-monthly-1y", "daily-weekly-monthly-5y", "daily-weekly-monthly-7y")
OBJECT_LOCK_DAYS = WholeNumber(0, 36500)
# Keys that were removed, and why: set, they fail synthesis instead of being silently ignored.
REMOVED: dict[str, str] = {
    "noncurrent_version_expiration_days": (
        "records are write-once and no version of one is ever expired (issue 10); remove the key"
    ),
}

# The auto ("") values of schedule_minutes and get_rate_per_second: (without export_locations, with it).
AUTO_SCHEDULE_MINUTES = (15, 360)
AUTO_GET_RATE_PER_SECOND = (18.0, 14.0)
CONSUMER_CONCURRENCY = WholeNumber(2, 1000)  # the event source mapping's MaximumConcurrency range
CONSUMER_BATCH_SIZE = WholeNumber(1, 10)  # a standard queue allows up to 10 without a batching window

# Key -> default. `cdk.json` carries the same values; "" means "not set" for the optional keys.
DEFAULTS: dict[str, object] = {
    "stack_name": "GameLiftStreamsSessionArchiver",
    "schedule_minutes": "",
    "source_regions": "",
    "record_prefix": "sessions/",
    "stats_prefix": "perf-stats/",
    "log_retention_days": 90,
    "log_level": "INFO",
    "alarm_email": "",
    "data_removal_policy": "retain",
    "lambda_memory_mb": 512,
    "lambda_timeout_seconds": 300,
    "time_budget_margin_seconds": 30,
    "kms_key_arn": "",
    "keep_environment_variable_values": False,
    "keep_launch_argument_values": False,
    "athena_bytes_scanned_cutoff_mb": 10240,
    "access_log_expiration_days": 365,
    "glue_database_name": "gameliftstreams_archive",
    "athena_workgroup_name": "gameliftstreams-archive",
    "list_rate_per_second": 18,
    "get_rate_per_second": "",
    "max_concurrency": 8,
    "export_locations": "",
    "get_quota_per_second": 20,
    "consumer_get_rate_per_second": 4,
    "consumer_max_concurrency": 2,
    "consumer_batch_size": 10,
    "max_pending_receives": 5,
    "reader_role_arns": "",
    "admin_role_arns": "",
    "object_lock_days": 0,
    "backup_plan": "",
}

# Key -> the expected form, as the error messages and docs/DEPLOY.md state it.
FORMS: dict[str, str] = {
    "stack_name": "a CloudFormation stack name: a letter, then up to 127 letters, digits or '-'",
    "schedule_minutes": (
        "a whole number of minutes from 1 to 720 (the run interval), "
        "not less than lambda_timeout_seconds rounded up to whole minutes "
        f"(empty: {AUTO_SCHEDULE_MINUTES[0]}, or {AUTO_SCHEDULE_MINUTES[1]} with export_locations)"
    ),
    "source_regions": "a comma-separated list of AWS Regions such as 'us-east-2,us-west-2' (empty: the stack's Region)",
    "record_prefix": rules.PREFIX_FORM,
    "stats_prefix": rules.PREFIX_FORM.replace("'sessions/'", "'perf-stats/'")
    + "; neither it nor record_prefix may start with the other",
    "log_retention_days": "one of the CloudWatch Logs retention periods: " + ", ".join(map(str, LOG_RETENTION_DAYS)),
    "log_level": "one of " + ", ".join(LOG_LEVELS),
    "alarm_email": "an e-mail address such as 'ops@example.com' (empty: no subscription)",
    "data_removal_policy": "'retain' or 'destroy'",
    "lambda_memory_mb": "a whole number of MB from 128 to 10240",
    "lambda_timeout_seconds": "a whole number of seconds from 60 to 900",
    "time_budget_margin_seconds": "a whole number of seconds from 0 to half of lambda_timeout_seconds",
    "kms_key_arn": (
        "a KMS key ARN such as 'arn:aws:kms:us-east-2:111122223333:key/<key id>' (empty: a key the stack creates)"
    ),
    "keep_environment_variable_values": "true or false",
    "keep_launch_argument_values": "true or false",
    "athena_bytes_scanned_cutoff_mb": "a whole number of MB from 10 to 1048576",
    "access_log_expiration_days": "a whole number of days from 1 to 3650",
    "glue_database_name": "a Glue database name: 1-255 of lower-case letters, digits and '_'",
    "athena_workgroup_name": "an Athena workgroup name: 1-128 of letters, digits and . _ -",
    "list_rate_per_second": f"{rules.RATE_PER_SECOND.form} (ListStreamSessionsByAccount calls per second per Region)",
    "get_rate_per_second": (
        f"{rules.RATE_PER_SECOND.form} (GetStreamSession calls per second per Region of the scheduled run; "
        f"empty: {AUTO_GET_RATE_PER_SECOND[0]:g}, or {AUTO_GET_RATE_PER_SECOND[1]:g} with export_locations)"
    ),
    "max_concurrency": f"{rules.CONCURRENCY.form} (archiving threads per Region)",
    "export_locations": rules.EXPORT_LOCATIONS_FORM,
    "get_quota_per_second": f"{rules.RATE_PER_SECOND.form} (the account's GetStreamSession quota per Region)",
    "consumer_get_rate_per_second": (
        f"{rules.RATE_PER_SECOND.form} "
        "(GetStreamSession calls per second per Region of all consumer instances together)"
    ),
    "consumer_max_concurrency": f"{CONSUMER_CONCURRENCY.form} (consumer instances at most)",
    "consumer_batch_size": f"{CONSUMER_BATCH_SIZE.form} (messages per consumer invocation)",
    "max_pending_receives": (
        f"{rules.PENDING_RECEIVES.form} (receives of an event whose export is still PENDING before the "
        "reconciler is left to archive it)"
    ),
    "reader_role_arns": (
        "a comma-separated list of IAM role ARNs such as 'arn:aws:iam::111122223333:role/Analyst' "
        "(the roles that may read records and query results; empty: none)"
    ),
    "admin_role_arns": (
        "a comma-separated list of IAM role ARNs such as 'arn:aws:iam::111122223333:role/BreakGlass' "
        "(break-glass roles exempt from the archive's write-once policies; empty: none)"
    ),
    "object_lock_days": (
        f"{OBJECT_LOCK_DAYS.form} (S3 Object Lock default retention in governance mode; 0: no Object Lock; "
        "needs data_removal_policy 'retain')"
    ),
    "backup_plan": (
        "one of " + ", ".join(BACKUP_PLANS) + " (an AWS Backup plan of the bucket and table; empty: none; "
        "needs data_removal_policy 'retain')"
    ),
}


class ConfigError(ValueError):
    """A malformed context value; the message names the key and the expected form."""


@dataclass(frozen=True)
class ArchiverConfig:
    """Everything the stack is built from; validated, typed, immutable."""

    stack_name: str
    schedule_minutes: int
    source_regions: tuple[str, ...]  # empty: the stack's own Region
    record_prefix: str
    stats_prefix: str  # the sessions' performance stats objects, beside the records (never overlapping them)
    log_retention_days: int
    log_level: str
    alarm_email: str | None
    data_removal_policy: Literal["retain", "destroy"]
    lambda_memory_mb: int
    lambda_timeout_seconds: int
    time_budget_margin_seconds: int
    kms_key_arn: str | None
    keep_environment_variable_values: bool
    keep_launch_argument_values: bool
    athena_bytes_scanned_cutoff_mb: int
    access_log_expiration_days: int
    glue_database_name: str
    athena_workgroup_name: str
    list_rate_per_second: float
    get_rate_per_second: float  # resolved: never auto here
    max_concurrency: int
    export_locations: tuple[rules.ExportLocation, ...]  # empty: the event-driven path is off
    get_quota_per_second: float
    consumer_get_rate_per_second: float
    consumer_max_concurrency: int
    consumer_batch_size: int
    max_pending_receives: int
    reader_role_arns: tuple[str, ...]
    admin_role_arns: tuple[str, ...]
    object_lock_days: int  # 0: no Object Lock
    backup_plan: str | None

    @property
    def retain_data(self) -> bool:
        """Whether buckets, table and logs outlive the stack."""
        return self.data_removal_policy == "retain"

    @property
    def events_enabled(self) -> bool:
        """Whether the stack builds the event-driven path (rule, queue, consumer)."""
        return bool(self.export_locations)

    @property
    def export_locations_text(self) -> str:
        """The locations in the one form both sides read (`EXPORT_LOCATIONS`): `s3://bucket/prefix/,...`."""
        return ",".join(location.uri for location in self.export_locations)

    @property
    def max_continuations(self) -> int:
        """Follow-up invocations one scheduled run may chain: as many whole timeouts as fit in the period
        after the first, so a chain ends before the next scheduled run is due (0 to 1000)."""
        fits = self.schedule_minutes * 60 // self.lambda_timeout_seconds - 1
        return max(rules.CONTINUATIONS.low, min(rules.CONTINUATIONS.high, fits))

    @property
    def consumer_instance_rate_per_second(self) -> float:
        """One consumer instance's GetStreamSession pace: the consumers' share split over their most instances."""
        return self.consumer_get_rate_per_second / self.consumer_max_concurrency


def _fail(key: str, value: object) -> ConfigError:
    return ConfigError(
        f"Context key '{key}' has the invalid value {value!r}: expected {FORMS[key]}. "
        f"Set it in cdk.json or with -c {key}=<value>."
    )


def _text(key: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(key, value)
    return str(value).strip()


def _pattern(pattern: re.Pattern[str]) -> Callable[[str, object], str]:
    def parse(key: str, value: object) -> str:
        text = _text(key, value)
        if not pattern.fullmatch(text):
            raise _fail(key, value)
        return text

    return parse


def _optional(pattern: re.Pattern[str]) -> Callable[[str, object], str | None]:
    def parse(key: str, value: object) -> str | None:
        if value is None:
            return None
        text = _text(key, value)
        if not text:
            return None
        if not pattern.fullmatch(text):
            raise _fail(key, value)
        return text

    return parse


def _checked(rule: Callable[[object], T]) -> Callable[[str, object], T]:
    """A shared rule (archiver.rules) whose error names the key."""

    def parse(key: str, value: object) -> T:
        try:
            return rule(value)
        except RuleError:
            raise _fail(key, value) from None

    return parse


def _whole(low: int, high: int) -> Callable[[str, object], int]:
    return _checked(WholeNumber(low, high).parse)


def _choice(choices: tuple[str, ...], *, fold: Callable[[str], str] = str.lower) -> Callable[[str, object], str]:
    def parse(key: str, value: object) -> str:
        text = fold(_text(key, value))
        if text not in choices:
            raise _fail(key, value)
        return text

    return parse


def _retention(key: str, value: object) -> int:
    days = _whole(1, 3653)(key, value)
    if days not in LOG_RETENTION_DAYS:
        raise _fail(key, value)
    return days


def _regions(key: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        parts = [item.strip() if isinstance(item, str) else item for item in value]
    elif isinstance(value, str):
        parts = [part.strip() for part in value.split(",")] if value.strip() else []
    else:
        raise _fail(key, value)
    texts = [part for part in parts if isinstance(part, str)]
    if len(texts) != len(parts):
        raise _fail(key, value)
    try:
        return rules.regions(texts)
    except RuleError:
        raise _fail(key, value) from None


def _auto(parse: Callable[[str, object], T]) -> Callable[[str, object], T | None]:
    """A key whose "" (or null) means auto: None here, resolved once the other keys are known."""

    def parse_or_auto(key: str, value: object) -> T | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return parse(key, value)

    return parse_or_auto


def _role_arns(key: str, value: object) -> tuple[str, ...]:
    """A list of IAM role ARNs (JSON list or comma-separated text), each named once, in the given order."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        parts = list(value)
    elif isinstance(value, str):
        parts = [part.strip() for part in value.split(",")] if value.strip() else []
    else:
        raise _fail(key, value)
    if not all(isinstance(part, str) and _ROLE_ARN.fullmatch(part.strip()) for part in parts):
        raise _fail(key, value)
    return tuple(dict.fromkeys(part.strip() for part in parts))


def _optional_choice(choices: tuple[str, ...]) -> Callable[[str, object], str | None]:
    def parse(key: str, value: object) -> str | None:
        text = "" if value is None else _text(key, value).lower()
        if not text:
            return None
        if text not in choices:
            raise _fail(key, value)
        return text

    return parse


def _prefix(key: str, value: object) -> str:
    try:
        return rules.prefix(_text(key, value))
    except RuleError:
        raise _fail(key, value) from None


_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "stack_name": _pattern(_STACK_NAME),
    "schedule_minutes": _auto(_whole(1, 720)),
    "source_regions": _regions,
    "record_prefix": _prefix,
    "stats_prefix": _prefix,
    "log_retention_days": _retention,
    "log_level": _choice(LOG_LEVELS, fold=str.upper),
    "alarm_email": _optional(_EMAIL),
    "data_removal_policy": _choice(REMOVAL_POLICIES),
    "lambda_memory_mb": _whole(128, 10240),
    "lambda_timeout_seconds": _whole(60, 900),
    "time_budget_margin_seconds": _whole(0, 450),
    "kms_key_arn": _optional(_KMS_KEY_ARN),
    "keep_environment_variable_values": _checked(rules.flag),
    "keep_launch_argument_values": _checked(rules.flag),
    "athena_bytes_scanned_cutoff_mb": _whole(10, 1_048_576),
    "access_log_expiration_days": _whole(1, 3650),
    "glue_database_name": _pattern(_GLUE_NAME),
    "athena_workgroup_name": _pattern(_WORKGROUP_NAME),
    # The function's own rules: what synthesizes is what the function accepts.
    "list_rate_per_second": _checked(rules.RATE_PER_SECOND.parse),
    "get_rate_per_second": _auto(_checked(rules.RATE_PER_SECOND.parse)),
    "max_concurrency": _checked(rules.CONCURRENCY.parse),
    "export_locations": _checked(rules.export_locations),
    "get_quota_per_second": _checked(rules.RATE_PER_SECOND.parse),
    "consumer_get_rate_per_second": _checked(rules.RATE_PER_SECOND.parse),
    "consumer_max_concurrency": _checked(CONSUMER_CONCURRENCY.parse),
    "consumer_batch_size": _checked(CONSUMER_BATCH_SIZE.parse),
    "max_pending_receives": _checked(rules.PENDING_RECEIVES.parse),
    "reader_role_arns": _role_arns,
    "admin_role_arns": _role_arns,
    "object_lock_days": _checked(OBJECT_LOCK_DAYS.parse),
    "backup_plan": _optional_choice(BACKUP_PLANS),
}


def load_config(get_context: Callable[[str], object]) -> ArchiverConfig:
    """Read every key through `get_context` (e.g. `app.node.try_get_context`), falling back to DEFAULTS."""
    for key, why in REMOVED.items():
        if get_context(key) is not None:
            raise ConfigError(f"Context key '{key}' is no longer read: {why} (cdk.json or -c {key}=...).")
    values: dict[str, Any] = {}
    for key, parse in _PARSERS.items():
        raw = get_context(key)
        values[key] = parse(key, DEFAULTS[key] if raw is None else raw)
    events = bool(values["export_locations"])
    if values["schedule_minutes"] is None:
        values["schedule_minutes"] = AUTO_SCHEDULE_MINUTES[events]
    if values["get_rate_per_second"] is None:
        values["get_rate_per_second"] = AUTO_GET_RATE_PER_SECOND[events]
    config = ArchiverConfig(**values)
    # Cross-checks: a run must fit in one schedule period (else runs queue up behind the reserved
    # concurrency of 1 and throttle), and the time budget margin must leave the run time to work.
    if config.schedule_minutes < math.ceil(config.lambda_timeout_seconds / 60):
        raise _fail("schedule_minutes", config.schedule_minutes)
    if config.time_budget_margin_seconds * 2 > config.lambda_timeout_seconds:
        raise _fail("time_budget_margin_seconds", config.time_budget_margin_seconds)
    _check_prefixes(config)
    if config.object_lock_days and not config.retain_data:
        raise ConfigError(
            f"The context key 'object_lock_days' ({config.object_lock_days}) needs 'data_removal_policy' 'retain': "
            "objects under Object Lock cannot be emptied out of the bucket when the stack is destroyed. "
            "Set them in cdk.json or with -c key=<value>."
        )
    if config.backup_plan and not config.retain_data:
        raise ConfigError(
            f"The context key 'backup_plan' ({config.backup_plan}) needs 'data_removal_policy' 'retain': with "
            "'destroy' the archive key is deleted with the stack, which leaves every recovery point unreadable, "
            "and CloudFormation cannot delete a vault that still holds recovery points. "
            "Set them in cdk.json or with -c key=<value>."
        )
    _check_quota(config)
    return config


def _check_prefixes(config: ArchiverConfig) -> None:
    """Records and stats objects never share a key space: the records' Glue table (and grants) would read stats
    objects as records, and the stats table records."""
    records, stats = config.record_prefix, config.stats_prefix
    if records.startswith(stats) or stats.startswith(records):
        raise ConfigError(
            f"The context keys 'record_prefix' ({records!r}) and 'stats_prefix' ({stats!r}) overlap: neither may "
            "be equal to or start with the other (each Glue table reads everything under its prefix). "
            "Set them in cdk.json or with -c key=<value>."
        )


def _check_quota(config: ArchiverConfig) -> None:
    """Both functions share GetStreamSession's quota per Region: the paces they may reach together must fit."""
    paces = {"get_rate_per_second": config.get_rate_per_second}
    if config.events_enabled:
        paces["consumer_get_rate_per_second"] = config.consumer_get_rate_per_second
    total = sum(paces.values())
    if total > config.get_quota_per_second:
        named = " + ".join(f"'{key}' ({value:g})" for key, value in paces.items())
        raise ConfigError(
            f"GetStreamSession paces {named} = {total:g} calls per second per Region exceed the context key "
            f"'get_quota_per_second' ({config.get_quota_per_second:g}): lower "
            + (" or ".join(f"'{key}'" for key in paces))
            + ", or raise 'get_quota_per_second' after a quota increase. "
            "Set them in cdk.json or with -c key=<value>."
        )
    if config.events_enabled and config.consumer_instance_rate_per_second < rules.RATE_PER_SECOND.low:
        raise ConfigError(
            f"The context key 'consumer_get_rate_per_second' ({config.consumer_get_rate_per_second:g}) split over "
            f"'consumer_max_concurrency' ({config.consumer_max_concurrency}) instances is "
            f"{config.consumer_instance_rate_per_second:g} calls per second per instance, below the function's "
            f"lowest pace ({rules.RATE_PER_SECOND.low:g}): raise consumer_get_rate_per_second or lower "
            "consumer_max_concurrency. Set them in cdk.json or with -c key=<value>."
        )


def load_config_from_mapping(context: Mapping[str, object]) -> ArchiverConfig:
    """Same as load_config, from a plain mapping (tests, tools)."""
    return load_config(context.get)

"""Configuration errors name the variable and the expected form."""

from __future__ import annotations

import pytest

from archiver.settings import ConfigError, load_settings

BASE = {"ARCHIVE_TABLE_NAME": "archive", "ARCHIVE_BUCKET_NAME": "archive-bucket", "AWS_REGION": "us-east-2"}


def test_defaults() -> None:
    settings = load_settings(BASE)
    assert settings.prefix == "sessions/"
    assert settings.source_regions == ("us-east-2",)
    assert settings.keep_environment_values is False
    assert settings.keep_launch_argument_values is False


@pytest.mark.parametrize(
    ("raw", "kept"), [("true", True), (" TRUE ", True), ("yes", True), ("false", False), ("0", False), ("", False)]
)
def test_launch_argument_values_are_kept_only_when_the_variable_says_true(raw: str, kept: bool) -> None:
    settings = load_settings({**BASE, "KEEP_LAUNCH_ARGUMENT_VALUES": raw})
    assert settings.keep_launch_argument_values is kept
    assert settings.keep_environment_values is False  # the two opt-ins are independent


def test_source_regions_are_parsed_and_deduplicated() -> None:
    settings = load_settings({**BASE, "SOURCE_REGIONS": " us-west-2, eu-central-1 ,us-west-2"})
    assert settings.source_regions == ("us-west-2", "eu-central-1")


@pytest.mark.parametrize(
    ("overrides", "variable", "form"),
    [
        ({"ARCHIVE_TABLE_NAME": ""}, "ARCHIVE_TABLE_NAME", "is required"),
        ({"ARCHIVE_TABLE_NAME": "a b"}, "ARCHIVE_TABLE_NAME", "DynamoDB table name"),
        ({"ARCHIVE_BUCKET_NAME": "Bad_Bucket"}, "ARCHIVE_BUCKET_NAME", "S3 bucket name"),
        ({"ARCHIVE_PREFIX": "sessions"}, "ARCHIVE_PREFIX", "ending in '/'"),
        ({"ARCHIVE_PREFIX": "../x/"}, "ARCHIVE_PREFIX", "ending in '/'"),
        ({"ARCHIVE_PREFIX": "/abs/"}, "ARCHIVE_PREFIX", "ending in '/'"),
        ({"SOURCE_REGIONS": "us-east-2,mars"}, "SOURCE_REGIONS", "comma-separated list of Regions"),
        ({"AWS_REGION": "", "SOURCE_REGIONS": ""}, "SOURCE_REGIONS", "comma-separated list of Regions"),
        ({"KEEP_ENVIRONMENT_VARIABLE_VALUES": "maybe"}, "KEEP_ENVIRONMENT_VARIABLE_VALUES", "true or false"),
        ({"KEEP_LAUNCH_ARGUMENT_VALUES": "always"}, "KEEP_LAUNCH_ARGUMENT_VALUES", "true or false"),
        ({"MAX_CONCURRENCY": "0"}, "MAX_CONCURRENCY", "whole number from 1 to 64"),
        ({"MAX_CONCURRENCY": "\u00b2"}, "MAX_CONCURRENCY", "whole number from 1 to 64"),  # a digit int() refuses
        ({"MAX_ATTEMPTS": "\u0663"}, "MAX_ATTEMPTS", "whole number from 1 to 20"),  # a non-ASCII digit
        ({"GET_RATE_PER_SECOND": "fast"}, "GET_RATE_PER_SECOND", "number from 0.1"),
        ({"TIME_BUDGET_MARGIN_SECONDS": "nan"}, "TIME_BUDGET_MARGIN_SECONDS", "number from 0"),
    ],
)
def test_bad_values_fail_with_the_variable_and_expected_form(
    overrides: dict[str, str], variable: str, form: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **overrides})
    assert variable in str(caught.value)
    assert form in str(caught.value)


def test_empty_values_mean_the_default_and_outer_spaces_are_ignored() -> None:
    settings = load_settings(
        {
            **BASE,
            "LIST_RATE_PER_SECOND": "",
            "MAX_CONCURRENCY": " ",
            "KEEP_ENVIRONMENT_VARIABLE_VALUES": "",
            "GET_RATE_PER_SECOND": " 12.5 ",
            "MAX_ATTEMPTS": "\u00a04\t",  # str.strip() removes any Unicode space (the stack's context refuses it)
            "ARCHIVE_PREFIX": " archive/v1/ ",
        }
    )
    assert (settings.list_rate_per_second, settings.max_concurrency, settings.keep_environment_values) == (18, 8, False)
    assert (settings.get_rate_per_second, settings.max_attempts, settings.prefix) == (12.5, 4, "archive/v1/")


def test_messages_name_the_variable_the_value_and_the_form() -> None:
    cases = {
        "MAX_CONCURRENCY": ("65", "MAX_CONCURRENCY='65' is malformed: expected a whole number from 1 to 64."),
        "READ_TIMEOUT_SECONDS": ("0.5", "READ_TIMEOUT_SECONDS='0.5' is malformed: expected a number from 1 to 900."),
        "KEEP_ENVIRONMENT_VARIABLE_VALUES": (
            "On",
            "KEEP_ENVIRONMENT_VARIABLE_VALUES='on' is malformed: expected true or false.",
        ),
        "KEEP_LAUNCH_ARGUMENT_VALUES": ("On", "KEEP_LAUNCH_ARGUMENT_VALUES='on' is malformed: expected true or false."),
        "SOURCE_REGIONS": (
            "mars,us-east-2,mars",
            "SOURCE_REGIONS='mars,us-east-2,mars' is malformed ('mars'): "
            "expected a comma-separated list of Regions such as 'us-east-2,us-west-2'.",
        ),
    }
    for variable, (value, message) in cases.items():
        with pytest.raises(ConfigError) as caught:
            load_settings({**BASE, variable: value})
        assert str(caught.value) == message
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "ARCHIVE_BUCKET_NAME": " "})
    assert str(caught.value) == "ARCHIVE_BUCKET_NAME is required: set it to an S3 bucket name (3-63 of a-z 0-9 . -)."


def test_the_stats_prefix_defaults_and_follows_the_prefix_rule() -> None:
    assert load_settings(BASE).stats_prefix == "perf-stats/"
    assert load_settings({**BASE, "STATS_PREFIX": " stats/v1/ "}).stats_prefix == "stats/v1/"
    with pytest.raises(ConfigError, match="STATS_PREFIX='stats' is malformed"):
        load_settings({**BASE, "STATS_PREFIX": "stats"})


@pytest.mark.parametrize(("records", "stats"), [("sessions/", "sessions/"), ("a/", "a/b/"), ("a/b/", "a/")])
def test_the_stats_prefix_may_not_overlap_the_records_prefix(records: str, stats: str) -> None:
    with pytest.raises(ConfigError, match=r"STATS_PREFIX=.* and ARCHIVE_PREFIX=.* overlap"):
        load_settings({**BASE, "ARCHIVE_PREFIX": records, "STATS_PREFIX": stats})

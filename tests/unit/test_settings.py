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

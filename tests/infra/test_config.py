"""Context validation: good values parse, bad ones fail naming the key and the expected form."""

from __future__ import annotations

import pytest

from archiver.settings import ConfigError as SettingsError
from archiver.settings import load_settings
from infra.config import DEFAULTS, FORMS, ConfigError, load_config_from_mapping
from tests.infra.conftest import CDK_JSON


def test_cdk_json_documents_every_key_with_the_code_default() -> None:
    context = CDK_JSON["context"]
    assert {key: context[key] for key in DEFAULTS} == DEFAULTS
    assert CDK_JSON["app"] == "python3 app.py"
    assert set(FORMS) == set(DEFAULTS)


def test_defaults() -> None:
    config = load_config_from_mapping({})
    assert config.schedule_minutes == 15
    assert config.source_regions == ()  # the stack's own Region
    assert config.record_prefix == "sessions/"
    assert config.data_removal_policy == "retain"
    assert config.retain_data
    assert config.alarm_email is None
    assert config.kms_key_arn is None
    assert config.lambda_timeout_seconds == 300
    assert config.lambda_memory_mb == 512


def test_cli_strings_and_json_types_both_parse() -> None:
    from_cli = load_config_from_mapping(
        {
            "schedule_minutes": "30",
            "source_regions": " us-east-2, us-west-2 ,us-east-2",
            "keep_environment_variable_values": "true",
            "log_level": "debug",
            "data_removal_policy": "DESTROY",
            "alarm_email": "ops@example.com",
        }
    )
    from_json = load_config_from_mapping(
        {"schedule_minutes": 30, "source_regions": ["us-east-2", "us-west-2"], "keep_environment_variable_values": True}
    )
    assert from_cli.schedule_minutes == from_json.schedule_minutes == 30
    assert from_cli.source_regions == from_json.source_regions == ("us-east-2", "us-west-2")
    assert from_cli.keep_environment_variable_values and from_json.keep_environment_variable_values
    assert from_cli.log_level == "DEBUG"
    assert from_cli.data_removal_policy == "destroy"
    assert from_cli.alarm_email == "ops@example.com"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("schedule_minutes", "0"),
        ("schedule_minutes", "rate(15 minutes)"),
        ("schedule_minutes", "721"),
        ("schedule_minutes", True),
        ("source_regions", "us-east-2;us-west-2"),
        ("source_regions", "us-east-2,,us-west-2"),
        ("source_regions", "US-EAST-2"),
        ("source_regions", ["us-east-2", 5]),
        ("record_prefix", "sessions"),
        ("record_prefix", "/sessions/"),
        ("record_prefix", "a/../b/"),
        ("record_prefix", "${source_region}/"),
        ("record_prefix", "with space/"),
        ("data_removal_policy", "snapshot"),
        ("data_removal_policy", "keep"),
        ("alarm_email", "not-an-address"),
        ("alarm_email", "a@b"),
        ("alarm_email", "two@at@example.com"),
        ("lambda_memory_mb", "64"),
        ("lambda_memory_mb", "10241"),
        ("lambda_memory_mb", "1.5GB"),
        ("lambda_timeout_seconds", "901"),
        ("lambda_timeout_seconds", "59"),
        ("log_retention_days", "45"),
        ("log_level", "TRACE"),
        ("kms_key_arn", "alias/my-key"),
        ("kms_key_arn", "arn:aws:kms:us-east-2:111122223333:alias/my-key"),
        ("keep_environment_variable_values", "maybe"),
        ("athena_bytes_scanned_cutoff_mb", "5"),
        ("noncurrent_version_expiration_days", "0"),
        ("access_log_expiration_days", "-1"),
        ("glue_database_name", "Has-Dashes"),
        ("athena_workgroup_name", "has space"),
        ("stack_name", "1starts-with-digit"),
        ("time_budget_margin_seconds", "200"),  # more than half of the 300 s timeout
    ],
)
def test_invalid_value_names_key_and_expected_form(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_from_mapping({key: value})
    message = str(raised.value)
    assert f"'{key}'" in message
    assert FORMS[key] in message
    assert f"-c {key}=" in message


def test_schedule_shorter_than_the_timeout_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"'schedule_minutes'.*lambda_timeout_seconds"):
        load_config_from_mapping({"schedule_minutes": "4", "lambda_timeout_seconds": "300"})
    assert load_config_from_mapping({"schedule_minutes": "5", "lambda_timeout_seconds": "300"}).schedule_minutes == 5


@pytest.mark.parametrize(
    "prefix",
    ["sessions/", "a/b/", "x!_.*'()-/", "sessions", "/sessions/", "a//", "./", "../x/", "a b/", "a%2F/", "é/", ""],
)
def test_prefix_rule_agrees_with_the_lambda_settings(prefix: str) -> None:
    """A prefix the stack accepts must be one the function accepts at cold start, and the reverse."""
    try:
        load_config_from_mapping({"record_prefix": prefix})
        infra_ok = True
    except ConfigError:
        infra_ok = False
    env = {"ARCHIVE_PREFIX": prefix, "ARCHIVE_TABLE_NAME": "ledger", "ARCHIVE_BUCKET_NAME": "bucket"}
    env |= {"SOURCE_REGIONS": "us-east-2"}
    try:
        load_settings(env)
        lambda_ok = True
    except SettingsError:
        lambda_ok = False
    assert infra_ok == lambda_ok


def test_every_accepted_log_retention_maps_to_a_cdk_retention() -> None:
    from aws_cdk import aws_logs as logs

    from infra.archiver import RETENTION
    from infra.config import LOG_RETENTION_DAYS

    assert sorted(RETENTION) == sorted(LOG_RETENTION_DAYS)
    assert len(set(RETENTION.values())) == len(RETENTION)
    assert logs.RetentionDays.INFINITE not in RETENTION.values()

"""Context validation: good values parse, bad ones fail naming the key and the expected form."""

from __future__ import annotations

import pytest

from archiver import rules
from archiver.settings import Settings
from infra.archiver import number_text
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
    assert config.stats_prefix == "perf-stats/"
    assert config.data_removal_policy == "retain"
    assert config.retain_data
    assert config.alarm_email is None
    assert config.kms_key_arn is None
    assert config.lambda_timeout_seconds == 300
    assert config.lambda_memory_mb == 512
    assert (config.list_rate_per_second, config.get_rate_per_second, config.max_concurrency) == (18, 18, 8)
    # The function's own defaults: deploying without these keys changes nothing.
    lambda_defaults = Settings("t", "b", "p/", ())
    assert config.list_rate_per_second == lambda_defaults.list_rate_per_second
    assert config.get_rate_per_second == lambda_defaults.get_rate_per_second
    assert config.max_concurrency == lambda_defaults.max_concurrency
    # The event-driven path is off by default.
    assert config.export_locations == ()
    assert not config.events_enabled
    assert config.export_locations_text == ""
    assert config.get_quota_per_second == 20
    assert (config.consumer_get_rate_per_second, config.consumer_max_concurrency) == (4, 2)
    assert (config.consumer_batch_size, config.max_pending_receives) == (10, 5)
    assert config.max_continuations == 2  # 15 minutes hold three 300 s runs: the first and two follow-ups
    # Issue 10: nothing kept that the API calls a secret, no named readers or admins, no lock, no backup.
    assert not config.keep_environment_variable_values and not config.keep_launch_argument_values
    assert (config.reader_role_arns, config.admin_role_arns) == ((), ())
    assert (config.object_lock_days, config.backup_plan) == (0, None)


def test_role_arns_parse_from_text_or_json_list_once_each() -> None:
    analyst = "arn:aws:iam::111122223333:role/Analyst"
    pathed = "arn:aws:iam::111122223333:role/teams/perf/PerfEngineer"
    config = load_config_from_mapping({"reader_role_arns": f" {analyst}, {pathed},{analyst}"})
    assert config.reader_role_arns == (analyst, pathed)
    config = load_config_from_mapping({"admin_role_arns": [pathed], "reader_role_arns": []})
    assert (config.admin_role_arns, config.reader_role_arns) == ((pathed,), ())


def test_object_lock_and_backup_plan() -> None:
    config = load_config_from_mapping({"object_lock_days": "3650", "backup_plan": "Daily35"})
    assert (config.object_lock_days, config.backup_plan) == (3650, "daily35")
    assert load_config_from_mapping({"backup_plan": ""}).backup_plan is None


def test_object_lock_needs_retained_data() -> None:
    with pytest.raises(ConfigError, match=r"'object_lock_days' \(30\) needs 'data_removal_policy' 'retain'"):
        load_config_from_mapping({"object_lock_days": 30, "data_removal_policy": "destroy"})


def test_a_backup_plan_needs_retained_data() -> None:
    with pytest.raises(ConfigError, match=r"'backup_plan' \(daily35\) needs 'data_removal_policy' 'retain'"):
        load_config_from_mapping({"backup_plan": "daily35", "data_removal_policy": "destroy"})


@pytest.mark.parametrize(
    ("records", "stats"),
    [("sessions/", "sessions/"), ("archive/", "archive/stats/"), ("archive/sessions/", "archive/")],
)
def test_stats_prefix_must_not_overlap_the_record_prefix(records: str, stats: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config_from_mapping({"record_prefix": records, "stats_prefix": stats})
    assert "'record_prefix'" in str(error.value) and "'stats_prefix'" in str(error.value)
    assert repr(records) in str(error.value) and repr(stats) in str(error.value)


def test_stats_prefix_beside_the_records_is_accepted() -> None:
    config = load_config_from_mapping({"record_prefix": "archive/sessions/", "stats_prefix": "archive/stats/"})
    assert (config.record_prefix, config.stats_prefix) == ("archive/sessions/", "archive/stats/")
    # A shared leading text that is not a whole prefix is no overlap ("sessions-stats/" does not start with
    # "sessions/").
    assert load_config_from_mapping({"stats_prefix": "sessions-stats/"}).stats_prefix == "sessions-stats/"


def test_a_removed_key_fails_instead_of_being_ignored() -> None:
    with pytest.raises(ConfigError, match=r"'noncurrent_version_expiration_days' is no longer read: records are"):
        load_config_from_mapping({"noncurrent_version_expiration_days": 90})


def test_auto_schedule_and_pace_follow_export_locations() -> None:
    """ "" (the default) means auto: polling every 15 minutes at 18/s, or reconciling every 6 hours at 14/s
    beside the consumers' 4/s; a value overrides either."""
    polling = load_config_from_mapping({"schedule_minutes": "", "get_rate_per_second": ""})
    assert (polling.schedule_minutes, polling.get_rate_per_second) == (15, 18)
    events = load_config_from_mapping({"export_locations": "s3://my-exports/gamelift/"})
    assert events.events_enabled
    assert (events.schedule_minutes, events.get_rate_per_second) == (360, 14)
    assert events.get_rate_per_second + events.consumer_get_rate_per_second < events.get_quota_per_second
    assert events.max_continuations == 360 * 60 // 300 - 1 == 71
    chosen = load_config_from_mapping(
        {"export_locations": "s3://my-exports/gamelift/", "schedule_minutes": "60", "get_rate_per_second": "10"}
    )
    assert (chosen.schedule_minutes, chosen.get_rate_per_second) == (60, 10)
    assert load_config_from_mapping({"schedule_minutes": 30}).schedule_minutes == 30
    assert load_config_from_mapping({"schedule_minutes": None}).schedule_minutes == 15
    assert DEFAULTS["schedule_minutes"] == DEFAULTS["get_rate_per_second"] == ""


def test_export_locations_parse_by_the_shared_rule() -> None:
    text = " s3://my-exports/gamelift/ , s3://other-exports/,s3://my-exports/gamelift/"
    config = load_config_from_mapping({"export_locations": text})
    assert config.export_locations == rules.export_locations(text)
    assert config.export_locations == (
        rules.ExportLocation("my-exports", "gamelift/"),
        rules.ExportLocation("other-exports", ""),
    )
    # The one form both sides read: what the consumer gets as EXPORT_LOCATIONS parses back to the same locations.
    assert config.export_locations_text == "s3://my-exports/gamelift/,s3://other-exports/"
    assert rules.export_locations(config.export_locations_text) == config.export_locations
    from_json = load_config_from_mapping({"export_locations": ["s3://my-exports/gamelift/", "s3://other-exports/"]})
    assert from_json.export_locations == config.export_locations


@pytest.mark.parametrize(
    ("minutes", "timeout", "expected"),
    [(15, 300, 2), (5, 300, 0), (15, 900, 0), (360, 300, 71), (720, 60, 719), (1, 60, 0), (16, 300, 2)],
)
def test_max_continuations_fill_the_period_after_the_first_run(minutes: int, timeout: int, expected: int) -> None:
    config = load_config_from_mapping({"schedule_minutes": minutes, "lambda_timeout_seconds": timeout})
    assert config.max_continuations == expected
    assert (1 + config.max_continuations) * timeout <= minutes * 60  # the chain ends within the period
    assert rules.CONTINUATIONS.parse(str(config.max_continuations)) == expected  # the function accepts it


def test_quota_alone_names_the_pace_and_the_quota() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_from_mapping({"get_rate_per_second": "21"})
    message = str(raised.value)
    assert "'get_rate_per_second' (21)" in message
    assert "'get_quota_per_second' (20)" in message
    assert "consumer_get_rate_per_second" not in message  # off: the consumer takes nothing
    assert load_config_from_mapping({"get_rate_per_second": "20"}).get_rate_per_second == 20
    raised_quota = load_config_from_mapping({"get_rate_per_second": "40", "get_quota_per_second": "50"})
    assert raised_quota.get_rate_per_second == 40


def test_quota_shared_with_the_consumer_names_every_key() -> None:
    on = {"export_locations": "s3://my-exports/gamelift/"}
    with pytest.raises(ConfigError) as raised:
        load_config_from_mapping({**on, "get_rate_per_second": "18"})  # today's pace plus the consumer's 4/s
    message = str(raised.value)
    for part in (
        "'get_rate_per_second' (18)",
        "'consumer_get_rate_per_second' (4)",
        "= 22",
        "'get_quota_per_second' (20)",
    ):
        assert part in message
    with pytest.raises(ConfigError, match="'consumer_get_rate_per_second' \\(7\\)"):
        load_config_from_mapping({**on, "consumer_get_rate_per_second": "7"})  # 14 + 7 > 20
    at_quota = load_config_from_mapping({**on, "get_rate_per_second": "16", "consumer_get_rate_per_second": "4"})
    assert at_quota.get_rate_per_second + at_quota.consumer_get_rate_per_second == 20
    # Without export_locations the consumer's pace is not counted (there is no consumer).
    assert load_config_from_mapping({"get_rate_per_second": "18", "consumer_get_rate_per_second": "4"})


def test_consumer_pace_per_instance_must_be_one_the_function_accepts() -> None:
    on = {"export_locations": "s3://my-exports/gamelift/"}
    config = load_config_from_mapping({**on, "consumer_get_rate_per_second": "5", "consumer_max_concurrency": "4"})
    assert config.consumer_instance_rate_per_second == 1.25
    with pytest.raises(ConfigError) as raised:
        load_config_from_mapping({**on, "consumer_get_rate_per_second": "1", "consumer_max_concurrency": "1000"})
    assert "'consumer_get_rate_per_second'" in str(raised.value)
    assert "'consumer_max_concurrency'" in str(raised.value)


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
    ("value", "expected"),
    [
        ("40", 40.0),
        (" 12.5 ", 12.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        (40, 40.0),
        (12.5, 12.5),
        ("0.1", 0.1),
        (10_000, 10_000),
    ],
)
def test_rates_accept_whole_and_decimal_numbers_as_strings_or_json(value: object, expected: float) -> None:
    config = load_config_from_mapping(
        {"list_rate_per_second": value, "get_rate_per_second": value, "get_quota_per_second": 10_000}
    )
    assert config.list_rate_per_second == config.get_rate_per_second == expected


def test_max_concurrency_accepts_string_or_json_whole_number() -> None:
    assert load_config_from_mapping({"max_concurrency": "16"}).max_concurrency == 16
    assert load_config_from_mapping({"max_concurrency": 64}).max_concurrency == 64
    assert load_config_from_mapping({"max_concurrency": 1.0}).max_concurrency == 1


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
        ("record_prefix", "*/"),  # an IAM wildcard: the write grant would become <bucket>/*/*
        ("record_prefix", "sessions/v?/"),
        ("stats_prefix", "perf-stats"),
        ("stats_prefix", "/perf-stats/"),
        ("stats_prefix", "a/../b/"),
        ("stats_prefix", "*/"),
        ("stats_prefix", ""),
        ("stats_prefix", 7),
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
        ("keep_launch_argument_values", "yes please"),
        ("reader_role_arns", "Analyst"),
        ("reader_role_arns", "arn:aws:iam::111122223333:user/alice"),  # a user, not a role
        ("reader_role_arns", "arn:aws:iam::111122223333:role/*"),  # a wildcard would name every role
        ("reader_role_arns", "arn:aws:iam::1111:role/Analyst"),
        ("reader_role_arns", ["arn:aws:iam::111122223333:role/Analyst", 7]),
        ("admin_role_arns", "arn:aws:iam::111122223333:role/BreakGlass;arn:aws:iam::111122223333:role/Other"),
        ("admin_role_arns", 5),
        ("object_lock_days", "-1"),
        ("object_lock_days", "36501"),
        ("object_lock_days", "ten years"),
        ("backup_plan", "hourly"),
        ("backup_plan", True),
        ("access_log_expiration_days", "-1"),
        ("glue_database_name", "Has-Dashes"),
        ("athena_workgroup_name", "has space"),
        ("stack_name", "1starts-with-digit"),
        ("time_budget_margin_seconds", "200"),  # more than half of the 300 s timeout
        ("list_rate_per_second", "0"),
        ("list_rate_per_second", "0.09"),
        ("list_rate_per_second", "10000.5"),
        ("list_rate_per_second", "-18"),
        ("list_rate_per_second", "fast"),
        ("list_rate_per_second", "18/s"),
        ("list_rate_per_second", ""),
        ("list_rate_per_second", "nan"),
        ("list_rate_per_second", "inf"),
        ("list_rate_per_second", True),
        ("list_rate_per_second", [18]),
        ("list_rate_per_second", 10**400),
        ("get_rate_per_second", "0.05"),
        ("get_rate_per_second", 20000),
        ("get_rate_per_second", float("nan")),
        ("get_rate_per_second", "twenty"),
        ("get_rate_per_second", False),
        ("max_concurrency", "0"),
        ("max_concurrency", "65"),
        ("max_concurrency", "8.5"),
        ("max_concurrency", 8.5),
        ("max_concurrency", "-1"),
        ("max_concurrency", "²"),  # a digit to str.isdigit(), not to int()
        ("max_concurrency", "\u0663"),  # a non-ASCII digit
        ("max_concurrency", "\u00a08"),  # non-ASCII space around it
        ("max_concurrency", ""),
        ("keep_environment_variable_values", ""),
        ("keep_environment_variable_values", 2),
        ("record_prefix", "./"),
        ("record_prefix", ""),
        ("max_concurrency", True),
        ("export_locations", "my-exports/gamelift/"),
        ("export_locations", "s3://my-exports/gamelift"),  # a prefix ends in "/"
        ("export_locations", "s3://my-exports"),
        ("export_locations", "s3://My-Exports/"),
        ("export_locations", "s3://my-exports/a/../b/"),
        ("export_locations", "s3://my-exports/with space/"),
        ("export_locations", "s3://my-exports/star*/"),  # the rule's wildcard must not meet a "*" of the prefix
        ("export_locations", "s3://my-exports/gamelift/;s3://other-exports/"),
        ("export_locations", "s3://my-exports/gamelift/,,s3://other-exports/"),
        ("export_locations", ["s3://my-exports/", 5]),
        ("export_locations", 5),
        ("export_locations", True),
        ("schedule_minutes", " auto "),
        ("get_rate_per_second", "auto"),
        ("get_quota_per_second", "0"),
        ("get_quota_per_second", ""),
        ("get_quota_per_second", "twenty"),
        ("consumer_get_rate_per_second", "0"),
        ("consumer_get_rate_per_second", ""),
        ("consumer_max_concurrency", "1"),  # the event source mapping's minimum is 2
        ("consumer_max_concurrency", "1001"),
        ("consumer_max_concurrency", "2.5"),
        ("consumer_batch_size", "0"),
        ("consumer_batch_size", "11"),
        ("consumer_batch_size", ""),
        ("max_pending_receives", "0"),
        ("max_pending_receives", "101"),
        ("max_pending_receives", "many"),
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


@pytest.mark.parametrize("value", [18.0, 40.0, 12.5, 0.1, 0.30000000000000004, 10_000.0, 1 / 3])
def test_number_text_is_plain_and_round_trips(value: float) -> None:
    """The text deployed into the function's environment reads back, by the function's rule, as the same number."""
    text = number_text(value)
    assert rules.RATE_PER_SECOND.parse(text) == value
    assert "e" not in text
    assert not text.endswith(".0")


def test_whole_rates_are_deployed_without_a_decimal_point() -> None:
    assert (number_text(18.0), number_text(10_000.0), number_text(12.5)) == ("18", "10000", "12.5")


def test_every_accepted_log_retention_maps_to_a_cdk_retention() -> None:
    from aws_cdk import aws_logs as logs

    from infra.archiver import RETENTION
    from infra.config import LOG_RETENTION_DAYS

    assert sorted(RETENTION) == sorted(LOG_RETENTION_DAYS)
    assert len(set(RETENTION.values())) == len(RETENTION)
    assert logs.RetentionDays.INFINITE not in RETENTION.values()

"""Pure logic of the record: ARN parsing, record building, redaction, key layout."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from archiver import records
from archiver.records import (
    REDACTED,
    Context,
    athena_timestamp,
    build_record,
    created_at,
    encode_record,
    ledger_item,
    location_template,
    object_key,
    parse_session_arn,
)

ARN = "arn:aws:gameliftstreams:us-west-2:111122223333:streamsession/sg-1AB2C3De4/ABC123def4567"
ARCHIVED_AT = datetime(2026, 11, 28, 5, 0, 0, 250_000, tzinfo=UTC)


def detail(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "Arn": ARN,
        "Description": "nightly playtest",
        "StreamGroupId": "sg-1AB2C3De4",
        "UserId": "player/42",
        "Status": "TERMINATED",
        "StatusReason": "idleTimeout",
        "Protocol": "WebRTC",
        "Location": "eu-central-1",
        "SignalRequest": "SIGNAL-REQUEST-SECRET",
        "SignalResponse": "SIGNAL-RESPONSE-SECRET",
        "RoleArn": "arn:aws:iam::111122223333:role/secret-role",
        "ConnectionTimeoutSeconds": 120,
        "SessionLengthSeconds": 3600,
        "AdditionalLaunchArgs": ["-fps", "60", "--auth-token=LAUNCH-SECRET", "-windowed"],
        "AdditionalEnvironmentVariables": {"API_TOKEN": "ENV-SECRET"},
        "PerformanceStatsConfiguration": {"SharedWithClient": True},
        "DisplayConfiguration": {"Resolution": {"Width": 1920, "Height": 1080}},
        "CreatedAt": datetime(2026, 11, 27, 18, 4, 5, 123_456, tzinfo=UTC),
        "LastUpdatedAt": datetime(2026, 11, 27, 19, 0, 0, tzinfo=UTC),
        "ApplicationArn": "arn:aws:gameliftstreams:us-west-2:111122223333:application/a-9ZY8X7Wv6",
        "ExportFilesMetadata": {"Status": "SUCCEEDED", "OutputUri": "s3://exports/x.zip"},
    }
    base.update(overrides)
    return base


def test_parse_session_arn_returns_its_parts() -> None:
    arn = parse_session_arn(ARN)
    assert arn is not None
    assert (arn.region, arn.account_id, arn.stream_group_id, arn.session_id) == (
        "us-west-2",
        "111122223333",
        "sg-1AB2C3De4",
        "ABC123def4567",
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        "",
        "arn:aws:gameliftstreams:us-west-2:111122223333:streamgroup/sg-1",
        "arn:aws:gameliftstreams:us-west-2:1111:streamsession/sg-1/s-1",
        "arn:aws:gameliftstreams:us-west-2:111122223333:streamsession/../s-1",
        "arn:aws:gameliftstreams:us-west-2:111122223333:streamsession/sg-1/s-1/extra",
        "arn:aws:gameliftstreams:us-west-2:111122223333:streamsession/sg-1/s%2F1",
        "arn:aws:gameliftstreams:us-west-2:111122223333:streamsession/sg-1/s-1\n",
        "arn:aws:gameliftstreams:../..:111122223333:streamsession/sg-1/s-1",
        "arn:aws:s3:us-west-2:111122223333:streamsession/sg-1/s-1",
        ARN + "x" * 200,
    ],
)
def test_parse_session_arn_rejects_what_could_not_be_a_safe_key(value: object) -> None:
    assert parse_session_arn(value) is None


def test_record_has_the_contract_fields_and_no_secret() -> None:
    arn = parse_session_arn(ARN)
    assert arn is not None
    record = build_record(detail(), Context(arn, ARCHIVED_AT))
    assert record["session_arn"] == ARN
    assert record["session_id"] == "ABC123def4567"
    assert record["stream_group_id"] == "sg-1AB2C3De4"
    assert record["region"] == "us-west-2"
    assert record["account_id"] == "111122223333"
    assert record["user_id"] == "player/42"
    assert record["location"] == "eu-central-1"
    assert record["application_id"] == "a-9ZY8X7Wv6"
    assert record["created_at"] == "2026-11-27 18:04:05.123"
    assert record["archived_at"] == "2026-11-28 05:00:00.250"
    assert record["export_status"] == "SUCCEEDED"
    assert record["export_output_uri"] == "s3://exports/x.zip"
    assert record["display_resolution_width"] == 1920
    assert record["performance_stats_shared_with_client"] is True
    assert record["additional_environment_variables"] == {"API_TOKEN": REDACTED}
    assert record["additional_launch_args"] == ["-fps", REDACTED, f"--auth-token={REDACTED}", "-windowed"]
    text = encode_record(record).decode()
    for secret in ("SIGNAL-REQUEST-SECRET", "SIGNAL-RESPONSE-SECRET", "ENV-SECRET", "secret-role", "LAUNCH-SECRET"):
        assert secret not in text


def test_environment_values_are_kept_only_when_the_operator_opts_in() -> None:
    arn = parse_session_arn(ARN)
    assert arn is not None
    record = build_record(detail(), Context(arn, ARCHIVED_AT, keep_environment_values=True))
    assert record["additional_environment_variables"] == {"API_TOKEN": "ENV-SECRET"}
    assert record["additional_launch_args"] == ["-fps", REDACTED, f"--auth-token={REDACTED}", "-windowed"]


def test_launch_argument_values_are_kept_only_when_the_operator_opts_in() -> None:
    arn = parse_session_arn(ARN)
    assert arn is not None
    record = build_record(detail(), Context(arn, ARCHIVED_AT, keep_launch_argument_values=True))
    assert record["additional_launch_args"] == ["-fps", "60", "--auth-token=LAUNCH-SECRET", "-windowed"]
    assert record["additional_environment_variables"] == {"API_TOKEN": REDACTED}  # each opt-in is its own


def test_the_schema_says_what_is_kept_of_launch_arguments() -> None:
    [field] = [f for f in records.SCHEMA if f.name == "additional_launch_args"]
    assert "flags kept" in field.description and REDACTED in field.description and "opts in" in field.description


def test_every_schema_field_is_in_the_record_and_types_are_coerced_not_trusted() -> None:
    arn = parse_session_arn(ARN)
    assert arn is not None
    hostile = detail(
        Status="SOMETHING_NEW",
        ConnectionTimeoutSeconds="120",
        SessionLengthSeconds=True,
        AdditionalLaunchArgs=["ok", 5, None],
        AdditionalEnvironmentVariables="not-a-map",
        PerformanceStatsConfiguration=None,
        CreatedAt="yesterday",
        UserId="../../etc\n\u2603",
    )
    record = build_record(hostile, Context(arn, ARCHIVED_AT))
    assert list(record) == [f.name for f in records.SCHEMA]
    assert record["status"] == "SOMETHING_NEW"
    assert record["connection_timeout_seconds"] is None
    assert record["session_length_seconds"] is None
    assert record["additional_launch_args"] == [REDACTED]  # the string, redacted; the others dropped
    assert record["additional_environment_variables"] is None
    assert record["performance_stats_shared_with_client"] is None
    assert record["created_at"] is None
    line = encode_record(record)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert json.loads(line)["user_id"] == "../../etc\n\u2603"


def test_timestamps_read_as_athena_timestamps_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert athena_timestamp(datetime(2026, 1, 2, 5, 4, 5, 999_999, tzinfo=plus_two)) == "2026-01-02 03:04:05.999"
    assert athena_timestamp(1_764_266_645.5) == "2025-11-27 18:04:05.500"
    assert athena_timestamp(None) is None
    assert athena_timestamp(True) is None
    assert athena_timestamp(1e30) is None


def test_object_key_is_derived_from_arn_and_creation_date_only() -> None:
    arn = parse_session_arn(ARN)
    assert arn is not None
    late_evening_in_utc = datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC)
    key = object_key("sessions/", arn, late_evening_in_utc)
    assert key == "sessions/source_region=us-west-2/created_date=2026-11-27/sg-1AB2C3De4_ABC123def4567.json"
    assert key.startswith("sessions/")


def test_location_template_matches_the_keys_written() -> None:
    arn = parse_session_arn(ARN)
    assert arn is not None
    key = object_key("archive/v1/", arn, datetime(2026, 3, 4, tzinfo=UTC))
    template = location_template("bucket", "archive/v1/")
    filled = template.replace("${source_region}", "us-west-2").replace("${created_date}", "2026-03-04")
    assert f"s3://bucket/{key}".startswith(filled)
    assert [name for name, _ in records.PARTITION_KEYS] == ["source_region", "created_date"]
    assert all(name not in {f.name for f in records.SCHEMA} for name, _ in records.PARTITION_KEYS)


def test_created_at_prefers_detail_then_list_item() -> None:
    listed = {"CreatedAt": datetime(2026, 1, 1, tzinfo=UTC)}
    assert created_at({"CreatedAt": datetime(2026, 2, 2, tzinfo=UTC)}, listed) == datetime(2026, 2, 2, tzinfo=UTC)
    assert created_at({}, listed) == datetime(2026, 1, 1, tzinfo=UTC)
    assert created_at({"CreatedAt": "garbage"}, {}) is None


def _record(**overrides: object) -> dict[str, object]:
    arn = parse_session_arn(ARN)
    assert arn is not None
    return {**build_record(detail(), Context(arn, ARCHIVED_AT)), **overrides}


KEY = "sessions/source_region=us-west-2/created_date=2026-11-27/sg-1AB2C3De4_ABC123def4567.json"


def test_ledger_item_holds_the_key_the_version_and_the_record_s_times_and_export() -> None:
    assert ledger_item(_record(), KEY) == {
        "s3_key": KEY,
        "schema_version": "2",
        "archived_at": "2026-11-28 05:00:00.250",
        "created_at": "2026-11-27 18:04:05.123",
        "export_output_uri": "s3://exports/x.zip",
    }


@pytest.mark.parametrize(
    "uri",
    [None, "", 42, "s3://exports/" + "x" * (records.ITEM_VALUE_LIMIT - 12), "s3://exports/\ud800.zip"],
)
def test_ledger_item_leaves_out_what_dynamodb_would_refuse_or_is_missing(uri: object) -> None:
    item = ledger_item(_record(export_output_uri=uri, created_at=None), KEY)
    assert item == {"s3_key": KEY, "schema_version": "2", "archived_at": "2026-11-28 05:00:00.250"}


def test_ledger_item_keeps_an_export_uri_of_the_limit_s_length() -> None:
    uri = "s3://exports/" + "x" * (records.ITEM_VALUE_LIMIT - 13)
    assert len(uri) == records.ITEM_VALUE_LIMIT
    assert ledger_item(_record(export_output_uri=uri), KEY)["export_output_uri"] == uri


def test_ledger_attributes_list_every_item_attribute_once_partition_key_first() -> None:
    names = [attribute.name for attribute in records.LEDGER_ATTRIBUTES]
    assert names[0] == records.LEDGER_PARTITION_KEY == "session_arn"
    assert len(set(names)) == len(names)
    assert list(ledger_item(_record(), KEY)) == names[1:]  # the ledger adds the partition key itself
    assert {attribute.dynamodb_type for attribute in records.LEDGER_ATTRIBUTES} == {"S"}

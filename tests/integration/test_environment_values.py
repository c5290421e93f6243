"""KEEP_ENVIRONMENT_VARIABLE_VALUES end to end: the values of AdditionalEnvironmentVariables are stored only
when the operator opts in; the names always are. (What Athena reads of them: tests/infra/test_athena_contract.py.)"""

from __future__ import annotations

import json

import pytest

from archiver.records import REDACTED

from .conftest import Archive, cold_start, log_lines

VALUE = "CANARY-ENV-VALUE-7c41"
VARIABLES = {"API_KEY": VALUE, "GAME_MODE": "ranked"}


def archive_three(archive: Archive, logs: pytest.CaptureFixture[str]) -> tuple[dict[str, dict[str, str]], str]:
    """Three sessions with known variables, archived; returns each record's variables by ARN, and the output."""
    arns = {archive.emulator.add_session(AdditionalEnvironmentVariables=VARIABLES)["Arn"] for _ in range(3)}
    summary = archive.run()
    printed = "".join(logs.readouterr())
    assert summary["total"]["archived"] == 3
    records = {r["session_arn"]: r["additional_environment_variables"] for r in archive.objects().values()}
    assert set(records) == set(archive.items()) == arns
    messages = [line.get("message") for line in log_lines(printed)]
    assert "Run complete" in messages  # there is output to search
    return records, printed


def test_values_are_kept_when_the_operator_opts_in(
    archive: Archive, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEP_ENVIRONMENT_VARIABLE_VALUES", "true")
    cold_start()
    records, printed = archive_three(archive, logs)
    assert all(variables == VARIABLES for variables in records.values())
    assert archive.raw_objects().decode().count(VALUE) == 3
    # The record is the only place: the DynamoDB item holds no variables, and nothing logs them.
    assert VALUE not in json.dumps(archive.items())
    assert VALUE not in printed


@pytest.mark.parametrize("setting", [None, "false"])
def test_values_are_redacted_by_default(
    archive: Archive, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, setting: str | None
) -> None:
    if setting is None:
        monkeypatch.delenv("KEEP_ENVIRONMENT_VARIABLE_VALUES", raising=False)
    else:
        monkeypatch.setenv("KEEP_ENVIRONMENT_VARIABLE_VALUES", setting)
    cold_start()
    records, printed = archive_three(archive, logs)
    assert all(variables == dict.fromkeys(VARIABLES, REDACTED) for variables in records.values())
    raw = archive.raw_objects().decode()
    assert raw.count('"API_KEY"') == 3  # the names are there; the value is nowhere
    for text in (raw, json.dumps(archive.items()), printed):
        assert VALUE not in text

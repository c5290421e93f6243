"""KEEP_LAUNCH_ARGUMENT_VALUES end to end: the values of AdditionalLaunchArgs are stored only when the operator
opts in; the flags always are. The rule itself: tests/unit/test_redaction.py."""

from __future__ import annotations

import json

import pytest

from archiver.records import REDACTED

from .conftest import Archive, cold_start, log_lines

SECRET = "CANARY-LAUNCH-ARG-3d9a"
# The secret in every place a value can be, between harmless flags.
ARGS = [
    "-windowed",
    f"--auth-token={SECRET}-attached",
    "-token",
    f"{SECRET}-after-flag",
    f"{SECRET}-positional",
    f"-ini:Engine:{SECRET}-colon",
    "-token=",
    "-1",
    "--",
    f"--{SECRET}-after-end",
]
STORED = [
    "-windowed",
    f"--auth-token={REDACTED}",
    "-token",
    REDACTED,
    REDACTED,
    f"-ini:{REDACTED}",
    f"-token={REDACTED}",
    REDACTED,
    "--",
    REDACTED,
]


def archive_three(archive: Archive, logs: pytest.CaptureFixture[str]) -> tuple[dict[str, list[str]], str]:
    """Three sessions with known launch args, archived; returns each record's args by ARN, and the output."""
    arns = {archive.emulator.add_session(AdditionalLaunchArgs=ARGS)["Arn"] for _ in range(3)}
    summary = archive.run()
    printed = "".join(logs.readouterr())
    assert summary["total"]["archived"] == 3
    records = {r["session_arn"]: r["additional_launch_args"] for r in archive.objects().values()}
    assert set(records) == set(archive.items()) == arns
    messages = [line.get("message") for line in log_lines(printed)]
    assert "Run complete" in messages  # there is output to search
    return records, printed


@pytest.mark.parametrize("setting", [None, "false"])
def test_values_are_redacted_by_default(
    archive: Archive, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, setting: str | None
) -> None:
    if setting is None:
        monkeypatch.delenv("KEEP_LAUNCH_ARGUMENT_VALUES", raising=False)
    else:
        monkeypatch.setenv("KEEP_LAUNCH_ARGUMENT_VALUES", setting)
    cold_start()
    records, printed = archive_three(archive, logs)
    assert all(args == STORED for args in records.values())
    raw = archive.raw_objects().decode()
    assert raw.count('"--auth-token=<redacted>"') == 3  # the flags are there; the secret is nowhere
    for text in (raw, json.dumps(archive.items()), printed):
        assert SECRET not in text


def test_the_environment_opt_in_keeps_no_launch_argument_value(
    archive: Archive, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEP_ENVIRONMENT_VARIABLE_VALUES", "true")
    monkeypatch.delenv("KEEP_LAUNCH_ARGUMENT_VALUES", raising=False)
    cold_start()
    records, _ = archive_three(archive, logs)
    assert all(args == STORED for args in records.values())


def test_values_are_kept_when_the_operator_opts_in(
    archive: Archive, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEP_LAUNCH_ARGUMENT_VALUES", "true")
    cold_start()
    records, printed = archive_three(archive, logs)
    assert all(args == ARGS for args in records.values())
    assert archive.raw_objects().decode().count(SECRET) == 3 * 5
    # The record is the only place: the DynamoDB item holds no arguments, and nothing logs them.
    assert SECRET not in json.dumps(archive.items())
    assert SECRET not in printed

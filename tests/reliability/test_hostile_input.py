"""Hostile and malformed API answers: the run never crashes, writes nothing outside the record layout, lets no
API value choose a key segment, and every record stays one valid JSON line of the schema's Athena types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from local.reliability.constants import ACCOUNT, CANARY, REGION
from local.reliability.hostile import (
    NASTY,
    HostileEmulator,
    HostileSession,
    counted_foreign,
    foreign_arns,
    secret_launch_args,
)
from local.reliability.suites.fuzz import fuzz_check, run_fuzz_case
from local.reliability.world import WorldFactory

from .conftest import EXAMPLES

ARN = "arn:aws:gameliftstreams:us-east-2:111122223333:streamsession"


def test_fuzzed_list_and_get_answers(make_world: WorldFactory) -> None:
    results = fuzz_check(make_world, examples=EXAMPLES, derandomize=True)
    assert len(results) == EXAMPLES and all(r.ok for r in results)
    assert sum(r.expected for r in results) > 0 and sum(r.hostile_values for r in results) > 0  # not vacuous


@pytest.mark.slow
def test_fuzzed_list_and_get_answers_many(make_world: WorldFactory) -> None:
    results = fuzz_check(make_world, examples=max(EXAMPLES, 300), derandomize=False)
    assert sum(r.expected for r in results) > 0


def judge(make_world: WorldFactory, *sessions: HostileSession) -> int:
    """Run the case twice (run_fuzz_case) and judge it; every run counts exactly the foreign sessions the
    oracle names. Returns how many that is."""
    world = make_world(hostile=True)
    try:
        result = run_fuzz_case(world, sessions)
        emulator = world.stack.emulator
        assert isinstance(emulator, HostileEmulator)
        unreadable_page = any(s.list_wire.get("CreatedAt") == "not-a-date" for s in sessions)
        assert len(emulator.added) == len(sessions)
        foreign = 0 if unreadable_page else sum(map(counted_foreign, sessions, emulator.added))
        assert [run.total("foreign") for run in world.invocations] == [foreign, foreign]
    finally:
        world.close()
    assert result.violations == []
    assert result.audit.problems == [] and result.audit.leaks == []
    assert result.audit.lost == [] and result.audit.duplicated == [] and result.audit.extra == []
    assert result.audit.archived == result.expected
    return foreign


def session(
    fields: dict[str, Any] | None = None,
    get: dict[str, Any] | None = None,
    listed: dict[str, Any] | None = None,
    arn: str | None = None,
) -> HostileSession:
    fields = {"ExportFilesMetadata": {"Status": "SUCCEEDED"}, **(fields or {})}
    return HostileSession(fields, get or {}, listed or {}, arn)


def test_every_nasty_string_in_every_text_field(make_world: WorldFactory) -> None:
    fields = ("Description", "UserId", "Status", "StatusReason", "Protocol", "Location", "LogFileLocationUri")
    judge(
        make_world,
        *(session({name: text for name in fields}) for text in NASTY[:10]),
        *(session({name: text for name in fields}) for text in NASTY[10:20]),
    )


def test_values_athena_could_not_read(make_world: WorldFactory) -> None:
    judge(
        make_world,
        session({"ConnectionTimeoutSeconds": 2**40, "SessionLengthSeconds": -(2**31) - 1}),
        session({"CreatedAt": datetime(999, 1, 2, tzinfo=UTC), "StreamingEndedAt": datetime(1, 1, 1, tzinfo=UTC)}),
        session({"DisplayConfiguration": {"Resolution": {"Width": 2**31, "Height": -1}}}),
        session({"AdditionalEnvironmentVariables": {"../x": f"{CANARY}-1", "a\nb": f"{CANARY}-2", "": f"{CANARY}-3"}}),
        session({"AdditionalLaunchArgs": ["\x00", "\ud800", "🎮" * 1000]}),
    )


def test_an_export_uri_dynamodb_would_refuse_still_lets_the_session_be_archived(make_world: WorldFactory) -> None:
    judge(
        make_world,
        session({"ExportFilesMetadata": {"Status": "SUCCEEDED", "OutputUri": "s3://" + "u" * 450_000}}),
        session({"ExportFilesMetadata": {"Status": "SUCCEEDED", "OutputUri": "s3://b/lone\ud800surrogate"}}),
    )


def test_nulls_missing_fields_and_answers_that_differ_from_the_list(make_world: WorldFactory) -> None:
    judge(
        make_world,
        session(get={"CreatedAt": None, "UserId": None, "ExportFilesMetadata": None}),
        session({"CreatedAt": None, "LastUpdatedAt": None}),  # no creation time anywhere: kept, dated today
        session(listed={"CreatedAt": None, "Status": None}),
        session(get={"Arn": f"{ARN}/../../etc/x"}),  # GetStreamSession names another "ARN": foreign, not archived
        session(get={"CreatedAt": "not-a-date"}),  # botocore cannot read this answer: failed, retried, not written
    )


def test_hostile_arns_never_reach_a_key(make_world: WorldFactory) -> None:
    judge(
        make_world,
        session(arn=f"{ARN}/sg-a/../b"),
        session(arn=f"{ARN}/sg%2Fa/b"),
        session(arn=f"{ARN}/sg-a/b\n"),
        session(arn=f"{ARN}/sg-a/b/c"),
        session(arn=f"{ARN}/sg-a/" + "b" * 40),
        session(arn="arn:aws:gameliftstreams:us-east-2:111122223333:streamgroup/sg-a/b"),
        session(),  # and a well-formed one next to them
    )


def test_an_unreadable_list_page_fails_the_run_with_one_clear_error(make_world: WorldFactory) -> None:
    judge(make_world, session(listed={"CreatedAt": "not-a-date"}), session())


def test_foreign_sessions_listed_or_answered_are_never_archived_and_each_run_counts_them(
    make_world: WorldFactory,
) -> None:
    foreign = foreign_arns(1)  # another account, a Region outside SOURCE_REGIONS (two), another partition
    assert (
        judge(
            make_world,
            *(session({"Arn": arn.replace("1x", f"{n}a")}) for n, arn in enumerate(foreign)),  # listed and answered
            *(session(arn=arn.replace("1x", f"{n}b")) for n, arn in enumerate(foreign)),  # listed so, no such session
            *(session(get={"Arn": arn.replace("1x", f"{n}c")}) for n, arn in enumerate(foreign)),  # answered so
            session(
                get={"Arn": f"arn:aws:gameliftstreams:{REGION}:{ACCOUNT}:streamsession/sg-other/s1"}
            ),  # ours, other
            session(),  # and one of ours next to them, archived
        )
        == 3 * len(foreign) + 1
    )


def test_canaries_in_launch_args_never_reach_s3_dynamodb_or_a_log_line(make_world: WorldFactory) -> None:
    """The secret audit (leaks) is what judges this: flag values are redacted by archiver.records."""
    judge(
        make_world,
        session({"AdditionalLaunchArgs": secret_launch_args(1)}),
        session({"AdditionalLaunchArgs": ["--", *secret_launch_args(2), f"{CANARY}-positional"]}),
    )

"""Sessions that are not the function's (archiver.ownership), over the local stack: the emulator lists them and
would answer for them, the real handler (its context in the emulator's account) never asks, never stores them,
and counts them in every run."""

from __future__ import annotations

import pytest

from local.lambda_context import ACCOUNT, LambdaContext

from .conftest import REGION, Archive, cold_start, log_lines

OTHER_SOURCE = "us-west-2"
TAIL = "streamsession/sg-Foreign1/"
FOREIGN = {
    f"arn:aws:gameliftstreams:{REGION}:999999999999:{TAIL}acct1": "account",
    f"arn:aws:gameliftstreams:eu-central-1:{ACCOUNT}:{TAIL}region1": "region",  # not in SOURCE_REGIONS
    f"arn:aws-us-gov:gameliftstreams:{REGION}:{ACCOUNT}:{TAIL}partition1": "partition",
}


def test_foreign_sessions_are_counted_in_every_run_and_never_asked_about_nor_stored(
    archive: Archive, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_REGIONS", f"{REGION},{OTHER_SOURCE}")
    cold_start()
    ours = {archive.emulator.add_session(region=REGION)["Arn"] for _ in range(3)}
    ours.add(archive.emulator.add_session(region=OTHER_SOURCE)["Arn"])
    for arn in FOREIGN:  # listed in our Region with SUCCEEDED exports; GetStreamSession would answer for each
        archive.emulator.add_session(region=REGION, Arn=arn)
    assert set(FOREIGN) <= archive.emulator.succeeded_arns(REGION)

    first = archive.run()

    assert archive.archived_arns() == set(archive.items()) == ours
    assert {key.split("/")[1] for key in archive.objects()} == {f"source_region={r}" for r in (REGION, OTHER_SOURCE)}
    assert first["total"]["foreign"] == first["regions"][REGION]["foreign"] == len(FOREIGN)
    assert first["regions"][OTHER_SOURCE]["foreign"] == 0 and first["total"]["archived"] == len(ours)
    asked = " ".join(str(c.params) for c in archive.emulator.calls if c.operation == "GetStreamSession")
    assert not any(arn.rsplit("/", 1)[1] in asked for arn in FOREIGN)
    warned = [line for line in log_lines(logs.readouterr().out) if line.get("reason") in FOREIGN.values()]
    assert {(line["session_arn"], line["reason"]) for line in warned} == set(FOREIGN.items())
    assert len(warned) == len(FOREIGN) and {line["level"] for line in warned} == {"WARNING"}

    second = archive.run()  # still listed, still foreign: counted again, still not written
    assert (second["total"]["foreign"], second["total"]["archived"]) == (len(FOREIGN), 0)
    assert archive.archived_arns() == set(archive.items()) == ours


def test_a_function_of_another_account_archives_none_of_these_sessions(archive: Archive) -> None:
    archive.emulator.add_session(region=REGION)
    other = LambdaContext(invoked_function_arn=f"arn:aws:lambda:{REGION}:444455556666:function:archiver")
    summary = archive.run(context=other)
    assert (summary["total"]["listed"], summary["total"]["foreign"], summary["total"]["archived"]) == (1, 1, 0)
    assert archive.objects() == {} and archive.items() == {}

"""Several source Regions in one run: one Region failing never costs another its sessions."""

from __future__ import annotations

import pytest

from archiver.handler import RunFailed

from .conftest import Archive, cold_start, fired, log_lines

HEALTHY, FAILING = "us-east-2", "us-west-2"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("access_denied", "AccessDeniedException"),  # fatal: no retry
        ("internal", "InternalServerException"),  # persistent 500: retried, then the Region gives up
    ],
)
def test_a_failing_region_fails_the_run_by_name_while_the_other_is_archived(
    archive: Archive,
    logs: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    error: str,
) -> None:
    monkeypatch.setenv("SOURCE_REGIONS", f"{HEALTHY},{FAILING}")
    cold_start()
    archive.emulator.seed_sessions(120, region=HEALTHY)
    archive.emulator.seed_sessions(60, region=FAILING)
    healthy, failing = archive.emulator.succeeded_arns(HEALTHY), archive.emulator.succeeded_arns(FAILING)
    assert len(healthy) > 50 and len(failing) > 20
    archive.emulator.faults.inject("ListStreamSessionsByAccount", fault, region=FAILING)

    with pytest.raises(RunFailed) as caught:
        archive.run()

    # The error names the failing Region, and only it.
    (message,) = str(caught.value).split("; ")
    assert message.startswith(f"{FAILING}: ") and error in message and HEALTHY not in message
    lists = [c for c in archive.emulator.calls if c.operation == "ListStreamSessionsByAccount"]
    assert fired(archive)[("ListStreamSessionsByAccount", fault)] == sum(c.region == FAILING for c in lists) >= 1
    # The healthy Region is archived whole; nothing of the failing one is written or marked.
    assert archive.archived_arns() == set(archive.items()) == healthy
    assert {key.split("/")[1] for key in archive.objects()} == {f"source_region={HEALTHY}"}
    gets = [c for c in archive.emulator.calls if c.operation == "GetStreamSession"]
    assert len(gets) == len(healthy) and {c.region for c in gets} == {HEALTHY}
    # What the operator sees: one "Run failed" line whose summary has both Regions' counts.
    (failed,) = [line for line in log_lines(logs.readouterr().out) if line.get("message") == "Run failed"]
    regions = failed["summary"]["regions"]
    assert regions[HEALTHY]["archived"] == len(healthy) and "error" not in regions[HEALTHY]
    assert regions[FAILING]["archived"] == 0 and error in regions[FAILING]["error"]
    assert failed["summary"]["ok"] is False

    # Once the Region recovers, the next run archives it, and only it.
    archive.emulator.faults.clear()
    summary = archive.run()
    assert summary["regions"][FAILING]["archived"] == len(failing)
    assert summary["regions"][HEALTHY]["archived"] == 0
    assert archive.archived_arns() == set(archive.items()) == healthy | failing

"""Canary secrets (SignalRequest/SignalResponse, environment-variable and launch-argument values of every
session, its RoleArn, the Lambda's own secret key and session token) appear in no object, item or log line,
under faults and kills; and the search would find a canary that was stored."""

from __future__ import annotations

from pathlib import Path

from archiver.records import REDACTED
from local.reliability.constants import CANARY
from local.reliability.scenarios import fault
from local.reliability.world import WorldFactory, world_factory
from local.worker import Worker


def test_no_canary_anywhere_under_faults_kills_and_debug_logging(moto_url: str, tmp_path: Path) -> None:
    with (
        Worker(tmp_path, env={"POWERTOOLS_LOG_LEVEL": "DEBUG"}) as debug,  # a function that logs everything
        world_factory(moto_url, debug)(settings={"MAX_ATTEMPTS": "2"}) as world,
    ):
        world.seed(40)  # each with the canary in every place a launch argument's value can be
        world.gls.add(
            SignalRequest=f"offer {CANARY}",
            AdditionalEnvironmentVariables={"API_KEY": f"{CANARY}-key", "X": CANARY},
            AdditionalLaunchArgs=["-log", f"-token={CANARY}", "-pass", CANARY, "--", f"--{CANARY}"],
        )
        world.faults = [
            fault("GetStreamSession", "internal", probability=0.3),
            fault("PutObject", "slowdown", probability=0.3),
            fault("PutItem", "throughput", probability=0.3),
        ]
        assert world.run().total("failed") > 0
        world.faults = [fault("PutObject", "access_denied")]
        assert world.run().error is not None
        world.faults = []
        assert world.run(kill=("PutItem", 2, "after")).killed
        assert world.run().error is None

        audit = world.audit(check_records=True)  # each record's launch args as docs/schema.md's rule says

        assert audit.leaks == []
        assert audit.clean and audit.archived == 41
        assert world.violations == []
        logs = debug.logs()
        stored_args = [record["additional_launch_args"] for record in world.records().values()]
    # not vacuous: every session was given launch-argument values (the emulator's canaries), stored redacted
    assert all(f"-token={REDACTED}" in args or f"--auth-token={REDACTED}" in args for args in stored_args)
    # not vacuous: failures, the runtime's report of a failed invocation and debug lines were all printed
    assert "Session not archived" in logs and "errorMessage" in logs and "Session archived" in logs


def test_the_search_finds_a_canary_in_launch_args_that_was_stored(make_world: WorldFactory) -> None:
    """A canary spelled as a flag's name is kept (no rule can tell it from a flag: docs/schema.md), so the
    audit must report it: the launch-argument leak check is not vacuous."""
    world = make_world()
    world.gls.add(AdditionalLaunchArgs=["-windowed", f"--{CANARY}-as-a-flag-name", "-token", f"{CANARY}-value"])
    assert world.run().error is None

    audit = world.audit(check_records=True)

    assert audit.leaks and all(leak.startswith(f"{CANARY} in s3://") for leak in audit.leaks)
    assert audit.problems == [] and audit.archived == 1  # stored as the rule says: the flag kept, the value not

"""Canary secrets (SignalRequest/SignalResponse and environment-variable values of every session, its RoleArn,
the Lambda's own secret key and session token) appear in no object, item or log line, under faults and kills."""

from __future__ import annotations

from pathlib import Path

from local.reliability.constants import CANARY
from local.reliability.scenarios import fault
from local.reliability.world import world_factory
from local.worker import Worker


def test_no_canary_anywhere_under_faults_kills_and_debug_logging(moto_url: str, tmp_path: Path) -> None:
    with (
        Worker(tmp_path, env={"POWERTOOLS_LOG_LEVEL": "DEBUG"}) as debug,  # a function that logs everything
        world_factory(moto_url, debug)(settings={"MAX_ATTEMPTS": "2"}) as world,
    ):
        world.seed(40)
        world.gls.add(
            SignalRequest=f"offer {CANARY}", AdditionalEnvironmentVariables={"API_KEY": f"{CANARY}-key", "X": CANARY}
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

        audit = world.audit(check_records=True)

        assert audit.leaks == []
        assert audit.clean and audit.archived == 41
        assert world.violations == []
        logs = debug.logs()
    # not vacuous: failures, the runtime's report of a failed invocation and debug lines were all printed
    assert "Session not archived" in logs and "errorMessage" in logs and "Session archived" in logs

"""`make demo`, as a new user runs it: its own process, exit status 0 and what it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from local.stack.aws import scrubbed_env


def test_the_demo_archives_every_export_once_and_the_events_within_seconds(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "local.demo"],
        cwd=tmp_path,  # its handler log goes to .cache/demo/ there
        env=scrubbed_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Demo OK: every SUCCEEDED session archived exactly once." in out
    waits = [float(s) for s in re.findall(r"archived (\d+\.\d+) s after its ZIP landed", out)]
    assert len(waits) == 6  # each live session archived from its event (how fast is a figure, not a test)
    assert "delivered again, then archived" in out
    assert (tmp_path / ".cache" / "demo" / "handler.log").stat().st_size > 0

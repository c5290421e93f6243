"""A tiny run of `make bench` end to end: servers, both programs, table, targets, doc and chart.

No timing assertions (the machine is shared and small); what must hold at any speed: the table and the
document are produced, both programs archived the same sessions, and the archiver made the minimal calls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.results import expected_calls
from bench.run import main


def test_bench_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, chart, results = tmp_path / "PERFORMANCE.md", tmp_path / "performance.png", tmp_path / "results.json"
    argv = ["--points", "100:10", "--quota", "200", "--naive-cap", "60", "--no-coldstart"]
    argv += ["--calibration-samples", "0", "--out", str(out), "--chart", str(chart), "--json", str(results)]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    assert "| N listed | k new | floor | archiver |" in printed
    assert "| 100 | 10 |" in printed
    data = json.loads(results.read_text())
    runs = {run["program"]: run for run in data["runs"]}
    archiver, naive = runs["archiver"], runs["naive"]
    assert {k: archiver["calls"].get(k, 0) for k in expected_calls(100, 10)} == expected_calls(100, 10)
    assert archiver["report"]["total"]["archived"] == 10
    assert naive["finished"] is True
    assert naive["report"]["archived"] == 10
    assert naive["calls"]["GetItem"] == 100  # one per listed session
    assert archiver["floor_seconds"] > 0
    assert "## Results" in out.read_text()
    assert chart.read_bytes().startswith(b"\x89PNG")

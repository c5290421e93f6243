"""A tiny run of `make bench-overhead` end to end: fresh servers, the handler at its default pacing in a fresh
process, the figures printed. No timing assertion (the machine is shared): what must hold at any speed is
the minimal work, no throttle, and a whole process that contains its invocation."""

from __future__ import annotations

import pytest

from bench.overhead import measure, parse_args, summary


def test_overhead_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    measured = measure(parse_args(["--sessions", "150", "--new", "4", "--repetitions", "1"]))

    (rep,) = measured.repetitions
    assert measured.wrong == []  # 2 pages listed and checked, 4 sessions got, written and marked
    assert rep.archived == 4
    assert rep.throttled == 0
    assert 0 < rep.handler_s < rep.process_s
    assert measured.floor_s == pytest.approx(4 / 18)  # the Lambda's default pace: the bench sets none
    printed = capsys.readouterr().out
    assert "default pacing (18/s lists, 18/s gets, 8 at once): floor 0.22 s (listing 0.11 s)" in printed
    assert "[1/1] handler" in printed
    text = summary(measured)
    assert text.startswith("median of 1: handler ")
    assert "target: handler <= 1.05 x floor, 0 throttled, minimal calls: " in text
    assert "NOT the minimal work" not in text

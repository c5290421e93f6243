"""`make bench-day` end to end at a tiny size (`--quick`), and the day's arithmetic on its own.

No timing assertion (the machine is shared): what must hold at any speed is that every sampled export went
through the real chain to the ledger at exactly one Get, BatchGetItem, PutObject and PutItem per event, the
reconcile run listed everything with one List and one BatchGetItem per page and found nothing new, and the
day section lands between its markers in PERFORMANCE.md without touching the rest (and `make bench` keeps it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import day_doc
from bench.costs import DEPLOY_MD, PriceMissing, load_prices, parse_prices
from bench.day import EXPORTS, main
from bench.day_model import EventCost, ListingCost, derive, mode_configs, ratio_verdicts, uniform_sum_quantile

QUICK_SAMPLE, QUICK_LISTED = 6, 300


def test_day_quick_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc, data_path = tmp_path / "PERFORMANCE.md", tmp_path / "day.json"
    doc.write_text("# Performance\n\nThe matrix, written by make bench.\n", encoding="utf-8")

    assert main(["--quick", "--rates", "1000,100000", "--out", str(doc), "--json", str(data_path)]) == 0

    data = json.loads(data_path.read_text(encoding="utf-8"))
    phases = data["measured"]["events"]
    assert [p["rate"] for p in phases] == [1000, 100_000]
    for phase in phases:
        assert phase["sample"] == QUICK_SAMPLE
        assert phase["in_ledger"] == QUICK_SAMPLE  # every sampled session's ledger item is there
        assert phase["foreign"] == 0
        assert phase["calls_per_event"] == {
            "GetStreamSession": 1.0,
            "BatchGetItem": 1.0,
            "PutObject": 2.0,  # the record and its performance stats object (issue 11)
            "PutItem": 1.0,
            "GetObject": 1.0,  # the export ZIP, by range: the emulator's is small, one tail read holds it all
        }
        assert phase["calls"]["TerminateStreamSession"] == QUICK_SAMPLE  # the driver ended each once
        assert "ListStreamSessionsByAccount" not in phase["calls"]  # the consumer never lists
        assert phase["throttled"] == {}
        assert len(phase["latencies_s"]) == QUICK_SAMPLE
        assert all(v > 0 for v in phase["latencies_s"])
        assert 0 < phase["invocations"] <= QUICK_SAMPLE
    listed = QUICK_LISTED + QUICK_SAMPLE * len(phases)
    for mode, run in data["measured"]["reconcile"].items():
        pages = -(-listed // 100)
        assert run["listed"] == listed, mode
        assert run["calls"] == {"BatchGetItem": pages, "ListStreamSessionsByAccount": pages}, mode
        assert run["total"]["new"] == 0, mode  # the events archived the keys the reconciler checks
    assert data["modes"]["a"]["schedule_minutes"] == 15 and data["modes"]["b"]["schedule_minutes"] == 360
    assert data["modes"]["b"]["consumer_instance_rate_per_second"] == 2.0
    assert data["days"]["100000"]["a"]["feasible"] is False
    assert data["days"]["100000"]["b"]["feasible"] is True
    names = [t["name"] for t in data["targets"]]
    assert any("20x fewer list calls" in n and "100,000/day" in n for n in names)
    assert sum("p95 landing-to-archived" in n for n in names) == 2

    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Performance\n\nThe matrix, written by make bench.\n\n" + day_doc.DAY_BEGIN)
    assert text.count(day_doc.DAY_BEGIN) == 1 and text.rstrip().endswith(day_doc.DAY_END)
    assert "is **infeasible**" in text
    assert day_doc.section_from_json(data_path) in text  # what `make bench` appends is what was written
    printed = capsys.readouterr().out
    assert "Targets:" in printed and "| per day (derived) |" in printed


def test_replace_section_keeps_the_rest() -> None:
    old = f"# Perf\n\nmatrix\n\n{day_doc.DAY_BEGIN}\nold figures\n{day_doc.DAY_END}\n"
    new = day_doc.replace_section(old, f"{day_doc.DAY_BEGIN}\nnew\n{day_doc.DAY_END}")
    assert new == f"# Perf\n\nmatrix\n\n{day_doc.DAY_BEGIN}\nnew\n{day_doc.DAY_END}\n"
    assert day_doc.replace_section("", "S") == "S\n"


def test_prices_come_from_deploy_md() -> None:
    prices = load_prices(DEPLOY_MD)
    assert prices.hours_per_month == 730
    assert prices.dynamodb_read_unit == pytest.approx(0.125e-6)
    assert prices.lambda_gb_second == pytest.approx(0.0000133334)
    text = DEPLOY_MD.read_text(encoding="utf-8")
    with pytest.raises(PriceMissing, match="DynamoDB read unit"):
        parse_prices(text.replace("per million read request units", "per read"))


def test_uniform_sum_quantiles() -> None:
    assert uniform_sum_quantile(900, 0, 0.5) == pytest.approx(450)
    assert uniform_sum_quantile(900, 100, 0.5) == pytest.approx(500)  # symmetric about (a + b) / 2
    assert uniform_sum_quantile(900, 100, 1.0) == pytest.approx(1000)
    assert uniform_sum_quantile(100, 100, 0.125) == pytest.approx(50)  # triangle: F(50) = 50^2 / (2 * 100^2)
    assert uniform_sum_quantile(900, 100, 0.95) == pytest.approx(uniform_sum_quantile(100, 900, 0.95))


def test_the_day_at_each_rate() -> None:
    configs, prices = mode_configs(EXPORTS), load_prices(DEPLOY_MD)
    listing = ListingCost(pages=150, seconds=150 / 18, list_calls=150, batch_get_calls=150)  # at the 18/s pace
    calls = {"GetStreamSession": 1.0, "BatchGetItem": 1.0, "PutObject": 1.0, "PutItem": 1.0, "GetObject": 0.0}
    events = EventCost(200, calls, 0.1, 1.0, 2.0, 1, 0.1, 0.2, 0.3)
    days = {
        rate: {
            "a": derive("a", configs["a"], rate, listing, None, prices),
            "b": derive("b", configs["b"], rate, listing, events, prices),
        }
        for rate in (1_000, 10_000, 100_000)
    }
    a10, b10, a100 = days[10_000]["a"], days[10_000]["b"], days[100_000]["a"]
    assert a10.feasible and a10.links_per_run == 2  # 9,000 pages = 500 s: one follow-up
    assert a10.calls["ListStreamSessionsByAccount"] == 96 * 9_000
    assert b10.calls["ListStreamSessionsByAccount"] == 4 * 9_000
    assert b10.read_units == 4 * 900_000 * 0.5 + 10_000 * 0.5
    assert b10.calls["GetStreamSession"] == 10_000 and b10.calls["PutItem"] == 10_000
    assert a10.latency_s["max"] == pytest.approx(900 + 500)
    assert not a100.feasible and "100 list calls/s" in a100.infeasible_because
    assert days[100_000]["b"].feasible  # 90,000 pages = 5,000 s of a 6-hour period
    assert all(v.holds for v in ratio_verdicts(days))
    assert days[1_000]["b"].dollars_total < days[1_000]["a"].dollars_total

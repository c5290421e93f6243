"""The judges themselves: an audit that could not see a loss, a duplicate or a bad record would prove nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local.reliability.accounting import COUNTERS, Snapshot, judge_run
from local.reliability.oracle import check_record_line, judge
from local.reliability.report import FIGURES_END, FIGURES_START, write_figures
from local.reliability.scenarios import fault
from local.reliability.suites.matrix import never_fired
from local.worker import Invocation

ARN = "arn:aws:gameliftstreams:us-east-2:111122223333:streamsession/sg-1/s-1"
KEY = "sessions/source_region=us-east-2/created_date=2026-11-27/sg-1_s-1.json"


def record(**changes: object) -> dict[str, object]:
    from archiver.records import SCHEMA

    base: dict[str, object] = {field.name: None for field in SCHEMA}
    base.update(schema_version=1, session_arn=ARN, created_at="2026-11-27 18:04:05.000")
    base.update(changes)
    return base


def line(value: dict[str, object]) -> bytes:
    return (json.dumps(value) + "\n").encode()


def test_judge_counts_lost_duplicated_and_extra() -> None:
    other = ARN.replace("s-1", "s-2")
    stray = ARN.replace("s-1", "s-9")
    versions = {KEY: 2, KEY.replace("s-1", "s-1b"): 1, KEY.replace("s-1", "s-9"): 1}
    records = {
        KEY: record(),
        KEY.replace("s-1", "s-1b"): record(),  # a second key for the same session
        KEY.replace("s-1", "s-9"): record(session_arn=stray),  # not a session to archive
    }
    items = {ARN: {"s3_key": KEY}, other: {"s3_key": "nowhere"}}

    audit = judge({ARN, other}, versions, records, items)

    assert audit.lost == [other]  # its item points at no object
    assert ARN in audit.duplicated and f"item without object: {other}" in audit.duplicated
    assert stray in audit.extra
    assert audit.overwrites == 1
    assert not audit.clean


def test_record_checker_rejects_what_athena_could_not_read() -> None:
    assert check_record_line(KEY, line(record()))[1] == []
    bad = {
        "key outside the layout": ("sessions/../x.json", line(record())),
        "two lines": (KEY, b'{"a":1}\n{"b":2}\n'),
        "non-ASCII": (KEY, line(record()).replace(b"null", "\u00e9".encode(), 1)),
        "int beyond 32 bits": (KEY, line(record(connection_timeout_seconds=2**40))),
        "unpadded year": (KEY, line(record(streaming_ended_at="999-01-01 00:00:00.000"))),
        "NaN": (KEY, line(record()).replace(b"null", b"NaN", 1)),
        "missing column": (KEY, line({k: v for k, v in record().items() if k != "user_id"})),
        "segment not from the ARN": (KEY.replace("sg-1_", "sg-2_"), line(record())),
    }
    for name, (key, body) in bad.items():
        assert check_record_line(key, body)[1] != [], name


def test_figures_replace_only_their_section(tmp_path: Path) -> None:
    doc = tmp_path / "RELIABILITY.md"
    doc.write_text(f"# Title\n\nprose\n\n{FIGURES_START}\nold\n{FIGURES_END}\n\nmore prose\n")
    write_figures(doc, "new table\n")
    assert doc.read_text() == f"# Title\n\nprose\n\n{FIGURES_START}\nnew table\n{FIGURES_END}\n\nmore prose\n"


A, B, C = (ARN.replace("s-1", f"s-{n}") for n in "abc")
KA, KB = (KEY.replace("s-1", f"s-{n}") for n in "ab")


def summary(**counts: int) -> dict[str, Any]:
    total = {name: 0 for name in ("listed", "already_archived", "new", *COUNTERS)} | counts
    return {"ok": True, "total": total, "regions": {"us-east-2": total}}


def test_each_run_is_judged_by_its_counts_and_what_it_did_to_the_archive() -> None:
    before = Snapshot(frozenset({A, B, C}), {A: KA}, frozenset({KA}))
    after = Snapshot(frozenset({A, B, C}), {A: KA, B: KB}, frozenset({KA, KB}))
    # a was archived before, b is archived now, c failed (retried next run)
    honest = {"listed": 3, "already_archived": 1, "new": 2, "archived": 1, "failed": 1}
    assert judge_run(summary(**honest), before, after) == []

    wrong = {
        "counts that do not add up": honest | {"listed": 4},
        "more archived than new": honest | {"new": 0, "already_archived": 3, "failed": -1},
        "archived without its item": honest | {"archived": 2, "failed": 0},
        "c lost silently (counted as archived before)": honest | {"already_archived": 2, "new": 1, "failed": 0},
    }
    for name, counts in wrong.items():
        assert judge_run(summary(**counts), before, after) != [], name
    item_without_object = Snapshot(after.succeeded, {**after.items, C: "nowhere"}, after.keys)
    assert judge_run(None, before, item_without_object) != []  # a failed or killed run: consistency only
    two_keys = Snapshot(after.succeeded, after.items, after.keys | {KB.replace("2026-11-27", "2026-11-28")})
    assert judge_run(None, before, two_keys) != []
    stray_object = Snapshot(after.succeeded, after.items, after.keys | {KEY.replace("s-1", "s-c")})
    one_new = honest | {"new": 1, "failed": 0, "skipped": 1}  # c skipped: its object was written by no one
    assert judge_run(summary(**one_new), before, after) == []
    assert judge_run(summary(**one_new), before, stray_object) != []


def invocation(calls: dict[str, int], fired: dict[str, int]) -> Invocation:
    return Invocation(summary={}, calls=calls, fired=fired)


def test_a_fault_that_never_fired_is_a_violation_when_it_had_every_chance() -> None:
    often = fault("GetStreamSession", "internal", probability=0.1)
    assert never_fired([often], [invocation({"GetStreamSession": 200}, {})]) != []  # 20 expected, 0 fired
    assert never_fired([often], [invocation({"GetStreamSession": 200}, {"GetStreamSession:internal": 3})]) == []
    assert never_fired([often], [invocation({"GetStreamSession": 20}, {})]) == []  # 2 expected: proves nothing
    burst = fault("PutItem", "throughput", after=3, times=2)
    assert never_fired([burst], [invocation({"PutItem": 5}, {})]) != []
    assert never_fired([burst], [invocation({"PutItem": 3}, {})]) == []  # never reached past `after`
    expired = fault("ListStreamSessionsByAccount", "validation")
    assert never_fired([expired], [invocation({"ListStreamSessionsByAccount": 1}, {})]) == []  # first page only
    assert never_fired([expired], [invocation({"ListStreamSessionsByAccount": 2}, {})]) != []
    quota = {"on": "gls", "kind": "rate_limit", "operation": "*", "per_second": 20}
    assert never_fired([quota], [invocation({"GetStreamSession": 50}, {})]) == []
    assert never_fired([quota], [invocation({"GetStreamSession": 50}, {"GetStreamSession:quota": 1})]) != []

"""The judges themselves: an audit that could not see a loss, a duplicate or a bad record would prove nothing."""

from __future__ import annotations

import json
from pathlib import Path

from local.reliability.oracle import check_record_line, judge
from local.reliability.report import FIGURES_END, FIGURES_START, write_figures

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

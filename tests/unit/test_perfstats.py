"""archiver.perfstats: the stats CSV as typed rows, gzip JSON lines, and one exported ZIP end to end."""

from __future__ import annotations

import codecs
import gzip
import io
import json
import random
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.manifest import MANIFEST_COLUMNS, PERF_STATS_MEMBER
from archiver.perfstats import (
    MAX_EXTRA_COLUMNS,
    ROW_STATUSES,
    STATS_COLUMNS,
    STATS_STATUSES,
    STATS_SUMMARY_COLUMNS,
    STATS_TABLE_COLUMNS,
    StatsParser,
    StatsResult,
    StatsSummary,
    extract_stats,
    write_rows,
)
from archiver.ziprange import DEFAULT_LIMITS, MemoryReader, ZipLimits
from local import export_zip
from tests.unit import zips
from tests.unit.zips import CraftMember, craft, deflated, stored

ARN = "arn:aws:gameliftstreams:us-west-2:111122223333:streamsession/sg-1a2b3c4d5/ABC123def456"
NUMERIC = [column.name for column in STATS_COLUMNS if column.name != "timestamp"]


def parse(text: str, **kwargs: int) -> tuple[list[dict[str, object]], StatsSummary]:
    parser = StatsParser(**kwargs)
    rows = list(parser.rows(parser.lines([text.encode()])))
    return rows, parser.summary()


def objects(packed: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in gzip.decompress(packed).decode().splitlines()]


# --- the schema ---------------------------------------------------------------------------------------


def test_the_documented_columns_and_types() -> None:
    assert tuple(column.name for column in STATS_COLUMNS) == export_zip.PERF_STATS_COLUMNS
    assert STATS_COLUMNS[0].athena_type == "timestamp"
    assert {column.athena_type for column in STATS_COLUMNS[1:]} == {"double"}
    assert [column.name for column in STATS_TABLE_COLUMNS] == ["session_arn", *export_zip.PERF_STATS_COLUMNS, "extra"]
    assert STATS_TABLE_COLUMNS[-1].athena_type == "map<string,string>"
    for column in (*STATS_TABLE_COLUMNS, *MANIFEST_COLUMNS, *STATS_SUMMARY_COLUMNS):
        assert column.description and len(column.description) <= 255  # a Glue comment
    assert set(ROW_STATUSES) <= set(STATS_STATUSES)


# --- parsing ------------------------------------------------------------------------------------------


def test_rows_typed() -> None:
    rows, summary = parse(zips.csv_text(3))
    assert summary == StatsSummary(status="stored", rows=3)
    assert rows[0] == {
        "timestamp": "2026-01-01 00:00:00.000",
        "app_cpu_normalized": 0.5,
        "app_mem_mb": 1000.5,
        "app_mem_normalized": 0.25,
        "shared_sys_cpu_pct": 40.0,
        "shared_sys_mem_mb": 3000.0,
        "shared_sys_mem_pct": 18.3,
        "shared_sys_gpu_pct": 50.0,
        "shared_sys_vram_mb": 2000.0,
        "shared_sys_vram_pct": 24.4,
        "extra": {},
    }
    assert [row["timestamp"] for row in rows] == [f"2026-01-01 00:00:0{i}.000" for i in range(3)]


def test_bom_and_crlf_even_split_across_chunks() -> None:
    data = codecs.BOM_UTF8 + zips.csv_text(5, newline="\r\n").encode()
    for size in (1, 2, 3, 7, 64):
        parser = StatsParser()
        rows = list(parser.rows(parser.lines(data[i : i + size] for i in range(0, len(data), size))))
        assert parser.summary() == StatsSummary(status="stored", rows=5), size
        assert rows[4]["shared_sys_vram_pct"] == 24.4
        assert rows[4]["extra"] == {}


def test_crlf_leaves_no_cr_in_the_last_field() -> None:
    rows, summary = parse("timestamp,build\r\n2026-01-01T00:00:00Z,b-42\r\n2026-01-01T00:00:01Z,b-43")
    assert [row["extra"] for row in rows] == [{"build": "b-42"}, {"build": "b-43"}]
    assert summary.extra_columns == ("build",)


def test_bom_in_text_lines_and_no_final_newline() -> None:
    rows, summary = parse("\ufeff" + zips.csv_text(2).rstrip("\n"))
    assert summary.status == "stored"
    assert len(rows) == 2


def test_header_matched_case_insensitively_after_strip() -> None:
    text = " TimeStamp , APP_MEM_MB ,Shared_Sys_GPU_Pct\n2026-01-01T00:00:00Z,12.5,99\n"
    rows, summary = parse(text)
    assert summary.status == "stored"
    assert rows[0]["app_mem_mb"] == 12.5
    assert rows[0]["shared_sys_gpu_pct"] == 99.0
    assert rows[0]["app_cpu_normalized"] is None
    assert set(summary.missing_columns) == set(NUMERIC) - {"app_mem_mb", "shared_sys_gpu_pct"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no header"),
        ("\n\n", "header has no timestamp column"),
        ("2026-01-01T00:00:00Z,0.5,1\n2026-01-01T00:00:01Z,0.5,1\n", "header has no timestamp column"),
        ("time,app_mem_mb\n2026-01-01T00:00:00Z,1\n", "header has no timestamp column"),
        ("timestamp,app_mem_mb,APP_MEM_MB\n2026-01-01T00:00:00Z,1,2\n", "header names a column twice"),
        ("timestamp,x,X\n2026-01-01T00:00:00Z,1,2\n", "header names a column twice"),
    ],
)
def test_wrong_or_missing_header_gives_no_rows(text: str, reason: str) -> None:
    rows, summary = parse(text)
    assert rows == []
    assert summary.status == "bad_header"
    assert summary.reason == reason
    assert not summary.has_rows_object
    assert summary.rows == 0


def test_header_that_is_not_csv() -> None:
    rows, summary = parse('"' + "x" * 200_000 + '"\n' + zips.csv_text(2), max_line_chars=1_000_000)
    assert rows == []
    assert summary.status == "bad_header"
    assert summary.reason == "header is not CSV"


def test_extra_columns_kept_as_text_and_capped() -> None:
    text = zips.CSV_HEADER + ",Build Id,fps\n" + zips.csv_text(1).splitlines()[1] + ",b-42, 60 \n"
    rows, summary = parse(text)
    assert rows[0]["extra"] == {"Build Id": "b-42", "fps": " 60 "}
    assert summary.extra_columns == ("Build Id", "fps")
    many = [f"x{i}" for i in range(MAX_EXTRA_COLUMNS + 5)]
    rows, summary = parse("timestamp," + ",".join(many) + "\n2026-01-01T00:00:00Z," + ",".join(many) + "\n")
    assert len(rows[0]["extra"]) == MAX_EXTRA_COLUMNS  # type: ignore[arg-type]
    assert summary.ignored_columns == 5


def test_empty_header_names_are_ignored() -> None:
    rows, summary = parse("timestamp,,app_mem_mb,\n2026-01-01T00:00:00Z,junk,5,more\n")
    assert summary.status == "stored"
    assert rows[0]["app_mem_mb"] == 5.0
    assert rows[0]["extra"] == {}


@pytest.mark.parametrize(
    ("value", "expected", "bad"),
    [
        ("12.5", 12.5, 0),
        (" 3 ", 3.0, 0),
        ("-1e3", -1000.0, 0),
        (".5", 0.5, 0),
        ("7.", 7.0, 0),
        ("", None, 0),
        ("  ", None, 0),
        ("nan", None, 1),
        ("inf", None, 1),
        ("-Infinity", None, 1),
        ("1e999", None, 1),
        ("1_000", None, 1),
        ("0x10", None, 1),
        ("12%", None, 1),
        ("\u0661\u0662", None, 1),  # Arabic-Indic digits: float() takes them, the CSV never has them
        ("N/A", None, 1),
    ],
)
def test_numbers(value: str, expected: float | None, bad: int) -> None:
    rows, summary = parse(f"timestamp,app_mem_mb\n2026-01-01T00:00:00Z,{value}\n")
    assert rows[0]["app_mem_mb"] == expected
    assert summary.bad_values == bad


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-01 00:00:00.000"),
        ("2026-01-01T00:00:00.1234Z", "2026-01-01 00:00:00.123"),
        ("2026-01-01T02:30:00+02:30", "2026-01-01 00:00:00.000"),
        ("2026-01-01T23:00:00-01:00", "2026-01-02 00:00:00.000"),
        ("2026-01-01T00:00:05", "2026-01-01 00:00:05.000"),  # no offset: UTC
        ("2026-01-01 00:00:05", "2026-01-01 00:00:05.000"),
        ("0999-01-01T00:00:00Z", "0999-01-01 00:00:00.000"),
    ],
)
def test_timestamps_to_athena_text(value: str, expected: str) -> None:
    rows, summary = parse(f"timestamp\n{value}\n")
    assert rows[0]["timestamp"] == expected
    assert summary.bad_timestamps == 0


@pytest.mark.parametrize("value", ["", "yesterday", "2026-13-01T00:00:00Z", "1700000000", "0001-01-01T00:00:00+01:00"])
def test_bad_timestamps_keep_the_row(value: str) -> None:
    rows, summary = parse(f"timestamp,app_mem_mb\n{value},5\n")
    assert rows[0]["timestamp"] is None
    assert rows[0]["app_mem_mb"] == 5.0
    assert summary.bad_timestamps == 1
    assert summary.status == "stored"


def test_ragged_rows_keep_what_maps() -> None:
    text = "app_mem_mb,timestamp,shared_sys_gpu_pct\n1,2026-01-01T00:00:00Z\n2\n3,2026-01-01T00:00:02Z,90,extra,more\n"
    rows, summary = parse(text)
    assert [row["app_mem_mb"] for row in rows] == [1.0, 2.0, 3.0]
    assert [row["timestamp"] for row in rows] == ["2026-01-01 00:00:00.000", None, "2026-01-01 00:00:02.000"]
    assert rows[2]["shared_sys_gpu_pct"] == 90.0
    assert rows[2]["extra"] == {}
    assert summary.ragged_rows == 3
    assert summary.bad_timestamps == 1  # the row too short to have one


def test_quotes_blank_lines_and_stray_quotes() -> None:
    text = (
        'timestamp,app_mem_mb,note\n"2026-01-01T00:00:00Z","5","a, b"\n\n,,\n'
        '2026-01-01T00:00:01Z,6,"open\n2026-01-01T00:00:02Z,7,x\n'
    )
    rows, summary = parse(text)
    assert [row["app_mem_mb"] for row in rows] == [5.0, 6.0, 7.0]  # a stray quote does not swallow the next line
    assert rows[0]["extra"] == {"note": "a, b"}
    assert summary.rows == 3


def test_long_lines_skipped_and_counted() -> None:
    text = zips.CSV_HEADER + "\n" + "2026-01-01T00:00:00Z," + "9" * 5000 + "\n" + zips.csv_text(2).split("\n", 1)[1]
    for size in (100, 4096, 10**6):
        parser = StatsParser(max_line_chars=1000)
        data = text.encode()
        rows = list(parser.rows(parser.lines(data[i : i + size] for i in range(0, len(data), size))))
        summary = parser.summary()
        assert summary.bad_lines == 1, size
        assert summary.rows == 2
        assert [row["app_mem_mb"] for row in rows] == [1000.5, 1001.5]


def test_invalid_utf8_becomes_bad_values() -> None:
    parser = StatsParser()
    rows = list(parser.rows(parser.lines([b"timestamp,app_mem_mb\n2026-01-01T00:00:00Z,1\xff2\n"])))
    assert rows[0]["app_mem_mb"] is None
    assert parser.summary().bad_values == 1


def test_ten_million_rows_stop_at_the_cap_without_reading_on() -> None:
    consumed = 0

    def counted() -> Iterator[str]:
        nonlocal consumed
        for line in zips.lazy_csv_lines(10_000_000):
            consumed += 1
            yield line

    parser = StatsParser(max_rows=1_000)
    rows = sum(1 for _ in parser.rows(counted()))
    summary = parser.summary()
    assert rows == 1_000
    assert summary.status == "truncated" and summary.truncated
    assert summary.rows == 1_000
    assert summary.reason == "more rows than the row cap"
    assert consumed == 1_002  # the header, the rows, and the one that showed there were more


def test_exactly_the_cap_is_not_truncated() -> None:
    parser = StatsParser(max_rows=5)
    assert sum(1 for _ in parser.rows(zips.lazy_csv_lines(5))) == 5
    assert parser.summary().status == "stored"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=12), st.binary(max_size=300))
def test_any_text_parses_without_raising(lines: list[str], noise: bytes) -> None:
    parser = StatsParser(max_line_chars=50)
    chunks = ["\n".join(["timestamp,app_mem_mb,x", *lines]).encode("utf-8", "surrogatepass"), noise]
    out = io.BytesIO()
    write_rows(parser.rows(parser.lines(chunks)), out, session_arn=ARN)  # json with allow_nan=False
    summary = parser.summary()
    assert summary.status in STATS_STATUSES
    assert len(objects(out.getvalue())) == summary.rows


# --- the stats object ---------------------------------------------------------------------------------


def test_gzip_json_lines_with_the_session_first_and_the_same_bytes_every_time() -> None:
    rows, _ = parse(zips.csv_text(4))
    first, second = io.BytesIO(), io.BytesIO()
    assert write_rows(rows, first, session_arn=ARN) == 4
    write_rows(iter(rows), second, session_arn=ARN)
    assert first.getvalue() == second.getvalue()
    assert first.getvalue()[3:8] == b"\x00" * 5  # no file name flag, no time: retries write the same bytes
    written = objects(first.getvalue())
    assert all(list(obj) == [column.name for column in STATS_TABLE_COLUMNS] for obj in written)
    assert written[3]["timestamp"] == "2026-01-01 00:00:03.000"
    assert write_rows([], io.BytesIO(), session_arn=ARN) == 0


# --- one exported ZIP, end to end ---------------------------------------------------------------------


def run(data: bytes, limits: ZipLimits = DEFAULT_LIMITS, max_rows: int = 1_000_000) -> tuple[StatsResult, bytes]:
    out = io.BytesIO()
    result = extract_stats(MemoryReader(data, etag='"e"'), out, session_arn=ARN, limits=limits, max_rows=max_rows)
    return result, out.getvalue()


def test_the_emulators_zip_end_to_end() -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    detail = {"Arn": ARN, "StreamingStartedAt": start, "StreamingEndedAt": start + timedelta(minutes=7, seconds=3)}
    data = export_zip.export_zip(detail, seed=7)
    expected = export_zip.stats_rows(detail, random.Random(f"7:{ARN}"))
    result, packed = run(data)
    assert result.summary == StatsSummary(status="stored", rows=len(expected))
    assert result.manifest is not None
    assert result.manifest.top_level_folders == ("application", "profile", "stats", "temp")
    assert result.manifest.perf_stats_present
    written = objects(packed)
    assert len(written) == len(expected) == 423
    for obj, row in zip(written, expected, strict=True):
        assert obj["session_arn"] == ARN
        moment = datetime.strptime(row[0], "%Y-%m-%dT%H:%M:%SZ")
        assert obj["timestamp"] == moment.strftime("%Y-%m-%d %H:%M:%S.000")
        assert [obj[name] for name in NUMERIC] == [float(value) for value in row[1:]]
        assert obj["extra"] == {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        stats = archive.getinfo(PERF_STATS_MEMBER)
    assert result.bytes_read <= len(data)
    assert stats.compress_size < result.bytes_read


def statuses(data: bytes, **kwargs: object) -> tuple[str, str | None, bool]:
    result, _ = run(data, **kwargs)  # type: ignore[arg-type]
    return result.summary.status, result.summary.reason, result.manifest is not None


def test_statuses_of_each_kind_of_zip() -> None:
    good = zips.csv_text(30).encode()
    assert statuses(zips.zipfile_zip([(PERF_STATS_MEMBER, good)]))[0] == "stored"
    assert statuses(zips.zipfile_zip([("application/a", b"x")])) == ("absent", None, True)
    assert statuses(zips.zipfile_zip([(PERF_STATS_MEMBER, b"when,what\n1,2\n")]))[0] == "bad_header"
    assert statuses(zips.zipfile_zip([(PERF_STATS_MEMBER, good)], method=zipfile.ZIP_BZIP2)) == (
        "unsupported",
        "compression method 12",
        True,
    )
    assert statuses(craft([stored(PERF_STATS_MEMBER, good, flags=0x0801)]))[:2] == ("unsupported", "encrypted member")
    assert statuses(craft([deflated(PERF_STATS_MEMBER, good, crc=5)])) == ("malformed", "CRC-32 mismatch", True)
    assert statuses(zips.zipfile_zip([(PERF_STATS_MEMBER, good)])[:-30]) == (
        "malformed",
        "end of central directory record not found",
        False,
    )
    assert statuses(b"not a zip at all") == ("malformed", "too small to be a ZIP", False)
    many = craft([stored(f"f/{i}", b"") for i in range(20)])
    assert statuses(many, limits=ZipLimits(max_entries=10)) == (
        "too_large",
        "central directory has more entries than the cap",
        False,
    )
    assert statuses(zips.zipfile_zip([(PERF_STATS_MEMBER, good)]), max_rows=10)[:2] == (
        "truncated",
        "more rows than the row cap",
    )


def test_a_member_over_the_inflated_cap_keeps_whole_rows_only() -> None:
    text = zips.csv_text(20_000).encode()
    cap = 100_003  # mid-row
    result, packed = run(zips.zipfile_zip([(PERF_STATS_MEMBER, text)]), limits=ZipLimits(max_inflated_bytes=cap))
    summary = result.summary
    assert summary.status == "truncated"
    assert summary.reason == "member larger than the inflated-bytes cap"
    whole_lines = text[:cap].count(b"\n") - 1  # less the header
    assert summary.rows == whole_lines
    assert summary.bad_values == summary.bad_timestamps == summary.ragged_rows == 0
    assert len(objects(packed)) == whole_lines


def test_a_bomb_member_is_truncated_not_inflated() -> None:
    size = 64 << 20
    header = (zips.CSV_HEADER + "\n").encode()
    member = CraftMember(
        name=PERF_STATS_MEMBER.encode(),
        data=zips.deflated_zeros(size, prefix=header),
        method=8,
        usize=len(header) + size,
    )
    result, _ = run(craft([member]), limits=ZipLimits(max_inflated_bytes=2 << 20, chunk_size=16 * 1024))
    assert result.summary.status == "truncated"
    assert result.summary.rows == 0
    assert result.summary.bad_lines == 1  # the zeros: one endless line, dropped as soon as it is too long
    assert result.bytes_read < 100_000


def test_summary_record_follows_its_columns() -> None:
    record = StatsSummary(status="stored", rows=3, missing_columns=("app_mem_mb",)).to_record()
    assert list(record) == [column.name for column in STATS_SUMMARY_COLUMNS]
    assert record["rows"] == 3
    assert record["missing_columns"] == ["app_mem_mb"]
    json.dumps(record)


EMULATOR_ZIP = export_zip.export_zip(
    {
        "Arn": ARN,
        "StreamingStartedAt": datetime(2026, 3, 1, tzinfo=UTC),
        "StreamingEndedAt": datetime(2026, 3, 1, 0, 2, tzinfo=UTC),
        "AdditionalLaunchArgs": ["-map", "x"],
    },
    seed=3,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), min_size=1, max_size=8),
    st.integers(min_value=0, max_value=3),
)
def test_mutated_export_zips_never_raise(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(EMULATOR_ZIP)
    for position, value in flips:
        data[position % len(data)] = value
    data = data[: len(data) - cut * 7]
    result, packed = run(bytes(data), limits=ZipLimits(max_inflated_bytes=1 << 16, chunk_size=4096), max_rows=50)
    assert result.summary.status in STATS_STATUSES
    assert result.bytes_read <= len(data)
    if result.summary.has_rows_object:
        assert len(objects(packed)) == result.summary.rows <= 50
    else:
        assert result.summary.rows == 0


def test_memory_stays_bounded_by_the_chunk_not_the_member() -> None:
    # 64 MiB inflated (lines of 100 KB, each over the line cap) from a deflated ZIP of about 70 KB: the peak
    # of what extract_stats allocates stays a few chunks, whatever the member's size.
    line = b"9" * 100_000 + b"\n"
    repeats = (64 << 20) // len(line)
    header = (zips.CSV_HEADER + "\n").encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    pieces = [packer.compress(header)]
    crc = zlib.crc32(header)
    for _ in range(repeats):
        pieces.append(packer.compress(line))
        crc = zlib.crc32(line, crc)
    pieces.append(packer.flush())
    size = len(header) + repeats * len(line)
    member = CraftMember(name=PERF_STATS_MEMBER.encode(), data=b"".join(pieces), method=8, crc=crc, usize=size)
    data = craft([member])
    tracemalloc.start()
    try:
        result, _ = run(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.summary.status == "stored"
    assert result.summary.bad_lines == repeats
    assert peak < 12 << 20, peak  # 1 MiB chunks; the member is 64 MiB (measured: 4.6 MiB)

"""archiver.ziprange and archiver.manifest: ZIPs read by ranges, normal and hostile, and what they read."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.manifest import MANIFEST_COLUMNS, PERF_STATS_MEMBER, build_manifest
from archiver.ziprange import (
    DEFAULT_LIMITS,
    CountingReader,
    MemoryReader,
    ZipError,
    ZipLimitExceeded,
    ZipLimits,
    ZipMalformed,
    ZipUnsupported,
    open_member,
    read_central_directory,
)
from tests.unit import zips
from tests.unit.zips import CraftMember, craft, deflated, stored

SMALL = ZipLimits(max_inflated_bytes=1 << 20, chunk_size=64 * 1024)


def read_all(data: bytes, name: str, limits: ZipLimits = DEFAULT_LIMITS) -> bytes:
    directory = read_central_directory(MemoryReader(data), limits)
    entry = directory.find(name)
    assert entry is not None
    return b"".join(open_member(directory, entry, limits))


def names(data: bytes) -> list[str]:
    return [entry.name for entry in read_central_directory(MemoryReader(data)).entries()]


# --- normal ZIPs, written by zipfile -------------------------------------------------------------------


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_members_read_as_zipfile_reads_them(method: int) -> None:
    members = [("application/logs/game.log", b"started\n" * 100), (STATS, zips.csv_text(50).encode()), ("e", b"")]
    data = zips.zipfile_zip(members, method=method)
    assert names(data) == [name for name, _ in members]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name, _ in members:
            assert read_all(data, name) == archive.read(name)


STATS = PERF_STATS_MEMBER


def test_zip64_written_by_zipfile(monkeypatch: pytest.MonkeyPatch) -> None:
    # zipfile's own limits, lowered as CPython's tests do: it writes ZIP64 records, extras and the locator.
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 3)
    members = [(f"d{i}/f.bin", os.urandom(1500)) for i in range(5)] + [(STATS, zips.csv_text(80).encode())]
    data = zips.zipfile_zip(members)
    monkeypatch.undo()
    directory = read_central_directory(MemoryReader(data))
    assert directory.zip64
    assert directory.entry_count == 6
    for name, content in members:
        assert read_all(data, name) == content


def test_force_zip64_local_headers() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        with archive.open(STATS, "w", force_zip64=True) as member:
            member.write(zips.csv_text(30).encode())
        archive.writestr("other.txt", b"x")
    assert read_all(buffer.getvalue(), STATS) == zips.csv_text(30).encode()


def test_crafted_zip64_entries_and_end_record_also_open_in_zipfile() -> None:
    text = zips.csv_text(20).encode()
    data = craft([deflated("a/b.txt", b"hello" * 50, zip64=True), deflated(STATS, text, zip64=True)], zip64_end=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read(STATS) == text  # the crafting is right by someone else's reader
    directory = read_central_directory(MemoryReader(data))
    assert directory.zip64
    assert read_all(data, STATS) == text
    assert read_all(data, "a/b.txt") == b"hello" * 50


def test_many_members_and_a_comment() -> None:
    members = [(f"application/saves/{i:05d}.sav", b"s") for i in range(3000)] + [(STATS, b"timestamp\n")]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members:
            archive.writestr(name, content)
        archive.comment = b"made by a test " * 100
    data = buffer.getvalue()
    directory = read_central_directory(MemoryReader(data))
    assert directory.entry_count == 3001
    manifest = build_manifest(directory)
    assert manifest.member_count == 3001
    assert manifest.top_level_folders == ("application", "stats")
    assert read_all(data, STATS) == b"timestamp\n"


def test_names_are_data_utf8_cp437_dots_absolute_and_nul() -> None:
    data = craft(
        [
            stored("../escape/x", b"1"),
            stored("/etc/passwd", b"2"),
            stored("caf\u00e9/menu.txt", b"3"),
            CraftMember(name=b"\x81ber/cp437.txt", data=b"4", flags=0),  # no UTF-8 flag: code page 437
            CraftMember(name=b"nul\x00/x", data=b"5"),
            stored("C:\\windows\\file", b"6"),
            stored(STATS, b"timestamp\n"),
        ]
    )
    assert names(data) == [
        "../escape/x",
        "/etc/passwd",
        "caf\u00e9/menu.txt",
        "\u00fcber/cp437.txt",
        "nul\x00/x",
        "C:\\windows\\file",
        STATS,
    ]
    manifest = build_manifest(read_central_directory(MemoryReader(data)))
    assert manifest.top_level_folders == ("", "..", "caf\u00e9", "nul\x00", "stats", "\u00fcber")
    assert manifest.perf_stats_present


def test_invalid_utf8_name_is_replaced_not_raised() -> None:
    data = craft([CraftMember(name=b"bad\xff\xfe/x", data=b"1")])
    assert names(data) == ["bad\ufffd\ufffd/x"]


def test_stats_member_matched_exactly_and_the_last_duplicate_wins() -> None:
    data = craft(
        [
            stored("Stats/perf_stats_v1.csv", b"wrong case"),
            stored("application/stats/perf_stats_v1.csv", b"nested"),
            stored(STATS, b"first"),
            stored(STATS, b"second"),
        ]
    )
    assert read_all(data, STATS) == b"second"
    assert not build_manifest(
        read_central_directory(MemoryReader(craft([stored("STATS/PERF_STATS_V1.CSV", b"")])))
    ).perf_stats_present


def test_manifest_record_and_columns() -> None:
    data = zips.zipfile_zip([("application/a.txt", b"a" * 1000), ("profile/", b""), (STATS, b"timestamp\n")])
    directory = read_central_directory(MemoryReader(data, etag='"abc"'))
    record = build_manifest(directory).to_record()
    assert list(record) == [column.name for column in MANIFEST_COLUMNS]
    assert record["member_count"] == 3
    assert record["total_uncompressed_bytes"] == 1010
    assert record["total_compressed_bytes"] == sum(e.compressed_size for e in directory.entries())
    assert record["top_level_folders"] == ["application", "profile", "stats"]
    assert record["folders_truncated"] is False
    assert record["perf_stats_present"] is True
    assert record["zip_size"] == len(data)
    assert record["zip_etag"] == '"abc"'


def test_manifest_folders_capped_to_the_smallest_whatever_the_order() -> None:
    members = [stored(f"f{i:04d}/x", b"") for i in range(1000)]
    forward = build_manifest(read_central_directory(MemoryReader(craft(members))))
    backward = build_manifest(read_central_directory(MemoryReader(craft(members[::-1]))))
    assert forward.folders_truncated and backward.folders_truncated
    assert forward.top_level_folders == backward.top_level_folders == tuple(f"f{i:04d}" for i in range(100))
    long_name = build_manifest(read_central_directory(MemoryReader(craft([stored("x" * 300 + "/y", b"")]))))
    assert long_name.top_level_folders == ("x" * 255,)
    assert long_name.folders_truncated


# --- hostile and broken ZIPs ----------------------------------------------------------------------------


def good_zip() -> bytes:
    return craft([deflated("application/log.txt", b"log line\n" * 200), deflated(STATS, zips.csv_text(40).encode())])


@pytest.mark.parametrize("cut", [0, 1, 21, 22, 100, -1, -22, -23, -60])
def test_truncated_file_is_malformed(cut: int) -> None:
    data = good_zip()[:cut]
    with pytest.raises(ZipMalformed):
        read_all(data, STATS)


def test_no_end_record() -> None:
    data = good_zip().replace(b"PK\x05\x06", b"PK\x05\x07")
    with pytest.raises(ZipMalformed, match="end of central directory"):
        read_central_directory(MemoryReader(data))


def test_trailing_bytes_after_the_end_record_are_refused() -> None:
    with pytest.raises(ZipMalformed):
        read_central_directory(MemoryReader(good_zip() + b"junk"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cd_offset_delta": 10_000_000},  # past the end
        {"cd_offset_delta": 1},  # runs into the end record
        {"cd_size_delta": 10_000},  # bigger than the file
        {"cd_offset_delta": -5},  # starts inside a member: bad entry signature
        {"entries_delta": 1},  # the directory holds fewer entries than declared
        {"entries_delta": -1},  # more
    ],
)
def test_central_directory_pointing_outside_is_malformed(kwargs: dict[str, Any]) -> None:
    members = [deflated("application/log.txt", b"log\n" * 10), deflated(STATS, b"timestamp\n")]
    for zip64_end in (False, True):
        data = craft(members, zip64_end=zip64_end, **kwargs)
        with pytest.raises(ZipMalformed):
            directory = read_central_directory(MemoryReader(data))
            list(directory.entries())


def test_central_directory_overlapping_the_end_record_is_refused_before_reading() -> None:
    counting = CountingReader(MemoryReader(craft([stored(STATS, b"timestamp\n")], cd_size_delta=5)))
    with pytest.raises(ZipMalformed, match="central directory outside the file"):
        read_central_directory(counting)
    assert counting.requests == 1


def test_member_offset_outside_is_malformed() -> None:
    for delta in (10_000_000, 3):
        data = craft([deflated(STATS, b"timestamp\n", offset_delta=delta)])
        with pytest.raises(ZipMalformed):
            read_all(data, STATS)


def test_local_header_wrong_signature() -> None:
    data = craft([stored(STATS, b"timestamp\n", local_signature=0x04034B51)])
    with pytest.raises(ZipMalformed, match="local header signature"):
        read_all(data, STATS)


def test_local_header_name_or_method_disagreeing() -> None:
    with pytest.raises(ZipMalformed, match="name"):
        read_all(craft([stored(STATS, b"timestamp\n", local_name=b"stats/perf_stats_v2.csv")]), STATS)
    with pytest.raises(ZipMalformed, match="method"):
        read_all(craft([stored(STATS, b"timestamp\n", local_method=8)]), STATS)


@pytest.mark.parametrize(
    ("member", "match"),
    [
        (deflated(STATS, b"x" * 5000, usize=10), "more than its declared size"),
        (deflated(STATS, b"x" * 5000, usize=6000), "differs from the declared size"),
        (deflated(STATS, b"x" * 5000, csize=5), "ends before"),
        (stored(STATS, b"x" * 100, usize=200), "sizes differ"),
        (stored(STATS, b"x" * 100, crc=1), "CRC"),
        (deflated(STATS, b"x" * 100, crc=1), "CRC"),
        (CraftMember(name=STATS.encode(), data=b"\xff\xff\xff\xff", method=8, plain=b"x"), "deflate"),
    ],
)
def test_sizes_and_crc_that_lie(member: CraftMember, match: str) -> None:
    with pytest.raises(ZipMalformed, match=match):
        read_all(craft([member]), STATS)


def test_deflate_shorter_than_its_compressed_size_is_accepted() -> None:
    # Trailing bytes after the end of the deflate stream, inside the declared compressed size: zipfile reads it.
    member = deflated(STATS, b"abc" * 100)
    member.data += b"\x00" * 16
    data = craft([member])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read(STATS) == b"abc" * 100
    assert read_all(data, STATS) == b"abc" * 100


def test_bomb_is_capped_and_truncated() -> None:
    size = 64 << 20
    bomb = CraftMember(
        name=STATS.encode(), data=zips.deflated_zeros(size), method=8, crc=zips.zeros_crc(size), usize=size
    )
    data = craft([bomb])
    limits = ZipLimits(max_inflated_bytes=1 << 20, chunk_size=4096)
    counting = CountingReader(MemoryReader(data))
    directory = read_central_directory(counting, limits)
    entry = directory.find(STATS)
    assert entry is not None
    stream = open_member(directory, entry, limits)
    total = sum(len(chunk) for chunk in stream)
    assert total == limits.max_inflated_bytes
    assert stream.truncated and not stream.complete
    assert stream.compressed_bytes_read < len(bomb.data)  # stopped early: the rest is never read
    assert counting.bytes_read < 100_000  # the tail, the directory, and about 1 MiB / 1000 of deflate


def test_declared_huge_zip64_size_is_capped() -> None:
    # Declared 1 TiB (a ZIP64 size), 8 MiB of zeros really: the cap stops it before the lie can be seen.
    size = 8 << 20
    bomb = CraftMember(name=STATS.encode(), data=zips.deflated_zeros(size), method=8, usize=1 << 40, zip64=True)
    stream_data = craft([bomb], zip64_end=True)
    directory = read_central_directory(MemoryReader(stream_data), SMALL)
    entry = directory.find(STATS)
    assert entry is not None and entry.uncompressed_size == 1 << 40
    stream = open_member(directory, entry, SMALL)
    assert sum(len(chunk) for chunk in stream) == SMALL.max_inflated_bytes
    assert stream.truncated


def test_stored_member_larger_than_the_cap_is_truncated() -> None:
    content = b"y" * (3 << 20)
    data = craft([stored(STATS, content)])
    directory = read_central_directory(MemoryReader(data), SMALL)
    entry = directory.find(STATS)
    assert entry is not None
    stream = open_member(directory, entry, SMALL)
    assert b"".join(stream) == content[: SMALL.max_inflated_bytes]
    assert stream.truncated


def test_the_cap_is_exact_at_every_boundary() -> None:
    content = b"0123456789abcdefghij"
    for cap in range(1, 22):
        for chunk in (1, 3, 10, cap - 1, cap, cap + 1, 64):
            limits = ZipLimits(max_inflated_bytes=cap, chunk_size=max(1, chunk))
            for member in (stored(STATS, content), deflated(STATS, content)):
                directory = read_central_directory(MemoryReader(craft([member])), limits)
                entry = directory.find(STATS)
                assert entry is not None
                stream = open_member(directory, entry, limits)
                assert b"".join(stream) == content[:cap], (cap, chunk, member.method)
                assert stream.truncated == (cap < len(content))
                assert stream.complete == (cap >= len(content))


def test_compressed_bytes_capped_for_deflate_that_yields_nothing() -> None:
    # Empty stored deflate blocks (5 bytes each, no output) forever: the compressed cap stops the reading.
    empty_blocks = b"\x00\x00\x00\xff\xff" * 500_000
    member = CraftMember(name=STATS.encode(), data=empty_blocks, method=8, plain=b"", usize=10)
    directory = read_central_directory(MemoryReader(craft([member])), SMALL)
    entry = directory.find(STATS)
    assert entry is not None
    stream = open_member(directory, entry, SMALL)
    assert b"".join(stream) == b""
    assert stream.truncated
    assert stream.compressed_bytes_read <= SMALL.max_compressed_bytes


def test_encrypted_and_other_methods_are_unsupported() -> None:
    for flags, local_flags in ((0x0801, None), (0x0801, 0x0800), (0x0800, 0x0801), (0x0840, 0x0800)):
        with pytest.raises(ZipUnsupported, match="encrypted"):
            read_all(craft([stored(STATS, b"timestamp\n", flags=flags, local_flags=local_flags)]), STATS)
    with pytest.raises(ZipUnsupported, match="method 12"):
        read_all(zips.zipfile_zip([(STATS, b"timestamp\n" * 10)], method=zipfile.ZIP_BZIP2), STATS)
    with pytest.raises(ZipUnsupported, match="method 14"):
        read_all(zips.zipfile_zip([(STATS, b"timestamp\n" * 10)], method=zipfile.ZIP_LZMA), STATS)


def test_spanned_archive_is_unsupported() -> None:
    data = bytearray(good_zip())
    end = data.rfind(b"PK\x05\x06")
    data[end + 4 : end + 6] = struct.pack("<H", 1)  # this disk's number
    with pytest.raises(ZipUnsupported, match="spanned"):
        read_central_directory(MemoryReader(bytes(data)))


def test_caps_on_the_central_directory() -> None:
    data = craft([stored(f"f/{i}", b"") for i in range(50)])
    with pytest.raises(ZipLimitExceeded, match="entries"):
        read_central_directory(MemoryReader(data), ZipLimits(max_entries=49))
    with pytest.raises(ZipLimitExceeded, match="larger"):
        read_central_directory(MemoryReader(data), ZipLimits(max_central_directory_bytes=1000))
    assert read_central_directory(MemoryReader(data), ZipLimits(max_entries=50)).entry_count == 50


def test_declared_entries_that_cannot_fit_are_malformed_before_reading() -> None:
    data = craft([stored("a", b"")], entries_delta=1_000)
    counting = CountingReader(MemoryReader(data))
    with pytest.raises(ZipMalformed, match="too small"):
        read_central_directory(counting)
    assert counting.requests == 1


class ShortReader(MemoryReader):
    def read(self, start: int, length: int) -> bytes:
        return super().read(start, length)[:-1]


def test_a_short_read_is_malformed() -> None:
    with pytest.raises(ZipMalformed, match="short read"):
        read_central_directory(ShortReader(good_zip()))


def test_memory_reader_refuses_ranges_outside() -> None:
    reader = MemoryReader(b"abc")
    with pytest.raises(ValueError):
        reader.read(2, 2)
    with pytest.raises(ValueError):
        reader.read(-1, 1)
    assert reader.read(1, 2) == b"bc"


# --- what is read -------------------------------------------------------------------------------------


def test_only_the_tail_the_directory_and_the_stats_member_are_read() -> None:
    big_before = os.urandom(3 << 20)
    big_after = os.urandom(2 << 20)
    text = zips.csv_text(2000).encode()
    data = zips.zipfile_zip(
        [("application/big.pak", big_before), (STATS, text), ("temp/cache.bin", big_after)], method=zipfile.ZIP_STORED
    )
    counting = CountingReader(MemoryReader(data))
    directory = read_central_directory(counting)
    entry = directory.find(STATS)
    assert entry is not None
    assert b"".join(open_member(directory, entry)) == text
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        others = [info for info in archive.infolist() if info.filename != STATS]
        stats_info = archive.getinfo(STATS)
    tail = min(len(data), 22 + 65535)
    assert counting.ranges[0] == (len(data) - tail, tail)  # the one read that may cover another member's end
    for info in others:  # no other request touches another member's header or data
        start, end = info.header_offset, info.header_offset + 30 + len(info.filename) + info.compress_size
        assert all(a + n <= start or a >= end for a, n in counting.ranges[1:]), info.filename
    assert directory.offset >= len(data) - tail  # the directory came with the tail
    assert counting.bytes_read == tail + 30 + len(STATS) + stats_info.compress_size
    assert counting.requests == 3  # the tail, the stats member's header, its data (one chunk)
    assert counting.bytes_read < len(data) // 20


def test_a_small_zip_is_read_in_one_request() -> None:
    counting = CountingReader(MemoryReader(good_zip()))
    directory = read_central_directory(counting)
    entry = directory.find(STATS)
    assert entry is not None
    assert b"".join(open_member(directory, entry)) == zips.csv_text(40).encode()
    assert counting.requests == 1
    assert counting.bytes_read == len(good_zip())


def test_large_central_directory_outside_the_tail_is_read_once() -> None:
    data = craft(
        [stored(f"application/{i:06d}-{'x' * 40}", b"") for i in range(2000)] + [stored(STATS, b"timestamp\n")]
    )
    counting = CountingReader(MemoryReader(data))
    directory = read_central_directory(counting)
    assert directory.size > 65557  # larger than the tail
    assert counting.requests == 2
    assert counting.bytes_read <= len(data)


# --- properties ---------------------------------------------------------------------------------------


def exercise(data: bytes, limits: ZipLimits = SMALL) -> CountingReader:
    """Everything the archiver does with a ZIP; only ZipError may escape."""
    counting = CountingReader(MemoryReader(data))
    try:
        directory = read_central_directory(counting, limits)
        build_manifest(directory)
        entry = directory.find(STATS)
        if entry is not None:
            for _chunk in open_member(directory, entry, limits):
                pass
    except ZipError:
        pass
    return counting


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_raise_only_typed_errors(data: bytes) -> None:
    counting = exercise(data)
    assert counting.bytes_read <= len(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([False, True]),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=6),
    st.integers(min_value=0),
)
def test_mutated_zips_raise_only_typed_errors(zip64: bool, flips: list[tuple[int, int]], cut: int) -> None:
    members = [deflated("application/log.txt", b"log\n" * 30, zip64=zip64), deflated(STATS, zips.csv_text(10).encode())]
    data = bytearray(craft(members, zip64_end=zip64, comment=b"c"))
    for position, value in flips:
        data[position % len(data)] = value
    data = data[: len(data) - cut % 40] if cut % 3 == 0 else data
    counting = exercise(bytes(data))
    assert counting.bytes_read <= len(data)


class Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors (flag bit 3) after each member's data."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def test_streamed_zip_with_data_descriptors() -> None:
    sink = Unseekable()
    text = zips.csv_text(25).encode()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("application/a.txt", b"a" * 500)
        with archive.open(STATS, "w") as member:
            member.write(text)
    data = bytes(sink.data)
    entry = read_central_directory(MemoryReader(data)).find(STATS)
    assert entry is not None and entry.flags & 0x08  # sizes only in the directory and the descriptor
    assert read_all(data, STATS) == text


def test_an_empty_zip() -> None:
    data = zips.zipfile_zip([])
    assert len(data) == 22
    directory = read_central_directory(MemoryReader(data))
    manifest = build_manifest(directory)
    assert (manifest.member_count, manifest.top_level_folders, manifest.perf_stats_present) == (0, (), False)
    assert directory.find(STATS) is None

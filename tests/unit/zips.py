"""ZIPs for the ranged reader's tests: normal ones written by zipfile, and hand-crafted ones that lie.

`craft` lays a ZIP out byte by byte from CraftMember descriptions, so a test can make any one field wrong
(signature, sizes, CRC, method, flags, offsets, names with NULs) while the rest stays consistent; the
crafted ZIPs without lies open in zipfile too (tested), so the crafting itself is checked by other code.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

CSV_HEADER = (
    "timestamp,app_cpu_normalized,app_mem_mb,app_mem_normalized,shared_sys_cpu_pct,shared_sys_mem_mb,"
    "shared_sys_mem_pct,shared_sys_gpu_pct,shared_sys_vram_mb,shared_sys_vram_pct"
)
STATS = "stats/perf_stats_v1.csv"


def csv_text(rows: int, *, start_second: int = 0, newline: str = "\n") -> str:
    """A valid stats CSV of `rows` rows, one a second from 2026-01-01T00:00:00Z."""
    lines = [CSV_HEADER]
    for index in range(start_second, start_second + rows):
        minute, second = divmod(index, 60)
        hour, minute = divmod(minute, 60)
        lines.append(
            f"2026-01-01T{hour:02d}:{minute:02d}:{second:02d}Z,0.5,{1000 + index}.5,0.25,40.0,3000.0,18.3,"
            f"{50 + index % 50}.0,2000.0,24.4"
        )
    return newline.join(lines) + newline


def zipfile_zip(members: Iterable[tuple[str, bytes]], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP written by the standard library, one member per (name, data)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def deflated_zeros(size: int, piece: int = 1 << 20, prefix: bytes = b"") -> bytes:
    """Raw deflate of `prefix` then `size` zero bytes, built piece by piece (1 GB of zeros deflates to ~1 MB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(piece)
    out = [packer.compress(prefix)]
    for start in range(0, size, piece):
        out.append(packer.compress(zeros[: min(piece, size - start)]))
    out.append(packer.flush())
    return b"".join(out)


def zeros_crc(size: int, piece: int = 1 << 20) -> int:
    crc = 0
    zeros = bytes(piece)
    for start in range(0, size, piece):
        crc = zlib.crc32(zeros[: min(piece, size - start)], crc)
    return crc


@dataclass
class CraftMember:
    """One member as it will be written; every field can be set to lie. `data` is already compressed."""

    name: bytes
    data: bytes = b""
    method: int = 0
    crc: int | None = None  # None: the CRC of `plain` (or of `data` when stored)
    plain: bytes | None = None  # the inflated bytes, for the default CRC and size
    usize: int | None = None
    csize: int | None = None
    flags: int = 0x0800  # UTF-8 names
    local_flags: int | None = None  # None: the same as `flags`
    local_signature: int = 0x04034B50
    local_name: bytes | None = None
    local_method: int | None = None
    zip64: bool = False  # sizes and offset as 0xFFFFFFFF plus a ZIP64 extra field
    offset_delta: int = 0  # added to the central directory's offset of this member
    extra: bytes = b""
    _offset: int = field(default=0, init=False)

    def sizes(self) -> tuple[int, int, int]:
        plain = self.plain if self.plain is not None else self.data
        crc = self.crc if self.crc is not None else zlib.crc32(plain)
        usize = self.usize if self.usize is not None else len(plain)
        csize = self.csize if self.csize is not None else len(self.data)
        return crc, csize, usize


def stored(name: str, data: bytes, **kwargs: object) -> CraftMember:
    return CraftMember(name=name.encode(), data=data, method=0, **kwargs)  # type: ignore[arg-type]


def deflated(name: str, data: bytes, **kwargs: object) -> CraftMember:
    return CraftMember(name=name.encode(), data=deflate(data), method=8, plain=data, **kwargs)  # type: ignore[arg-type]


def craft(
    members: Iterable[CraftMember],
    *,
    comment: bytes = b"",
    zip64_end: bool = False,
    entries_delta: int = 0,
    cd_offset_delta: int = 0,
    cd_size_delta: int = 0,
    trailing: bytes = b"",
) -> bytes:
    """Lay out local headers and data, the central directory, (the ZIP64 end record and locator,) the end record."""
    out = bytearray()
    members = list(members)
    for member in members:
        crc, csize, usize = member.sizes()
        member._offset = len(out)
        local_name = member.local_name if member.local_name is not None else member.name
        local_method = member.local_method if member.local_method is not None else member.method
        local_extra = b""
        lcsize, lusize = csize, usize
        if member.zip64:
            local_extra = struct.pack("<HHQQ", 1, 16, usize, csize)
            lcsize = lusize = 0xFFFFFFFF
        out += struct.pack(
            "<IHHHHHIIIHH",
            member.local_signature,
            45 if member.zip64 else 20,
            member.flags if member.local_flags is None else member.local_flags,
            local_method,
            0,
            0x21,
            crc,
            lcsize,
            lusize,
            len(local_name),
            len(local_extra),
        )
        out += local_name + local_extra + member.data
    cd_offset = len(out)
    for member in members:
        crc, csize, usize = member.sizes()
        offset = member._offset + member.offset_delta
        extra = member.extra
        if member.zip64:
            extra = struct.pack("<HHQQQ", 1, 24, usize, csize, offset) + extra
            csize = usize = offset = 0xFFFFFFFF
        out += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            0x031E,
            45 if member.zip64 else 20,
            member.flags,
            member.method,
            0,
            0x21,
            crc,
            csize,
            usize,
            len(member.name),
            len(extra),
            0,
            0,
            0,
            0,
            offset,
        )
        out += member.name + extra
    cd_size = len(out) - cd_offset
    entries = len(members) + entries_delta
    if zip64_end:
        record_at = len(out)
        out += struct.pack(
            "<IQHHIIQQQQ",
            0x06064B50,
            44,
            45,
            45,
            0,
            0,
            entries,
            entries,
            cd_size + cd_size_delta,
            cd_offset + cd_offset_delta,
        )
        out += struct.pack("<IIQI", 0x07064B50, 0, record_at, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment))
    else:
        out += struct.pack(
            "<IHHHHIIH",
            0x06054B50,
            0,
            0,
            entries,
            entries,
            cd_size + cd_size_delta,
            cd_offset + cd_offset_delta,
            len(comment),
        )
    return bytes(out) + comment + trailing


def lazy_csv_lines(rows: int) -> Iterator[str]:
    """The header and `rows` generated rows, one at a time: 10 million without holding them."""
    yield CSV_HEADER
    for index in range(rows):
        yield f"2026-01-01T00:00:00Z,0.5,{index},0.25,40,3000,18,50,2000,24"

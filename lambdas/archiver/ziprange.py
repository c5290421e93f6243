"""Read one member of a ZIP through ranged reads: the tail, the central directory, that member, nothing else.

Exported ZIPs hold whole application folders and can be gigabytes, while the archiver needs one small CSV
from them; so the ZIP is never downloaded whole. `read_central_directory` reads the last
min(size, 22 + 65,535) bytes once (the end-of-central-directory record and its comment), follows the ZIP64
locator when there is one, then reads the central directory in one bounded read; `open_member` reads the
member's local header and `MemberStream` reads its data in chunks, inflating stored (0) or deflate (8) data
up to a cap. Every read goes through the tail already in memory where it can, so no byte is read twice and
the bytes read never exceed the ZIP's size.

Everything that can be wrong with a ZIP raises one of three typed errors, never IndexError, struct.error,
zlib.error or UnicodeDecodeError: ZipMalformed (the bytes are not a consistent ZIP), ZipUnsupported (a
consistent ZIP this reader does not read: other methods, encryption, spanned archives) and ZipLimitExceeded
(the central directory is larger than the caps). Members' names are data, never paths: nothing here joins,
normalises or opens them.

Standard library only, no AWS: the S3 adapter implements RangeReader with GetObject Range=bytes=a-b.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

MIB: Final = 1024 * 1024

_EOCD_SIG: Final = 0x06054B50
_EOCD: Final = struct.Struct("<IHHHHIIH")  # 22 bytes
_ZIP64_LOCATOR_SIG: Final = 0x07064B50
_ZIP64_LOCATOR: Final = struct.Struct("<IIQI")  # 20 bytes
_ZIP64_EOCD_SIG: Final = 0x06064B50
_ZIP64_EOCD: Final = struct.Struct("<IQHHIIQQQQ")  # 56 bytes
_CENTRAL_SIG: Final = 0x02014B50
_CENTRAL: Final = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
_LOCAL_SIG: Final = 0x04034B50
_LOCAL: Final = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
_ZIP64_EXTRA_ID: Final = 0x0001
_MAX_COMMENT: Final = 0xFFFF
_U16_MAX: Final = 0xFFFF
_U32_MAX: Final = 0xFFFFFFFF

FLAG_ENCRYPTED: Final = 0x0001
FLAG_STRONG_ENCRYPTION: Final = 0x0040
FLAG_UTF8: Final = 0x0800
STORED: Final = 0
DEFLATED: Final = 8


class ZipError(Exception):
    """A ZIP this module cannot read; `reason` is short, fixed text fit for a record (no member names)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ZipMalformed(ZipError):
    """The bytes are not a consistent ZIP (truncated, offsets outside the file, bad CRC, sizes that lie)."""


class ZipUnsupported(ZipError):
    """A consistent ZIP, or member, this reader does not read (compression method, encryption, spanning)."""


class ZipLimitExceeded(ZipError):
    """The central directory is larger, or has more entries, than the caps allow: refused, not read."""


class RangeReader(Protocol):
    """A ZIP's bytes by range: S3 GetObject with Range=bytes=start-(start+length-1) in production."""

    @property
    def size(self) -> int: ...

    @property
    def etag(self) -> str | None: ...

    def read(self, start: int, length: int) -> bytes:
        """Exactly `length` bytes from `start` (callers stay inside 0..size); fewer means the object changed."""
        ...


class MemoryReader:
    """An in-memory RangeReader (tests, the emulator); refuses reads outside the data, as S3 would (416)."""

    def __init__(self, data: bytes, etag: str | None = None) -> None:
        self._data = data
        self._etag = etag

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def etag(self) -> str | None:
        return self._etag

    def read(self, start: int, length: int) -> bytes:
        if start < 0 or length <= 0 or start + length > len(self._data):
            raise ValueError(f"range {start}+{length} outside 0..{len(self._data)}")
        return self._data[start : start + length]


class CountingReader:
    """Wraps a RangeReader and counts what was asked of it: the figure the issue requires us to report."""

    def __init__(self, inner: RangeReader) -> None:
        self._inner = inner
        self.bytes_read = 0
        self.requests = 0
        self.ranges: list[tuple[int, int]] = []  # (start, length) of every request, for tests and figures

    @property
    def size(self) -> int:
        return self._inner.size

    @property
    def etag(self) -> str | None:
        return self._inner.etag

    def read(self, start: int, length: int) -> bytes:
        data = self._inner.read(start, length)
        self.requests += 1
        self.bytes_read += len(data)
        self.ranges.append((start, length))
        return data


@dataclass(frozen=True)
class ZipLimits:
    """The caps that keep memory and reads bounded whatever the ZIP claims."""

    max_central_directory_bytes: int = 64 * MIB
    max_entries: int = 1_000_000
    max_inflated_bytes: int = 256 * MIB  # of the one member read; beyond it the stream stops, truncated
    chunk_size: int = MIB  # bytes per ranged read of member data, and per inflated piece

    @property
    def max_compressed_bytes(self) -> int:
        """Compressed bytes read for one member: deflate never expands data by more than this slack."""
        return self.max_inflated_bytes + self.max_inflated_bytes // 100 + 64 * 1024


DEFAULT_LIMITS: Final = ZipLimits()


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One central-directory entry. `name` is the decoded text and only data; `raw_name` its bytes."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    crc32: int
    compressed_size: int
    uncompressed_size: int
    local_header_offset: int

    @property
    def is_directory(self) -> bool:
        return self.name.endswith("/")


class _Source:
    """The reader plus the ZIP's tail already in memory: a range is served from the tail where it can."""

    def __init__(self, reader: RangeReader, tail: bytes) -> None:
        self.reader = reader
        self.size = reader.size
        self.tail = tail
        self.tail_start = self.size - len(tail)

    def read(self, start: int, length: int) -> bytes:
        if start < 0 or length < 0 or start + length > self.size:
            raise ZipMalformed("range outside the file")
        if length == 0:
            return b""
        end = start + length
        head = b""
        if start < self.tail_start:
            wanted = min(end, self.tail_start) - start
            head = self.reader.read(start, wanted)
            if len(head) != wanted:
                raise ZipMalformed("short read: the object changed or is shorter than its size")
        if end <= self.tail_start:
            return head
        return head + self.tail[max(start, self.tail_start) - self.tail_start : end - self.tail_start]


@dataclass(frozen=True)
class CentralDirectory:
    """Where the central directory is and its bytes; `entries()` parses them one at a time (bounded memory)."""

    source: _Source
    offset: int
    size: int
    entry_count: int
    zip64: bool
    data: bytes

    @property
    def zip_size(self) -> int:
        return self.source.size

    @property
    def etag(self) -> str | None:
        return self.source.reader.etag

    def entries(self) -> Iterator[ZipEntry]:
        """Each entry in order; ZipMalformed as soon as one is inconsistent (so iterate to the end to validate)."""
        position = 0
        count = 0
        data = self.data
        while position < len(data):
            if count >= self.entry_count:
                raise ZipMalformed("central directory has more entries than the end record says")
            entry, position = _parse_entry(data, position, self.offset)
            count += 1
            yield entry
        if count != self.entry_count:
            raise ZipMalformed("central directory has fewer entries than the end record says")

    def find(self, name: str) -> ZipEntry | None:
        """The last entry named exactly `name` (the one unzip would leave on disk), or None."""
        found: ZipEntry | None = None
        for entry in self.entries():
            if entry.name == name:
                found = entry
        return found


def _decode_name(raw: bytes, flags: int) -> str:
    # Bit 11 says UTF-8; otherwise the spec's default, IBM code page 437 (every byte decodes).
    return raw.decode("utf-8", errors="replace") if flags & FLAG_UTF8 else raw.decode("cp437")


def _zip64_extra(extra: bytes) -> bytes:
    """The body of the ZIP64 extended-information extra field (tag 0x0001)."""
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        body = extra[position + 4 : position + 4 + length]
        if len(body) != length:
            raise ZipMalformed("extra field runs past its entry")
        if tag == _ZIP64_EXTRA_ID:
            return body
        position += 4 + length
    raise ZipMalformed("ZIP64 sizes or offset missing from the extra field")


def _parse_entry(data: bytes, position: int, cd_offset: int) -> tuple[ZipEntry, int]:
    if position + _CENTRAL.size > len(data):
        raise ZipMalformed("central directory entry truncated")
    (sig, _made, _needed, flags, method, _time, _date, crc, csize, usize, name_len, extra_len, comment_len, disk, _ia,
     _ea, offset) = _CENTRAL.unpack_from(data, position)  # fmt: skip
    if sig != _CENTRAL_SIG:
        raise ZipMalformed("bad central directory entry signature")
    name_start = position + _CENTRAL.size
    extra_start = name_start + name_len
    end = extra_start + extra_len + comment_len
    if end > len(data):
        raise ZipMalformed("central directory entry runs past the directory")
    raw_name = data[name_start:extra_start]
    if _U32_MAX in (usize, csize, offset) or disk == _U16_MAX:
        # The spec's order: only the fields that are 0xFFFFFFFF (0xFFFF for the disk) are in the extra field.
        body = _zip64_extra(data[extra_start : extra_start + extra_len])
        values: list[int] = []
        at = 0
        for value, limit, width in (
            (usize, _U32_MAX, 8),
            (csize, _U32_MAX, 8),
            (offset, _U32_MAX, 8),
            (disk, _U16_MAX, 4),
        ):
            if value != limit:
                values.append(value)
                continue
            if at + width > len(body):
                raise ZipMalformed("ZIP64 extra field too short")
            values.append(int.from_bytes(body[at : at + width], "little"))
            at += width
        usize, csize, offset, disk = values
    if disk != 0:
        raise ZipUnsupported("member on another disk of a spanned archive")
    # The member's header and data come before the central directory in a single-disk ZIP.
    if offset + _LOCAL.size + csize > cd_offset:
        raise ZipMalformed("member data outside the file or overlapping the central directory")
    entry = ZipEntry(
        name=_decode_name(raw_name, flags),
        raw_name=raw_name,
        flags=flags,
        method=method,
        crc32=crc,
        compressed_size=csize,
        uncompressed_size=usize,
        local_header_offset=offset,
    )
    return entry, end


def _find_end_record(tail: bytes) -> int:
    """Position in `tail` of the end record whose comment ends exactly at the end of the file, searched backwards."""
    position = len(tail) - _EOCD.size
    while position >= 0:
        position = tail.rfind(b"PK\x05\x06", 0, position + 4)
        if position < 0:
            break
        comment_len = struct.unpack_from("<H", tail, position + 20)[0]
        if position + _EOCD.size + comment_len == len(tail):
            return position
        position -= 1
    raise ZipMalformed("end of central directory record not found")


def read_central_directory(reader: RangeReader, limits: ZipLimits = DEFAULT_LIMITS) -> CentralDirectory:
    """Locate and read the central directory: one tail read, one ZIP64 record read at most, one directory read."""
    size = reader.size
    if size < _EOCD.size:
        raise ZipMalformed("too small to be a ZIP")
    tail_length = min(size, _EOCD.size + _MAX_COMMENT)
    tail = reader.read(size - tail_length, tail_length)
    if len(tail) != tail_length:
        raise ZipMalformed("short read: the object changed or is shorter than its size")
    source = _Source(reader, tail)
    eocd_at = _find_end_record(tail)
    eocd_pos = source.tail_start + eocd_at
    _sig, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, _comment = _EOCD.unpack_from(tail, eocd_at)
    directory_end = eocd_pos  # the central directory ends at or before the record that follows it
    zip64 = False
    locator = (
        source.read(eocd_pos - _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size) if eocd_pos >= _ZIP64_LOCATOR.size else b""
    )
    if locator and struct.unpack_from("<I", locator)[0] == _ZIP64_LOCATOR_SIG:
        _lsig, z64_disk, z64_offset, total_disks = _ZIP64_LOCATOR.unpack(locator)
        if z64_disk != 0 or total_disks > 1:
            raise ZipUnsupported("spanned archive")
        locator_pos = eocd_pos - _ZIP64_LOCATOR.size
        if z64_offset + _ZIP64_EOCD.size > locator_pos:
            raise ZipMalformed("ZIP64 end record outside the file")
        record = source.read(z64_offset, _ZIP64_EOCD.size)
        (z64_sig, _rsize, _made, _needed, disk, cd_disk, disk_entries, entries, cd_size, cd_offset) = (
            _ZIP64_EOCD.unpack(record)
        )
        if z64_sig != _ZIP64_EOCD_SIG:
            raise ZipMalformed("bad ZIP64 end record signature")
        directory_end = z64_offset
        zip64 = True
    elif _U32_MAX in (cd_size, cd_offset):
        raise ZipMalformed("ZIP64 sizes without a ZIP64 end record")
    if disk != 0 or cd_disk != 0 or disk_entries != entries:
        raise ZipUnsupported("spanned archive")
    if cd_offset + cd_size > directory_end:
        raise ZipMalformed("central directory outside the file")
    if entries > limits.max_entries:
        raise ZipLimitExceeded("central directory has more entries than the cap")
    if cd_size > limits.max_central_directory_bytes:
        raise ZipLimitExceeded("central directory larger than the cap")
    if entries * _CENTRAL.size > cd_size:
        raise ZipMalformed("central directory too small for its entries")
    data = source.read(cd_offset, cd_size)
    return CentralDirectory(source=source, offset=cd_offset, size=cd_size, entry_count=entries, zip64=zip64, data=data)


def open_member(directory: CentralDirectory, entry: ZipEntry, limits: ZipLimits = DEFAULT_LIMITS) -> MemberStream:
    """Check the member can be read (method, encryption, local header) and return its stream, not yet read."""
    if entry.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION):
        raise ZipUnsupported("encrypted member")
    if entry.method not in (STORED, DEFLATED):
        raise ZipUnsupported(f"compression method {entry.method}")
    if entry.method == STORED and entry.compressed_size != entry.uncompressed_size:
        raise ZipMalformed("stored member whose sizes differ")
    source = directory.source
    header_length = _LOCAL.size + len(entry.raw_name)
    if entry.local_header_offset + header_length > directory.offset:
        raise ZipMalformed("local header outside the file")
    header = source.read(entry.local_header_offset, header_length)
    sig, _version, flags, method, _time, _date, _crc, _csize, _usize, name_len, extra_len = _LOCAL.unpack_from(header)
    if sig != _LOCAL_SIG:
        raise ZipMalformed("bad local header signature")
    if flags & FLAG_ENCRYPTED:
        raise ZipUnsupported("encrypted member")
    if method != entry.method:
        raise ZipMalformed("local header and central directory disagree on the method")
    if header[_LOCAL.size :] != entry.raw_name or name_len != len(entry.raw_name):
        raise ZipMalformed("local header and central directory disagree on the name")
    data_start = entry.local_header_offset + _LOCAL.size + name_len + extra_len
    if data_start + entry.compressed_size > directory.offset:
        raise ZipMalformed("member data outside the file or overlapping the central directory")
    return MemberStream(source, entry, data_start, limits)


class MemberStream:
    """A member's inflated bytes as chunks; after iterating, `truncated` says the cap stopped it.

    Memory is one compressed chunk plus one inflated piece, whatever the member's size. Inflating past the
    declared size is ZipMalformed at once; past the cap (a declared size above it) stops the stream,
    `truncated`. A complete member is checked against its declared size and CRC-32 (ZipMalformed at the end
    of iteration); a truncated one cannot be. Iterate once.
    """

    def __init__(self, source: _Source, entry: ZipEntry, data_start: int, limits: ZipLimits) -> None:
        self._source = source
        self.entry = entry
        self._data_start = data_start
        self._limits = limits
        self.truncated = False
        self.complete = False
        self.inflated_bytes = 0
        self.compressed_bytes_read = 0
        self._ended = False  # the data's end was reached (deflate's end of stream, all stored bytes)
        self._capped_input = min(entry.compressed_size, limits.max_compressed_bytes) < entry.compressed_size

    def _compressed_chunks(self) -> Iterator[bytes]:
        to_read = min(self.entry.compressed_size, self._limits.max_compressed_bytes)
        position = self._data_start
        end = self._data_start + to_read
        while position < end:
            length = min(self._limits.chunk_size, end - position)
            chunk = self._source.read(position, length)
            position += length
            self.compressed_bytes_read += length
            yield chunk

    def _inflated(self) -> Iterator[bytes]:
        if self.entry.method == STORED:
            yield from self._compressed_chunks()
            self._ended = not self._capped_input
            return
        inflater = zlib.decompressobj(-15)
        piece = max(1, self._limits.chunk_size)
        for chunk in self._compressed_chunks():
            data = chunk
            while data and not inflater.eof:
                try:
                    out = inflater.decompress(data, piece)
                except zlib.error as error:
                    raise ZipMalformed("bad deflate data") from error
                data = inflater.unconsumed_tail
                if out:
                    yield out
            if inflater.eof:
                self._ended = True
                return
        if self._capped_input:
            return  # stopped by the compressed-bytes cap: the caller sees truncated
        raise ZipMalformed("deflate data ends before its end of stream")

    def __iter__(self) -> Iterator[bytes]:
        cap = self._limits.max_inflated_bytes
        crc = 0
        for out in self._inflated():
            if self.inflated_bytes + len(out) > self.entry.uncompressed_size:
                raise ZipMalformed("member inflates to more than its declared size")
            room = cap - self.inflated_bytes
            if len(out) > room:
                if room > 0:
                    self.inflated_bytes += room
                    yield out[:room]
                self.truncated = True
                return
            self.inflated_bytes += len(out)
            crc = zlib.crc32(out, crc)
            yield out
        if self._capped_input and not self._ended:
            self.truncated = True
            return
        if self.inflated_bytes != self.entry.uncompressed_size:
            raise ZipMalformed("inflated size differs from the declared size")
        if crc != self.entry.crc32:
            raise ZipMalformed("CRC-32 mismatch")
        self.complete = True

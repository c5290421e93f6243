"""The manifest of an exported ZIP, taken from its central directory alone (no member is read for it).

What the record says about the ZIP: how many members, how big compressed and inflated (as declared), which
top-level folders, whether the performance stats are there, and the ZIP's size and ETag (which ZIP this was).
MANIFEST_COLUMNS is the one definition of these columns: the record schema, the Glue table and the docs import
it rather than restating it.

Names are data: a folder is the text before a name's first '/', exactly as written ('..', '' for a name
starting with '/', control characters and all); nothing is normalised or used as a path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

from archiver.ziprange import CentralDirectory, ZipEntry

# The member the service writes (developer guide, "Real-time performance stats"). Matched exactly, case and
# all: ZIP names are case-sensitive bytes, the service writes this spelling, and a case-insensitive match
# could pick one of two members that differ only in case, or a file the application wrote with a similar name.
PERF_STATS_MEMBER: Final = "stats/perf_stats_v1.csv"
MAX_FOLDERS: Final = 100
MAX_FOLDER_CHARS: Final = 255


class Column(NamedTuple):
    """One column of an Athena table: its name, Athena type and meaning."""

    name: str
    athena_type: str
    description: str


MANIFEST_COLUMNS: Final[tuple[Column, ...]] = (
    Column("member_count", "bigint", "Entries in the ZIP's central directory, folders included."),
    Column("total_compressed_bytes", "bigint", "Sum of the members' compressed sizes, as the ZIP declares them."),
    Column("total_uncompressed_bytes", "bigint", "Sum of the members' inflated sizes, as the ZIP declares them."),
    Column(
        "top_level_folders",
        "array<string>",
        f"Sorted distinct text before the first '/' of member names (data, not paths; at most {MAX_FOLDERS},"
        f" each at most {MAX_FOLDER_CHARS} characters).",
    ),
    Column("folders_truncated", "boolean", "True when top_level_folders was cut to its caps."),
    Column("perf_stats_present", "boolean", f"True when the ZIP has a member named exactly {PERF_STATS_MEMBER}."),
    Column("zip_size", "bigint", "Size of the ZIP in bytes."),
    Column("zip_etag", "string", "ETag of the ZIP object that was read."),
)


@dataclass(frozen=True)
class Manifest:
    """What the central directory says about the ZIP (see MANIFEST_COLUMNS for each field)."""

    member_count: int
    total_compressed_bytes: int
    total_uncompressed_bytes: int
    top_level_folders: tuple[str, ...]
    folders_truncated: bool
    perf_stats_present: bool
    zip_size: int
    zip_etag: str | None

    def to_record(self) -> dict[str, object]:
        """JSON-able, keyed and ordered by MANIFEST_COLUMNS."""
        values: dict[str, object] = {
            "member_count": self.member_count,
            "total_compressed_bytes": self.total_compressed_bytes,
            "total_uncompressed_bytes": self.total_uncompressed_bytes,
            "top_level_folders": list(self.top_level_folders),
            "folders_truncated": self.folders_truncated,
            "perf_stats_present": self.perf_stats_present,
            "zip_size": self.zip_size,
            "zip_etag": self.zip_etag,
        }
        return {column.name: values[column.name] for column in MANIFEST_COLUMNS}


def summarize(
    entries: Iterable[ZipEntry],
    *,
    zip_size: int,
    zip_etag: str | None,
    max_folders: int = MAX_FOLDERS,
) -> Manifest:
    """One pass over the entries; memory bounded by the folder cap, not by the number of members."""
    count = compressed = uncompressed = 0
    folders: set[str] = set()
    truncated = False
    stats = False
    for entry in entries:
        count += 1
        compressed += entry.compressed_size
        uncompressed += entry.uncompressed_size
        stats = stats or entry.name == PERF_STATS_MEMBER
        folder, slash, _rest = entry.name.partition("/")
        if not slash:
            continue
        if len(folder) > MAX_FOLDER_CHARS:
            folder = folder[:MAX_FOLDER_CHARS]
            truncated = True
        folders.add(folder)
        if len(folders) > 4 * max_folders:  # keep the smallest: the same answer whatever the members' order
            folders = set(sorted(folders)[:max_folders])
            truncated = True
    kept = sorted(folders)
    if len(kept) > max_folders:
        kept = kept[:max_folders]
        truncated = True
    return Manifest(
        member_count=count,
        total_compressed_bytes=compressed,
        total_uncompressed_bytes=uncompressed,
        top_level_folders=tuple(kept),
        folders_truncated=truncated,
        perf_stats_present=stats,
        zip_size=zip_size,
        zip_etag=zip_etag,
    )


def build_manifest(directory: CentralDirectory, *, max_folders: int = MAX_FOLDERS) -> Manifest:
    """The manifest of a ZIP whose central directory was read; ZipMalformed if an entry is inconsistent."""
    return summarize(directory.entries(), zip_size=directory.zip_size, zip_etag=directory.etag, max_folders=max_folders)

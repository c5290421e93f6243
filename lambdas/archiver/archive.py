"""Archive one session from its GetStreamSession detail: its export ZIP read, its stats object, its record
to S3, then its ledger item.

The order (docs/EXPORTS.md): read the ZIP by ranges (archiver.exportfiles) -> put the stats object
(write-once, only when the stats status stores rows) -> put the record (write-once; it holds the manifest
and the stats summary) -> put the ledger item. A permanent failure to read the ZIP is an outcome recorded in
the record; a transient one raises before anything is written, so the record (never rewritten) is written
only once the ZIP's outcome is final.

The one place both paths archive through (the scheduled reconciler's workers and the event consumer), so a
session is archived the same way whichever path reaches it first: same record, same key, same item, same
redaction. Any number of writers converge on one stored record: S3 keeps the first write (`put_once`), every
writer makes the ledger item from the record S3 holds, and the ledger's conditional put keeps the first item.
It is also the last gate of `archiver.ownership`: a foreign session, or an answer about another session than
the one asked for, is never written, whoever asks.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from aws_lambda_powertools import Logger

from archiver import telemetry
from archiver.exportfiles import READ, UNREADABLE, ExportFiles, ExportRead
from archiver.exports import ExportObject
from archiver.ledger import Ledger
from archiver.ownership import Owner, log_foreign
from archiver.records import (
    UNDATED_CREATED_AT,
    Context,
    SessionArn,
    build_record,
    created_at,
    encode_record,
    export_values,
    ledger_item,
    object_key,
    stats_key,
)
from archiver.settings import Settings
from archiver.store import RecordStore

logger = Logger(service=telemetry.SERVICE, child=True)

STATS_CONTENT_TYPE: Final = "application/x-ndjson"  # gzip by the key's .gz (no Content-Encoding: Athena reads it)
SPOOL_BYTES: Final = 8 * 1024 * 1024  # a stats object larger than this is spooled to /tmp, not kept in memory
_STATS_FAILED: Final = frozenset({"bad_header", "unsupported", "malformed", "too_large"})


@dataclass
class ExportTally:
    """What reading the export ZIPs did (telemetry.EXPORT_FIELDS: the metric behind each field)."""

    exports_read: int = 0
    exports_unreadable: int = 0
    export_bytes_read: int = 0
    stats_stored: int = 0  # stats objects this writer stored (another writer's are not counted)
    stats_truncated: int = 0
    stats_absent: int = 0
    stats_failed: int = 0

    def add(self, other: ExportTally) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _tally(read: ExportRead, stored: bool) -> ExportTally:
    tally = ExportTally(export_bytes_read=read.bytes_read, stats_stored=int(stored))
    if read.status in UNREADABLE:
        tally.exports_unreadable = 1
    if read.result is not None:
        tally.exports_read = 1
        status = read.result.summary.status
        tally.stats_truncated = int(status == "truncated")
        tally.stats_absent = int(status == "absent")
        tally.stats_failed = int(status in _STATS_FAILED)
    return tally


class Archived(StrEnum):
    """What archiving a session did."""

    ARCHIVED = "archived"  # this writer made the session archived (its item is the one stored)
    ALREADY = "already_archived"  # another writer had archived it
    FOREIGN = "foreign"  # not this function's session (archiver.ownership): nothing written


class ForeignRecord(RuntimeError):
    """The key holds an object that is not this session's record: never overwritten, never used."""


class Archivist:
    """Writes a session's stats, record and item with the settings of this function, for its `owner` only
    (default: the source Regions, any account: see archiver.ownership; the entry points always pass the
    function's). `tally` adds up what reading the ZIPs did (thread-safe; `take` reads and resets it)."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        store: RecordStore,
        now: Callable[[], datetime],
        owner: Owner | None = None,
        *,
        exports: ExportFiles,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = store
        self.now = now
        self.owner = owner if owner is not None else Owner(frozenset(settings.source_regions))
        self.exports = exports
        self._tally = ExportTally()
        self._lock = threading.Lock()

    def take(self) -> ExportTally:
        """The tally so far, reset to zero."""
        with self._lock:
            tally, self._tally = self._tally, ExportTally()
        return tally

    def refuses(self, arn: SessionArn, detail: Mapping[str, Any]) -> bool:
        """Whether this answer must not be archived as `arn` (a foreign session); logged when it is so."""
        reason = self.owner.refuses(arn, detail)
        if reason is not None:
            log_foreign(arn.arn, reason, answered=detail.get("Arn"))
        return reason is not None

    def archive(
        self, arn: SessionArn, detail: Mapping[str, Any], listed: Mapping[str, Any], known: ExportObject | None = None
    ) -> Archived:
        """S3 first (stats, then record), DynamoDB second: the item exists only if the record does, and always
        equals it. `known`: the export object an event named (the consumer), else the OutputUri is looked up."""
        if self.refuses(arn, detail):
            return Archived.FOREIGN
        created = created_at(detail, listed)
        if created is None:  # never seen from AWS; keep the session rather than lose it
            logger.warning("Session has no CreatedAt; keyed by the undated day", extra={"session_arn": arn.arn})
            created = UNDATED_CREATED_AT
        export = self._export(arn, detail, created, known)
        record = build_record(
            detail,
            Context(
                arn,
                self.now(),
                keep_environment_values=self.settings.keep_environment_values,
                keep_launch_argument_values=self.settings.keep_launch_argument_values,
                export=export,
            ),
        )
        key = object_key(self.settings.prefix, arn, created)
        body = encode_record(record)
        stored = self.store.put_once(key, body)
        if stored != body:
            record = self._stored_record(arn, key, stored)
        if self.ledger.mark_archived(arn.arn, ledger_item(record, key)):
            logger.debug("Session archived", extra={"session_arn": arn.arn, "s3_key": key})
            return Archived.ARCHIVED
        return Archived.ALREADY

    def _export(
        self, arn: SessionArn, detail: Mapping[str, Any], created: datetime, known: ExportObject | None
    ) -> dict[str, object]:
        """Read the ZIP and store the stats object; the record's export columns. Transient errors raise."""
        metadata = detail.get("ExportFilesMetadata")
        output_uri = metadata.get("OutputUri") if isinstance(metadata, Mapping) else None
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as out:
            read = self.exports.read(arn, output_uri, known, out)
            key = stats_key(self.settings.stats_prefix, arn, created) if read.has_rows_object else None
            stored = False
            if key is not None:
                out.seek(0)
                stored = self.store.write_once(key, out, STATS_CONTENT_TYPE)
        with self._lock:
            self._tally.add(_tally(read, stored))
        result = read.result
        where = {"session_arn": arn.arn, "export_read_status": read.status, "export_bytes_read": read.bytes_read}
        if read.status != READ:
            logger.warning("Export ZIP not readable; recorded", extra=where)
        elif result is not None:
            logger.debug("Export ZIP read", extra=where | {"stats_status": result.summary.status})
        return export_values(
            read.status,
            read.bytes_read,
            result.manifest.to_record() if result is not None and result.manifest is not None else None,
            result.summary.to_record() if result is not None else None,
            key,
        )

    @staticmethod
    def _stored_record(arn: SessionArn, key: str, stored: bytes) -> dict[str, object]:
        """The record another writer stored first: the ledger item must be made from it, not from ours."""
        try:
            record = json.loads(stored)
        except ValueError:
            record = None
        if not isinstance(record, dict) or record.get("session_arn") != arn.arn:
            raise ForeignRecord(f"s3 key {key} holds an object that is not the record of {arn.arn}")
        logger.info("Record stored by another writer first; using it", extra={"session_arn": arn.arn, "s3_key": key})
        return record

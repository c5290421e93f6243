"""Archive one session from its GetStreamSession detail: the record to S3 first, then its ledger item.

The one place both paths archive through (the scheduled reconciler's workers and the event consumer), so a
session is archived the same way whichever path reaches it first: same record, same key, same item, same
redaction. Any number of writers converge on one stored record: S3 keeps the first write (`put_once`), every
writer makes the ledger item from the record S3 holds, and the ledger's conditional put keeps the first item.
It is also the last gate of `archiver.ownership`: a foreign session, or an answer about another session than
the one asked for, is never written, whoever asks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from archiver import telemetry
from archiver.ledger import Ledger
from archiver.ownership import Owner, log_foreign
from archiver.records import (
    UNDATED_CREATED_AT,
    Context,
    SessionArn,
    build_record,
    created_at,
    encode_record,
    ledger_item,
    object_key,
)
from archiver.settings import Settings
from archiver.store import RecordStore

logger = Logger(service=telemetry.SERVICE, child=True)


class Archived(StrEnum):
    """What archiving a session did."""

    ARCHIVED = "archived"  # this writer made the session archived (its item is the one stored)
    ALREADY = "already_archived"  # another writer had archived it
    FOREIGN = "foreign"  # not this function's session (archiver.ownership): nothing written


class ForeignRecord(RuntimeError):
    """The key holds an object that is not this session's record: never overwritten, never used."""


class Archivist:
    """Writes a session's record and item with the settings of this function, for its `owner` only (default:
    the source Regions, any account: see archiver.ownership; the entry points always pass the function's)."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        store: RecordStore,
        now: Callable[[], datetime],
        owner: Owner | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = store
        self.now = now
        self.owner = owner if owner is not None else Owner(frozenset(settings.source_regions))

    def refuses(self, arn: SessionArn, detail: Mapping[str, Any]) -> bool:
        """Whether this answer must not be archived as `arn` (a foreign session); logged when it is so."""
        reason = self.owner.refuses(arn, detail)
        if reason is not None:
            log_foreign(arn.arn, reason, answered=detail.get("Arn"))
        return reason is not None

    def archive(self, arn: SessionArn, detail: Mapping[str, Any], listed: Mapping[str, Any]) -> Archived:
        """S3 first, DynamoDB second: the item exists only if the object does, and always equals it."""
        if self.refuses(arn, detail):
            return Archived.FOREIGN
        created = created_at(detail, listed)
        if created is None:  # never seen from AWS; keep the session rather than lose it
            logger.warning("Session has no CreatedAt; keyed by the undated day", extra={"session_arn": arn.arn})
            created = UNDATED_CREATED_AT
        record = build_record(
            detail,
            Context(
                arn,
                self.now(),
                keep_environment_values=self.settings.keep_environment_values,
                keep_launch_argument_values=self.settings.keep_launch_argument_values,
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

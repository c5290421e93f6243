"""One export event -> one outcome: which session the ZIP names, whether the API confirms it, archive it.

Plain logic over the adapters (no Lambda, no SQS): `archiver.events` feeds it each message of a batch and
turns the outcome into an acknowledgment or a redelivery. Every message gets exactly one outcome; nothing
here raises for bad input, only for what a redelivery can fix (throttling, 5xx: the SDK's errors) or what
stops every message alike (FatalError).

The object's key names the stream group and session, not the Region or the account. The account is the
function's own (`archiver.ownership`: the Archivist's owner; sessions of other accounts are not ours to
archive). The S3 event's `account` is never used: it is the bucket owner's, and an export location may be a
bucket of another account (a central one), so it does not tell whose session the ZIP is; asking
GetStreamSession about another account's ARN would at best archive another account's session and at worst
be denied, which is fatal to the whole batch. The candidates are one ARN per source Region, tried in order,
the event's own Region first (the export bucket is usually in the session's Region), so a message costs one
BatchGetItem (one key per source Region) and 1 GetStreamSession when the session is in the event's Region,
up to one per source Region when it is not, and none when the session is archived already. A candidate is
always the function's own by construction, and checked by the one rule anyway; an answer that names another
session is `foreign`, never archived.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from archiver import telemetry
from archiver.archive import Archived, Archivist, ForeignRecord
from archiver.exports import ExportObject, locate, output_matches, session_of
from archiver.ledger import Ledger
from archiver.records import SessionArn, parse_session_arn
from archiver.rules import REGION, ExportLocation
from archiver.sessions import SessionSource

logger = Logger(service=telemetry.SERVICE, child=True)

_TEXT_LIMIT = 300  # characters of an untrusted key or body quoted in a log line


class Outcome(StrEnum):
    """What became of one message (the names behind telemetry.EVENT_OUTCOMES)."""

    ARCHIVED = "archived"
    ALREADY = "already_archived"
    PENDING = "pending"  # the API does not show the export SUCCEEDED yet: deliver again later
    LEFT_TO_RECONCILE = "left_to_reconcile"  # still PENDING after the bounded receives: the reconciler's
    UNMATCHED = "unmatched"  # outside EXPORT_LOCATIONS, a name that names no session, or not this session's export
    SKIPPED = "skipped"  # the session is in no source Region (404), or its export did not succeed
    MALFORMED = "malformed"  # not an S3 Object Created event
    FOREIGN = "foreign"  # GetStreamSession's answer names another session (archiver.ownership): never archived
    FAILED = "failed"  # throttling or 5xx after retries, or out of time: deliver again later

    @property
    def redeliver(self) -> bool:
        return self in (Outcome.PENDING, Outcome.FAILED)


@dataclass(frozen=True)
class ObjectCreated:
    """The parts of an EventBridge S3 `Object Created` event the consumer reads."""

    bucket: str
    key: str
    region: str | None  # the bucket's: only orders the candidate Regions (the event's `account` is not read)


def parse_event(body: object) -> ObjectCreated | None:
    """The event in an SQS message body, or None if it is not an S3 Object Created event."""
    try:
        event = json.loads(body) if isinstance(body, str | bytes) else None
    except (ValueError, RecursionError):  # RecursionError: valid JSON nested deeper than the parser goes
        return None
    if not isinstance(event, dict) or event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        return None
    detail = event.get("detail")
    bucket = detail.get("bucket") if isinstance(detail, dict) else None
    obj = detail.get("object") if isinstance(detail, dict) else None
    name = bucket.get("name") if isinstance(bucket, dict) else None
    key = obj.get("key") if isinstance(obj, dict) else None
    if not isinstance(name, str) or not name or not isinstance(key, str) or not key:
        return None
    region = event.get("region")
    return ObjectCreated(name, key, region if isinstance(region, str) and REGION.fullmatch(region) else None)


def quoted(text: str) -> str:
    """An untrusted string for a log line: repr (no control characters), bounded."""
    return repr(text[:_TEXT_LIMIT]) + ("…" if len(text) > _TEXT_LIMIT else "")


class Consumer:
    """Turns export events into archived sessions, through the same Archivist as the scheduled run, for the
    Archivist's owner (whose account it needs: the key does not name one)."""

    def __init__(
        self,
        locations: Sequence[ExportLocation],
        sources: Mapping[str, SessionSource],
        ledger: Ledger,
        archivist: Archivist,
        *,
        max_pending_receives: int = 5,
    ) -> None:
        if archivist.owner.account is None:
            raise ValueError("the consumer needs the function's account (archiver.ownership.Owner.of)")
        self.locations = tuple(locations)
        self.sources = dict(sources)
        self.ledger = ledger
        self.archivist = archivist
        self.owner = archivist.owner
        self.max_pending_receives = max_pending_receives

    def consume(self, body: object, receives: int) -> Outcome:
        """One message's outcome. SDK errors (transient) and FatalError propagate: the caller redelivers."""
        found = self._export_object(body)
        if isinstance(found, Outcome):
            return found
        obj, candidates = found
        if self.ledger.archived([arn.arn for arn in candidates]):
            return Outcome.ALREADY
        for arn in candidates:
            detail = self.sources[arn.region].get(arn)
            if detail is not None and self.archivist.refuses(arn, detail):
                return Outcome.FOREIGN  # first: an answer about another session says nothing of ours
            if detail is not None:
                return self._archive(arn, detail, obj, receives)
        logger.info(
            "Session of the export is in no source Region",
            extra={"key": quoted(obj.key), "regions": len(candidates)},
        )
        return Outcome.SKIPPED

    def _export_object(self, body: object) -> tuple[ExportObject, list[SessionArn]] | Outcome:
        """The export the message announces and its session's possible ARNs, or why there is none."""
        event = parse_event(body)
        if event is None:
            logger.warning("Not an S3 Object Created event", extra={"body": quoted(str(body))})
            return Outcome.MALFORMED
        where = {"bucket": quoted(event.bucket), "key": quoted(event.key)}
        if locate(self.locations, event.bucket, event.key) is None:
            logger.warning("Object outside EXPORT_LOCATIONS", extra=where)
            return Outcome.UNMATCHED
        obj = session_of(event.bucket, event.key)
        if obj is None:
            logger.info("Object name names no session (a custom file name?)", extra=where)
            return Outcome.UNMATCHED
        candidates = self._candidates(obj, event.region)
        if not candidates:
            logger.warning("Object names IDs that make no session ARN", extra=where)
            return Outcome.UNMATCHED
        return obj, candidates

    def _candidates(self, obj: ExportObject, event_region: str | None) -> list[SessionArn]:
        """The session's possible ARNs in the function's account and partition, one per source Region, the
        event's Region first."""
        regions = sorted(self.sources, key=lambda region: region != event_region)
        arns = (
            parse_session_arn(
                f"arn:{self.owner.partition or 'aws'}:gameliftstreams:{region}:{self.owner.account}:"
                f"streamsession/{obj.stream_group_id}/{obj.session_id}"
            )
            for region in regions
        )
        return [arn for arn in arns if arn is not None and self.owner.foreign(arn) is None]

    def _archive(self, arn: SessionArn, detail: Mapping[str, Any], obj: ExportObject, receives: int) -> Outcome:
        export = detail.get("ExportFilesMetadata")
        export = export if isinstance(export, dict) else {}
        status = export.get("Status")
        where: dict[str, object] = {"session_arn": arn.arn, "key": quoted(obj.key)}
        if status == "PENDING" or (status == "SUCCEEDED" and not export.get("OutputUri")):
            where["receives"] = receives
            if receives >= self.max_pending_receives:
                logger.warning("Export still not SUCCEEDED; left to the reconciler", extra=where)
                return Outcome.LEFT_TO_RECONCILE
            logger.info("Export not SUCCEEDED yet; delivered again later", extra=where)
            return Outcome.PENDING
        if status != "SUCCEEDED":
            logger.info("Export did not succeed", extra=where | {"export_status": quoted(str(status))})
            return Outcome.SKIPPED
        if not output_matches(export.get("OutputUri"), obj):
            logger.warning("Object is not this session's export (its OutputUri differs)", extra=where)
            return Outcome.UNMATCHED
        try:
            archived = self.archivist.archive(arn, detail, {}, known=obj)
        except ForeignRecord as conflict:
            logger.error("Session not archived: its key holds another object", extra={"error": str(conflict)})
            return Outcome.FAILED
        return _OUTCOME[archived]


_OUTCOME = {Archived.ARCHIVED: Outcome.ARCHIVED, Archived.ALREADY: Outcome.ALREADY, Archived.FOREIGN: Outcome.FOREIGN}

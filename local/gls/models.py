"""The emulator's state: sessions per Region, sorted listing indexes, the two read operations on them, and
a session's lifecycle (live, export requested, ended, export uploaded).

Plain Python, no HTTP. Listing is keyset-paginated over indexes sorted once per filter and kept up to date
on every change, so 100k sessions page fast; `shift_on_page` switches to offset pagination with a new
session inserted after every page (the list shifting under a paging client).

The lifecycle follows AWS's documentation: files can be exported only from a session in progress; the ZIP
is written when the session ends, and only then is the export SUCCEEDED (or FAILED when it could not be
written). `export_success_delay` holds SUCCEEDED back for a while after the ZIP landed (the object can
appear before the API says so); it is evaluated lazily on every read, with no timer or thread.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import gc
import heapq
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from local.export_zip import export_zip
from local.gls import tokens
from local.gls.exceptions import not_found, validation
from local.gls.factory import DEFAULT_BASE_TIME, DEFAULT_EXPORT_FOLDER, EXPORT_FAIL_REASONS, SessionFactory
from local.gls.uploads import Uploader, UploadFailed, export_file_name, export_object

_log = logging.getLogger(__name__)

STATUSES: Final = (
    "ACTIVATING",
    "ACTIVE",
    "CONNECTED",
    "PENDING_CLIENT_RECONNECTION",
    "RECONNECTING",
    "TERMINATING",
    "TERMINATED",
    "ERROR",
)
EXPORT_STATUSES: Final = ("SUCCEEDED", "FAILED", "PENDING")
# ExportStreamSessionFiles is accepted only in these (the API reference); a session in these has ended.
IN_PROGRESS: Final = ("ACTIVE", "CONNECTED", "PENDING_CLIENT_RECONNECTION", "RECONNECTING")
ENDED: Final = ("TERMINATED", "ERROR")
# ExportFilesMetadata.StatusReason of a failed export: the ZIP could not be written, or a failure injected.
UPLOAD_FAILED_REASON: Final = EXPORT_FAIL_REASONS[1]
INJECTED_FAILURE_REASON: Final = EXPORT_FAIL_REASONS[0]
# The list call returns StreamSessionSummary: botocore 1.44's model also has RoleArn there.
SUMMARY_FIELDS: Final = (
    "Arn",
    "UserId",
    "Status",
    "StatusReason",
    "Protocol",
    "LastUpdatedAt",
    "CreatedAt",
    "ApplicationArn",
    "ExportFilesMetadata",
    "Location",
    "RoleArn",
)
TIMESTAMP_FIELDS: Final = (
    "LastUpdatedAt",
    "CreatedAt",
    "ApplicationStartedAt",
    "StreamingStartedAt",
    "StreamingEndedAt",
)
_SESSION_ARN_RE: Final = re.compile(
    r"arn:aws:gameliftstreams:([^: ]*):([0-9]{12}):streamsession/([a-zA-Z0-9-]{1,32})/([a-zA-Z0-9-]{1,32})"
)

SortKey = tokens.SortKey


def sort_time(value: Any) -> float:
    """Epoch seconds of a CreatedAt value, whatever a fuzz test put there (garbage sorts as 0)."""
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return 0.0
        return parsed.timestamp() if parsed.tzinfo else parsed.replace(tzinfo=UTC).timestamp()
    return 0.0


def copy_detail(value: Any) -> Any:
    """Copy of nested dicts/lists (much cheaper than deepcopy for 100k sessions)."""
    kind = type(value)
    if kind is dict:
        out = value.copy()
        for k, v in out.items():
            if type(v) is dict or type(v) is list:
                out[k] = copy_detail(v)
        return out
    if kind is list:
        return [copy_detail(v) if type(v) is dict or type(v) is list else v for v in value]
    return value


def export_status(detail: Mapping[str, Any]) -> Any:
    """ExportFilesMetadata.Status, or None when there is none (or it is not an object)."""
    meta = detail.get("ExportFilesMetadata")
    return meta.get("Status") if isinstance(meta, dict) else None


def summary(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The StreamSessionSummary of a detail: its fields only, and only the Status of the export."""
    out: dict[str, Any] = {}
    for name in SUMMARY_FIELDS:
        if name not in detail:
            continue
        value = detail[name]
        if name == "ExportFilesMetadata" and isinstance(value, dict):
            value = {"Status": value.get("Status")}
        out[name] = value
    return out


@dataclass
class ExportJob:
    """An export asked for (ExportStreamSessionFiles) and not yet settled: where the ZIP goes, whether its
    upload has started, and once written, the object's URI and when it landed (clock seconds)."""

    output_uri: str
    uploading: bool = False
    object_uri: str | None = None
    landed_at: float | None = None


class StoredSession:
    """One stored session: the raw detail dict plus what indexing and lookup need, and its pending export."""

    __slots__ = ("arn", "detail", "job", "key", "region", "sgid", "sid", "uid")

    def __init__(self, uid: str, region: str, sgid: str, sid: str, detail: dict[str, Any]) -> None:
        self.uid = uid
        self.region = region
        self.sgid = sgid
        self.sid = sid
        self.detail = detail
        self.job: ExportJob | None = None
        arn = detail.get("Arn")
        self.arn: str | None = arn if isinstance(arn, str) else None
        # Listing order: CreatedAt descending, then Arn, then an internal id for total order.
        self.key: SortKey = (-sort_time(detail.get("CreatedAt")), self.arn or "", uid)

    def matches(self, status: str | None, export: str | None) -> bool:
        if status is not None and self.detail.get("Status") != status:
            return False
        return export is None or export_status(self.detail) == export


class RegionStore:
    """The sessions of one Region, by internal id and by (stream group ID, session ID)."""

    def __init__(self) -> None:
        self.recs: dict[str, StoredSession] = {}
        self.by_ids: dict[tuple[str, str], StoredSession] = {}
        # (Status filter, ExportFilesStatus filter) -> sorted keys; built lazily, kept up to date.
        self.index: dict[tuple[str | None, str | None], list[SortKey]] = {}

    def keys(self, status: str | None, export: str | None) -> list[SortKey]:
        keys = self.index.get((status, export))
        if keys is None:
            keys = sorted(r.key for r in self.recs.values() if r.matches(status, export))
            self.index[(status, export)] = keys
        return keys

    def insert(self, rec: StoredSession) -> None:
        self.recs[rec.uid] = rec
        self.by_ids[(rec.sgid, rec.sid)] = rec
        for (status, export), keys in self.index.items():
            if rec.matches(status, export):
                bisect.insort(keys, rec.key)

    def delete(self, rec: StoredSession) -> None:
        self.recs.pop(rec.uid, None)
        if self.by_ids.get((rec.sgid, rec.sid)) is rec:
            del self.by_ids[(rec.sgid, rec.sid)]
        for keys in self.index.values():
            i = bisect.bisect_left(keys, rec.key)
            if i < len(keys) and keys[i] == rec.key:
                del keys[i]


class GameLiftStreamsBackend:
    """Every session of one account, per Region; thread-safe. Details are returned as copies.

    Export settings: `uploader` writes the ZIPs (None: every upload fails, so exports end FAILED);
    `export_success_delay` (seconds on `clock`) between the ZIP landing and SUCCEEDED, applied as it is at
    each read (shortening it releases what waited longer); `fail_exports` makes every export that settles
    from now on FAILED, with no ZIP.
    """

    def __init__(
        self,
        seed: int = 0,
        default_region: str = "us-east-2",
        account_id: str = "111122223333",
        *,
        canary: str = "glscanary",
        base_time: datetime = DEFAULT_BASE_TIME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seed = seed
        self.default_region = default_region
        self.shift_on_page = False
        self.lock = threading.RLock()
        self.factory = SessionFactory(seed, account_id, canary, base_time)
        self.clock = clock
        self.uploader: Uploader | None = None
        self.export_success_delay = 0.0
        self.fail_exports = False
        self._regions: dict[str, RegionStore] = collections.defaultdict(RegionStore)
        self._by_arn: dict[str, StoredSession] = {}
        self._uid = 0
        # Exports whose ZIP landed and whose SUCCEEDED is held back: (landed at, tie-breaker, session, job).
        self._due: list[tuple[float, int, StoredSession, ExportJob]] = []
        self._due_order = itertools.count()

    # -- the data API --------------------------------------------------------------------------------

    def add_session(self, region: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Store one session (export SUCCEEDED and TERMINATED unless overridden) and return its detail.

        Overrides replace fields verbatim, so a test can put anything on the wire; None removes a field.
        A parseable session `Arn` override also sets the IDs GetStreamSession looks it up by.
        """
        region = region or self.default_region
        with self.lock:
            if "Status" in overrides or "ExportFilesMetadata" in overrides:
                status = overrides.get("Status") if isinstance(overrides.get("Status"), str) else "TERMINATED"
                export = export_status(overrides)
            else:
                status, export = "TERMINATED", "SUCCEEDED"
            detail = self.factory.make(region, str(status), export if isinstance(export, str) else None)
            generated_ids = (detail["StreamGroupId"], detail["Arn"].rsplit("/", 1)[-1])
            detail.update(overrides)
            rec = self._store(region, detail, generated_ids)
            return dict(copy_detail(rec.detail))

    def seed_sessions(
        self, n: int, region: str | None = None, *, succeeded_fraction: float = 0.6
    ) -> list[dict[str, Any]]:
        """Add `n` sessions with a deterministic, realistic mix of statuses; returns their details."""
        region = region or self.default_region
        out: list[dict[str, Any]] = []
        # Millions of small containers: the cyclic GC would rescan the growing heap and double the time.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self.lock:
                self._regions[region].index.clear()  # rebuilt lazily once, instead of n sorted inserts
                factory = self.factory
                for _ in range(n):
                    status, export = factory.draw_status(succeeded_fraction)
                    rec = self._store(region, factory.make(region, status, export))
                    out.append(copy_detail(rec.detail))
        finally:
            if gc_was_enabled:
                gc.enable()
        return out

    def set_export_status(self, arn: str, status: str | None, output_uri: str | None = None) -> dict[str, Any]:
        """Change a session's export status (None removes ExportFilesMetadata); bumps LastUpdatedAt.

        SUCCEEDED and FAILED are outcomes of an ended session: a session not yet ended is ended first
        (TERMINATED, StatusReason applicationExit, StreamingEndedAt). No ZIP is written: that is what
        TerminateStreamSession after ExportStreamSessionFiles does. A pending export job is dropped.
        """
        with self.lock:
            self._settle()
            rec = self._lookup_arn(arn)
            store = self._regions[rec.region]
            store.delete(rec)
            rec.job = None
            detail = rec.detail
            if status in ("SUCCEEDED", "FAILED") and detail.get("Status") not in ENDED:
                self.factory.end(detail, rec.sid, "applicationExit")
            if status is None:
                detail.pop("ExportFilesMetadata", None)
            else:
                meta: dict[str, Any] = {"Status": status}
                if status == "SUCCEEDED":
                    meta["OutputUri"] = output_uri or self.factory.output_uri(detail, rec.sgid, rec.sid)
                elif output_uri is not None:
                    meta["OutputUri"] = output_uri
                if status == "FAILED":
                    meta["StatusReason"] = EXPORT_FAIL_REASONS[0]
                detail["ExportFilesMetadata"] = meta
            detail["LastUpdatedAt"] = self.factory.tick()
            store.insert(rec)
            return dict(copy_detail(detail))

    def remove_session(self, arn: str) -> None:
        """Forget a session (as if it aged out of the API); KeyError if unknown."""
        with self.lock:
            rec = self._lookup_arn(arn)
            self._regions[rec.region].delete(rec)
            del self._by_arn[arn]
            rec.job = None

    def get_session(self, arn: str) -> dict[str, Any]:
        """A copy of one stored session's detail; KeyError if unknown."""
        with self.lock:
            self._settle()
            return dict(copy_detail(self._lookup_arn(arn).detail))

    def sessions(self, region: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored sessions (all Regions unless given), in listing order."""
        with self.lock:
            self._settle()
            regions = [region] if region else sorted(self._regions)
            out: list[dict[str, Any]] = []
            for name in regions:
                store = self._regions[name]
                out.extend(copy_detail(store.recs[k[2]].detail) for k in store.keys(None, None))
            return out

    def succeeded_arns(self, region: str | None = None) -> set[str]:
        """ARNs whose export SUCCEEDED: what a complete archive run must end up holding."""
        with self.lock:
            self._settle()
            regions = [region] if region else list(self._regions)
            return {
                self._regions[name].recs[k[2]].arn or ""
                for name in regions
                for k in self._regions[name].keys(None, "SUCCEEDED")
            } - {""}

    def clear_sessions(self) -> None:
        """Remove every session in every Region."""
        with self.lock:
            self._regions.clear()
            self._by_arn.clear()
            self._due.clear()

    # -- the two API operations ------------------------------------------------------------------------

    def list_sessions(
        self,
        region: str,
        *,
        status: str | None = None,
        export: str | None = None,
        max_results: int = 25,
        next_token: str | None = None,
    ) -> dict[str, Any]:
        """One page of ListStreamSessionsByAccount: {"Items": summaries, "NextToken"?: str}.

        The filters and max_results are taken as given (the wire layer validates them); a NextToken
        that is not one of ours, or was minted for other filters or another Region, is a ValidationException.
        """
        fingerprint = tokens.fingerprint(region, status, export)
        position = tokens.decode_token(next_token, fingerprint)
        with self.lock:
            self._settle()
            store = self._regions[region]
            keys = store.keys(status, export)
            if isinstance(position, int):
                start = position
            elif position is not None:
                start = bisect.bisect_right(keys, position)
            else:
                start = 0
            page = keys[start : start + max_results]
            items = [summary(store.recs[k[2]].detail) for k in page]
            token: str | None = None
            if start + max_results < len(keys) and page:
                if self.shift_on_page:
                    token = tokens.encode_token({"o": start + len(page), "f": fingerprint})
                    # A new session matching the filters, newest of all: the filtered list shifts by one.
                    self._store(region, self.factory.make(region, status or "TERMINATED", export))
                else:
                    token = tokens.encode_token({"k": list(page[-1]), "f": fingerprint})
        out: dict[str, Any] = {"Items": items}
        if token is not None:
            out["NextToken"] = token
        return out

    def get_stream_session(self, region: str, group: str, session: str) -> dict[str, Any]:
        """GetStreamSession by stream group ID or ARN and session ID or ARN (a copy of the detail)."""
        with self.lock:
            self._settle()
            return dict(copy_detail(self._find(region, group, session).detail))

    # -- the lifecycle: a live session, its export, its end ------------------------------------------------

    def start_session(self, region: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Store one live session (ACTIVE, streaming, no export yet) with the factory's realistic fields, and
        return its detail; overrides as in add_session (e.g. Status="CONNECTED")."""
        return self.add_session(region, **{"Status": "ACTIVE", "ExportFilesMetadata": None, **overrides})

    def export_files(self, region: str, group: str, session: str, output_uri: str) -> None:
        """ExportStreamSessionFiles: only for a session in progress (else ValidationException, as AWS); the
        export is PENDING with this OutputUri until the session ends (asking again replaces the URI)."""
        with self.lock:
            self._settle()
            rec = self._find(region, group, session)
            status = rec.detail.get("Status")
            if status not in IN_PROGRESS:
                raise validation(
                    f"Stream session {session} is in status {status}: files can be exported only from a stream "
                    f"session in progress ({', '.join(IN_PROGRESS)})."
                )
            with self._changing(rec):
                rec.detail["ExportFilesMetadata"] = {"Status": "PENDING", "OutputUri": output_uri}
                rec.detail["LastUpdatedAt"] = self.factory.tick()
            rec.job = ExportJob(output_uri)

    def terminate(self, region: str, group: str, session: str) -> None:
        """TerminateStreamSession: the session ends (TERMINATED, apiTerminated, StreamingEndedAt); a PENDING
        export's ZIP is then written (outside the lock: other calls go on meanwhile, seeing the export still
        PENDING, as while AWS uploads) and the export settles: SUCCEEDED (now, or `export_success_delay`
        after the ZIP landed) or FAILED. ACTIVATING is refused (ValidationException); an ended session is
        left as it is."""
        with self.lock:
            self._settle()
            rec = self._find(region, group, session)
            status = rec.detail.get("Status")
            if status == "ACTIVATING":
                raise validation(f"Stream session {session} is ACTIVATING and cannot be terminated yet.")
            if status in ENDED:
                return
            with self._changing(rec):
                self.factory.end(rec.detail, rec.sid, "apiTerminated")
            job = self._job_at_end(rec)
            if job is None:
                return
            job.uploading = True
            snapshot = copy_detail(rec.detail)
            fail, uploader = self.fail_exports, self.uploader
        outcome = self._upload(rec, snapshot, job.output_uri, fail=fail, uploader=uploader)
        with self.lock:
            if rec.job is not job or self._regions[rec.region].recs.get(rec.uid) is not rec:
                return  # changed or removed meanwhile (control API): its new state stands
            if isinstance(outcome, UploadFailed):
                reason = INJECTED_FAILURE_REASON if fail else UPLOAD_FAILED_REASON
                self._settle_export(rec, "FAILED", job.output_uri, reason)
            elif self.export_success_delay <= 0:
                self._settle_export(rec, "SUCCEEDED", outcome)
            else:
                job.object_uri = outcome
                job.landed_at = self.clock()
                heapq.heappush(self._due, (job.landed_at, next(self._due_order), rec, job))

    def _job_at_end(self, rec: StoredSession) -> ExportJob | None:
        """The export to upload now that the session ended: the one asked for, or for a seeded live session
        whose export is PENDING with no job, one to its OutputUri (or the factory's default folder)."""
        meta = rec.detail.get("ExportFilesMetadata")
        if not isinstance(meta, dict) or meta.get("Status") != "PENDING":
            return None
        if rec.job is None:
            uri = meta.get("OutputUri")
            rec.job = ExportJob(uri if isinstance(uri, str) else DEFAULT_EXPORT_FOLDER)
        return None if rec.job.uploading else rec.job

    def _upload(
        self, rec: StoredSession, snapshot: dict[str, Any], output_uri: str, *, fail: bool, uploader: Uploader | None
    ) -> str | UploadFailed:
        """Write the ZIP; the object's s3:// URI, or why it could not be written."""
        try:
            if fail:
                raise UploadFailed("export failure injected (fail_exports)")
            if uploader is None:
                raise UploadFailed("no export S3 endpoint is configured")
            ended = snapshot.get("StreamingEndedAt")
            stamp = ended if isinstance(ended, datetime) else self.factory.clock
            bucket, key = export_object(output_uri, export_file_name(snapshot, rec.sgid, rec.sid, stamp))
            uploader.put(bucket, key, export_zip(self.factory.without_secrets(snapshot), seed=self.seed))
        except Exception as error:  # whatever went wrong, the export is FAILED and the emulator goes on
            failed = error if isinstance(error, UploadFailed) else UploadFailed(f"{type(error).__name__}: {error}")
            _log.warning("export of %s failed: %s", rec.arn, failed)
            return failed
        return f"s3://{bucket}/{key}"

    def _settle_export(self, rec: StoredSession, status: str, output_uri: str, reason: str | None = None) -> None:
        with self._changing(rec):
            meta: dict[str, Any] = {"Status": status, "OutputUri": output_uri}
            if reason is not None:
                meta["StatusReason"] = reason
            rec.detail["ExportFilesMetadata"] = meta
            rec.detail["LastUpdatedAt"] = self.factory.tick()
        rec.job = None

    def _settle(self) -> None:
        """Exports whose ZIP landed at least `export_success_delay` ago (the delay as it is now) become
        SUCCEEDED: called under the lock by every read, so no timer is needed."""
        due = self._due
        if not due:
            return
        now = self.clock()
        while due and due[0][0] + self.export_success_delay <= now:
            _, _, rec, job = heapq.heappop(due)
            if rec.job is job and job.object_uri is not None and self._regions[rec.region].recs.get(rec.uid) is rec:
                self._settle_export(rec, "SUCCEEDED", job.object_uri)

    @contextlib.contextmanager
    def _changing(self, rec: StoredSession) -> Iterator[None]:
        """Out of the listing indexes while its Status or export status changes, back in after."""
        store = self._regions[rec.region]
        store.delete(rec)
        try:
            yield
        finally:
            store.insert(rec)

    # -- storage ---------------------------------------------------------------------------------------

    def _store(self, region: str, detail: dict[str, Any], fallback_ids: tuple[str, str] | None = None) -> StoredSession:
        """Index a session under the IDs GetStreamSession finds it by.

        `fallback_ids` marks a caller-built detail (add_session) that may hold anything: None values are
        dropped and the IDs come from a parseable Arn, else from the generated ones. Without it the
        detail is our own, well-formed, and takes the fast path (seeding 100k sessions).
        """
        arn: Any
        if fallback_ids is None:
            arn = detail["Arn"]
            sgid, sid = detail["StreamGroupId"], arn[arn.rindex("/") + 1 :]
        else:
            for name in [k for k, v in detail.items() if v is None]:
                del detail[name]
            arn = detail.get("Arn")
            match = _SESSION_ARN_RE.fullmatch(arn) if isinstance(arn, str) else None
            sgid, sid = (match.group(3), match.group(4)) if match else fallback_ids
        if isinstance(arn, str) and arn in self._by_arn:
            raise ValueError(f"a session with Arn {arn!r} already exists")
        self._uid += 1
        rec = StoredSession(f"{self._uid:012d}", region, sgid, sid, detail)
        self._regions[region].insert(rec)
        if rec.arn is not None:
            self._by_arn[rec.arn] = rec
        return rec

    def _find(self, region: str, group: str, session: str) -> StoredSession:
        """The session an API call names (stream group ID or ARN, session ID or ARN), or ResourceNotFound."""
        sgid = group.rsplit("/", 1)[-1] if group.startswith("arn:") else group
        store = self._regions.get(region)
        rec: StoredSession | None = None
        if store is not None:
            if session.startswith("arn:"):
                found = self._by_arn.get(session)
                rec = found if found is not None and found.region == region else None
            else:
                rec = store.by_ids.get((sgid, session))
        if rec is None or rec.sgid != sgid:
            raise not_found(f"Stream session {session} not found in stream group {group}.")
        return rec

    def _lookup_arn(self, arn: str) -> StoredSession:
        rec = self._by_arn.get(arn)
        if rec is None:
            raise KeyError(f"no session with Arn {arn!r}")
        return rec

"""The pipeline of one run: list pages -> which are new -> enrich -> write S3 then DynamoDB -> summary.

Per Region, the listing thread only lists (it is the critical path: pages come one after another),
a single dedup thread asks DynamoDB about each page in order, and a fixed pool of workers archives the
new sessions. The queues between the stages are bounded, so memory does not grow with the number listed:
at most PAGES_IN_FLIGHT pages wait for the dedup stage, and at most PENDING_LIMIT new sessions (an ARN and
a timestamp each, ~250 bytes) wait for a worker. The second bound is deliberately large: the newest
sessions, listed first, are the new ones, and the listing must not stall behind their GetStreamSession
calls (paced by the quota) while the rest of the pages could be listed and checked meanwhile.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from archiver import telemetry
from archiver.archive import Archived, Archivist, ExportTally, ForeignRecord
from archiver.budget import Budget, OutOfTime
from archiver.errors import TRANSIENT_ERRORS, FatalError, error_code
from archiver.exportfiles import ExportFiles
from archiver.ledger import Ledger, LedgerUnavailable
from archiver.ownership import Owner, log_foreign
from archiver.records import SessionArn, parse_session_arn
from archiver.sessions import ListingFailed, SessionSource
from archiver.settings import Settings
from archiver.store import RecordStore

logger = Logger(service=telemetry.SERVICE, child=True)  # a child of the handler's logger, by name

PAGES_IN_FLIGHT = 4  # pages listed ahead of the dedup stage (~150 KB each): absorbs jitter of either call
PENDING_LIMIT = 10_000  # new sessions found ahead of the workers: ~2.5 MB, over 500 s of work at 20/s
# What archiving a session did -> the counter it adds to (FOREIGN: the answer named another session).
_COUNTER = {Archived.ARCHIVED: "archived", Archived.ALREADY: "already_archived", Archived.FOREIGN: "foreign"}


@dataclass
class Counts:
    """What happened to the listed sessions of one Region (or of the whole run)."""

    listed: int = 0  # items the API returned (a session repeated by a shifting list counts twice)
    already_archived: int = 0
    new: int = 0
    archived: int = 0
    failed: int = 0  # retried on the next run
    skipped: int = 0  # unusable ARN, or vanished between list and get (404)
    foreign: int = 0  # not this function's (archiver.ownership): listed so, or GetStreamSession's answer says so
    deferred: int = 0  # not done because the time budget ran out (new, or not yet checked): next run
    repeated: int = 0  # seen earlier in this run (list shifted, or listing restarted; a foreign one too)

    def add(self, other: Counts) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


@dataclass(frozen=True)
class Resume:
    """Where a follow-up invocation goes on listing a Region: the page of `token` (None: the first page)."""

    token: str | None


@dataclass
class RegionReport:
    region: str
    counts: Counts = field(default_factory=Counts)
    duration_ms: int = 0
    list_restarts: int = 0
    error: str | None = None
    resume: Resume | None = None  # set when the run ran out of time with this Region unfinished
    exports: ExportTally = field(default_factory=ExportTally)  # what reading the export ZIPs did


@dataclass
class RunReport:
    regions: list[RegionReport]
    duration_ms: int

    @property
    def total(self) -> Counts:
        total = Counts()
        for region in self.regions:
            total.add(region.counts)
        return total

    @property
    def exports(self) -> ExportTally:
        total = ExportTally()
        for region in self.regions:
            total.add(region.exports)
        return total

    @property
    def errors(self) -> list[str]:
        return [f"{r.region}: {r.error}" for r in self.regions if r.error]

    @property
    def unfinished(self) -> dict[str, Resume]:
        """The Regions a follow-up invocation should go on with (none that failed)."""
        return {r.region: r.resume for r in self.regions if r.resume is not None and not r.error}

    def as_dict(self) -> dict[str, Any]:
        """The JSON-serialisable summary the handler returns and logs."""
        return {
            "ok": not self.errors,
            "duration_ms": self.duration_ms,
            "total": {**asdict(self.total), "duration_ms": self.duration_ms},
            "exports": self.exports.as_dict(),
            "regions": {
                r.region: {
                    **asdict(r.counts),
                    "duration_ms": r.duration_ms,
                    "list_restarts": r.list_restarts,
                    "exports": r.exports.as_dict(),
                }
                | ({"error": r.error} if r.error else {})
                for r in self.regions
            },
            "errors": self.errors,
        }


class RegionRun:
    """Archive one Region's new sessions within the budget, only `owner`'s (archiver.ownership; the handler
    passes the function's own, None checks the source Regions only)."""

    def __init__(
        self,
        source: SessionSource,
        ledger: Ledger,
        store: RecordStore,
        settings: Settings,
        budget: Budget,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        start: Resume | None = None,
        owner: Owner | None = None,
        *,
        exports: ExportFiles,
    ) -> None:
        self.source = source
        self.region = source.region
        self.ledger = ledger
        self.settings = settings
        self.budget = budget
        self.archivist = Archivist(settings, ledger, store, now, owner, exports=exports)
        self.owner = self.archivist.owner
        self.counts = Counts()
        self._lock = threading.Lock()
        # New and foreign sessions taken this run: grows with those, not with listed (the dedup thread's only).
        self._seen: set[str] = set()
        self._fatal: str | None = None
        # Compact entries (ARN, listed CreatedAt, page): the full list item is not kept once a page is checked.
        self._pending: queue.Queue[tuple[str, Any, int] | None] = queue.Queue(PENDING_LIMIT)
        # For a follow-up invocation: the token that fetched each page (~100 bytes a page, one page a 100
        # listed), and the first page with a session this run did not get to.
        self._start = start
        self._page_tokens: list[str | None] = []
        self._first_deferred: int | None = None
        self._page_slots = threading.BoundedSemaphore(PAGES_IN_FLIGHT)

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.counts, name, getattr(self.counts, name) + delta)

    def _fail(self, error: FatalError) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = str(error)
                logger.error("Run stopped: cannot continue", extra={"region": self.region, "error": str(error)})

    def keep_going(self) -> bool:
        return self._fatal is None and not self.budget.expired()

    def _defer(self, page: int, sessions: int = 1) -> None:
        """Count sessions left for later because the time ran out, and remember the earliest page they are on."""
        with self._lock:
            self.counts.deferred += sessions
            if self._first_deferred is None or page < self._first_deferred:
                self._first_deferred = page

    def _resume(self, listing_done: bool) -> Resume | None:
        """Where a follow-up goes on: the first page with a deferred session, else the first page not listed."""
        if self._fatal is not None:
            return None
        if self._first_deferred is not None:
            return Resume(self._page_tokens[self._first_deferred])
        if not listing_done:
            return Resume(self.source.position)
        return None

    def run(self) -> RegionReport:
        started = time.monotonic()
        error: str | None = None
        workers = [
            threading.Thread(target=self._work, name=f"archive-{self.region}-{n}")
            for n in range(self.settings.max_concurrency)
        ]
        for worker in workers:
            worker.start()
        dedup = ThreadPoolExecutor(1, thread_name_prefix=f"dedup-{self.region}")
        start_token = self._start.token if self._start is not None else None
        listing_done = False
        try:
            for items in self.source.pages(self.keep_going, start_token):
                self._page_slots.acquire()
                self._page_tokens.append(self.source.page_token)  # after a restart: None, the first page
                dedup.submit(self._dedup_page, items, len(self._page_tokens) - 1)
            # Ended, not stopped: no position after a page, or (no page at all) not stopped by the budget.
            listing_done = self.source.position is None and (bool(self._page_tokens) or self.keep_going())
        except FatalError as fatal:
            self._fail(fatal)
        except OutOfTime:
            logger.warning("Listing stopped: too little time left", extra={"region": self.region})
        except ListingFailed as failure:
            error = str(failure)
            logger.error("Listing failed", extra={"region": self.region, "error": error})
        except TRANSIENT_ERRORS as failure:
            error = f"ListStreamSessionsByAccount in {self.region} failed after retries: {failure}"
            logger.error("Listing failed", extra={"region": self.region, "error": error})
        except Exception as unreadable:  # e.g. botocore cannot parse a page: fail this Region, not the whole run
            error = f"ListStreamSessionsByAccount in {self.region} returned an unreadable page: {unreadable!r}"[:1000]
            logger.exception("Listing failed", extra={"region": self.region, "error": error})
        finally:
            dedup.shutdown(wait=True)
            for _ in workers:
                self._pending.put(None)  # one stop marker per worker, after every queued session
            for worker in workers:
                worker.join()
        return RegionReport(
            region=self.region,
            counts=self.counts,
            duration_ms=round((time.monotonic() - started) * 1000),
            list_restarts=self.source.restarts,
            error=self._fatal or error,
            resume=None if error else self._resume(listing_done),
            exports=self.archivist.take(),
        )

    def _usable(self, items: Sequence[Mapping[str, Any]]) -> list[tuple[SessionArn, Mapping[str, Any]]]:
        """The page's sessions to check against the ledger: well-formed, not seen this run, this function's."""
        usable = []
        for item in items:
            arn = parse_session_arn(item.get("Arn"))
            if arn is None:
                self._count(skipped=1)
                logger.warning(
                    "Skipped a listed item without a usable session ARN",
                    extra={"region": self.region, "arn": repr(item.get("Arn"))[:200]},
                )
                continue
            if arn.arn in self._seen:
                self._count(repeated=1)
                continue
            reason = self.owner.foreign(arn)
            if reason is not None:  # never asked about, never written: counted once a run, like a new one
                self._seen.add(arn.arn)
                self._count(foreign=1)
                log_foreign(arn.arn, reason, region=self.region)
                continue
            if arn.region != self.region:  # never seen from AWS; another source Region, archived under it
                logger.warning(
                    "Listed session's ARN names another source Region; its record lands in that Region's partition",
                    extra={"region": self.region, "session_arn": arn.arn},
                )
            usable.append((arn, item))
        return usable

    def _dedup_page(self, items: list[dict[str, Any]], page: int) -> None:
        try:
            self._count(listed=len(items))
            if self._fatal is not None:
                return
            candidates = self._usable(items)
            try:
                archived = self.ledger.archived([arn.arn for arn, _ in candidates])
            except FatalError as fatal:
                self._fail(fatal)
                return
            except OutOfTime:
                self._defer(page, len(candidates))
                return
            except (LedgerUnavailable, *TRANSIENT_ERRORS) as failure:
                self._count(failed=len(candidates))
                logger.error(
                    "Could not tell which listed sessions are archived; they wait for the next run",
                    extra={"region": self.region, "sessions": len(candidates), "error": str(failure)},
                )
                return
            for arn, item in candidates:
                if arn.arn in archived:
                    self._count(already_archived=1)
                    continue
                self._seen.add(arn.arn)
                self._count(new=1)
                if not self.keep_going():
                    self._defer(page)
                    continue
                self._pending.put((arn.arn, item.get("CreatedAt"), page))  # blocks only past PENDING_LIMIT
        except Exception as bug:  # never lose one silently inside an executor
            logger.exception("Unexpected error while checking a page", extra={"region": self.region})
            self._fail(FatalError(f"unexpected error while checking a page: {bug!r}"))
        finally:
            self._page_slots.release()

    def _work(self) -> None:
        """A worker: archive queued sessions until the stop marker."""
        while (entry := self._pending.get()) is not None:
            arn_text, listed_created_at, page = entry
            arn = parse_session_arn(arn_text)
            if arn is not None:  # always: it was parsed before it was queued
                self._archive_one(arn, {"CreatedAt": listed_created_at}, page)

    def _archive_one(self, arn: SessionArn, listed: Mapping[str, Any], page: int) -> None:
        try:
            if not self.keep_going():
                self._defer(page)
                return
            self._count(**self._archive(arn, listed))
        except OutOfTime:
            self._defer(page)
            logger.info("Session cut off by the time budget; next run", extra={"session_arn": arn.arn})
        except FatalError as fatal:
            self._fail(fatal)
            self._count(failed=1)
        except TRANSIENT_ERRORS as failure:
            self._count(failed=1)
            logger.error(
                "Session not archived; retried next run",
                extra={"region": self.region, "session_arn": arn.arn, "error": error_code(failure)},
            )
        except Exception:  # a bug or an input we did not foresee must not stop the other sessions
            self._count(failed=1)
            logger.exception("Session not archived (unexpected error)", extra={"session_arn": arn.arn})

    def _archive(self, arn: SessionArn, listed: Mapping[str, Any]) -> dict[str, int]:
        """GetStreamSession (only it has the export's OutputUri), then the record and its item."""
        detail = self.source.get(arn)
        if detail is None:
            logger.info("Session vanished before it could be read", extra={"session_arn": arn.arn})
            return {"skipped": 1}
        try:
            outcome = self.archivist.archive(arn, detail, listed)
        except ForeignRecord as conflict:
            logger.error("Session not archived: its key holds another object", extra={"error": str(conflict)})
            return {"failed": 1}
        return {_COUNTER[outcome]: 1}


def run_archive(
    settings: Settings,
    sources: Sequence[SessionSource],
    ledger: Ledger,
    store: RecordStore,
    budget: Budget,
    resume: Mapping[str, Resume] | None = None,
    owner: Owner | None = None,
    *,
    exports: ExportFiles,
) -> RunReport:
    """Run every source Region in parallel, each with its own pipeline and the shared budget, archiving only
    `owner`'s sessions; with `resume` (a follow-up invocation), only those Regions, each from its position."""
    started = time.monotonic()
    if resume is not None:
        sources = [source for source in sources if source.region in resume]
    starts = resume or {}

    def region_run(source: SessionSource) -> RegionReport:
        return RegionRun(
            source, ledger, store, settings, budget, start=starts.get(source.region), owner=owner, exports=exports
        ).run()

    with ThreadPoolExecutor(max(1, len(sources)), thread_name_prefix="region") as regions:
        reports = list(regions.map(region_run, sources))
    return RunReport(regions=reports, duration_ms=round((time.monotonic() - started) * 1000))

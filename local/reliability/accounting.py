"""Every run judged, faulted or not: its summary's counts add up, and agree with what the run did to the
archive (read before and after it, from outside).

What the archiver counts (`archiver.run.Counts`), per listed item: `skipped` (no usable ARN), `repeated`
(seen earlier this run), `foreign` (not the function's: another account or partition, a Region outside
SOURCE_REGIONS), or checked against the ledger in a page; a page whose check failed counts its items
`failed`, one cut by the time budget `deferred`; otherwise each item is `already_archived` or `new`. Each new
session ends `archived`, `failed`, `deferred`, `skipped` (vanished, 404), `foreign` (GetStreamSession's answer
names another session) or `already_archived` (its conditional put found another run's item). Hence, for the
total and each Region:

    listed = archived + already_archived + failed + skipped + foreign + deferred + repeated
    archived <= new <= listed - repeated

And against the archive: every session counted archived has an item now that it lacked before (a put that
took effect but whose answer was lost counts failed or deferred), every object key added belongs to a new
session, and a session that should have been archived and was not is counted failed, deferred, skipped
or foreign, unless the listing never reached it (a run cut by its time budget stops listing).

The event consumer returns only which messages to deliver again; what it did to each is in its log
("Batch processed", one outcome per message). `judge_batch` holds each invocation to the same standard.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archiver import telemetry
from local.reliability.event_oracle import REDELIVER

COUNTERS = ("archived", "already_archived", "failed", "skipped", "foreign", "deferred", "repeated")


@dataclass(frozen=True)
class Snapshot:
    """The archive and the emulator at one instant between runs."""

    succeeded: frozenset[str]  # sessions whose export SUCCEEDED
    items: Mapping[str, str]  # session ARN -> the object key its DynamoDB item points at
    keys: frozenset[str]  # object keys in the bucket


def key_session(key: str) -> str:
    """The part of an object key that names its session (the file name)."""
    return key.rsplit("/", 1)[-1]


def consistency(snapshot: Snapshot) -> list[str]:
    """What must hold at every instant, even right after a SIGKILL: no DynamoDB item without its S3 object,
    and no session with two object keys."""
    problems = [f"item without object: {arn}" for arn, key in snapshot.items.items() if key not in snapshot.keys]
    per_session = Counter(key_session(key) for key in snapshot.keys)
    problems += [f"{n} object keys for session {s}" for s, n in per_session.items() if n > 1]
    return problems


def counts_add_up(counts: Mapping[str, Any], where: str) -> list[str]:
    """The identities of the module docstring, for one Region's counts or the total."""

    def get(name: str) -> int:
        return int(counts.get(name, 0))

    parts = {name: get(name) for name in COUNTERS}
    problems = []
    if get("listed") != sum(parts.values()):
        problems.append(f"{where}: listed {get('listed')} != {' + '.join(f'{k} {v}' for k, v in parts.items())}")
    if not get("archived") <= get("new") <= get("listed") - get("repeated"):
        problems.append(
            f"{where}: not archived {get('archived')} <= new {get('new')} <= listed {get('listed')} "
            f"- repeated {get('repeated')}"
        )
    return problems


def judge_run(summary: Mapping[str, Any] | None, before: Snapshot, after: Snapshot) -> list[str]:
    """What is wrong with one run, from its summary (None: it failed or was killed, and reported nothing)
    and the archive before and after it."""
    problems = consistency(after)
    if summary is None:
        return problems
    total: Mapping[str, Any] = summary.get("total", {})
    problems += counts_add_up(total, "total")
    for region, counts in dict(summary.get("regions", {})).items():
        problems += counts_add_up(counts, region)

    def get(name: str) -> int:
        return int(total.get(name, 0))

    added_items = len(after.items.keys() - before.items.keys())
    if not get("archived") <= added_items <= get("archived") + get("failed") + get("deferred"):
        problems.append(
            f"{added_items} items added, but archived {get('archived')}, failed {get('failed')}, "
            f"deferred {get('deferred')}"
        )
    added_keys = len(after.keys - before.keys)
    if added_keys > get("new"):
        problems.append(f"{added_keys} object keys added for {get('new')} new sessions")
    missing = (before.succeeded - before.items.keys()) - after.items.keys()
    unlisted = max(0, len(before.succeeded) - (get("listed") - get("repeated")))  # at least this many unseen
    accounted = get("failed") + get("deferred") + get("skipped") + get("foreign") + unlisted
    if len(missing) > accounted:
        problems.append(
            f"{len(missing)} sessions to archive were not, but only {accounted} are accounted for (failed "
            f"{get('failed')}, deferred {get('deferred')}, skipped {get('skipped')}, foreign {get('foreign')}, "
            f"unlisted {unlisted}): {sorted(missing)[:3]}"
        )
    return problems


# -- the event consumer: every invocation judged too ---------------------------------------------------------

EVENT_OUTCOMES = tuple(telemetry.EVENT_OUTCOMES.values())


def judge_batch(
    message_ids: Sequence[str],
    outcomes: Mapping[str, int] | None,
    response: Any,
    before: Snapshot | None = None,
    after: Snapshot | None = None,
    named: Collection[str] = (),
) -> list[str]:
    """What is wrong with one consumer invocation, from the batch it was given (its messages' IDs), the
    outcomes it counted (None: it was killed or failed, and counted nothing), what it returned (None: it
    raised, so the whole batch is delivered again) and, when
    nothing else wrote meanwhile, the archive before and after it (`named`: the sessions its messages name).

    Each message has exactly one outcome; batchItemFailures are messages of the batch, each once, exactly
    as many as the pending and failed ones; every item added belongs to a named session, there are at least
    as many as `archived` and at most archived + failed (a failed write may have taken effect)."""
    problems = consistency(after) if after is not None else []
    if outcomes is None:
        return problems
    unknown = sorted(set(outcomes) - set(EVENT_OUTCOMES))
    if unknown:
        problems.append(f"unknown outcomes {unknown}")
    if sum(outcomes.values()) != len(message_ids):
        problems.append(f"{sum(outcomes.values())} outcomes {dict(outcomes)} for {len(message_ids)} messages")
    if response is None:
        return problems
    failures = response.get("batchItemFailures") if isinstance(response, Mapping) else None
    if not isinstance(failures, list):
        problems.append(f"no batchItemFailures list in the response {response!r:.200}")
        failures = []
    ids = [f.get("itemIdentifier") if isinstance(f, Mapping) else None for f in failures]
    if len(set(ids)) != len(ids) or not set(ids) <= set(message_ids):
        problems.append(f"batchItemFailures {ids} are not distinct messages of the batch")
    redelivered = sum(outcomes.get(name, 0) for name in REDELIVER)
    if len(ids) != redelivered:
        problems.append(f"{len(ids)} messages to deliver again, but {redelivered} pending or failed: {dict(outcomes)}")
    if before is not None and after is not None:
        added = after.items.keys() - before.items.keys()
        archived, failed = outcomes.get("archived", 0), outcomes.get("failed", 0)
        if not archived <= len(added) <= archived + failed:
            problems.append(f"{len(added)} items added, but archived {archived}, failed {failed}")
        strays = sorted(added - set(named))
        if strays:
            problems.append(f"items added for sessions no message named: {strays[:3]}")
        added_keys = len(after.keys - before.keys)
        if added_keys > archived + failed:
            problems.append(f"{added_keys} object keys added, but archived {archived}, failed {failed}")
    return problems

"""The event path: the consumer (`archiver.events.handler`) fed by the real chain (moto's S3 -> EventBridge ->
SQS, a local event source mapping), alone and racing the reconciler (`archiver.handler.handler`).

Each case ends with an audit of the whole archive: 0 lost, 0 duplicated, nothing extra, every ledger item
equal to its S3 record, no record written twice (records are write-once), no canary anywhere; and every
consumer invocation was judged (`accounting.judge_batch`, the contract's `event_oracle`), every reconcile run
too (`accounting.judge_run`).

- duplicates and out of order: every export event delivered 1-N times, shuffled, a second event for the
  same object, ten copies in one batch;
- events before the API shows SUCCEEDED: PENDING and delivered again until it does; past
  MAX_PENDING_RECEIVES left to the reconciler, which archives it;
- the consumer (two instances) and the reconciler racing on the same sessions, round after round, with
  latency on the writes so that writers collide: exactly one writer counts each session archived;
- SIGKILL of the consumer between S3 and DynamoDB (and elsewhere): the redelivered message, or a reconcile
  run, completes the session from the record the killed writer stored;
- hostile keys and bodies, delivered straight to the queue and, where S3 can hold the key, through the chain;
- a burst of exports landing as fast as moto takes them, drained by two consumer instances;
- a listing longer than one invocation's budget, finished by the reconciler's follow-up invocations through
  the local Lambda service.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from local.gls.models import GameLiftStreamsBackend
from local.reliability.accounting import consistency, counts_add_up
from local.reliability.constants import REGION
from local.reliability.event_oracle import ALREADY, ARCHIVED, LEFT, PENDING, Hostile, hostile_messages, object_created
from local.reliability.event_world import WAIT, EventWorld
from local.reliability.oracle import Audit
from local.reliability.scenarios import fault
from local.reliability.world import World, WorldFactory
from local.worker import Worker

OTHER_ACCOUNT: Final = "444455556666"
# Latency on one of the writers' calls per race round (none in the first), so that two writers are often at
# the same session at once: a PutObject that finds the record stored (412, read back), a PutItem that finds
# the item put.
RACE_FAULTS: Final[tuple[tuple[dict[str, Any], ...], ...]] = (
    (),
    (fault("PutItem", "latency", seconds=0.15),),
    (fault("PutObject", "latency", seconds=0.1),),
    (fault("GetStreamSession", "latency", seconds=0.05), fault("PutItem", "latency", seconds=0.05)),
)
# (operation, nth, when, who completes it): "redelivery" (the message comes back after the visibility
# timeout) or "reconcile" (a reconcile run first, then the redelivered message finds it archived).
KILL_POINTS_FULL: Final = (
    ("PutItem", 1, "before", "redelivery"),
    ("PutItem", 4, "before", "reconcile"),
    ("PutObject", 1, "after", "redelivery"),
    ("PutObject", 4, "after", "reconcile"),
    ("PutItem", 2, "after", "redelivery"),
    ("PutObject", 3, "before", "redelivery"),
    ("GetStreamSession", 2, "after", "redelivery"),
    ("BatchGetItem", 3, "before", "reconcile"),
)
KILL_POINTS_FAST: Final = (("PutItem", 2, "before", "redelivery"), ("PutObject", 2, "after", "reconcile"))


@dataclass(frozen=True)
class EventSizes:
    """How big each case is: FULL for `make reliability`, FAST for the subset `make test` runs."""

    duplicate_sessions: int = 30
    copies: int = 4  # deliveries of each event: 1 to this many
    pending_sessions: int = 6
    race_rounds: int = 12
    race_sessions: int = 25
    kill_points: tuple[tuple[str, int, str, str], ...] = KILL_POINTS_FULL
    kill_sessions: int = 8
    hostile_sessions: int = 4
    burst: int = 10_000
    burst_backlog: int = 250  # messages waiting at most: moto's SQS costs O(queue depth) per request
    chain_pages: int = 30


FULL: Final = EventSizes()
FAST: Final = EventSizes(
    duplicate_sessions=8,
    copies=3,
    pending_sessions=3,
    race_rounds=2,
    race_sessions=10,
    kill_points=KILL_POINTS_FAST,
    kill_sessions=6,
    burst=200,
    chain_pages=4,
)


@dataclass
class EventCase:
    """One case of the event suite, as the report shows it."""

    name: str
    sessions: int = 0  # sessions that must end archived
    messages: int = 0  # messages the consumers were given (each redelivery counts)
    invocations: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reconciled: int = 0  # sessions archived by reconcile runs
    readbacks: int = 0  # GetObject calls of the writers: a 412 on PutObject, then the stored record read
    kills: int = 0
    audit: Audit = field(default_factory=Audit)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.audit.clean and not self.violations


def _finish(case: EventCase, events: EventWorld, expected: set[str], started: float) -> EventCase:
    """The case's closing checks: the audit, every run and batch judged, no record written twice, nothing left
    on the queue or dead-lettered."""
    world = events.world
    case.audit = world.audit(expected, check_records=True)
    if case.audit.overwrites:
        case.violations.append(f"{case.audit.overwrites} records written twice (records are write-once)")
    if case.audit.archived == 0:
        case.violations.append("nothing was archived: the case proved nothing")
    left, dead = events.depth(), events.depth(dead_letters=True)
    if left or dead:
        case.violations.append(f"{left} messages left on the queue, {dead} dead-lettered")
    batches = events.batches()
    case.invocations = len(batches)
    case.messages = sum(b.messages for b in batches)
    case.outcomes = events.tally()
    case.kills = events.kills()
    case.violations += world.violations
    case.seconds = time.monotonic() - started
    return case


def reconcile(world: World, case: EventCase, *, archived: int | None = None) -> None:
    """One judged reconcile run; it must finish cleanly (and archive exactly `archived`, if given)."""
    run = world.run()
    case.reconciled += run.total("archived")
    case.readbacks += run.calls.get("GetObject", 0)
    if run.failed or run.total("failed"):
        case.violations.append(f"the reconcile run did not finish cleanly: {run.error or run.summary}")
    if archived is not None and run.total("archived") != archived:
        case.violations.append(f"the reconcile run archived {run.total('archived')}, not {archived}: {run.summary}")
    if archived == 0 and run.calls.get("PutObject", 0):
        case.violations.append(f"the reconcile run wrote {run.calls['PutObject']} records with nothing to archive")


def expect(case: EventCase, what: str, got: object, want: object) -> None:
    if got != want:
        case.violations.append(f"{what}: {got}, expected {want}")


# -- 1. duplicate and out-of-order deliveries -----------------------------------------------------------------


def run_duplicates(make_world: WorldFactory, consumers: Sequence[Worker], sizes: EventSizes, seed: int) -> EventCase:
    """Ten copies of one event in one batch; then every other event 1 to `copies` times, a second (different)
    event for a third of the objects (the ZIP written again), shuffled with events of sessions archived
    already. Exactly one `archived` per session, `already_archived` for every other delivery, nothing
    redelivered; a reconcile run then finds nothing to do."""
    started, rng = time.monotonic(), random.Random(seed)
    case = EventCase("duplicate and out-of-order deliveries")
    world = make_world()
    try:
        events = EventWorld(world, consumers[:1])
        arns = events.export(sizes.duplicate_sessions)
        world.seed(5, succeeded_fraction=0.0)  # sessions never to archive, in the same emulator
        bodies = events.take(len(arns))
        first = [bodies[0]] * 10
        events.send(first)
        events.drain(lambda: events.handled() >= len(first))
        expect(case, "ten copies in one batch", dict(events.tally()), {ARCHIVED: 1, ALREADY: 9})
        rewritten = rng.sample(range(len(arns)), len(arns) // 3)
        for n in rewritten:  # the same object written again: a second, different event for it
            events.put(events.prefix + events.zip_name(arns[n]))
        again = events.take(len(rewritten))
        deliveries = [b for b in bodies for _ in range(rng.randint(1, sizes.copies))] + again
        rng.shuffle(deliveries)
        events.send(deliveries)
        total = len(first) + len(deliveries)
        events.drain(lambda: events.handled() >= total)
        expect(case, "outcomes", dict(events.tally()), {ARCHIVED: len(arns), ALREADY: total - len(arns)})
        reconcile(world, case, archived=0)
        case.sessions = len(arns)
        case.notes.append(f"{len(deliveries) + len(first)} deliveries of {len(arns) + len(rewritten)} events")
        return _finish(case, events, set(arns), started)
    finally:
        world.close()


# -- 2. events before the API shows SUCCEEDED -----------------------------------------------------------------


def run_pending(make_world: WorldFactory, consumers: Sequence[Worker], sizes: EventSizes, seed: int) -> EventCase:
    """ZIPs that land while the API still says PENDING. Some: delivered again until the API says SUCCEEDED,
    then archived. Others: PENDING at every receive up to MAX_PENDING_RECEIVES (3), then acknowledged as
    left_to_reconcile (never dead-lettered), and archived by the next reconcile run."""
    started = time.monotonic()
    case = EventCase("events before the API shows SUCCEEDED")
    world = make_world()
    try:
        events = EventWorld(world, consumers[:1], max_pending_receives=3)
        n = sizes.pending_sessions
        world.gls.config(export_success_delay_ms=600_000)
        caught_up = events.export(n)
        events.drain(lambda: events.tally()[PENDING] >= n, visibility_timeout=1)
        world.gls.config(export_success_delay_ms=0)  # the API catches up: the next delivery archives them
        events.drain(lambda: events.tally()[ARCHIVED] >= n, visibility_timeout=1)
        expect(case, "first: outcomes", dict(events.tally()), {PENDING: n, ARCHIVED: n})
        world.gls.config(export_success_delay_ms=600_000)
        late = events.export(n)
        events.drain(lambda: events.tally()[LEFT] >= n, visibility_timeout=1)
        # receives 1 and 2 PENDING, the 3rd (MAX_PENDING_RECEIVES) left to the reconciler; none dead-lettered
        expect(case, "then: outcomes", dict(events.tally()), {PENDING: 3 * n, ARCHIVED: n, LEFT: n})
        expect(case, "archived while the API said PENDING", world.progress(set(late)), 0)
        world.gls.config(export_success_delay_ms=0)
        reconcile(world, case, archived=n)
        case.sessions = 2 * n
        return _finish(case, events, set(caught_up) | set(late), started)
    finally:
        world.close()


# -- 3. the consumer and the reconciler racing -----------------------------------------------------------------


def run_race(make_world: WorldFactory, consumers: Sequence[Worker], sizes: EventSizes, seed: int) -> EventCase:
    """Round after round: new exports land, each event twice on the queue; then at once (a barrier) the
    reconciler and two consumer instances, each in its own process, archive the same sessions. Each session
    must count `archived` exactly once across all writers (reconciler total.archived + consumers' archived
    = new sessions), every item equal to the stored record."""
    started, rng = time.monotonic(), random.Random(seed)
    case = EventCase("consumer x2 and reconciler racing")
    world = make_world(settings={"MAX_CONCURRENCY": "4"})
    try:
        events = EventWorld(world, consumers[:2], judge=False)
        events.racing = True
        expected: set[str] = set()
        for number in range(sizes.race_rounds):
            arns = events.export(sizes.race_sessions)
            expected |= set(arns)
            bodies = events.take(len(arns)) * 2
            rng.shuffle(bodies)
            events.send(bodies)
            world.faults = list(RACE_FAULTS[number % len(RACE_FAULTS)])
            world.arm()
            before, handled = events.tally()[ARCHIVED], events.handled()
            reconcile = _race(world, events, handled + len(bodies))
            calls, _ = world.counts()
            world.disarm()
            world.faults = []
            case.readbacks += calls.get("GetObject", 0)
            consumed = events.tally()[ARCHIVED] - before
            where = f"round {number + 1}"
            if reconcile is None or reconcile.get("total") is None:
                case.violations.append(f"{where}: the reconcile run failed: {reconcile}")
                continue
            total = reconcile["total"]
            case.reconciled += int(total.get("archived", 0))
            case.violations += [f"{where}: {p}" for p in counts_add_up(total, "total")]
            if int(total.get("failed", 0)) or events.tally()["failed"]:
                case.violations.append(f"{where}: failures in a race without faults: {total}, {events.tally()}")
            if int(total.get("archived", 0)) + consumed != len(arns):
                case.violations.append(
                    f"{where}: reconciler archived {total.get('archived')} + consumers {consumed} != {len(arns)} new"
                )
            case.violations += [f"{where}: {p}" for p in consistency(world.snapshot())]
        world.touched()
        if sizes.race_rounds >= 2 and case.readbacks == 0:  # the second round has latency on PutItem
            case.violations.append("no writer ever found a record stored by another (no 412): the race never raced")
        case.sessions = len(expected)
        case.notes.append(f"{sizes.race_rounds} rounds of {sizes.race_sessions}")
        return _finish(case, events, expected, started)
    finally:
        world.close()


def _race(world: World, events: EventWorld, handled: int) -> dict[str, Any] | None:
    """The reconciler (its own worker) and the consumers (theirs), released together; the reconciler's summary."""
    gate = threading.Barrier(2)
    summary: list[dict[str, Any] | None] = [None]
    errors: list[BaseException] = []

    def reconciler() -> None:
        gate.wait(WAIT)
        invocation = world.worker.invoke(world.env(), timeout=WAIT)
        summary[0] = invocation.summary if not invocation.failed else {"error": invocation.error}

    thread = threading.Thread(target=reconciler, name="race-reconciler")
    thread.start()
    try:
        gate.wait(WAIT)
        events.drain(lambda: events.handled() >= handled)
    except BaseException as error:
        errors.append(error)
    finally:
        thread.join(WAIT)
    if errors:
        raise errors[0]
    return summary[0]


# -- 4. SIGKILL of the consumer -----------------------------------------------------------------------------


def run_kill(
    make_world: WorldFactory, consumers: Sequence[Worker], sizes: EventSizes, point: tuple[str, int, str, str]
) -> EventCase:
    """SIGKILL the consumer's process at the point (one batch of exports in flight); right after, no item may
    be without its record. Then the redelivered batch (or a reconcile run first) must complete every session,
    a session the killed writer stored the record of from that very record (the same bytes, one version)."""
    operation, nth, when, completer = point
    started = time.monotonic()
    case = EventCase(f"kill at {operation} #{nth} {when}, then {completer}")
    world = make_world()
    try:
        events = EventWorld(world, consumers[:1])
        driver = events.drivers[0]
        arns = events.export(sizes.kill_sessions)
        orphans: dict[str, bytes] = {}  # records stored by the killed writer, without their items

        def right_after_kill() -> None:
            snapshot = world.snapshot()
            case.violations.extend(f"right after the kill: {p}" for p in consistency(snapshot))
            with_items = set(snapshot.items.values())
            orphans.update({key: events.object_body(key) for key in snapshot.keys if key not in with_items})

        driver.on_kill = right_after_kill
        world.arm((operation, nth, when), pid=driver.worker.pid)
        events.drain(lambda: driver.kills >= 1, visibility_timeout=1)
        world.disarm()
        done_by_killed = world.progress(set(arns))
        if completer == "reconcile":
            reconcile(world, case)
        world.arm()  # no faults: counts the consumer's calls from here
        events.drain(lambda: world.progress(set(arns)) == len(arns) and events.depth() == 0, visibility_timeout=1)
        case.readbacks += world.counts()[0].get("GetObject", 0)
        world.disarm()
        counted = events.tally()[ARCHIVED] + case.reconciled + done_by_killed
        expect(case, "archived by the killed writer + the consumer + reconcile", counted, len(arns))
        versions = world.object_versions()
        for key, body in orphans.items():
            if len(versions.get(key, [])) != 1:
                case.violations.append(f"{key}: {len(versions.get(key, []))} versions of the killed writer's record")
            elif events.object_body(key) != body:
                case.violations.append(f"{key}: the record is not the one the killed writer stored")
        if operation in ("PutItem", "PutObject") and (when == "before") == (operation == "PutItem") and not orphans:
            case.violations.append("the kill left no record without its item: nothing to complete")
        case.notes.append(f"{len(orphans)} record(s) without item after the kill, {done_by_killed} archived by it")
        case.sessions = len(arns)
        return _finish(case, events, set(arns), started)
    finally:
        world.close()


# -- 5. hostile keys and bodies -----------------------------------------------------------------------------


def run_hostile(
    make_world: WorldFactory, consumers: Sequence[Worker], sizes: EventSizes, seed: int, *, nested: bool = True
) -> EventCase:
    """Keys with `../`, `%2F`, unicode, 1,024 bytes (and 1,025), other accounts' sessions, stream groups not
    ours, outside the prefix, not .zip; bodies that are no S3 event at all (`nested`: one too deep for the
    json module too). Each acknowledged with the outcome the contract gives it, in batches with real exports,
    which are archived; nothing else is."""
    started, rng = time.monotonic(), random.Random(seed)
    case = EventCase("hostile keys and bodies")
    world = make_world()
    try:
        events = EventWorld(world, consumers[:1])
        ours = events.export(sizes.hostile_sessions)
        real = events.take(len(ours))
        other = GameLiftStreamsBackend(seed + 1, REGION, account_id=OTHER_ACCOUNT)
        other_names = [
            str(d["ExportFilesMetadata"]["OutputUri"]).rsplit("/", 1)[-1]
            for d in other.seed_sessions(3, succeeded_fraction=1.0)
        ]
        failed = world.gls.add(ExportFilesMetadata={"Status": "FAILED"})
        group, session = str(failed["Arn"]).rsplit("/", 2)[-2:]
        own_session = ours[1].rsplit("/", 1)[-1]
        hostile = hostile_messages(
            events.bucket,
            events.prefix,
            events.zip_name(ours[0]),
            other_names,
            own_session,
            f"{events.bucket}-other",
            nested=nested,
        )
        hostile.append(
            Hostile(
                "export FAILED",
                object_created(events.bucket, f"{events.prefix}20260101-000000-a-x-{group}-{session}.zip"),
            )
        )
        direct = [h.body for h in hostile] + real
        rng.shuffle(direct)
        events.send(direct)
        events.drain(lambda: events.handled() >= len(direct))
        # The same keys through the real chain, where S3 can hold them; the rule forwards only .zip keys
        # under the prefix: exactly those reach the queue.
        storable = [h.key for h in hostile if h.storable and h.key]
        for key in storable:
            events.put(key)
        forwarded = [k for k in storable if k.startswith(events.prefix) and k.endswith(".zip")]
        handled = events.handled()
        events.drain(lambda: events.handled() >= handled + len(forwarded))
        expect(case, "archived", events.tally()[ARCHIVED], len(ours))
        batches = events.batches()
        errors = [b.error for b in batches if b.error]
        if errors:
            case.violations.append(f"{len(errors)} invocations failed: {errors[:2]}")
        case.sessions = len(ours)
        case.notes.append(
            f"{len(hostile)} hostile messages straight to the queue, {len(forwarded)} of {len(storable)} "
            "stored keys forwarded by the rule"
        )
        return _finish(case, events, set(ours), started)
    finally:
        world.close()


# -- 6. a burst ---------------------------------------------------------------------------------------------


def run_burst(make_world: WorldFactory, consumers: Sequence[Worker], sizes: EventSizes, seed: int) -> EventCase:
    """`burst` exports land as fast as moto's S3 takes them (8 writers), two consumer instances draining the
    queue meanwhile; every session archived once, a reconcile run then finds nothing. A message delivered again
    (SQS is at-least-once: on a loaded machine a message can outlive its visibility timeout) must find its
    session already archived; how many were is noted."""
    started = time.monotonic()
    case = EventCase(f"burst of {sizes.burst:,} exports")
    world = make_world(settings={"MAX_CONCURRENCY": "8"})
    try:
        events = EventWorld(world, consumers[:2], judge=False)
        keys = events.bulk_exports(sizes.burst)
        peak, sampled = [0], [0.0]
        landed = threading.Event()

        def land() -> None:
            try:
                events.land(keys.values(), backlog=sizes.burst_backlog)
            finally:
                landed.set()

        def watch() -> bool:  # the queue's depth about once a second while exports land (each look costs)
            done = events.handled() >= len(keys)
            if not done and not landed.is_set() and time.monotonic() - sampled[0] >= 1.0:
                sampled[0] = time.monotonic()
                peak[0] = max(peak[0], events.depth())
            return done

        writer = threading.Thread(target=land, name="burst-writer")
        t0 = time.monotonic()
        writer.start()
        try:
            events.drain(watch, timeout=max(WAIT, sizes.burst * 0.1))
        finally:
            writer.join(WAIT)
        drained = time.monotonic() - t0
        tally = dict(events.tally())
        again = tally.pop(ALREADY, 0)
        expect(case, "outcomes", tally, {ARCHIVED: len(keys)})
        if again:
            case.notes.append(f"{again} message(s) delivered again, each found its session already archived")
        reconcile(world, case, archived=0)
        case.sessions = len(keys)
        case.notes.append(f"landed and drained in {drained:.0f} s, queue depth up to {peak[0]:,}")
        return _finish(case, events, set(keys), started)
    finally:
        world.close()


# -- 7. a listing longer than one invocation's budget --------------------------------------------------------


# -- all of them ------------------------------------------------------------------------------------------------


def event_plan(
    make_world: WorldFactory, consumers: Sequence[Worker], sizes: EventSizes, seed: int
) -> list[tuple[str, Callable[[], EventCase]]]:
    """Every case of the suite, named, in the order `make reliability` runs them."""
    from local.reliability.suites import follow_ups  # noqa: PLC0415 - it imports this module

    plan: list[tuple[str, Callable[[], EventCase]]] = [
        ("duplicates", functools.partial(run_duplicates, make_world, consumers, sizes, seed)),
        ("pending", functools.partial(run_pending, make_world, consumers, sizes, seed)),
        ("race", functools.partial(run_race, make_world, consumers, sizes, seed)),
    ]
    plan += [
        (f"kill {p[0]} #{p[1]} {p[2]}", functools.partial(run_kill, make_world, consumers, sizes, p))
        for p in sizes.kill_points
    ]
    plan += [
        ("hostile", functools.partial(run_hostile, make_world, consumers, sizes, seed)),
        ("burst", functools.partial(run_burst, make_world, consumers, sizes, seed)),
        ("chain", functools.partial(follow_ups.run_chain, make_world, sizes, seed)),
    ]
    return plan


def run_events(
    make_world: WorldFactory,
    consumers: Sequence[Worker],
    sizes: EventSizes,
    seed: int,
    progress: Callable[[EventCase], None] = lambda _case: None,
) -> list[EventCase]:
    """Every case of the suite; a case that raises is reported failed with its error, the others still run."""
    cases: list[EventCase] = []
    for name, run in event_plan(make_world, consumers, sizes, seed):
        try:
            case = run()
        except Exception as error:
            case = EventCase(name, violations=[f"{type(error).__name__}: {str(error)[:500]}"])
        cases.append(case)
        progress(case)
    return cases

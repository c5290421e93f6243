"""The reconciler's follow-up invocations in the reliability harness: a listing longer than one invocation's
budget, finished by the chain of self-invocations through the local Lambda service (run one at a time, as
reserved concurrency 1 does), with every new session archived once. One case of the event-path suite
(`local.reliability.suites.events`), which judges and reports it like the others.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any, Final

from local.reliability.constants import ACCOUNT
from local.reliability.scenarios import fault
from local.reliability.suites.events import EventCase, EventSizes, expect, reconcile
from local.reliability.world import World, WorldFactory
from local.worker import CONTEXT_FIELDS, Invocation

CHAIN_TIMEOUT: Final = 1.2  # seconds of Lambda timeout per invocation of the chain
CHAIN_LIST_LATENCY: Final = 0.5  # seconds each list call is held: at most 3 pages an invocation


def run_chain(make_world: WorldFactory, sizes: EventSizes, seed: int) -> EventCase:
    """`chain_pages` pages, all archived but 3 sessions a page whose exports succeeded since; each list call
    held CHAIN_LIST_LATENCY and a CHAIN_TIMEOUT Lambda timeout, so one invocation lists at most 3 pages
    however fast the machine. The reconciler invokes itself (InvocationType Event, FunctionName its ARN from
    the context) through the local Lambda service, which runs the follow-ups one at a time: the chain must
    finish the listing with every new session archived once, each follow-up going on where the previous one
    stopped (listing again at most the page it resumes from, never from the first page)."""
    from local.lambda_service import LambdaService  # noqa: PLC0415 - only this case needs it

    started = time.monotonic()
    case = EventCase(f"listing of {sizes.chain_pages} pages across follow-up invocations")
    world = make_world(settings={"MAX_CONCURRENCY": "4"})
    service = LambdaService(region=world.region, account_id=ACCOUNT, background=False)
    try:
        late = _pages_with_late_exports(world, case, sizes.chain_pages, random.Random(seed))
        service.start()
        links = sizes.chain_pages + 5  # MAX_CONTINUATIONS: more than the chain can need
        env = {"AWS_ENDPOINT_URL_LAMBDA": service.endpoint_url, "MAX_CONTINUATIONS": str(links)}
        runs: list[Invocation] = []

        def reconciler(event: Any, context: Any) -> Any:
            identity = {name: str(getattr(context, name)) for name in CONTEXT_FIELDS}
            world.faults = [fault("ListStreamSessionsByAccount", "latency", seconds=CHAIN_LIST_LATENCY)]
            run = world.run(timeout=CHAIN_TIMEOUT, env=env, event=event, context=identity)
            runs.append(run)
            if run.failed:
                raise RuntimeError(run.error)
            return run.summary

        function = service.add_function("session-archiver", handler=reconciler, timeout_seconds=CHAIN_TIMEOUT)
        service.backend.enqueue(function, function.arn, {})  # what the schedule does
        ran = service.run_pending(limit=links + 2)
        world.faults = []
        if any(i.status != "succeeded" for i in ran):
            case.violations.append(f"invocations failed: {[i.error for i in ran if i.error][:2]}")
        _judge_chain(case, runs, sizes.chain_pages, len(late))
        case.sessions = sizes.chain_pages * 100
        case.audit = world.audit()  # the records are the reconciler's, checked column by column elsewhere
        if case.audit.overwrites:
            case.violations.append(f"{case.audit.overwrites} records written twice")
        case.violations += world.violations
        case.seconds = time.monotonic() - started
        return case
    finally:
        service.stop()
        world.close()


def _pages_with_late_exports(world: World, case: EventCase, pages: int, rng: random.Random) -> list[str]:
    """`pages` pages of sessions, archived by one reconcile run, but for 3 a page whose exports were PENDING
    then and SUCCEEDED now (in a random order): the new sessions, spread over every page."""
    late: list[str] = []
    for _ in range(pages):
        world.seed(97)
        late += [str(world.gls.add(ExportFilesMetadata={"Status": "PENDING"})["Arn"]) for _ in range(3)]
    reconcile(world, case, archived=pages * 97)
    case.reconciled = 0
    for arn in rng.sample(late, len(late)):
        world.gls.set_export(arn, "SUCCEEDED")
    return late


def _judge_chain(case: EventCase, runs: Sequence[Invocation], pages: int, late: int) -> None:
    """One scheduled run and its follow-ups, links 0, 1, 2, ... in order; the last one finished the listing,
    which no invocation can do alone (nor a chain whose follow-ups start again at page 1); every late session
    archived once."""
    case.reconciled = sum(r.total("archived") for r in runs)
    most = math.ceil(CHAIN_TIMEOUT / CHAIN_LIST_LATENCY)  # pages one invocation can list
    if len(runs) < math.ceil(pages / most):
        case.violations.append(f"{len(runs)} invocation(s) for {pages} pages: the budget did not bound the listing")
    last = (runs[-1].summary or {}) if runs else {}
    if (last.get("continuation") or {}).get("follow_up") is not None:
        case.violations.append(f"the chain did not finish: {last.get('continuation')}")
    links = [int(((r.summary or {}).get("continuation") or {}).get("link", 0)) for r in runs]
    expect(case, "the chain's links", links, list(range(len(runs))))
    expect(case, "archived by the chain", case.reconciled, late)
    listed = sum(r.total("listed") for r in runs)
    calls = sum(r.calls.get("ListStreamSessionsByAccount", 0) for r in runs)
    case.notes.append(
        f"{len(runs)} invocations (1 + {len(runs) - 1} follow-ups), {calls} list calls, {listed:,} sessions "
        f"listed (a follow-up lists again the pages from the first one with a session not yet done)"
    )

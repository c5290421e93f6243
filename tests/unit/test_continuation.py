"""A run out of time goes on in follow-up invocations: where each Region stands, and nothing lost or twice."""

from __future__ import annotations

from typing import Any

import pytest

from archiver import continuation
from archiver.run import RegionRun, Resume
from local.lambda_context import SCHEDULED_EVENT, LambdaContext

from .fakes import OTHER_REGION, REGION, World
from .test_handler import Lambda, container

__all__ = ["container"]  # the fixture: one in-memory Lambda container


def region_run(world: World, budget: float | None, start: Resume | None = None, **settings: Any) -> RegionRun:
    values = world.settings(**settings)
    return RegionRun(
        world.source(REGION),
        world.ledger(),
        world.store(),
        values,
        world.budget(budget),
        now=world.clock.wall,
        start=start,
        exports=world.exports(),
    )


def test_a_listing_longer_than_one_budget_goes_on_where_it_stopped_until_its_end() -> None:
    world = World()
    arns = world.gls.add_sessions(1_050)  # 11 pages, all archived: the listing alone is the work
    world.ddb.tables[world.settings().table_name].update(
        {arn: {"session_arn": {"S": arn}, "s3_key": {"S": "k"}} for arn in arns}
    )
    world.gls.latency["ListStreamSessionsByAccount"] = 1.0  # fake seconds: 4 pages per invocation
    reports = [region_run(world, 3.5).run()]
    while (resume := reports[-1].resume) is not None:
        assert len(reports) < 10, "the chain does not advance"
        reports.append(region_run(world, 3.5, resume).run())

    assert [report.counts.listed for report in reports] == [400, 400, 250]  # each page listed once
    asked = [call.params.get("NextToken") for call in world.log.of("ListStreamSessionsByAccount")]
    assert asked == [None, *(f"next-{n}" for n in range(100, 1_050, 100))]
    assert all(report.error is None and report.counts.deferred == 0 for report in reports)


def test_deferred_sessions_make_the_follow_up_start_at_their_page() -> None:
    world = World()
    world.gls.add_sessions(300)  # 3 pages, listed at once; archiving is the slow part
    world.gls.latency["GetStreamSession"] = 1.0
    report = region_run(world, 50.5, max_concurrency=1).run()

    assert report.counts.deferred > 0
    assert report.resume == Resume(None)  # the first page still has sessions not archived
    world.gls.latency["GetStreamSession"] = 0.0
    puts = len(world.s3.calls("PutObject"))
    follow = region_run(world, None, report.resume).run()
    assert follow.resume is None
    assert len(world.archived()) == 300
    assert follow.counts.already_archived == report.counts.archived
    assert len(world.s3.calls("PutObject")) - puts == follow.counts.archived  # the archived ones not written again


def test_a_completed_listing_leaves_nothing_to_follow() -> None:
    world = World()
    world.gls.add_sessions(250)
    assert region_run(world, None).run().resume is None


def test_a_failed_listing_is_not_continued() -> None:
    world = World()
    world.gls.add_sessions(250)
    world.gls.fail("ListStreamSessionsByAccount", "InternalServerException", 500, times=None)
    report = region_run(world, None).run()
    assert report.error is not None and report.resume is None


def test_the_follow_up_event_reads_back_and_only_names_unfinished_regions() -> None:
    regions = {REGION: Resume("token-1"), OTHER_REGION: Resume(None)}
    event = continuation.event(2, regions)
    assert continuation.parse(event) == continuation.Chain(2, regions)
    assert continuation.parse({"continuation": {"link": 1, "regions": {}}}) is None


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"continuation": None},
        {"continuation": {"link": 0, "regions": {REGION: {"token": None}}}},
        {"continuation": {"link": True, "regions": {REGION: {"token": None}}}},
        {"continuation": {"link": 1, "regions": {"not a region": {"token": None}}}},
        {"continuation": {"link": 1, "regions": {REGION: {"token": 7}}}},
        {"continuation": {"link": 1, "regions": {REGION: {"token": "x" * 9_000}}}},
        {"continuation": {"link": 1, "regions": {REGION: "token"}}},
        {"continuation": {"link": 1, "regions": [REGION]}},
    ],
)
def test_a_malformed_continuation_is_a_full_run(event: dict[str, Any]) -> None:
    assert continuation.parse(event) is None


def test_a_run_out_of_time_invokes_itself_with_its_position_and_the_follow_up_goes_on_from_it(
    container: Lambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_REGIONS", f"{REGION},{OTHER_REGION}")
    monkeypatch.setenv("MAX_CONTINUATIONS", "2")
    world = container.world
    ours = set(world.gls.add_sessions(150, region=REGION)) | set(world.gls.add_sessions(150, region=OTHER_REGION))
    context = LambdaContext(timeout_seconds=20.0)  # under the 30 s margin: no new work, nothing listed

    summary = container.invoke(SCHEDULED_EVENT, context)

    assert summary["continuation"] == {
        "link": 0,
        "follow_up": {"link": 1, "regions": [REGION, OTHER_REGION], "invoked": True},
    }
    [(function, event)] = world.lambda_.invoked
    assert function == context.invoked_function_arn
    assert event == continuation.event(1, {REGION: Resume(None), OTHER_REGION: Resume(None)})
    assert world.archived() == set()

    world.gls.fail("ListStreamSessionsByAccount", "InternalServerException", 500, times=None, region=OTHER_REGION)
    follow = container.invoke({"continuation": {"link": 1, "regions": {REGION: {"token": None}}}})

    assert world.archived() == {arn for arn in ours if f":{REGION}:" in arn}
    assert set(follow["regions"]) == {REGION}  # only the Region named, so the failing one is never asked
    assert follow["continuation"] == {"link": 1, "follow_up": None}
    assert len(world.lambda_.invoked) == 1


def test_the_chain_stops_at_its_bound(container: Lambda, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONTINUATIONS", "2")
    container.world.gls.add_sessions(10)
    event = continuation.event(2, {REGION: Resume(None)})
    summary = container.invoke(event, LambdaContext(timeout_seconds=20.0))
    assert summary["continuation"]["follow_up"] == {"link": 3, "regions": [REGION], "invoked": False}
    assert container.world.lambda_.invoked == []


def test_without_max_continuations_a_run_never_invokes_itself(container: Lambda) -> None:
    container.world.gls.add_sessions(10)
    summary = container.invoke(SCHEDULED_EVENT, LambdaContext(timeout_seconds=20.0))
    assert summary["continuation"]["follow_up"]["invoked"] is False
    assert container.world.lambda_.invoked == []

"""The pipeline over in-memory AWS: what is archived, counted, asked and written, in milliseconds.

The adapters are the real ones, over real boto3 clients answered by tests/unit/fakes.py; time is a fake
clock, so budgets are exact. The same paths over HTTP against the local stack are in tests/integration.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from archiver.budget import OutOfTime
from archiver.ownership import Owner
from archiver.records import REDACTED, UNDATED_CREATED_AT, ledger_item, object_key, parse_session_arn
from archiver.run import Counts, RegionRun

from .fakes import ACCOUNT, BUCKET, GROUP, KEY_ATTRIBUTE, OTHER_REGION, REGION, World, session_arn

DATA_PATH = ("GetStreamSession", "PutObject", "PutItem")


def counts(**nonzero: int) -> dict[str, int]:
    return {**asdict(Counts()), **nonzero}


def about(arn: str) -> Callable[[dict[str, Any]], bool]:
    """A fault filter: calls whose parameters name this session (its ARN, or its S3 key)."""
    session_id = arn.rsplit("/", 1)[1]
    return lambda params: session_id in json.dumps(params, default=str)


def key_of(world: World, arn: str) -> str:
    parsed = parse_session_arn(arn)
    assert parsed is not None
    return object_key("sessions/", parsed, world.gls.detail(arn)["CreatedAt"])


def assert_nothing_marked_that_is_not_archived(world: World) -> None:
    in_s3 = {record["session_arn"] for record in world.s3.objects().values()}
    assert set(world.ddb.items()) <= in_s3


# --- The happy path ---------------------------------------------------------------------------


def test_a_run_archives_every_new_session_across_pages_with_the_minimal_calls() -> None:
    world = World()
    new = set(world.gls.add_sessions(250))
    world.gls.add_sessions(5, ExportFilesMetadata={"Status": "FAILED"})
    world.gls.add_sessions(5, ExportFilesMetadata={"Status": "PENDING"})

    report = world.run()

    assert world.archived() == new and len(world.s3.objects()) == 250
    assert report.errors == []
    assert asdict(report.total) == counts(listed=250, new=250, archived=250)
    lists = world.gls.calls("ListStreamSessionsByAccount")
    assert [c.params for c in lists] == [
        {"ExportFilesStatus": "SUCCEEDED", "MaxResults": 100},
        {"ExportFilesStatus": "SUCCEEDED", "MaxResults": 100, "NextToken": "next-100"},
        {"ExportFilesStatus": "SUCCEEDED", "MaxResults": 100, "NextToken": "next-200"},
    ]
    assert len(world.ddb.calls("BatchGetItem")) == 3
    assert {c.params["StreamSessionIdentifier"] for c in world.gls.calls("GetStreamSession")} == new
    assert [world.log.count(op) for op in DATA_PATH] == [250, 250, 250]
    # Paced: a token before every page and before every GetStreamSession.
    assert world.limiters[f"list/{REGION}"].acquired >= len(lists)
    assert world.limiters[f"get/{REGION}"].acquired == 250


def test_each_record_is_the_sessions_detail_under_a_key_from_its_arn_and_creation_date() -> None:
    world = World()
    world.gls.add_sessions(4)
    world.region_run().run()

    items = world.ddb.items()
    assert len(world.s3.objects()) == 4
    for key, record in world.s3.objects().items():
        arn = record["session_arn"]
        detail = world.gls.detail(arn)
        assert key == key_of(world, arn)
        assert world.s3.content_types[key] == "application/json"
        assert record["export_output_uri"] == detail["ExportFilesMetadata"]["OutputUri"]
        assert record["export_status"] == "SUCCEEDED"
        assert record["user_id"] == detail["UserId"] and record["status"] == detail["Status"]
        assert record["additional_environment_variables"] == {"API_TOKEN": REDACTED}
        assert record["archived_at"] == "2026-11-28 05:00:00.000"  # the run's clock (fakes.EPOCH)
        assert items[arn] == {
            "session_arn": arn,
            "s3_key": key,
            "schema_version": "2",
            "archived_at": record["archived_at"],
            "created_at": record["created_at"],
            "export_output_uri": detail["ExportFilesMetadata"]["OutputUri"],
        }
    stored = b"".join(world.s3.buckets["archive-bucket"].values()).decode() + json.dumps(items)
    assert "SECRET" not in stored and "API_TOKEN" in stored


def test_environment_values_are_kept_only_when_the_operator_opts_in() -> None:
    world = World()
    world.gls.add_sessions(2)
    world.region_run(keep_environment_values=True).run()
    assert [r["additional_environment_variables"] for r in world.s3.objects().values()] == [
        {"API_TOKEN": "SECRET-ENV-VALUE"}
    ] * 2


def test_launch_argument_values_are_kept_only_when_the_operator_opts_in() -> None:
    world = World()
    world.gls.add_sessions(2)
    world.run()
    world.gls.add_sessions(2)
    world.region_run(keep_launch_argument_values=True).run()
    assert sorted(r["additional_launch_args"] for r in world.s3.objects().values()) == [
        ["-fps", "60"],
        ["-fps", "60"],
        ["-fps", REDACTED],
        ["-fps", REDACTED],
    ]


def test_s3_is_written_before_dynamodb_for_every_session() -> None:
    world = World()
    world.gls.add_sessions(30)
    world.run()
    order = [
        (call.operation, call.params["Key"] if call.operation == "PutObject" else call.params["Item"]["s3_key"]["S"])
        for call in world.log
        if call.operation in {"PutObject", "PutItem"}
    ]
    assert len(order) == 60
    for key in {key for _, key in order}:
        assert order.index(("PutObject", key)) < order.index(("PutItem", key))


def test_a_second_run_only_lists_and_checks() -> None:
    world = World()
    world.gls.add_sessions(120)
    world.run()
    world.log.clear()
    report = world.run()
    assert asdict(report.total) == counts(listed=120, already_archived=120)
    assert [world.log.count(op) for op in DATA_PATH] == [0, 0, 0]
    assert world.log.count("ListStreamSessionsByAccount") == world.log.count("BatchGetItem") == 2


def test_a_session_listed_twice_is_archived_once_and_counted_repeated() -> None:
    world = World()
    arns = world.gls.add_sessions(150)
    world.gls.list_again(arns[0])  # it appears again on the second page
    report = world.region_run().run()
    assert asdict(report.counts) == counts(listed=151, new=150, archived=150, repeated=1)
    assert world.log.count("GetStreamSession") == 150


def test_an_expired_next_token_restarts_the_listing_and_is_reported() -> None:
    world = World()
    world.gls.add_sessions(150)
    world.gls.expire_tokens = 1
    report = world.region_run().run()
    assert report.list_restarts == 1 and report.error is None
    assert asdict(report.counts) == counts(listed=250, new=150, archived=150, repeated=100)


def test_values_dynamodb_would_refuse_are_left_out_of_the_item_only() -> None:
    world = World()
    long_uri = "s3://exports/" + "a" * 3000
    odd_uri = "s3://exports/\ud800.zip"  # a lone surrogate is not UTF-8
    long_arn = world.gls.add_session(ExportFilesMetadata={"Status": "SUCCEEDED", "OutputUri": long_uri})["Arn"]
    odd_arn = world.gls.add_session(ExportFilesMetadata={"Status": "SUCCEEDED", "OutputUri": odd_uri})["Arn"]
    report = world.region_run().run()
    assert report.counts.archived == 2
    items, records = world.ddb.items(), {r["session_arn"]: r for r in world.s3.objects().values()}
    assert "export_output_uri" not in items[long_arn] and records[long_arn]["export_output_uri"] == long_uri
    assert "export_output_uri" not in items[odd_arn] and records[odd_arn]["export_output_uri"] == odd_uri


def test_an_undated_session_is_keyed_by_the_undated_day() -> None:
    world = World()
    arn = world.gls.add_session(CreatedAt=None)["Arn"]
    world.region_run().run()
    parsed = parse_session_arn(arn)
    assert parsed is not None
    assert set(world.s3.objects()) == {object_key("sessions/", parsed, UNDATED_CREATED_AT)}
    assert "created_at" not in world.ddb.items()[arn]


def test_malformed_list_items_are_skipped_and_the_rest_archived() -> None:
    world = World()
    good = world.gls.add_session()["Arn"]
    for bad in (None, "not-an-arn", f"arn:aws:gameliftstreams:{REGION}:111122223333:streamsession/../x"):
        world.gls.add_session(Arn=bad)
    report = world.region_run().run()
    assert asdict(report.counts) == counts(listed=4, skipped=3, new=1, archived=1)
    assert world.archived() == {good}


# --- Only the function's own sessions (archiver.ownership) ------------------------------------

OWNER = Owner(frozenset({REGION, OTHER_REGION}), ACCOUNT, "aws")
FOREIGN_ACCOUNT = f"arn:aws:gameliftstreams:{REGION}:999999999999:streamsession/{GROUP}/s00000777"
FOREIGN_REGION = f"arn:aws:gameliftstreams:eu-central-1:{ACCOUNT}:streamsession/{GROUP}/s00000778"
FOREIGN_PARTITION = f"arn:aws-us-gov:gameliftstreams:{REGION}:{ACCOUNT}:streamsession/{GROUP}/s00000779"


def owned_run(world: World, owner: Owner = OWNER) -> RegionRun:
    """REGION's run as the handler makes it: for the function's account and partition, both source Regions."""
    settings = world.settings(tuple(sorted(owner.regions, key=lambda region: region != REGION)))
    return RegionRun(
        world.source(REGION),
        world.ledger(),
        world.store(),
        settings,
        world.budget(),
        world.clock.wall,
        owner=owner,
        exports=world.exports(),
    )


def foreign_warnings(logs: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in logs.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == "Session not archived: not this function's"]


def test_listed_sessions_of_another_account_partition_or_region_are_counted_foreign_never_asked_about(
    logs: pytest.CaptureFixture[str],
) -> None:
    world = World()
    good = world.gls.add_session()["Arn"]
    other_source = world.gls.add_session(Arn=session_arn(50, region=OTHER_REGION))["Arn"]  # listed in REGION
    for arn in (FOREIGN_ACCOUNT, FOREIGN_REGION, FOREIGN_PARTITION):
        world.gls.add_session(Arn=arn)  # the API would answer for each: the run must never ask
    world.gls.list_again(FOREIGN_ACCOUNT)  # listed twice: counted once, then repeated, like a new one

    report = owned_run(world).run()

    assert asdict(report.counts) == counts(listed=6, foreign=3, repeated=1, new=2, archived=2)
    assert world.archived() == {good, other_source}  # another source Region is filed under its own partition
    assert {key.split("/")[1] for key in world.s3.objects()} == {
        f"source_region={REGION}",
        f"source_region={OTHER_REGION}",
    }
    asked = {call.params["StreamSessionIdentifier"] for call in world.gls.calls("GetStreamSession")}
    assert asked == {good, other_source}
    warned = sorted((line["session_arn"], line["reason"], line["level"]) for line in foreign_warnings(logs))
    assert warned == sorted(  # one line each, not one per listing
        [
            (FOREIGN_ACCOUNT, "account", "WARNING"),
            (FOREIGN_REGION, "region", "WARNING"),
            (FOREIGN_PARTITION, "partition", "WARNING"),
        ]
    )


def test_foreign_sessions_are_counted_again_by_every_run_and_never_marked() -> None:
    world = World()
    world.gls.add_session(Arn=FOREIGN_ACCOUNT)
    assert [asdict(owned_run(world).run().counts) for _ in range(2)] == [counts(listed=1, foreign=1)] * 2
    assert world.ddb.items() == {} and world.s3.objects() == {}


@pytest.mark.parametrize(
    "answered",
    [FOREIGN_ACCOUNT, FOREIGN_REGION, FOREIGN_PARTITION, session_arn(99), f"arn:aws:gameliftstreams:{REGION}:x", 7],
)
def test_an_answer_naming_another_session_is_counted_foreign_and_nothing_is_written(
    answered: object, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World()
    good, asked = world.gls.add_sessions(2)
    real_get = world.gls.get_stream_session

    def get(region: str, **params: Any) -> dict[str, Any]:
        detail = dict(real_get(region, **params))
        return detail | ({"Arn": answered} if params["StreamSessionIdentifier"] == asked else {})

    monkeypatch.setattr(world.gls, "get_stream_session", get)
    report = owned_run(world).run()

    assert asdict(report.counts) == counts(listed=2, new=2, archived=1, foreign=1)
    assert world.archived() == {good} and asked not in world.ddb.items()
    assert all(record["session_arn"] == good for record in world.s3.objects().values())
    (line,) = foreign_warnings(logs)
    assert (line["session_arn"], line["reason"]) == (asked, "answer names another session")
    assert line["answered_arn"] == (answered if isinstance(answered, str) else repr(answered))


def test_without_the_functions_account_the_pipeline_checks_the_source_regions_only() -> None:
    """What in-memory runs without an entry point do (the handler always passes its account: test_handler)."""
    world = World()
    world.gls.add_session(Arn=FOREIGN_ACCOUNT)
    world.gls.add_session(Arn=FOREIGN_REGION)
    report = world.region_run().run()
    assert asdict(report.counts) == counts(listed=2, foreign=1, new=1, archived=1)
    assert world.archived() == {FOREIGN_ACCOUNT}


# --- Per-session failures: counted, never archived, retried next run ---------------------------


def test_a_failed_s3_write_leaves_no_item_and_the_next_run_archives_it() -> None:
    world = World()
    arns = world.gls.add_sessions(5)
    world.s3.fail("PutObject", "InternalError", 500, when=about(arns[2]))
    first = world.region_run().run()
    assert asdict(first.counts) == counts(listed=5, new=5, archived=4, failed=1)
    assert world.archived() == set(arns) - {arns[2]} == set(world.ddb.items())
    second = world.region_run().run()
    assert asdict(second.counts) == counts(listed=5, already_archived=4, new=1, archived=1)
    assert world.archived() == set(arns)


def test_a_failed_dynamodb_put_keeps_the_object_and_a_later_run_completes_it_from_the_stored_record() -> None:
    world = World()
    arns = world.gls.add_sessions(3)
    world.ddb.fail("PutItem", "InternalServerError", 500, when=about(arns[1]))
    first = world.region_run().run()
    assert first.counts.failed == 1 and arns[1] not in world.ddb.items()
    key = key_of(world, arns[1])
    stored = world.s3.buckets[BUCKET][key]

    world.clock.advance(3 * 86_400)  # days later: the same key; the record written then is kept
    second = world.region_run().run()

    assert second.counts.archived == 1
    assert world.s3.buckets[BUCKET][key] == stored  # never rewritten
    puts = [c.params["Key"] for c in world.s3.calls("PutObject") if about(arns[1])(c.params)]
    assert puts == [key] * 2  # the second one refused (412), then read back
    record = json.loads(stored)
    assert world.ddb.items()[arns[1]]["archived_at"] == record["archived_at"]  # the item equals the stored record
    assert ledger_item(record, key) | {KEY_ATTRIBUTE: arns[1]} == world.ddb.items()[arns[1]]


@pytest.mark.parametrize(
    ("operation", "fault"),
    [
        ("GetStreamSession", {"code": "ThrottlingException", "status": 429}),
        ("GetStreamSession", {"exception": ReadTimeoutError(endpoint_url="https://gls")}),
        ("GetStreamSession", {"exception": KeyError("an input nobody foresaw")}),
        ("PutObject", {"code": "SlowDown", "status": 503}),
        ("PutObject", {"exception": EndpointConnectionError(endpoint_url="https://s3")}),
        ("PutItem", {"code": "ProvisionedThroughputExceededException", "status": 400}),
    ],
)
def test_a_transient_failure_of_one_session_is_counted_failed_never_archived(
    operation: str, fault: dict[str, Any]
) -> None:
    world = World()
    arns = world.gls.add_sessions(6)
    service = world.gls if operation == "GetStreamSession" else world.s3 if operation == "PutObject" else world.ddb
    service.fail(operation, when=about(arns[3]), **fault)
    report = world.region_run().run()
    assert report.error is None
    assert asdict(report.counts) == counts(listed=6, new=6, archived=5, failed=1)
    assert world.archived() == set(arns) - {arns[3]} == set(world.ddb.items())


def test_a_session_that_vanished_between_list_and_get_is_skipped_and_not_marked() -> None:
    world = World()
    arns = world.gls.add_sessions(4)
    world.gls.gone.add(arns[0])
    report = world.region_run().run()
    assert asdict(report.counts) == counts(listed=4, new=4, archived=3, skipped=1)
    assert world.archived() == set(arns[1:]) == set(world.ddb.items())
    assert world.log.count("PutObject") == 3


@pytest.mark.parametrize(
    "fault",
    [
        {"times": None, "code": "ProvisionedThroughputExceededException", "status": 400},
        {"times": None, "exception": EndpointConnectionError(endpoint_url="https://dynamodb")},
    ],
)
def test_a_page_the_ledger_cannot_check_is_counted_failed_with_no_get_and_no_write(fault: dict[str, Any]) -> None:
    world = World()
    world.gls.add_sessions(30)
    world.ddb.fail("BatchGetItem", **fault)
    report = world.region_run().run()
    assert report.error is None  # per-session failures are counted and alarmed on, not fatal
    assert asdict(report.counts) == counts(listed=30, failed=30)
    assert [world.log.count(op) for op in DATA_PATH] == [0, 0, 0]


def test_keys_left_unprocessed_after_every_retry_are_counted_failed_with_no_get_and_no_write() -> None:
    world = World()
    arns = world.gls.add_sessions(30)
    for arn in arns[:10]:  # archived earlier: their state is unknown this run all the same
        world.ddb.tables["archive"][arn] = {"session_arn": {"S": arn}, "s3_key": {"S": "k"}}
    world.ddb.leave_unprocessed(times=None, share="half")
    report = world.region_run().run()
    assert report.error is None
    assert asdict(report.counts) == counts(listed=30, failed=30)
    assert [world.log.count(op) for op in DATA_PATH] == [0, 0, 0]
    assert world.log.count("BatchGetItem") == 9  # the first ask and 8 retries of what was left


def test_keys_unprocessed_for_a_while_are_asked_again_and_never_treated_as_new() -> None:
    world = World()
    arns = world.gls.add_sessions(40)
    world.run()
    world.log.clear()
    world.ddb.leave_unprocessed(times=3, share="half")
    report = world.region_run().run()
    assert asdict(report.counts) == counts(listed=40, already_archived=40)
    assert [world.log.count(op) for op in DATA_PATH] == [0, 0, 0]
    assert world.archived() == set(arns)


# --- What fails a Region: it is named, and nothing is marked archived that is not ---------------


@pytest.mark.parametrize(
    ("fault", "on_page"),
    [
        ({"code": "ThrottlingException", "status": 429}, 1),
        ({"code": "InternalServerException", "status": 500}, 2),
        ({"exception": EndpointConnectionError(endpoint_url="https://gls")}, 1),
        ({"exception": ReadTimeoutError(endpoint_url="https://gls")}, 2),
        ({"code": "ValidationException", "status": 400}, 1),  # on the first page: not an expired token
        ({"exception": KeyError("Items")}, 2),  # a page botocore could not read
    ],
)
def test_a_listing_failure_fails_the_region_with_a_clear_error(fault: dict[str, Any], on_page: int) -> None:
    world = World()
    arns = world.gls.add_sessions(150)
    world.gls.fail(
        "ListStreamSessionsByAccount",
        times=None,
        when=lambda params: ("NextToken" in params) == (on_page == 2),
        **fault,
    )
    report = world.region_run().run()
    assert report.error is not None and f"ListStreamSessionsByAccount in {REGION}" in report.error
    assert_nothing_marked_that_is_not_archived(world)
    if on_page == 1:
        assert world.log.count("GetStreamSession") == 0 and world.ddb.items() == {}
    else:  # the first page was listed and archived before the failure
        assert world.archived() == set(arns[:100])
        assert report.counts.archived == 100


@pytest.mark.parametrize(
    ("service", "operation", "code", "named"),
    [
        ("gls", "ListStreamSessionsByAccount", "AccessDeniedException", "ListStreamSessionsByAccount in us-east-2"),
        ("gls", "GetStreamSession", "AccessDeniedException", "GetStreamSession in us-east-2"),
        ("ddb", "BatchGetItem", "ResourceNotFoundException", "BatchGetItem on table archive"),
        ("s3", "PutObject", "NoSuchBucket", "PutObject to bucket archive-bucket"),
        ("ddb", "PutItem", "AccessDeniedException", "PutItem on table archive"),
    ],
    ids=["list", "get", "check", "write-s3", "write-dynamodb"],
)
def test_an_unfixable_error_stops_the_region_at_once_and_marks_nothing(
    service: str, operation: str, code: str, named: str
) -> None:
    world = World()
    world.gls.add_sessions(40)
    getattr(world, service).fail(operation, code, 403, times=None)
    report = world.region_run(max_concurrency=4).run()
    assert report.error is not None and report.error.startswith(f"{named} failed with {code}: ")
    assert world.ddb.items() == {}
    assert len(world.gls.calls("GetStreamSession")) <= 4  # no storm: at most what was in flight


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [("ListStreamSessionsByAccount", "ThrottlingException", 429), ("GetStreamSession", "AccessDeniedException", 403)],
)
def test_one_region_failing_does_not_stop_another_and_the_error_names_it(
    operation: str, code: str, status: int
) -> None:
    world = World()
    ours = set(world.gls.add_sessions(30, region=REGION))
    world.gls.add_sessions(30, region=OTHER_REGION)
    world.gls.fail(operation, code, status, times=None, region=OTHER_REGION)

    report = world.run(regions=(REGION, OTHER_REGION))

    assert world.archived() == ours == set(world.ddb.items())
    assert len(report.errors) == 1
    assert report.errors[0].startswith(f"{OTHER_REGION}: ") and f"in {OTHER_REGION}" in report.errors[0]
    assert code in report.errors[0]
    summary = report.as_dict()
    assert summary["ok"] is False and summary["errors"] == report.errors
    assert summary["regions"][REGION]["archived"] == 30 and "error" not in summary["regions"][REGION]
    assert "error" in summary["regions"][OTHER_REGION]


def test_the_summary_adds_up_the_regions() -> None:
    world = World()
    world.gls.add_sessions(30, region=REGION)
    world.gls.add_sessions(20, region=OTHER_REGION)
    world.gls.gone.add(session_arn(31, region=OTHER_REGION))
    report = world.run(regions=(REGION, OTHER_REGION))
    summary = report.as_dict()
    assert summary["ok"] is True and summary["errors"] == []
    assert {k: v for k, v in summary["total"].items() if k != "duration_ms"} == counts(
        listed=50, new=50, archived=49, skipped=1
    )
    assert summary["regions"][OTHER_REGION]["skipped"] == 1
    assert summary["regions"][REGION]["list_restarts"] == 0


# --- The time budget (a fake clock: each call takes the fake seconds the test sets) ------------------


def test_the_budget_defers_what_the_run_cannot_finish() -> None:
    world = World()
    world.gls.add_sessions(10)
    world.gls.latency["GetStreamSession"] = 1.0
    report = world.region_run(budget_seconds=3.5, max_concurrency=1).run()
    assert asdict(report.counts) == counts(listed=10, new=10, archived=4, deferred=6)  # started at 0, 1, 2, 3 s
    assert world.log.count("GetStreamSession") == 4
    assert len(world.archived()) == 4 == len(world.ddb.items())


def test_a_budget_spent_before_the_run_asks_for_nothing() -> None:
    world = World()
    world.gls.add_sessions(10)
    report = world.region_run(budget_seconds=0.0).run()
    assert report.error is None and asdict(report.counts) == counts()
    assert list(world.log) == []


def test_the_listing_stops_when_the_budget_runs_out() -> None:
    world = World()
    world.gls.add_sessions(350)
    world.gls.latency["ListStreamSessionsByAccount"] = 1.0
    report = world.region_run(budget_seconds=1.5).run()
    assert report.error is None
    assert world.log.count("ListStreamSessionsByAccount") == 2
    assert report.counts.listed == 200
    assert report.counts.archived + report.counts.deferred == report.counts.new
    assert_nothing_marked_that_is_not_archived(world)


@pytest.mark.parametrize("operation", ["GetStreamSession", "PutObject", "PutItem"])
def test_a_request_cut_off_by_the_deadline_is_deferred(operation: str) -> None:
    world = World()
    arns = world.gls.add_sessions(5)
    service = world.gls if operation == "GetStreamSession" else world.s3 if operation == "PutObject" else world.ddb
    service.fail(operation, exception=OutOfTime(f"{operation} not sent"), when=about(arns[0]))
    report = world.region_run().run()
    assert asdict(report.counts) == counts(listed=5, new=5, archived=4, deferred=1)
    assert world.archived() == set(arns[1:]) == set(world.ddb.items())


def test_a_check_cut_off_by_the_deadline_defers_its_page() -> None:
    world = World()
    world.gls.add_sessions(150)
    world.ddb.fail("BatchGetItem", exception=OutOfTime("BatchGetItem not sent"))
    report = world.region_run().run()
    assert asdict(report.counts) == counts(listed=150, deferred=100, new=50, archived=50)


def test_a_listing_cut_off_by_the_deadline_ends_the_listing_without_an_error() -> None:
    world = World()
    world.gls.add_sessions(150)
    world.gls.fail("ListStreamSessionsByAccount", exception=OutOfTime("not sent"), when=lambda p: "NextToken" in p)
    report = world.region_run().run()
    assert report.error is None
    assert asdict(report.counts) == counts(listed=100, new=100, archived=100)


def test_the_run_uses_its_clock_for_archived_at() -> None:
    world = World()
    world.gls.add_sessions(1)
    world.clock.advance(61.5)
    world.region_run().run()
    (record,) = world.s3.objects().values()
    assert record["archived_at"] == "2026-11-28 05:01:01.500"  # fakes.EPOCH + 61.5 s

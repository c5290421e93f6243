"""The event consumer's decisions over in-memory AWS: one outcome per message, and what each one costs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError

from archiver.archive import Archivist
from archiver.consumer import Consumer, Outcome, parse_event
from archiver.errors import FatalError
from archiver.ownership import Owner
from archiver.rules import export_locations

from .fakes import ACCOUNT, GROUP, OTHER_REGION, REGION, World

EXPORTS = "studio-exports"
PREFIX = "gamelift/"


def zip_key(session_id: str, group: str = GROUP, prefix: str = PREFIX) -> str:
    return f"{prefix}20261127-183000-a-9ZY8X7Wv6-{group}-{session_id}.zip"


def s3_event(key: str, bucket: str = EXPORTS, region: str = REGION, **changes: Any) -> str:
    """An EventBridge S3 Object Created event, as S3 sends it (fields from the AWS S3 user guide)."""
    event: dict[str, Any] = {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2026-11-27T18:30:01Z",
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "00617F08"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "reason": "PutObject",
        },
    }
    event.update(changes)
    return json.dumps(event)


def exported(world: World, region: str = REGION, status: str = "SUCCEEDED", **overrides: Any) -> tuple[str, str]:
    """A session whose export ZIP landed under the prefix: (its ARN, the ZIP's key)."""
    detail = world.gls.add_session(region)
    session_id = detail["Arn"].rsplit("/", 1)[1]
    key = zip_key(session_id)
    meta: dict[str, Any] = {"Status": status}
    if status == "SUCCEEDED":
        meta["OutputUri"] = f"s3://{EXPORTS}/{key}"
    detail["ExportFilesMetadata"] = meta
    detail.update(overrides)
    return detail["Arn"], key


def consumer(world: World, regions: Sequence[str] = (REGION,), account: str | None = ACCOUNT) -> Consumer:
    settings = world.settings(regions)
    ledger = world.ledger()
    owner = Owner(frozenset(regions), account, "aws")
    return Consumer(
        export_locations(f"s3://{EXPORTS}/{PREFIX}"),
        {region: world.source(region) for region in regions},
        ledger,
        Archivist(settings, ledger, world.store(), world.clock.wall, owner, exports=world.exports()),
        max_pending_receives=3,
    )


def test_an_export_is_archived_exactly_as_the_scheduled_run_archives_it() -> None:
    events, scheduled = World(), World()
    _, key = exported(events)
    exported(scheduled)  # the same session (same ARN, same detail) in a world of its own

    assert consumer(events).consume(s3_event(key), 1) is Outcome.ARCHIVED
    assert scheduled.region_run().run().counts.archived == 1

    assert events.s3.buckets == scheduled.s3.buckets  # same key, same record, byte for byte
    assert events.ddb.items() == scheduled.ddb.items()
    assert b"SECRET" not in b"".join(events.s3.buckets[events.settings().bucket_name].values())
    assert [c.operation for c in events.log if c.service == "gameliftstreams"] == ["GetStreamSession"]


def test_an_archived_session_costs_one_batch_get_and_writes_nothing() -> None:
    world = World()
    _, key = exported(world)
    assert consumer(world).consume(s3_event(key), 1) is Outcome.ARCHIVED
    world.log.clear()

    assert consumer(world).consume(s3_event(key), 1) is Outcome.ALREADY
    assert world.log.operations() == ["BatchGetItem"]


def test_a_pending_export_is_delivered_again_then_left_to_the_reconciler() -> None:
    world = World()
    _, key = exported(world, status="PENDING")
    assert [consumer(world).consume(s3_event(key), n) for n in (1, 2, 3, 4)] == [
        Outcome.PENDING,
        Outcome.PENDING,
        Outcome.LEFT_TO_RECONCILE,
        Outcome.LEFT_TO_RECONCILE,
    ]
    assert world.ddb.items() == {}


@pytest.mark.parametrize(
    ("key", "bucket"),
    [
        (zip_key("ABC123def4567"), "another-bucket"),  # outside EXPORT_LOCATIONS
        (zip_key("ABC123def4567", prefix="elsewhere/"), EXPORTS),
        (f"{PREFIX}our-own-name.zip", EXPORTS),  # a custom file name: names no session
        (f"{PREFIX}20261127-183000-a-1-sg-1A2b3C4d5-ABC123def4567.txt", EXPORTS),
        (f"{PREFIX}../{zip_key('ABC123def4567', prefix='')}", EXPORTS),  # names a session; 404 below
    ],
)
def test_objects_that_are_not_exports_are_acknowledged_without_any_call(key: str, bucket: str) -> None:
    world = World()
    outcome = consumer(world).consume(s3_event(key, bucket), 1)
    if key.startswith(f"{PREFIX}../"):
        assert outcome is Outcome.SKIPPED  # the name does name a session, which no source Region has
    else:
        assert outcome is Outcome.UNMATCHED
        assert world.log.operations() == []


def test_a_session_in_no_source_region_is_skipped_after_one_get_per_region() -> None:
    world = World()
    outcome = consumer(world, (REGION, OTHER_REGION)).consume(s3_event(zip_key("ABC123def4567")), 1)
    assert outcome is Outcome.SKIPPED
    gets = world.log.of("GetStreamSession")
    assert [call.region for call in gets] == [REGION, OTHER_REGION]
    assert len(world.log.of("BatchGetItem")) == 1


def test_the_events_region_is_tried_first() -> None:
    world = World()
    arn, key = exported(world, region=OTHER_REGION)
    outcome = consumer(world, (REGION, OTHER_REGION)).consume(s3_event(key, region=OTHER_REGION), 1)
    assert outcome is Outcome.ARCHIVED
    assert [call.region for call in world.log.of("GetStreamSession")] == [OTHER_REGION]
    assert world.archived() == {arn}


def test_an_object_that_is_not_the_sessions_output_is_unmatched() -> None:
    world = World()
    arn, key = exported(world)
    world.gls.detail(arn)["ExportFilesMetadata"]["OutputUri"] = f"s3://{EXPORTS}/{PREFIX}another.zip"
    assert consumer(world).consume(s3_event(key), 1) is Outcome.UNMATCHED
    assert world.ddb.items() == {}


def test_an_output_uri_that_is_the_folder_of_the_object_matches() -> None:
    world = World()
    arn, key = exported(world)
    world.gls.detail(arn)["ExportFilesMetadata"]["OutputUri"] = f"s3://{EXPORTS}/{PREFIX}"
    assert consumer(world).consume(s3_event(key), 1) is Outcome.ARCHIVED


def test_a_failed_export_is_skipped() -> None:
    world = World()
    _, key = exported(world, status="FAILED")
    assert consumer(world).consume(s3_event(key), 1) is Outcome.SKIPPED


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}}),
        json.dumps({"source": "aws.ec2", "detail-type": "Object Created"}),
        s3_event("k")[:-5],
        json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": 7}}}),
        "",
        "[" * 100_000 + "]" * 100_000,  # valid JSON, nested deeper than the parser goes
    ],
)
def test_bodies_that_are_not_s3_object_created_events_are_malformed(body: str) -> None:
    world = World()
    assert parse_event(body) is None
    assert consumer(world).consume(body, 1) is Outcome.MALFORMED
    assert world.log.operations() == []


def test_the_events_account_is_never_used_the_functions_own_is() -> None:
    world = World()
    arn, key = exported(world)
    # The event's account is the bucket owner's (another account's bucket, or moto's default): ignored.
    assert consumer(world).consume(s3_event(key, account="444455556666"), 1) is Outcome.ARCHIVED
    (get,) = world.log.of("GetStreamSession")
    assert get.params["StreamSessionIdentifier"] == arn and world.archived() == {arn}


def test_without_the_functions_account_no_consumer_can_be_built() -> None:
    with pytest.raises(ValueError, match="the consumer needs the function's account"):
        consumer(World(), account=None)


@pytest.mark.parametrize(
    "answered",
    [
        f"arn:aws:gameliftstreams:{REGION}:999999999999:streamsession/{GROUP}/s00000001",  # another account
        f"arn:aws:gameliftstreams:eu-central-1:{ACCOUNT}:streamsession/{GROUP}/s00000001",  # not a source Region
        f"arn:aws-us-gov:gameliftstreams:{REGION}:{ACCOUNT}:streamsession/{GROUP}/s00000001",  # another partition
        f"arn:aws:gameliftstreams:{REGION}:{ACCOUNT}:streamsession/{GROUP}/s00000099",  # another of ours
        "../../etc/passwd",
    ],
)
@pytest.mark.parametrize("status", ["SUCCEEDED", "PENDING"])  # PENDING: the answer is judged before its export
def test_an_answer_naming_another_session_is_foreign_never_archived_and_checked_first(
    answered: str, status: str, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World()
    arn, key = exported(world, status=status)
    world.gls.detail(arn)["Arn"] = answered  # GetStreamSession (asked by ARN) answers for another "session"
    real_get = world.gls.get_stream_session

    def get(region: str, **params: Any) -> dict[str, Any]:
        return real_get(region, **{**params, "StreamSessionIdentifier": answered})

    monkeypatch.setattr(world.gls, "get_stream_session", get)
    assert consumer(world).consume(s3_event(key), 1) is Outcome.FOREIGN
    assert world.ddb.items() == {} and world.s3.objects() == {}
    assert [c.operation for c in world.log] == ["BatchGetItem", "GetStreamSession"]
    (line,) = [json.loads(x) for x in logs.readouterr().out.splitlines() if "not this function" in x]
    assert line["level"] == "WARNING" and line["session_arn"] == arn and line["answered_arn"] == answered


def test_candidates_are_only_in_the_source_regions_of_the_functions_account_and_partition() -> None:
    world = World()
    c = consumer(world, (REGION, OTHER_REGION))
    assert c.owner == Owner(frozenset({REGION, OTHER_REGION}), ACCOUNT, "aws")
    c.consume(s3_event(zip_key("ABC123def4567"), region="eu-central-1"), 1)
    asked = [call.params["StreamSessionIdentifier"] for call in world.log.of("GetStreamSession")]
    assert asked == [
        f"arn:aws:gameliftstreams:{region}:{ACCOUNT}:streamsession/{GROUP}/ABC123def4567"
        for region in (REGION, OTHER_REGION)
    ]


def test_throttling_after_retries_and_fatal_errors_propagate_to_the_caller() -> None:
    world = World()
    _, key = exported(world)
    world.gls.fail("GetStreamSession", "ThrottlingException", 429)
    with pytest.raises(ClientError, match="ThrottlingException"):
        consumer(world).consume(s3_event(key), 1)
    world.s3.fail("PutObject", "AccessDenied", 403)
    with pytest.raises(FatalError, match="AccessDenied"):
        consumer(world).consume(s3_event(key), 1)
    assert consumer(world).consume(s3_event(key), 1) is Outcome.ARCHIVED

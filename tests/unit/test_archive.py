"""Archiving one session: every writer converges on the first stored record, and one of them counts it."""

from __future__ import annotations

import json

import pytest

from archiver.archive import Archived, Archivist, ForeignRecord
from archiver.ownership import Owner
from archiver.records import ledger_item, object_key, parse_session_arn

from .fakes import ACCOUNT, BUCKET, KEY_ATTRIBUTE, REGION, World


def writer(world: World) -> Archivist:
    return Archivist(world.settings(), world.ledger(), world.store(), world.clock.wall, exports=world.exports())


def test_racing_writers_store_one_record_and_one_item_equal_to_it() -> None:
    world = World()
    detail = world.gls.add_session()
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    first, second = writer(world), writer(world)

    assert first.archive(arn, detail, {}) is Archived.ARCHIVED
    world.clock.advance(0.250)  # the second writer's archived_at differs
    assert second.archive(arn, detail, {}) is Archived.ALREADY

    [(key, body)] = world.s3.buckets[BUCKET].items()
    record = json.loads(body)
    assert world.ddb.items()[arn.arn] == ledger_item(record, key) | {KEY_ATTRIBUTE: arn.arn}
    archive_calls = [c.operation for c in world.log if c.service == "s3" and c.params["Bucket"] == BUCKET]
    assert archive_calls == ["PutObject", "PutObject", "GetObject"]


def test_a_writer_killed_between_s3_and_dynamodb_is_completed_from_its_own_record() -> None:
    world = World()
    detail = world.gls.add_session()
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    world.ddb.fail("PutItem", "InternalServerError", 500)  # the first writer's item never lands (a kill)
    with pytest.raises(Exception, match="InternalServerError"):
        writer(world).archive(arn, detail, {})
    [(key, body)] = world.s3.buckets[BUCKET].items()

    world.clock.advance(60)
    assert writer(world).archive(arn, detail, {}) is Archived.ARCHIVED

    assert world.s3.buckets[BUCKET] == {key: body}
    assert world.ddb.items()[arn.arn]["archived_at"] == json.loads(body)["archived_at"]


def test_an_object_of_another_session_under_the_key_is_never_used_nor_overwritten() -> None:
    world = World()
    detail = world.gls.add_session()
    arn = parse_session_arn(detail["Arn"])
    assert arn is not None
    key = object_key("sessions/", arn, detail["CreatedAt"])
    world.s3.buckets[BUCKET][key] = b'{"session_arn":"arn:aws:gameliftstreams:us-east-2:1:streamsession/sg-x/y"}\n'

    with pytest.raises(ForeignRecord, match=key):
        writer(world).archive(arn, detail, {})
    assert world.ddb.items() == {}
    assert json.loads(world.s3.buckets[BUCKET][key])["session_arn"].endswith("sg-x/y")


def test_the_archivist_is_the_last_gate_it_never_writes_a_foreign_session_whoever_asks() -> None:
    world = World()
    detail = world.gls.add_session()
    ours = parse_session_arn(detail["Arn"])
    foreign = parse_session_arn(detail["Arn"].replace(ACCOUNT, "999999999999"))
    assert ours is not None and foreign is not None
    gate = Archivist(
        world.settings(),
        world.ledger(),
        world.store(),
        world.clock.wall,
        Owner(frozenset({REGION}), ACCOUNT),
        exports=world.exports(),
    )

    assert gate.archive(foreign, detail | {"Arn": foreign.arn}, {}) is Archived.FOREIGN  # asked about another's
    assert gate.archive(ours, detail | {"Arn": foreign.arn}, {}) is Archived.FOREIGN  # answered with another's
    assert world.log.operations() == [] and world.s3.objects() == {}
    assert gate.archive(ours, {k: v for k, v in detail.items() if k != "Arn"}, {}) is Archived.ARCHIVED  # absent: ok

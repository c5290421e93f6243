"""The S3 adapter alone: one object per key, written once (first writer wins), and which failures stop the run."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from archiver.errors import FatalError
from archiver.store import RecordStore

from .fakes import BUCKET, FakeS3, real_client

KEY = "sessions/source_region=us-east-2/created_date=2026-11-27/sg-1_s-1.json"


def test_put_once_writes_the_body_as_json_under_the_key_only_if_absent() -> None:
    client = real_client("s3")
    body = b'{"session_arn":"x"}\n'
    expected = {"Bucket": BUCKET, "Key": KEY, "Body": body, "ContentType": "application/json", "IfNoneMatch": "*"}
    with Stubber(client) as stubber:
        stubber.add_response("put_object", {}, expected)
        assert RecordStore(client, BUCKET).put_once(KEY, body) == body
        stubber.assert_no_pending_responses()


def test_a_second_writer_gets_the_first_record_back_and_nothing_is_overwritten() -> None:
    s3 = FakeS3()
    store = RecordStore(s3.client(), BUCKET)
    assert store.put_once(KEY, b'{"first":1}\n') == b'{"first":1}\n'
    assert store.put_once(KEY, b'{"second":2}\n') == b'{"first":1}\n'
    assert s3.buckets[BUCKET] == {KEY: b'{"first":1}\n'}
    assert [call.operation for call in s3.log] == ["PutObject", "PutObject", "GetObject"]


@pytest.mark.parametrize(
    ("code", "status", "fatal"),
    [
        ("NoSuchBucket", 404, True),
        ("AccessDenied", 403, True),
        ("KMS.DisabledException", 400, True),
        ("SlowDown", 503, False),
        ("InternalError", 500, False),
    ],
)
def test_put_errors_left_after_retries(code: str, status: int, fatal: bool) -> None:
    s3 = FakeS3()
    s3.fail("PutObject", code, status)
    store = RecordStore(s3.client(), BUCKET)
    with pytest.raises(FatalError if fatal else ClientError, match=code) as caught:
        store.put_once(KEY, b"{}\n")
    if fatal:
        assert f"PutObject to bucket {BUCKET}" in str(caught.value)
    assert s3.buckets[BUCKET] == {}


def test_a_missing_bucket_is_fatal_from_the_service_too() -> None:
    s3 = FakeS3(buckets=())
    store = RecordStore(s3.client(), BUCKET)
    with pytest.raises(FatalError, match=f"PutObject to bucket {BUCKET} failed with NoSuchBucket"):
        store.put_once(KEY, b"{}\n")


def test_a_read_back_that_fails_is_reported_like_the_write() -> None:
    s3 = FakeS3()
    s3.buckets[BUCKET][KEY] = b"{}\n"
    s3.fail("GetObject", "AccessDenied", 403)
    with pytest.raises(FatalError, match=f"GetObject from bucket {BUCKET} failed with AccessDenied"):
        RecordStore(s3.client(), BUCKET).put_once(KEY, b'{"a":1}\n')

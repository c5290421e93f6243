"""The S3 adapter alone: one object per put, under the key given, and which failures stop the run."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from archiver.errors import FatalError
from archiver.store import RecordStore

from .fakes import BUCKET, FakeS3, real_client

KEY = "sessions/source_region=us-east-2/created_date=2026-11-27/sg-1_s-1.json"


def test_put_writes_the_body_as_json_under_the_key() -> None:
    client = real_client("s3")
    body = b'{"session_arn":"x"}\n'
    with Stubber(client) as stubber:
        stubber.add_response(
            "put_object", {}, {"Bucket": BUCKET, "Key": KEY, "Body": body, "ContentType": "application/json"}
        )
        RecordStore(client, BUCKET).put(KEY, body)
        stubber.assert_no_pending_responses()


def test_a_second_put_of_the_same_key_overwrites() -> None:
    s3 = FakeS3()
    store = RecordStore(s3.client(), BUCKET)
    store.put(KEY, b"{}\n")
    store.put(KEY, b'{"a":1}\n')
    assert s3.buckets[BUCKET] == {KEY: b'{"a":1}\n'}


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
        store.put(KEY, b"{}\n")
    if fatal:
        assert f"PutObject to bucket {BUCKET}" in str(caught.value)
    assert s3.buckets[BUCKET] == {}


def test_a_missing_bucket_is_fatal_from_the_service_too() -> None:
    s3 = FakeS3(buckets=())
    store = RecordStore(s3.client(), BUCKET)
    with pytest.raises(FatalError, match=f"PutObject to bucket {BUCKET} failed with NoSuchBucket"):
        store.put(KEY, b"{}\n")

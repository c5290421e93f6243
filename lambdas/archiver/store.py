"""S3 adapter: one JSON object per session, under a key that a retry overwrites."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from archiver.errors import raise_if_fatal


class RecordStore:
    """The archive bucket. Writes are idempotent: same session, same key."""

    def __init__(self, client: Any, bucket_name: str) -> None:
        self._client = client
        self.bucket_name = bucket_name

    def put(self, key: str, body: bytes) -> None:
        """Write one record; the bucket's default encryption applies."""
        try:
            self._client.put_object(
                Bucket=self.bucket_name,
                Key=key,
                Body=body,
                ContentType="application/json",
            )
        except ClientError as error:
            raise_if_fatal(error, f"PutObject to bucket {self.bucket_name}")
            raise

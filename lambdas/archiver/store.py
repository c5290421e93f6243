"""S3 adapter: one JSON object per session, written once: the first writer wins, later writers read it back.

The event consumer and the scheduled reconciler may archive the same session at the same moment, and either
may be retried or redelivered. `PutObject` with `If-None-Match: *` (S3 conditional writes) makes the first
write the only one; a later writer gets `412 PreconditionFailed` and reads the stored record back, so the
ledger item it writes is made from the record that S3 holds, never from its own copy.
"""

from __future__ import annotations

from typing import IO, Any

from botocore.exceptions import ClientError

from archiver.errors import error_code, raise_if_fatal

_EXISTS = frozenset({"PreconditionFailed"})  # 412: an object is stored under the key already


class RecordStore:
    """The archive bucket. A record, once stored, is never rewritten by the archiver."""

    def __init__(self, client: Any, bucket_name: str) -> None:
        self._client = client
        self.bucket_name = bucket_name

    def put_once(self, key: str, body: bytes) -> bytes:
        """Store `body` unless the key holds an object already; return what the key holds now.

        The result is `body` itself when this call stored it. Otherwise it is the stored object: another
        writer's record, or this very call's when botocore retried a write whose first answer was lost.
        """
        if self.write_once(key, body, "application/json"):
            return body
        return self.get(key)

    def write_once(self, key: str, body: bytes | IO[bytes], content_type: str) -> bool:
        """Store `body` (bytes, or a seekable file at its start) unless the key holds an object already;
        True when this call stored it, False when an object was there (it is left as it is)."""
        try:
            self._client.put_object(
                Bucket=self.bucket_name,
                Key=key,
                Body=body,
                ContentType=content_type,
                IfNoneMatch="*",
            )
        except ClientError as error:
            if error_code(error) not in _EXISTS:
                raise_if_fatal(error, f"PutObject to bucket {self.bucket_name}")
                raise
            return False
        return True

    def get(self, key: str) -> bytes:
        """One stored record's bytes."""
        try:
            response = self._client.get_object(Bucket=self.bucket_name, Key=key)
            return bytes(response["Body"].read())
        except ClientError as error:
            raise_if_fatal(error, f"GetObject from bucket {self.bucket_name}")
            raise

"""Where an export ZIP goes and how the emulator puts it there: the object an OutputUri names, and the S3
client that writes it (to moto, or any S3 endpoint the emulator is configured with).

An OutputUri ending in '/' is a folder: the service names the file
`YYYYMMDD-HHMMSS-<applicationId>-<streamGroupId>-<sessionId>.zip` (stamped with the session's end); one
ending in `.zip` is the object itself. An upload that fails (no such bucket, S3 down, no endpoint) is an
`UploadFailed`: the export is then FAILED, as AWS reports an export it could not write.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Protocol

_UPLOAD_TIMEOUT_SECONDS: Final = 30


class UploadFailed(Exception):
    """The ZIP could not be written (the reason is for logs, never put on the wire as is)."""


class Uploader(Protocol):
    """Writes one object; raises UploadFailed."""

    def put(self, bucket: str, key: str, body: bytes) -> None: ...


def export_file_name(detail: Mapping[str, Any], sgid: str, sid: str, ended: datetime) -> str:
    """The service's default name for a session's ZIP."""
    stamp = (ended if ended.tzinfo else ended.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    app_arn = detail.get("ApplicationArn")
    app_id = app_arn.rsplit("/", 1)[-1] if isinstance(app_arn, str) and app_arn else "a-unknown"
    return f"{stamp}-{app_id}-{sgid}-{sid}.zip"


def export_object(output_uri: str, file_name: str) -> tuple[str, str]:
    """(bucket, key) of the ZIP for an OutputUri: the folder plus `file_name`, or the `.zip` object named.
    UploadFailed for a URI that names no object (no bucket, or a `.zip` with no key)."""
    if not output_uri.startswith("s3://"):
        raise UploadFailed(f"not an S3 URI: {output_uri!r}")
    bucket, _, key = output_uri[len("s3://") :].partition("/")
    if not bucket:
        raise UploadFailed(f"no bucket in {output_uri!r}")
    if output_uri.endswith("/"):
        key += file_name
    if not key:
        raise UploadFailed(f"no object key in {output_uri!r}")
    return bucket, key


class S3Uploader:
    """PutObject through boto3 to one endpoint with the local stack's dummy credentials. The client is built
    on the first upload: an emulator that never exports never imports boto3."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3  # noqa: PLC0415 - on first use, see the class docstring
                from botocore.config import Config  # noqa: PLC0415

                from local.stack.aws import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY  # noqa: PLC0415

                session = boto3.session.Session(
                    aws_access_key_id=DUMMY_ACCESS_KEY_ID,
                    aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
                    region_name=self.region,
                )
                config = Config(
                    retries={"mode": "standard", "total_max_attempts": 3},
                    connect_timeout=5,
                    read_timeout=_UPLOAD_TIMEOUT_SECONDS,
                    s3={"addressing_style": "path"},
                )
                self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
            return self._client

    def put(self, bucket: str, key: str, body: bytes) -> None:
        try:
            self._s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/zip")
        except Exception as error:  # any failure of the upload is the export's FAILED, never the emulator's crash
            raise UploadFailed(f"{type(error).__name__}: {error}") from error

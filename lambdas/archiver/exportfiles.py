"""S3 adapter of the export ZIP: find the session's ZIP from its OutputUri and read it by ranges.

The ZIP is never downloaded whole (archiver.ziprange reads the tail, the central directory and the stats
member only). `S3RangeReader` is HeadObject (size, ETag) once, then GetObject with `Range: bytes=a-b` and
`If-Match: <ETag>` for every range, so all the ranges come from one version of the object: a ZIP replaced
mid-read answers 412, which propagates as a transient error (the session is retried, and the next attempt
reads the new ZIP from its start).

Where the ZIP is: GetStreamSession's OutputUri is the object itself when it is an `s3://` URI ending in
`.zip` (any case); otherwise it is a folder the service wrote the ZIP into. The event consumer knows the key
(the event's, confirmed by `exports.output_matches`) and passes it; the reconciler lists the folder (one
level, at most MAX_LIST_PAGES pages) and takes the key `exports.session_of` maps to this session (several:
the newest).

What cannot be fixed by retrying is an outcome, recorded in the session's record (EXPORT_READ_STATUSES):
the OutputUri is not S3, the object or bucket is missing, the role may not read it. Throttling, 5xx,
timeouts (after botocore's retries) and a ZIP replaced mid-read raise: the session is not archived this
run (a record is never rewritten, so it is written only once the ZIP's outcome is final).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Final

from botocore.exceptions import ClientError

from archiver import rules
from archiver.errors import error_code
from archiver.exports import MAX_KEY_LENGTH, ZIP_SUFFIX, ExportObject, output_matches, session_of
from archiver.perfstats import MAX_ROWS, StatsResult, extract_stats
from archiver.records import SessionArn
from archiver.rules import RuleError
from archiver.ziprange import DEFAULT_LIMITS, ZipLimits

MAX_LIST_PAGES: Final = 10  # ListObjectsV2 pages (1,000 keys each) looked through for a folder's ZIP

READ = "read"  # the ZIP was read: the stats status says what it held
NOT_S3 = "not_s3"  # OutputUri is missing, not an s3:// URI, or names no valid bucket and key
NOT_FOUND = "not_found"  # no such object (NoSuchKey, 404), or no ZIP of this session in the folder
ACCESS_DENIED = "access_denied"  # the role may not read it (AccessDenied, 403: bucket policy, key policy)
NO_BUCKET = "no_bucket"  # the bucket does not exist (NoSuchBucket)
ARCHIVED_OBJECT = "archived_object"  # the object is in an archive storage class (InvalidObjectState)
EXPORT_READ_STATUSES: Final = (READ, NOT_S3, NOT_FOUND, ACCESS_DENIED, NO_BUCKET, ARCHIVED_OBJECT)
UNREADABLE: Final = frozenset(EXPORT_READ_STATUSES) - {READ}

_PERMANENT: Final = {
    "AccessDenied": ACCESS_DENIED,
    "AllAccessDisabled": ACCESS_DENIED,
    "403": ACCESS_DENIED,  # HeadObject's errors have no body: the status code is the code
    "NoSuchKey": NOT_FOUND,
    "NotFound": NOT_FOUND,
    "404": NOT_FOUND,
    "NoSuchBucket": NO_BUCKET,
    "InvalidObjectState": ARCHIVED_OBJECT,
}


class Unreadable(Exception):
    """A permanent reason the ZIP cannot be read (one of UNREADABLE)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def _permanent(error: ClientError) -> None:
    """Raise Unreadable for an error retrying cannot fix; otherwise return (the caller re-raises)."""
    status = _PERMANENT.get(error_code(error))
    if status is not None:
        raise Unreadable(status) from error


@dataclass(frozen=True)
class ZipLocation:
    """The S3 object holding a session's export ZIP."""

    bucket: str
    key: str


def split_uri(uri: str) -> tuple[str, str] | None:
    """(bucket, key or folder) of an s3:// URI, or None when it names no S3 object or folder (a bucket name S3
    does not allow, a key over 1,024 UTF-8 bytes or not UTF-8 at all: the request could not even be sent)."""
    if not uri.startswith("s3://"):
        return None
    bucket, _slash, path = uri[len("s3://") :].partition("/")
    try:
        rules.bucket_name(bucket)
        too_long = len(path.encode("utf-8")) > MAX_KEY_LENGTH
    except (RuleError, UnicodeEncodeError):
        return None
    return None if too_long else (bucket, path)


class S3RangeReader:
    """archiver.ziprange.RangeReader over one S3 object version: sized by HeadObject, read with If-Match."""

    def __init__(self, client: Any, location: ZipLocation) -> None:
        self._client = client
        self.location = location
        try:
            head = client.head_object(Bucket=location.bucket, Key=location.key)
        except ClientError as error:
            _permanent(error)
            raise
        self._size = int(head["ContentLength"])
        self._etag: str | None = head.get("ETag")

    @property
    def size(self) -> int:
        return self._size

    @property
    def etag(self) -> str | None:
        return self._etag

    def read(self, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        extra = {"IfMatch": self._etag} if self._etag else {}
        try:
            response = self._client.get_object(
                Bucket=self.location.bucket,
                Key=self.location.key,
                Range=f"bytes={start}-{start + length - 1}",
                **extra,
            )
        except ClientError as error:  # 412 (replaced mid-read), throttling, 5xx: propagate (transient)
            _permanent(error)
            raise
        return bytes(response["Body"].read())


@dataclass(frozen=True)
class ExportRead:
    """What reading one session's export ZIP gave: the status, the stats result when it was read."""

    status: str
    result: StatsResult | None = None
    location: ZipLocation | None = None

    @property
    def bytes_read(self) -> int:
        return self.result.bytes_read if self.result is not None else 0

    @property
    def has_rows_object(self) -> bool:
        return self.result is not None and self.result.summary.has_rows_object


class ExportFiles:
    """Finds and reads sessions' export ZIPs with its own S3 client (the export buckets are the studio's)."""

    def __init__(
        self,
        client: Any,
        *,
        limits: ZipLimits = DEFAULT_LIMITS,
        max_rows: int = MAX_ROWS,
        max_list_pages: int = MAX_LIST_PAGES,
    ) -> None:
        self._client = client
        self.limits = limits
        self.max_rows = max_rows
        self.max_list_pages = max_list_pages

    def read(self, arn: SessionArn, output_uri: object, known: ExportObject | None, out: IO[bytes]) -> ExportRead:
        """Manifest and stats of the session's ZIP, the stats object written to `out` (store it only when
        `has_rows_object`). Raises only transient SDK errors."""
        try:
            location = self.locate(arn, output_uri, known)
            if location is None:
                return ExportRead(NOT_S3 if not _is_s3(output_uri) else NOT_FOUND)
            reader = S3RangeReader(self._client, location)
            result = extract_stats(reader, out, session_arn=arn.arn, limits=self.limits, max_rows=self.max_rows)
        except Unreadable as unreadable:
            return ExportRead(unreadable.status)
        return ExportRead(READ, result, location)

    def locate(self, arn: SessionArn, output_uri: object, known: ExportObject | None) -> ZipLocation | None:
        """The ZIP's object: the OutputUri itself, the event's key, or the folder's newest ZIP of the session."""
        if not isinstance(output_uri, str):
            return None
        parts = split_uri(output_uri)
        if parts is None:
            return None
        bucket, path = parts
        if path.lower().endswith(ZIP_SUFFIX):
            return ZipLocation(bucket, path)
        if known is not None and known.bucket == bucket and output_matches(output_uri, known):
            return ZipLocation(known.bucket, known.key)
        folder = path if not path or path.endswith("/") else path + "/"
        key = self._newest(arn, bucket, folder)
        return ZipLocation(bucket, key) if key is not None else None

    def _newest(self, arn: SessionArn, bucket: str, folder: str) -> str | None:
        best: tuple[datetime, str] | None = None
        for item in self._listing(bucket, folder):
            key = item.get("Key")
            if not isinstance(key, str) or "/" in key[len(folder) :]:
                continue
            named = session_of(bucket, key)
            if named is None or (named.stream_group_id, named.session_id) != (arn.stream_group_id, arn.session_id):
                continue
            modified = item.get("LastModified")
            if isinstance(modified, datetime) and (best is None or (modified, key) > best):
                best = (modified, key)
        return best[1] if best is not None else None

    def _listing(self, bucket: str, folder: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        for _page in range(self.max_list_pages):
            extra = {"ContinuationToken": token} if token else {}
            try:
                page = self._client.list_objects_v2(Bucket=bucket, Prefix=folder, Delimiter="/", **extra)
            except ClientError as error:
                _permanent(error)
                raise
            yield from page.get("Contents", [])
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return


def _is_s3(uri: object) -> bool:
    return isinstance(uri, str) and split_uri(uri) is not None

"""The export ZIP's S3 object: which session its key names, and the EventBridge pattern that matches it.

GameLift Streams names the ZIP `YYYYMMDD-HHMMSS-<applicationId>-<streamGroupId>-<sessionId>.zip` when the
OutputUri is a prefix, "or another similar name": the name is read from its end, leniently (the stream
group ID always starts `sg-`; the session ID is the last token). The consumer then confirms the match with
GetStreamSession's OutputUri, so a custom name that looks like one is never archived by mistake.
EventBridge carries the plain key (not URL-encoded, unlike S3 event notifications): a key with
`%2F` is taken literally. Standard library only: the stack builds its EventBridge rule from `event_pattern` too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from archiver.rules import ExportLocation

ZIP_SUFFIX = ".zip"
# From the end of the file name: ...-<sg-...>-<session id>.zip (IDs as the service model allows: [a-zA-Z0-9-]).
_NAME = re.compile(r"(?:^|.*-)(?P<group>sg-[A-Za-z0-9]{1,29})-(?P<session>[A-Za-z0-9]{1,32})\.zip", re.IGNORECASE)
MAX_KEY_LENGTH = 1024  # S3's limit, in UTF-8 bytes


@dataclass(frozen=True)
class ExportObject:
    """The session an export ZIP's key names (not yet confirmed by the API)."""

    bucket: str
    key: str
    stream_group_id: str
    session_id: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def session_of(bucket: str, key: str) -> ExportObject | None:
    """The stream group and session the key's file name names, or None (a custom file name)."""
    if not key or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_LENGTH:
        return None
    name = key.rsplit("/", 1)[-1]
    match = _NAME.fullmatch(name)
    if match is None or not name.lower().endswith(ZIP_SUFFIX):
        return None
    return ExportObject(bucket, key, match["group"], match["session"])


def output_matches(output_uri: object, obj: ExportObject) -> bool:
    """Whether GetStreamSession's OutputUri is this object, or a prefix ("folder") that holds it."""
    if not isinstance(output_uri, str) or not output_uri.startswith("s3://"):
        return False
    if output_uri == obj.uri:
        return True
    folder = output_uri if output_uri.endswith("/") else output_uri + "/"
    return obj.uri.startswith(folder) and "/" not in obj.uri[len(folder) :]


def locate(locations: Sequence[ExportLocation], bucket: str, key: str) -> ExportLocation | None:
    """The configured export location holding this object, if any."""
    return next((location for location in locations if location.holds(bucket, key)), None)


def event_pattern(locations: Sequence[ExportLocation]) -> dict[str, Any]:
    """The EventBridge pattern for S3 `Object Created` of `.zip` keys under the locations: one rule for any
    number of buckets, each bucket with its own prefixes (`wildcard` `<prefix>*.zip`; the prefixes hold no
    `*`, see `rules.EXPORT_LOCATION`), joined by `$or`."""
    by_bucket: dict[str, list[str]] = {}
    for location in locations:
        by_bucket.setdefault(location.bucket, []).append(location.prefix)
    alternatives: list[dict[str, Any]] = []
    for bucket, prefixes in by_bucket.items():
        if "" in prefixes:  # the whole bucket
            key: list[dict[str, str]] = [{"suffix": ZIP_SUFFIX}]
        else:
            key = [{"wildcard": f"{prefix}*{ZIP_SUFFIX}"} for prefix in prefixes]
        alternatives.append({"bucket": {"name": [bucket]}, "object": {"key": key}})
    detail: dict[str, Any] = alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}
    return {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail}

"""Amazon GameLift Streams emulator: the two read calls the archiver makes, over real HTTP (REST-JSON).

moto has no gameliftstreams backend, so this serves `ListStreamSessionsByAccount` and `GetStreamSession`
to the unmodified boto3 client (point `AWS_ENDPOINT_URL_GAMELIFTSTREAMS` at `endpoint_url`). Sessions
live per Region (taken from the SigV4 credential scope), listing is keyset-paginated over precomputed
sorted indexes (100k sessions page fast), and the shared `FaultPlan` injects errors, latency, quotas
and process kills. Data can be put on the wire raw (garbage, missing fields) for fuzz tests.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import collections
import gc
import hashlib
import json
import random
import re
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from local.faults import (
    ERROR_KINDS,
    BackgroundHTTPServer,
    Decision,
    QuietHandler,
    drop_connection,
    region_from_authorization,
)

STATUSES: Final = (
    "ACTIVATING",
    "ACTIVE",
    "CONNECTED",
    "PENDING_CLIENT_RECONNECTION",
    "RECONNECTING",
    "TERMINATING",
    "TERMINATED",
    "ERROR",
)
EXPORT_STATUSES: Final = ("SUCCEEDED", "FAILED", "PENDING")
LOCATIONS: Final = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-2",
    "ap-southeast-2",
    "ap-northeast-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-north-1",
    "sa-east-1",
)
# The list call returns StreamSessionSummary: botocore 1.44's model also has RoleArn there.
SUMMARY_FIELDS: Final = (
    "Arn",
    "UserId",
    "Status",
    "StatusReason",
    "Protocol",
    "LastUpdatedAt",
    "CreatedAt",
    "ApplicationArn",
    "ExportFilesMetadata",
    "Location",
    "RoleArn",
)
TIMESTAMP_FIELDS: Final = (
    "LastUpdatedAt",
    "CreatedAt",
    "ApplicationStartedAt",
    "StreamingStartedAt",
    "StreamingEndedAt",
)
DEFAULT_BASE_TIME: Final = datetime(2026, 11, 27, 18, 4, 5, tzinfo=UTC)
EXPORT_BUCKET: Final = "studio-exports"

# (HTTP status, x-amzn-ErrorType) per fault kind, as the model declares them.
_ERRORS: Final[dict[str, tuple[int, str, str]]] = {
    "throttle": (429, "ThrottlingException", "Rate exceeded"),
    "throughput": (429, "ThrottlingException", "Rate exceeded"),
    "slowdown": (429, "ThrottlingException", "Rate exceeded"),
    "internal": (500, "InternalServerException", "An internal error occurred. Try again."),
    "access_denied": (
        403,
        "AccessDeniedException",
        "User is not authorized to perform this action on this resource.",
    ),
    "not_found": (404, "ResourceNotFoundException", "The requested resource was not found."),
    "validation": (400, "ValidationException", "The provided NextToken has expired."),
}
_ID_RE: Final = re.compile(r"[a-zA-Z0-9-]{1,32}")
_IDENTIFIER_RE: Final = re.compile(r"^[a-zA-Z0-9-]+$|^arn:aws:gameliftstreams:([^: ]*):([0-9]{12}):([^: ]*)$")
_SESSION_ARN_RE: Final = re.compile(
    r"arn:aws:gameliftstreams:([^: ]*):([0-9]{12}):streamsession/([a-zA-Z0-9-]{1,32})/([a-zA-Z0-9-]{1,32})"
)
_GET_ROUTE: Final = re.compile(r"^/streamgroups/([^/]+)/streamsessions/([^/]+)/?$")
_ALNUM: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_BYTE_TO_ALNUM: Final = bytes(ord(_ALNUM[i % len(_ALNUM)]) for i in range(256))
_TERMINATED_REASONS: Final = (
    "applicationExit",
    "connectionTimeout",
    "reconnectionTimeout",
    "maxSessionLengthTimeout",
    "idleTimeout",
    "apiTerminated",
)
_ERROR_REASONS: Final = (
    "internalError",
    "invalidSignalRequest",
    "placementTimeout",
    "applicationLogS3DestinationError",
    "assumeRoleFailed",
)
_EXPORT_FAIL_REASONS: Final = (
    "The stream session ended before the export could start.",
    "Amazon GameLift Streams could not write to the output location.",
)
_USER_FORMS: Final = ("player-{n:05d}", "studio/qa/tester-{n}", "guest={n}", "team_{n}/alpha+beta")
_MAPS: Final = ("harbor", "canyon", "orbit", "tundra", "ruins")
_RESOLUTIONS: Final = ((1920, 1080), (1280, 720), (1600, 900), (1024, 768))

# Status mix for the sessions that are not export SUCCEEDED: (weight, status, export status or None).
_OTHER_MIX: Final = (
    (25, "TERMINATED", "FAILED"),
    (25, "TERMINATED", None),
    (10, "ACTIVE", "PENDING"),
    (8, "CONNECTED", "PENDING"),
    (7, "TERMINATING", "PENDING"),
    (10, "ERROR", None),
    (5, "ERROR", "FAILED"),
    (5, "ACTIVATING", None),
    (5, "ACTIVE", None),
)


class EmulatorError(Exception):
    """A modeled GameLift Streams error: HTTP status + x-amzn-ErrorType + message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def _validation(message: str) -> EmulatorError:
    return EmulatorError(400, "ValidationException", message)


def _not_found(message: str) -> EmulatorError:
    return EmulatorError(404, "ResourceNotFoundException", message)


def _sort_time(value: Any) -> float:
    """Epoch seconds of a CreatedAt value, whatever a fuzz test put there (garbage sorts as 0)."""
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return 0.0
        return parsed.timestamp() if parsed.tzinfo else parsed.replace(tzinfo=UTC).timestamp()
    return 0.0


def _wire(value: Any) -> Any:
    """JSON-ready copy: datetimes as epoch seconds with milliseconds, None-valued members omitted."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return round(aware.timestamp(), 3)
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def _copy(value: Any) -> Any:
    """Copy of nested dicts/lists (much cheaper than deepcopy for 100k sessions)."""
    kind = type(value)
    if kind is dict:
        out = value.copy()
        for k, v in out.items():
            if type(v) is dict or type(v) is list:
                out[k] = _copy(v)
        return out
    if kind is list:
        return [_copy(v) if type(v) is dict or type(v) is list else v for v in value]
    return value


def _export_status(detail: Mapping[str, Any]) -> Any:
    meta = detail.get("ExportFilesMetadata")
    return meta.get("Status") if isinstance(meta, dict) else None


def _summary(detail: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SUMMARY_FIELDS:
        if name not in detail:
            continue
        value = detail[name]
        if name == "ExportFilesMetadata" and isinstance(value, dict):
            value = {"Status": value.get("Status")}
        out[name] = value
    return out


class _Rec:
    """One stored session: the raw detail dict plus what indexing and lookup need."""

    __slots__ = ("arn", "detail", "key", "region", "sgid", "sid", "uid")

    def __init__(self, uid: str, region: str, sgid: str, sid: str, detail: dict[str, Any]) -> None:
        self.uid = uid
        self.region = region
        self.sgid = sgid
        self.sid = sid
        self.detail = detail
        arn = detail.get("Arn")
        self.arn: str | None = arn if isinstance(arn, str) else None
        # Listing order: CreatedAt descending, then Arn, then an internal id for total order.
        self.key: tuple[float, str, str] = (-_sort_time(detail.get("CreatedAt")), self.arn or "", uid)

    def matches(self, status: str | None, export_status: str | None) -> bool:
        if status is not None and self.detail.get("Status") != status:
            return False
        return export_status is None or _export_status(self.detail) == export_status


class _RegionStore:
    def __init__(self) -> None:
        self.recs: dict[str, _Rec] = {}
        self.by_ids: dict[tuple[str, str], _Rec] = {}
        # (Status filter, ExportFilesStatus filter) -> sorted keys; built lazily, kept up to date.
        self.index: dict[tuple[str | None, str | None], list[tuple[float, str, str]]] = {}

    def keys(self, status: str | None, export_status: str | None) -> list[tuple[float, str, str]]:
        keys = self.index.get((status, export_status))
        if keys is None:
            keys = sorted(r.key for r in self.recs.values() if r.matches(status, export_status))
            self.index[(status, export_status)] = keys
        return keys

    def insert(self, rec: _Rec) -> None:
        self.recs[rec.uid] = rec
        self.by_ids[(rec.sgid, rec.sid)] = rec
        for (status, export_status), keys in self.index.items():
            if rec.matches(status, export_status):
                bisect.insort(keys, rec.key)

    def delete(self, rec: _Rec) -> None:
        self.recs.pop(rec.uid, None)
        if self.by_ids.get((rec.sgid, rec.sid)) is rec:
            del self.by_ids[(rec.sgid, rec.sid)]
        for keys in self.index.values():
            i = bisect.bisect_left(keys, rec.key)
            if i < len(keys) and keys[i] == rec.key:
                del keys[i]


class GameLiftStreamsEmulator(BackgroundHTTPServer):
    """In-process GameLift Streams endpoint for the real boto3 `gameliftstreams` client.

    `shift_on_page=True` switches listing to offset pagination and inserts a new matching session at the
    top after every page that has a NextToken, so the last item of a page is the first of the next: the
    "list shifts while paging" case an archiver must de-duplicate.
    """

    def __init__(
        self,
        port: int = 0,
        seed: int = 0,
        default_region: str = "us-east-2",
        account_id: str = "111122223333",
        *,
        canary: str = "glscanary",
        base_time: datetime = DEFAULT_BASE_TIME,
    ) -> None:
        super().__init__(port, seed)
        self.default_region = default_region
        self.account_id = account_id
        self.canary = canary
        self.shift_on_page = False
        self._data_lock = threading.RLock()
        self._rng = random.Random(seed)
        self._regions: dict[str, _RegionStore] = collections.defaultdict(_RegionStore)
        self._by_arn: dict[str, _Rec] = {}
        self._uid = 0
        self._clock = base_time - timedelta(days=60)
        self._app_ids = [f"a-{self._token(9)}" for _ in range(4)]
        self._sg_ids = [f"sg-{self._token(9)}" for _ in range(3)]
        self._session_ids: set[str] = set()

    # -- data API --------------------------------------------------------------------------------------

    def add_session(self, region: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Store one session (export SUCCEEDED and TERMINATED unless overridden) and return its detail.

        Overrides replace fields verbatim, so a test can put anything on the wire; None removes a field.
        A parseable session `Arn` override also sets the IDs GetStreamSession looks it up by.
        """
        region = region or self.default_region
        with self._data_lock:
            if "Status" in overrides or "ExportFilesMetadata" in overrides:
                status = overrides.get("Status") if isinstance(overrides.get("Status"), str) else "TERMINATED"
                export = _export_status(overrides)
            else:
                status, export = "TERMINATED", "SUCCEEDED"
            detail = self._make(region, str(status), export if isinstance(export, str) else None)
            generated_ids = (detail["StreamGroupId"], detail["Arn"].rsplit("/", 1)[-1])
            detail.update(overrides)
            rec = self._store(region, detail, generated_ids)
            return dict(_copy(rec.detail))

    def seed_sessions(
        self, n: int, region: str | None = None, *, succeeded_fraction: float = 0.6
    ) -> list[dict[str, Any]]:
        """Add `n` sessions with a deterministic, realistic mix of statuses; returns their details."""
        region = region or self.default_region
        total = sum(w for w, _, _ in _OTHER_MIX)
        cumulative: list[float] = []
        acc = 0.0
        for weight, _, _ in _OTHER_MIX:
            acc += weight / total
            cumulative.append(acc)
        out: list[dict[str, Any]] = []
        # Millions of small containers: the cyclic GC would rescan the growing heap and double the time.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self._data_lock:
                store = self._regions[region]
                store.index.clear()  # rebuilt lazily once, instead of n sorted inserts
                rng = self._rng
                for _ in range(n):
                    export: str | None
                    if rng.random() < succeeded_fraction:
                        status, export = "TERMINATED", "SUCCEEDED"
                    else:
                        i = min(bisect.bisect_left(cumulative, rng.random()), len(_OTHER_MIX) - 1)
                        _, status, export = _OTHER_MIX[i]
                    rec = self._store(region, self._make(region, status, export))
                    out.append(_copy(rec.detail))
        finally:
            if gc_was_enabled:
                gc.enable()
        return out

    def set_export_status(self, arn: str, status: str | None, output_uri: str | None = None) -> dict[str, Any]:
        """Change a session's export status (None removes ExportFilesMetadata); bumps LastUpdatedAt."""
        with self._data_lock:
            rec = self._lookup_arn(arn)
            store = self._regions[rec.region]
            store.delete(rec)
            detail = rec.detail
            if status is None:
                detail.pop("ExportFilesMetadata", None)
            else:
                meta: dict[str, Any] = {"Status": status}
                if status == "SUCCEEDED":
                    meta["OutputUri"] = output_uri or self._output_uri(detail, rec.sgid, rec.sid)
                elif output_uri is not None:
                    meta["OutputUri"] = output_uri
                if status == "FAILED":
                    meta["StatusReason"] = _EXPORT_FAIL_REASONS[0]
                detail["ExportFilesMetadata"] = meta
            self._clock += timedelta(seconds=1)
            detail["LastUpdatedAt"] = self._clock
            store.insert(rec)
            return dict(_copy(detail))

    def remove_session(self, arn: str) -> None:
        """Forget a session (as if it aged out of the API); KeyError if unknown."""
        with self._data_lock:
            rec = self._lookup_arn(arn)
            self._regions[rec.region].delete(rec)
            del self._by_arn[arn]

    def get_session(self, arn: str) -> dict[str, Any]:
        """A copy of one stored session's detail; KeyError if unknown."""
        with self._data_lock:
            return dict(_copy(self._lookup_arn(arn).detail))

    def sessions(self, region: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored sessions (all Regions unless given), in listing order."""
        with self._data_lock:
            regions = [region] if region else sorted(self._regions)
            out: list[dict[str, Any]] = []
            for name in regions:
                store = self._regions[name]
                out.extend(_copy(store.recs[k[2]].detail) for k in store.keys(None, None))
            return out

    def succeeded_arns(self, region: str | None = None) -> set[str]:
        """ARNs whose export SUCCEEDED: what a complete archive run must end up holding."""
        with self._data_lock:
            regions = [region] if region else list(self._regions)
            return {
                self._regions[name].recs[k[2]].arn or ""
                for name in regions
                for k in self._regions[name].keys(None, "SUCCEEDED")
            } - {""}

    def clear_sessions(self) -> None:
        """Remove every session in every Region."""
        with self._data_lock:
            self._regions.clear()
            self._by_arn.clear()

    # -- session generation ----------------------------------------------------------------------------

    def _token(self, n: int) -> str:
        return self._rng.randbytes(n).translate(_BYTE_TO_ALNUM).decode("ascii")

    def _new_session_id(self) -> str:
        while True:
            sid = self._token(13)
            if sid not in self._session_ids:
                self._session_ids.add(sid)
                return sid

    def _output_uri(self, detail: Mapping[str, Any], sgid: str, sid: str) -> str:
        ended = detail.get("StreamingEndedAt") or detail.get("LastUpdatedAt")
        iso = (ended if isinstance(ended, datetime) else self._clock).isoformat()  # 5x faster than strftime
        stamp = f"{iso[0:4]}{iso[5:7]}{iso[8:10]}-{iso[11:13]}{iso[14:16]}{iso[17:19]}"
        app_arn = detail.get("ApplicationArn")
        app_id = app_arn.rsplit("/", 1)[-1] if isinstance(app_arn, str) else self._app_ids[0]
        return f"s3://{EXPORT_BUCKET}/sessions/{stamp}-{app_id}-{sgid}-{sid}.zip"

    def _make(self, region: str, status: str, export: str | None) -> dict[str, Any]:
        """A realistic GetStreamSession detail; the clock only moves forward so new sessions list first.

        Written for speed (100k sessions in a few seconds): index arithmetic on `random()` instead of
        `choice`/`randint`, which cost several calls each.
        """
        r = self._rng.random
        sid = self._new_session_id()
        sgid = self._sg_ids[int(r() * len(self._sg_ids))]
        app_id = self._app_ids[int(r() * len(self._app_ids))]
        acct = self.account_id
        canary = self.canary
        self._clock += timedelta(milliseconds=1_000 + int(r() * 49_000))
        created = self._clock
        n = 1 + int(r() * 99_999)
        width, height = _RESOLUTIONS[n % len(_RESOLUTIONS)]
        env: dict[str, str] = {}
        if r() >= 0.15:
            env = {
                "GAME_MODE": ("ranked", "casual", "qa")[n % 3],
                "SESSION_TOKEN": f"{canary}-env-{sid}",
                "BACKEND_API_KEY": f"{canary}-key-{n}",
            }
        detail: dict[str, Any] = {
            "Arn": f"arn:aws:gameliftstreams:{region}:{acct}:streamsession/{sgid}/{sid}",
            "Description": f"playtest {app_id} build 1.{n % 9}.{n % 31}",
            "StreamGroupId": sgid,
            "UserId": _USER_FORMS[n % len(_USER_FORMS)].format(n=n),
            "Status": status,
            "Protocol": "WebRTC",
            "Location": LOCATIONS[int(r() * len(LOCATIONS))],
            "SignalRequest": f'{{"type":"offer","sdp":"v=0 o=- {n} 2 IN IP4 a={canary}-sigreq-{sid}"}}',
            "SignalResponse": f'{{"type":"answer","sdp":"v=0 o=- {n} 3 IN IP4 a={canary}-sigresp-{sid}"}}',
            "ConnectionTimeoutSeconds": (60, 120, 300)[n % 3],
            "SessionLengthSeconds": (3_600, 21_600, 43_200, 86_400)[n % 4],
            "AdditionalLaunchArgs": ["-windowed", "-map", _MAPS[n % len(_MAPS)]],
            "AdditionalEnvironmentVariables": env,
            "PerformanceStatsConfiguration": {"SharedWithClient": n % 2 == 0},
            "LogFileLocationUri": f"s3://studio-logs/{app_id}/{sid}/",
            "WebSdkProtocolUrl": f"https://websdk.gameliftstreams.example/{region}/{sid}",
            "CreatedAt": created,
            "ApplicationArn": f"arn:aws:gameliftstreams:{region}:{acct}:application/{app_id}",
            "RoleArn": f"arn:aws:iam::{acct}:role/GameLiftStreamsAppRole",
            "DisplayConfiguration": {"Resolution": {"Width": width, "Height": height}},
        }
        last = created + timedelta(milliseconds=500 + int(r() * 3_500))
        if status not in {"ACTIVATING", "ERROR"}:
            app_started = created + timedelta(milliseconds=5_000 + int(r() * 35_000))
            streaming = app_started + timedelta(milliseconds=2_000 + int(r() * 18_000))
            detail["ApplicationStartedAt"] = app_started
            detail["StreamingStartedAt"] = streaming
            last = streaming
            if status in ("TERMINATED", "TERMINATING"):
                ended = streaming + timedelta(milliseconds=60_000 + int(r() * 7_140_000))
                detail["StreamingEndedAt"] = ended
                last = ended + timedelta(milliseconds=1_000 + int(r() * 4_000))
        if status == "TERMINATED":
            detail["StatusReason"] = _TERMINATED_REASONS[n % len(_TERMINATED_REASONS)]
        elif status == "ERROR":
            detail["StatusReason"] = _ERROR_REASONS[n % len(_ERROR_REASONS)]
        detail["LastUpdatedAt"] = last
        if export is not None:
            meta: dict[str, Any] = {"Status": export}
            if export == "SUCCEEDED":
                meta["OutputUri"] = self._output_uri(detail, sgid, sid)
            elif export == "FAILED":
                meta["StatusReason"] = _EXPORT_FAIL_REASONS[n % len(_EXPORT_FAIL_REASONS)]
            detail["ExportFilesMetadata"] = meta
        return detail

    def _store(self, region: str, detail: dict[str, Any], fallback_ids: tuple[str, str] | None = None) -> _Rec:
        """Index a session under the IDs GetStreamSession finds it by.

        `fallback_ids` marks a caller-built detail (add_session) that may hold anything: None values are
        dropped and the IDs come from a parseable Arn, else from the generated ones. Without it the
        detail is our own, well-formed, and takes the fast path (seeding 100k sessions).
        """
        arn: Any
        if fallback_ids is None:
            arn = detail["Arn"]
            sgid, sid = detail["StreamGroupId"], arn[arn.rindex("/") + 1 :]
        else:
            for name in [k for k, v in detail.items() if v is None]:
                del detail[name]
            arn = detail.get("Arn")
            match = _SESSION_ARN_RE.fullmatch(arn) if isinstance(arn, str) else None
            sgid, sid = (match.group(3), match.group(4)) if match else fallback_ids
        if isinstance(arn, str) and arn in self._by_arn:
            raise ValueError(f"a session with Arn {arn!r} already exists")
        self._uid += 1
        rec = _Rec(f"{self._uid:012d}", region, sgid, sid, detail)
        self._regions[region].insert(rec)
        if rec.arn is not None:
            self._by_arn[rec.arn] = rec
        return rec

    def _lookup_arn(self, arn: str) -> _Rec:
        rec = self._by_arn.get(arn)
        if rec is None:
            raise KeyError(f"no session with Arn {arn!r}")
        return rec

    # -- the two API operations -------------------------------------------------------------------------

    def _fingerprint(self, region: str, status: str | None, export_status: str | None) -> str:
        return hashlib.sha256(f"{region}|{status}|{export_status}".encode()).hexdigest()[:16]

    def list_sessions(self, region: str, query: Mapping[str, str]) -> dict[str, Any]:
        """ListStreamSessionsByAccount; raises EmulatorError for what the service would reject."""
        status = query.get("Status")
        export_status = query.get("ExportFilesStatus")
        if status is not None and status not in STATUSES:
            raise _validation(
                f"1 validation error detected: Value '{status}' at 'status' failed to satisfy "
                f"constraint: Member must satisfy enum value set: {list(STATUSES)}"
            )
        if export_status is not None and export_status not in EXPORT_STATUSES:
            raise _validation(
                f"1 validation error detected: Value '{export_status}' at 'exportFilesStatus' "
                f"failed to satisfy constraint: Member must satisfy enum value set: "
                f"{list(EXPORT_STATUSES)}"
            )
        raw_max = query.get("MaxResults")
        try:
            max_results = 25 if raw_max is None else int(raw_max)
        except ValueError:
            raise _validation(f"MaxResults '{raw_max}' is not an integer") from None
        if not 1 <= max_results <= 100:
            raise _validation(
                f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
                "satisfy constraint: Member must have value between 1 and 100"
            )
        fingerprint = self._fingerprint(region, status, export_status)
        position = self._decode_token(query.get("NextToken"), fingerprint)
        with self._data_lock:
            store = self._regions[region]
            keys = store.keys(status, export_status)
            if isinstance(position, int):
                start = position
            elif position is not None:
                start = bisect.bisect_right(keys, position)
            else:
                start = 0
            page = keys[start : start + max_results]
            items = [_wire(_summary(store.recs[k[2]].detail)) for k in page]
            token: str | None = None
            if start + max_results < len(keys) and page:
                if self.shift_on_page:
                    token = self._encode_token({"o": start + len(page), "f": fingerprint})
                    self._insert_shifting_session(region, status, export_status)
                else:
                    token = self._encode_token({"k": list(page[-1]), "f": fingerprint})
        out: dict[str, Any] = {"Items": items}
        if token is not None:
            out["NextToken"] = token
        return out

    def _insert_shifting_session(self, region: str, status: str | None, export_status: str | None) -> None:
        """A new session matching the current filters, newest of all, so the filtered list shifts by one."""
        self._store(region, self._make(region, status or "TERMINATED", export_status))

    @staticmethod
    def _encode_token(payload: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()

    @staticmethod
    def _decode_token(token: str | None, fingerprint: str) -> tuple[float, str, str] | int | None:
        if token is None:
            return None
        invalid = _validation("The NextToken is not valid for this request.")
        try:
            payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, binascii.Error, UnicodeError):
            raise invalid from None
        if not isinstance(payload, dict) or payload.get("f") != fingerprint:
            raise invalid
        if isinstance(payload.get("o"), int) and payload["o"] >= 0:
            return int(payload["o"])
        key = payload.get("k")
        if (
            isinstance(key, list)
            and len(key) == 3
            and isinstance(key[0], int | float)
            and isinstance(key[1], str)
            and isinstance(key[2], str)
        ):
            return (float(key[0]), key[1], key[2])
        raise invalid

    def get_stream_session(self, region: str, group: str, session: str) -> dict[str, Any]:
        """GetStreamSession with ID-or-ARN identifiers (already URL-decoded)."""
        for name, value in (("identifier", group), ("streamSessionIdentifier", session)):
            if not 1 <= len(value) <= 128 or not _IDENTIFIER_RE.match(value):
                raise _validation(
                    f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy "
                    "constraint: Member must satisfy regular expression pattern"
                )
        sgid = group.rsplit("/", 1)[-1] if group.startswith("arn:") else group
        with self._data_lock:
            store = self._regions.get(region)
            rec: _Rec | None = None
            if store is not None:
                if session.startswith("arn:"):
                    found = self._by_arn.get(session)
                    rec = found if found is not None and found.region == region else None
                else:
                    rec = store.by_ids.get((sgid, session))
            if rec is None or rec.sgid != sgid:
                raise _not_found(f"Stream session {session} not found in stream group {group}.")
            return dict(_wire(rec.detail))

    # -- control API (out-of-process use) --------------------------------------------------------------

    def control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """The `/_emulator/...` HTTP endpoints: seed data, flip export status, configure faults."""
        payload: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
        handler = _CONTROL.get((method, path))
        if handler is None:
            return 404, {"message": f"unknown control endpoint {method} {path}"}
        try:
            return handler(self, payload)
        except KeyError as error:
            return 404, {"message": f"not found: {error}"}
        except (ValueError, TypeError) as error:
            return 400, {"message": f"bad request: {error}"}

    def _c_sessions(self, payload: dict[str, Any]) -> tuple[int, Any]:
        region = payload.pop("region", None)
        if "seed" in payload:
            fraction = float(payload.get("succeeded_fraction", 0.6))
            made = self.seed_sessions(int(payload["seed"]), region, succeeded_fraction=fraction)
            return 200, {"count": len(made), "arns": [d.get("Arn") for d in made]}
        return 200, _wire(self.add_session(region, **payload))

    def _c_export_status(self, payload: dict[str, Any]) -> tuple[int, Any]:
        detail = self.set_export_status(payload["arn"], payload.get("status"), payload.get("output_uri"))
        return 200, _wire(detail)

    def _c_remove_session(self, payload: dict[str, Any]) -> tuple[int, Any]:
        self.remove_session(payload["arn"])
        return 200, {}

    def _c_faults(self, payload: dict[str, Any]) -> tuple[int, Any]:
        try:
            self.faults.apply_json(payload)
        except KeyError as error:
            raise ValueError(f"fault rule is missing {error}") from None
        return 200, {}

    def _c_reset_faults(self, payload: dict[str, Any]) -> tuple[int, Any]:
        self.faults.clear(limits=bool(payload.get("limits", True)))
        return 200, {}

    def _c_config(self, payload: dict[str, Any]) -> tuple[int, Any]:
        if "shift_on_page" in payload:
            self.shift_on_page = bool(payload["shift_on_page"])
        return 200, {"shift_on_page": self.shift_on_page}

    def _c_reset_calls(self, payload: dict[str, Any]) -> tuple[int, Any]:
        self.reset_calls()
        return 200, {}

    def _c_calls(self, payload: dict[str, Any]) -> tuple[int, Any]:
        fired = {f"{op}:{kind}": n for (op, kind), n in self.faults.fired.items()}
        counts = self.call_counts()
        return 200, {"counts": dict(counts), "total": sum(counts.values()), "fired": fired}

    def _c_succeeded(self, payload: dict[str, Any]) -> tuple[int, Any]:
        return 200, {"arns": sorted(self.succeeded_arns(payload.get("region")))}


_CONTROL: Final[dict[tuple[str, str], Callable[[GameLiftStreamsEmulator, dict[str, Any]], tuple[int, Any]]]] = {
    ("POST", "/_emulator/sessions"): GameLiftStreamsEmulator._c_sessions,
    ("POST", "/_emulator/export-status"): GameLiftStreamsEmulator._c_export_status,
    ("POST", "/_emulator/remove-session"): GameLiftStreamsEmulator._c_remove_session,
    ("POST", "/_emulator/faults"): GameLiftStreamsEmulator._c_faults,
    ("POST", "/_emulator/reset-faults"): GameLiftStreamsEmulator._c_reset_faults,
    ("POST", "/_emulator/config"): GameLiftStreamsEmulator._c_config,
    ("POST", "/_emulator/reset-calls"): GameLiftStreamsEmulator._c_reset_calls,
    ("GET", "/_emulator/calls"): GameLiftStreamsEmulator._c_calls,
    ("GET", "/_emulator/succeeded"): GameLiftStreamsEmulator._c_succeeded,
}


class _Handler(QuietHandler):
    server_version = "GameLiftStreamsEmulator/1.0"

    @property
    def emulator(self) -> GameLiftStreamsEmulator:
        app = getattr(self.server, "app", None)
        assert isinstance(app, GameLiftStreamsEmulator)
        return app

    def _send_json(self, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        try:
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from a fuzz override: fall back to \u escapes
            body = json.dumps(payload, separators=(",", ":")).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in headers:
            self.send_header(name, value)
        self.log_call(status)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_error(self, error: EmulatorError) -> None:
        self._send_json(
            error.status,
            {"message": error.message, "Message": error.message},
            [("x-amzn-ErrorType", error.error_type)],
        )

    def serve(self) -> None:
        emulator = self.emulator
        body = self.read_body()
        split = urlsplit(self.path)
        if split.path.startswith("/_emulator/"):
            try:
                parsed = json.loads(body) if body else {}
            except ValueError:
                self._send_json(400, {"message": "control body must be JSON"})
                return
            if self.command == "GET":
                parsed = {k: v[0] for k, v in parse_qs(split.query).items()}
            status, payload = emulator.control(self.command, split.path, parsed)
            self._send_json(status, payload)
            return
        region = region_from_authorization(self.headers.get("Authorization")) or emulator.default_region
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        route = _GET_ROUTE.match(split.path)
        if self.command == "GET" and split.path.rstrip("/") == "/streamsessions":
            operation, params = "ListStreamSessionsByAccount", dict(query)
        elif self.command == "GET" and route:
            operation = "GetStreamSession"
            params = {
                "Identifier": unquote(route.group(1)),
                "StreamSessionIdentifier": unquote(route.group(2)),
            }
        else:
            message = (
                f"No operation for {self.command} {split.path}: this emulator serves only "
                "GET /streamsessions (ListStreamSessionsByAccount) and "
                "GET /streamgroups/{Identifier}/streamsessions/{StreamSessionIdentifier} (GetStreamSession)."
            )
            self.expect_call(emulator.log, "Unknown", region, {"path": split.path}, None)
            self._send_error(EmulatorError(404, "UnknownOperationException", message))
            return
        decision = emulator.faults.decide(operation, region, "NextToken" in query)
        fault = "kill" if decision.killed_before else ("quota" if decision.quota else decision.fault)
        self.expect_call(emulator.log, operation, region, params, fault)
        try:
            self._serve(emulator, decision, operation, region, params)
        finally:
            self.log_call(None)  # no response was written (dropped socket, client gone)
            emulator.faults.after_response(decision)

    def _serve(
        self,
        emulator: GameLiftStreamsEmulator,
        decision: Decision,
        operation: str,
        region: str,
        params: dict[str, str],
    ) -> int | None:
        if decision.fault == "reset":
            drop_connection(self)
            return None
        emulator.faults.sleep(decision.delay)
        if decision.fault in ERROR_KINDS:
            status, error_type, message = _ERRORS[str(decision.fault)]
            error = EmulatorError(status, error_type, message)
            emulator.faults.sleep(decision.hold)
            self._send_error(error)
            return status
        try:
            if operation == "ListStreamSessionsByAccount":
                payload = emulator.list_sessions(region, params)
            else:
                payload = emulator.get_stream_session(region, params["Identifier"], params["StreamSessionIdentifier"])
        except EmulatorError as error:
            emulator.faults.sleep(decision.hold)
            self._send_error(error)
            return error.status
        emulator.faults.sleep(decision.hold)
        self._send_json(200, payload)
        return 200


GameLiftStreamsEmulator.handler_class = _Handler


def main(argv: list[str] | None = None) -> int:
    """Run the emulator as its own process (demo, benchmarks): prints the endpoint, serves until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m local.gls_emulator", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sessions", type=int, default=0, help="sessions to seed in each Region")
    parser.add_argument("--region", default="us-east-2", help="default Region (unsigned requests)")
    parser.add_argument("--regions", default="", help="comma-separated Regions to seed (default: --region)")
    parser.add_argument("--rate", type=float, default=None, help="quota: requests/second per operation+Region")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    args = parser.parse_args(argv)

    emulator = GameLiftStreamsEmulator(port=args.port, seed=args.seed, default_region=args.region)
    for region in [r for r in args.regions.split(",") if r] or [args.region]:
        if args.sessions:
            emulator.seed_sessions(args.sessions, region)
    if args.rate:
        emulator.faults.rate_limit("*", args.rate, max(1, int(args.rate)))
    if args.latency_ms:
        emulator.faults.base_latency["*"] = args.latency_ms / 1000.0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with emulator:
        print(emulator.endpoint_url, flush=True)
        while not stop.wait(3600):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

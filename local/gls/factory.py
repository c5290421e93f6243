"""Realistic, deterministic GameLift Streams session details: what the backend seeds and adds.

One seeded `random.Random` and a clock that only moves forward (newer sessions list first), so a seed
always gives the same sessions, byte for byte. Written for speed (100k sessions in a few seconds).
"""

from __future__ import annotations

import bisect
import random
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

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
DEFAULT_BASE_TIME: Final = datetime(2026, 11, 27, 18, 4, 5, tzinfo=UTC)
EXPORT_BUCKET: Final = "studio-exports"
# Where seeded sessions' exports go (and a live seeded session's pending export, when it ends).
DEFAULT_EXPORT_FOLDER: Final = f"s3://{EXPORT_BUCKET}/sessions/"
EXPORT_FAIL_REASONS: Final = (
    "The stream session ended before the export could start.",
    "Amazon GameLift Streams could not write to the output location.",
)

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


def _aware(value: Any) -> datetime | None:
    """A datetime with a time zone (UTC if it had none), or None for anything else."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _cumulative_mix() -> tuple[float, ...]:
    total = sum(w for w, _, _ in _OTHER_MIX)
    out: list[float] = []
    acc = 0.0
    for weight, _, _ in _OTHER_MIX:
        acc += weight / total
        out.append(acc)
    return tuple(out)


_CUMULATIVE: Final = _cumulative_mix()


class SessionFactory:
    """Makes session details for one account; the clock is the time of the newest session made so far."""

    def __init__(self, seed: int, account_id: str, canary: str, base_time: datetime) -> None:
        self.account_id = account_id
        self.canary = canary
        self.rng = random.Random(seed)
        self.clock = base_time - timedelta(days=60)
        self._app_ids = [f"a-{self._token(9)}" for _ in range(4)]
        self._sg_ids = [f"sg-{self._token(9)}" for _ in range(3)]
        self._session_ids: set[str] = set()

    def draw_status(self, succeeded_fraction: float) -> tuple[str, str | None]:
        """A (Status, export status) pair of the seeding mix: SUCCEEDED with the given probability."""
        rng = self.rng
        if rng.random() < succeeded_fraction:
            return "TERMINATED", "SUCCEEDED"
        i = min(bisect.bisect_left(_CUMULATIVE, rng.random()), len(_OTHER_MIX) - 1)
        _, status, export = _OTHER_MIX[i]
        return status, export

    def tick(self) -> datetime:
        """Move the clock one second on (a change to a session) and return it."""
        self.clock += timedelta(seconds=1)
        return self.clock

    def end(self, detail: dict[str, Any], sid: str, reason: str) -> datetime:
        """End a session now (the factory's clock): TERMINATED with `reason` and a StreamingEndedAt (kept if it
        has one: a TERMINATING session); a session that just started streams 60-600 s (from its ID, so the
        same session always streams as long). Returns StreamingEndedAt."""
        ended = _aware(detail.get("StreamingEndedAt"))
        if ended is None:
            ended = self.clock + timedelta(seconds=1)
            started = _aware(detail.get("StreamingStartedAt"))
            if started is not None:
                ended = max(ended, started + timedelta(seconds=60 + zlib.crc32(sid.encode()) % 541))
            detail["StreamingEndedAt"] = ended
        detail["Status"] = "TERMINATED"
        detail["StatusReason"] = reason
        self.clock = max(self.clock, ended) + timedelta(seconds=1)
        detail["LastUpdatedAt"] = self.clock
        return ended

    def output_uri(self, detail: Mapping[str, Any], sgid: str, sid: str) -> str:
        """Where the export ZIP went: the service's default name, stamped with the session's end."""
        ended = detail.get("StreamingEndedAt") or detail.get("LastUpdatedAt")
        iso = (ended if isinstance(ended, datetime) else self.clock).isoformat()  # 5x faster than strftime
        stamp = f"{iso[0:4]}{iso[5:7]}{iso[8:10]}-{iso[11:13]}{iso[14:16]}{iso[17:19]}"
        app_arn = detail.get("ApplicationArn")
        app_id = app_arn.rsplit("/", 1)[-1] if isinstance(app_arn, str) else self._app_ids[0]
        return f"{DEFAULT_EXPORT_FOLDER}{stamp}-{app_id}-{sgid}-{sid}.zip"

    def make(self, region: str, status: str, export: str | None) -> dict[str, Any]:
        """A realistic GetStreamSession detail, created after every session made before it.

        Index arithmetic on `random()` instead of `choice`/`randint`, which cost several calls each.
        """
        r = self.rng.random
        sid = self._new_session_id()
        sgid = self._sg_ids[int(r() * len(self._sg_ids))]
        app_id = self._app_ids[int(r() * len(self._app_ids))]
        acct = self.account_id
        canary = self.canary
        self.clock += timedelta(milliseconds=1_000 + int(r() * 49_000))
        created = self.clock
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
            "AdditionalLaunchArgs": ["-windowed", "-map", _MAPS[n % len(_MAPS)], *self.secret_launch_args(sid)],
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
                meta["OutputUri"] = self.output_uri(detail, sgid, sid)
            elif export == "FAILED":
                meta["StatusReason"] = EXPORT_FAIL_REASONS[n % len(EXPORT_FAIL_REASONS)]
            detail["ExportFilesMetadata"] = meta
        return detail

    def secret_launch_args(self, sid: str) -> list[str]:
        """Launch arguments with the canary in every place archiver.redaction must hide a value, between
        harmless flags: attached (`--name=`, `-name:`), after a flag, positional, and after `--` (even one
        that looks like a flag). None when the factory has no canary."""
        canary = self.canary
        if not canary:
            return []
        return [
            f"--auth-token={canary}-attached-{sid}",
            "-nosound",
            "-token",
            f"{canary}-after-flag-{sid}",
            f"{canary}-positional-{sid}",
            f"-ini:Engine:{canary}-colon-{sid}",
            "--",
            f"--{canary}-after-end-{sid}",
            f"{canary}-rest-{sid}",
        ]

    def without_secrets(self, detail: Mapping[str, Any]) -> dict[str, Any]:
        """`detail` as the game sees fit to log it (the export ZIP's application log): launch arguments that
        carry the canary left out, so the export holds nothing of the session's secrets."""
        args = detail.get("AdditionalLaunchArgs")
        if not self.canary or not isinstance(args, list):
            return dict(detail)
        return {**detail, "AdditionalLaunchArgs": [a for a in args if not (isinstance(a, str) and self.canary in a)]}

    def _token(self, n: int) -> str:
        return self.rng.randbytes(n).translate(_BYTE_TO_ALNUM).decode("ascii")

    def _new_session_id(self) -> str:
        while True:
            sid = self._token(13)
            if sid not in self._session_ids:
                self._session_ids.add(sid)
                return sid

"""Hostile and malformed input: an emulator that puts raw values on the wire, and the hypothesis strategies
that draw hostile sessions, with the oracle of which of them must be archived."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from local.gls import GameLiftStreamsEmulator
from local.reliability.constants import ACCOUNT, CANARY, REGION


class HostileEmulator(GameLiftStreamsEmulator):
    """The emulator, plus raw values put on the wire as given: JSON nulls, wrong types, list items that
    differ from GetStreamSession. Keyed by the stored session's Arn."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.get_wire: dict[str, dict[str, Any]] = {}
        self.list_wire: dict[str, dict[str, Any]] = {}
        self.added: list[dict[str, Any]] = []  # every stored session's detail, in the order added

    def add_session(self, region: str | None = None, **overrides: Any) -> dict[str, Any]:
        stored = super().add_session(region, **overrides)
        self.added.append(stored)
        return stored

    def list_sessions(self, region: str, query: Mapping[str, str]) -> dict[str, Any]:
        out = super().list_sessions(region, query)
        for item in out["Items"]:
            item.update(self.list_wire.get(str(item.get("Arn")), {}))
        return out

    def get_stream_session(self, region: str, group: str, session: str) -> dict[str, Any]:
        out = super().get_stream_session(region, group, session)
        out.update(self.get_wire.get(str(out.get("Arn")), {}))
        return out


NASTY: Final = (
    "",
    " ",
    "..",
    "../",
    "../../etc/passwd",
    "..%2F..%2Fescape",
    "%2F",
    "a/b",
    "a\\b",
    "line\nbreak",
    "cr\rlf\r\n",
    "nul\x00byte",
    "bell\x07esc\x1b[31m",
    "\u2028\u2029",
    "\ufeffbom",
    "zero\u200bwidth",
    "rtl\u202eevil",
    "🎮🕹️",
    "ünïcödé",
    "lone\ud800surrogate",
    "${source_region}",
    "source_region=us-east-1/created_date=1970-01-01/",
    "s3://other-bucket/../x",
    '"quoted",{"json":true}',
    "<script>alert(1)</script>",
    "' OR 1=1 --",
)
_LONG: Final = (1_000, 70_000)


def _hostile_text(*, long: bool = True) -> Any:
    from hypothesis import strategies as st  # noqa: PLC0415 - the worker process never loads hypothesis

    odd = st.text(st.characters(categories=["Cc", "Cs", "Zl", "Zp", "So", "Lo", "Mn"]), max_size=20)
    short = st.one_of(st.sampled_from(NASTY), st.text(max_size=30), odd)
    if not long:
        return short
    repeated = st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "/", "🎮", "\n"]), st.sampled_from(_LONG))
    return st.one_of(short, repeated)


FOREIGN_ACCOUNT: Final = "999999999999"
FOREIGN_REGION: Final = "eu-central-1"  # outside the worlds' SOURCE_REGIONS (REGION only)


def foreign_arns(seq: int) -> list[str]:
    """Well-formed session ARNs that are not the function's: another account, Regions outside SOURCE_REGIONS,
    another partition. Never archived, whether listed or in GetStreamSession's answer; counted `foreign`."""
    tail = f"streamsession/sg-fuzz/{seq}x"
    return [
        f"arn:aws:gameliftstreams:{REGION}:{FOREIGN_ACCOUNT}:{tail}",
        f"arn:aws:gameliftstreams:{FOREIGN_REGION}:{ACCOUNT}:{tail}",
        f"arn:aws:gameliftstreams:us-west-2:{ACCOUNT}:{tail}",
        f"arn:aws-us-gov:gameliftstreams:{REGION}:{ACCOUNT}:{tail}",
    ]


def _malformed_arns(seq: int) -> list[str]:
    """ARNs a list may carry that name no session at all: skipped, never reach a key."""
    base = f"arn:aws:gameliftstreams:{REGION}:{ACCOUNT}:streamsession"
    return [
        f"{base}/sg-fuzz/../{seq}x",
        f"{base}/../../{seq}x",
        f"{base}/sg%2Ffuzz/{seq}x",
        f"{base}/sg-fuzz/{seq}x%2F..",
        f"{base}/sg-fuzz/{seq}x\n",
        f"{base}/sg-fuzz/{seq}x/extra",
        f"{base}/sg-fuzz/{seq}x\x00",
        f"{base}/sg fuzz/{seq}x",
        f"{base}/sg-fuzz/{seq}" + "x" * 40,
        f"arn:aws:gameliftstreams:{REGION}:{ACCOUNT}:streamgroup/sg-fuzz/{seq}x",
        f"{base}/\u0455g-fuzz/{seq}x",  # Cyrillic dze, not "s"
        f"{seq}x",
    ]


def _hostile_arn(seq: int) -> Any:
    """ARNs a list (or a GetStreamSession answer) may carry that must never be archived (or reach a key)."""
    from hypothesis import strategies as st  # noqa: PLC0415 - the worker process never loads hypothesis

    return st.sampled_from(_malformed_arns(seq) + foreign_arns(seq))


def secret_launch_args(seq: int) -> list[str]:
    """Launch arguments that carry a canary as a flag's value, in the two forms AWS's docs leave possible
    (`--name=value`, `-name value`): redacted in every record unless the operator opts in."""
    return ["-windowed", f"--auth-token={CANARY}-a{seq}", "-token", f"{CANARY}-b{seq}"]


_STRING_FIELDS: Final = (
    "Description",
    "UserId",
    "Status",
    "StatusReason",
    "Protocol",
    "Location",
    "ApplicationArn",
    "LogFileLocationUri",
    "WebSdkProtocolUrl",
)
_INT_FIELDS: Final = ("ConnectionTimeoutSeconds", "SessionLengthSeconds")
_TIME_FIELDS: Final = ("CreatedAt", "LastUpdatedAt", "ApplicationStartedAt", "StreamingStartedAt", "StreamingEndedAt")


@dataclass
class HostileSession:
    """One fuzzed session: stored fields (None: missing), raw wire values for GetStreamSession and for
    its list item (None: JSON null), and a hostile ARN for the list (None: its own, valid one)."""

    fields: dict[str, Any]
    get_wire: dict[str, Any]
    list_wire: dict[str, Any]
    list_arn: str | None = None


def launch_args(seq: int) -> Any:
    """Hostile launch arguments (none, a few or many), and half the time the canary as flag values after them:
    redacted, so never stored."""
    from hypothesis import strategies as st  # noqa: PLC0415 - the worker process never loads hypothesis

    hostile = st.sampled_from((0, 3, 96)).flatmap(
        lambda size: st.lists(_hostile_text(long=False), min_size=size, max_size=size)
    )
    return st.tuples(hostile, st.booleans()).map(
        lambda drawn: [*drawn[0], *(secret_launch_args(seq) if drawn[1] else [])]
    )


def hostile_sessions(max_sessions: int = 4) -> Any:
    from hypothesis import strategies as st  # noqa: PLC0415 - the worker process never loads hypothesis

    text, maybe = _hostile_text(), st.none()
    timestamps = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))

    @st.composite
    def one(draw: Any, seq: int) -> HostileSession:
        fields: dict[str, Any] = {}
        for name in draw(st.sets(st.sampled_from(_STRING_FIELDS))):
            fields[name] = draw(st.one_of(text, maybe))
        for name in draw(st.sets(st.sampled_from(_INT_FIELDS))):
            fields[name] = draw(st.one_of(st.integers(-(2**70), 2**70), st.integers(-5, 5), maybe))
        for name in draw(st.sets(st.sampled_from(_TIME_FIELDS))):
            fields[name] = draw(st.one_of(timestamps, maybe))
        if draw(st.booleans()):
            fields["AdditionalLaunchArgs"] = draw(launch_args(seq))
        if draw(st.booleans()):
            names = draw(st.lists(_hostile_text(long=False), max_size=6, unique=True))
            fields["AdditionalEnvironmentVariables"] = {n: f"{CANARY}-{i}" for i, n in enumerate(names)}
        if draw(st.booleans()):
            width, height = draw(st.tuples(st.integers(-(2**40), 2**40), st.integers(-(2**40), 2**40)))
            fields["DisplayConfiguration"] = {"Resolution": {"Width": width, "Height": height}}
        export: dict[str, Any] = {"Status": "SUCCEEDED"}  # listed by the SUCCEEDED filter, whatever else
        if draw(st.booleans()):
            export["OutputUri"] = draw(st.one_of(text, st.just("s3://" + "u" * 450_000), maybe))
            export["StatusReason"] = draw(text)
        fields["ExportFilesMetadata"] = export
        get_wire: dict[str, Any] = {}
        for name in draw(st.sets(st.sampled_from((*_STRING_FIELDS, *_TIME_FIELDS, "ExportFilesMetadata")))):
            get_wire[name] = None  # present on the wire as JSON null
        if draw(st.integers(0, 9)) == 0:
            get_wire["CreatedAt"] = "not-a-date"  # unparseable: botocore cannot read this answer
        if draw(st.integers(0, 9)) == 0:
            get_wire["Arn"] = draw(_hostile_arn(seq))  # GetStreamSession naming another "ARN"
        list_wire: dict[str, Any] = {n: None for n in draw(st.sets(st.sampled_from(("CreatedAt", "UserId", "Status"))))}
        if draw(st.integers(0, 19)) == 0:
            list_wire["CreatedAt"] = "not-a-date"  # one unreadable item makes its whole page unreadable
        if draw(st.integers(0, 7)) == 7:  # a foreign session the API lists and answers for (0 is drawn often)
            fields["Arn"] = draw(st.sampled_from(foreign_arns(seq)))
        list_arn = draw(st.one_of(st.none(), st.none(), _hostile_arn(seq)))
        return HostileSession(fields, get_wire, list_wire, list_arn)

    return st.integers(1, max_sessions).flatmap(lambda n: st.tuples(*(one(i) for i in range(n))))


# The session ARNs the archiver can use, written here from the service's ARN format, not from archiver.records:
# any partition, a Region, 12 digits, stream group and session IDs of the service's characters, <= 128 in all.
_ARN: Final = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):gameliftstreams:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}):"
    r"(?P<account>[0-9]{12}):streamsession/[A-Za-z0-9-]{1,32}/[A-Za-z0-9-]{1,32}"
)


def _listed(session: HostileSession, stored: Mapping[str, Any]) -> object:
    """The ARN the session is listed under (None if it is not listed: its export did not succeed)."""
    export = stored.get("ExportFilesMetadata")
    if not isinstance(export, Mapping) or export.get("Status") != "SUCCEEDED":
        return None
    return session.list_arn if session.list_arn is not None else stored.get("Arn")


def is_ours(arn: object, regions: tuple[str, ...] = (REGION,)) -> bool | None:
    """Whether a usable session ARN is the function's (the worlds' account, partition `aws`, a source Region);
    None if it is no usable session ARN at all (skipped, not foreign)."""
    match = _ARN.fullmatch(arn) if isinstance(arn, str) and len(arn) <= 128 else None
    if match is None:
        return None
    return match["partition"] == "aws" and match["account"] == ACCOUNT and match["region"] in regions


def should_archive(session: HostileSession, stored: Mapping[str, Any]) -> bool:
    """Oracle: a listed session whose export SUCCEEDED, listed under its own well-formed ARN of the function's
    account, partition and source Regions, with a GetStreamSession answer botocore can read that names the
    same session (or none), is archived; nothing else is. (Without any CreatedAt it is still archived, under
    the fixed undated day.)"""
    if session.list_arn is not None:
        return False  # listed under an ARN that is malformed, foreign, or names no session (404)
    arn = _listed(session, stored)
    if not is_ours(arn):
        return False
    if _names_another(session, arn):
        return False  # the answer names another session: foreign
    return session.get_wire.get("CreatedAt") != "not-a-date"


def counted_foreign(session: HostileSession, stored: Mapping[str, Any]) -> bool:
    """Oracle: whether every run counts this session `foreign`: listed under a usable ARN that is not the
    function's (never asked about), or listed under its own and answered (readably) for another session."""
    arn = _listed(session, stored)
    ours = is_ours(arn)
    if ours is None:
        return False  # not listed, or no usable ARN: skipped
    if not ours:
        return True
    if session.list_arn is not None or session.get_wire.get("CreatedAt") == "not-a-date":
        return False  # names no session (404: skipped), or an answer botocore cannot read (failed)
    return _names_another(session, arn)


def _names_another(session: HostileSession, arn: object) -> bool:
    """Whether GetStreamSession's answer names another session than `arn` (a JSON null Arn names none)."""
    answered = session.get_wire.get("Arn")
    return answered is not None and answered != arn

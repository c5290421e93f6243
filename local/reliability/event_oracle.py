"""What the event consumer must do with each message, written from its contract (docs/EVENTS.md), not from
`archiver.consumer`: the outcome of one SQS message body given what the API says about the session its key
names, the EventBridge body S3 sends, and the hostile keys and bodies the event suites deliver.

The contract's table, in order: a body that is not an S3 `Object Created` event is `malformed`; an object
outside the export locations, or whose file name names no session (`...-<sg-ID>-<session ID>.zip`, read from
the end of the name, at most 1,024 UTF-8 bytes), is `unmatched`; a session the API does not know (404, in our
account: the function's own, never the event's) is `skipped`; an answer that names another session (its `Arn`
is not the ARN asked for) is `foreign`; one whose export FAILED is `skipped`; a PENDING export is `pending` until the
`MAX_PENDING_RECEIVES`th receive, then `left_to_reconcile`; a SUCCEEDED export whose `OutputUri` is neither
this object nor the folder directly holding it is `unmatched`; otherwise the session is `archived` by the
first writer and `already_archived` for every other.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from local.reliability.constants import ACCOUNT, REGION

ARCHIVED: Final = "archived"
ALREADY: Final = "already_archived"
PENDING: Final = "pending"
LEFT: Final = "left_to_reconcile"
UNMATCHED: Final = "unmatched"
SKIPPED: Final = "skipped"
MALFORMED: Final = "malformed"
FOREIGN: Final = "foreign"
FAILED: Final = "failed"
WRITTEN: Final = frozenset({ARCHIVED, ALREADY})
REDELIVER: Final = frozenset({PENDING, FAILED})  # the outcomes whose messages are in batchItemFailures
MAX_KEY_BYTES: Final = 1024  # S3's limit on a key, in UTF-8 bytes
# The file name, from its end: ...-<stream group ID>-<session ID>.zip. IDs as the service's ARNs allow them
# (`sg-` and up to 29 more; up to 32); a longer ID is a name that may or may not be taken for a session.
_NAME: Final = re.compile(r"(?:.*-)?(sg-[A-Za-z0-9]+)-([A-Za-z0-9]+)\.zip", re.IGNORECASE)
_GROUP_MAX, _SESSION_MAX = 32, 32


@dataclass(frozen=True)
class Export:
    """What GetStreamSession says about one session's export (None: no ExportFilesMetadata), and the session
    ARN the answer names (None: none)."""

    status: str | None
    output_uri: str | None
    arn: str | None = None


Facts = Callable[[str], Export | None]  # session ARN -> its export, None if the API does not know it (404)


@dataclass(frozen=True)
class Named:
    """The object a message announces, and the session its key names (None: it names none)."""

    bucket: str
    key: str
    session_arn: str | None
    exact: bool  # False: IDs beyond the service's lengths, taken for a session or not


def object_created(bucket: str, key: str, *, account: str = "123456789012", region: str = REGION) -> str:
    """The body EventBridge puts on the queue for an S3 `Object Created` event (moto's and AWS's shape)."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": account,
            "time": "2026-12-01T00:00:00Z",
            "region": region,
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket},
                "object": {"key": key, "size": 22, "etag": "0" * 32, "sequencer": "0"},
                "request-id": "0",
                "requester": account,
                "reason": "PutObject",
            },
        }
    )


def announced(body: str) -> Named | None:
    """The object an S3 Object Created body announces and the session its key names; None if it is none."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        return None
    detail = event.get("detail")
    bucket = detail.get("bucket") if isinstance(detail, dict) else None
    obj = detail.get("object") if isinstance(detail, dict) else None
    name = bucket.get("name") if isinstance(bucket, dict) else None
    key = obj.get("key") if isinstance(obj, dict) else None
    if not (isinstance(name, str) and name and isinstance(key, str) and key):
        return None
    return Named(name, key, *_session(key))


def _session(key: str) -> tuple[str | None, bool]:
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return None, True
    match = _NAME.fullmatch(key.rsplit("/", 1)[-1])
    if match is None:
        return None, True
    group, session = match[1], match[2]
    exact = len(group) <= _GROUP_MAX and len(session) <= _SESSION_MAX
    return f"arn:aws:gameliftstreams:{REGION}:{ACCOUNT}:streamsession/{group}/{session}", exact


def _holds(output_uri: str | None, uri: str) -> bool:
    """OutputUri is this object, or the folder directly holding it."""
    if not output_uri:
        return False
    if output_uri == uri:
        return True
    folder = output_uri if output_uri.endswith("/") else output_uri + "/"
    return uri.startswith(folder) and "/" not in uri[len(folder) :]


def expected_outcomes(  # noqa: PLR0911 - the contract's table, one return a row
    body: str,
    locations: Sequence[tuple[str, str]],
    facts: Facts,
    *,
    receives: int = 1,
    max_pending_receives: int = 5,
    archived: bool | None = False,
    api_down: bool = False,
) -> frozenset[str]:
    """The outcomes the contract allows for one message. `locations`: (bucket, prefix) pairs; `archived`:
    whether the session is archived already (None: unknown, another writer may be at it); `api_down`:
    GetStreamSession fails on every attempt (throttling or 5xx after the SDK's retries)."""
    named = announced(body)
    if named is None:
        return frozenset({MALFORMED})
    if not any(named.bucket == bucket and named.key.startswith(prefix) for bucket, prefix in locations):
        return frozenset({UNMATCHED})
    if named.session_arn is None:
        return frozenset({UNMATCHED})
    loose = frozenset() if named.exact else frozenset({UNMATCHED})
    if archived is True:
        return frozenset({ALREADY}) | loose
    if api_down:  # everything from here on needs GetStreamSession's answer
        return frozenset({FAILED}) | loose
    export = facts(named.session_arn)
    if export is None:
        return frozenset({SKIPPED}) | loose
    if export.arn is not None and export.arn != named.session_arn:
        return frozenset({FOREIGN}) | loose
    if export.status == "PENDING" or (export.status == "SUCCEEDED" and not export.output_uri):
        return frozenset({LEFT if receives >= max_pending_receives else PENDING}) | loose
    if export.status != "SUCCEEDED":
        return frozenset({SKIPPED}) | loose
    if not _holds(export.output_uri, f"s3://{named.bucket}/{named.key}"):
        return frozenset({UNMATCHED}) | loose
    return (frozenset({ARCHIVED}) if archived is False else WRITTEN) | loose


def feasible(allowed: Sequence[frozenset[str]], counted: Mapping[str, int]) -> bool:
    """Whether the outcomes counted for a batch can be one outcome per message, each allowed for its message
    (a matching of messages to counted outcomes)."""
    if sum(counted.values()) != len(allowed):
        return False
    slots = [name for name, n in sorted(counted.items()) for _ in range(n)]
    owner: dict[int, int] = {}  # slot -> message

    def place(message: int, seen: set[int]) -> bool:
        for slot, name in enumerate(slots):
            if name in allowed[message] and slot not in seen:
                seen.add(slot)
                if slot not in owner or place(owner[slot], seen):
                    owner[slot] = message
                    return True
        return False

    return all(place(message, set()) for message in range(len(allowed)))


def batch_expectation(
    bodies: Iterable[tuple[str, int]],
    locations: Sequence[tuple[str, str]],
    facts: Facts,
    archived: Callable[[str], bool | None],
    *,
    max_pending_receives: int,
    api_down: bool = False,
) -> tuple[list[frozenset[str]], set[str]]:
    """Per message (body, receives) in batch order, the outcomes allowed; and the sessions they name. Within
    a batch a session named twice is archived at most by the first message that archives it."""
    allowed: list[frozenset[str]] = []
    named: set[str] = set()
    taken: set[str] = set()
    for body, receives in bodies:
        who = announced(body)
        arn = who.session_arn if who is not None else None
        state = archived(arn) if arn is not None else False
        if arn is not None and arn in taken and state is False:
            state = True
        outcomes = expected_outcomes(
            body,
            locations,
            facts,
            receives=receives,
            max_pending_receives=max_pending_receives,
            archived=state,
            api_down=api_down,
        )
        if arn is not None:
            named.add(arn)
            if ARCHIVED in outcomes and state is False:
                taken.add(arn)
        allowed.append(outcomes)
    return allowed, named


def describe(counted: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(Counter(counted).items()) if n)


# -- what the hostile-key suite delivers --------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """One hostile message: what it is (for the report), its body, and whether S3 could hold the key (so the
    real chain can deliver it too; the rest go straight to the queue)."""

    label: str
    body: str
    storable: bool = False
    key: str | None = None


def _pad_to(prefix: str, tail: str, size: int, filler: str = "a") -> str:
    """prefix + filler... + tail, exactly `size` UTF-8 bytes (filler of 1 or 2 bytes a character)."""
    room = size - len((prefix + tail).encode())
    width = len(filler.encode())
    return prefix + filler * (room // width) + "a" * (room % width) + tail


NESTED: Final = "nested 50,000 deep"  # valid JSON that Python's json module cannot parse (RecursionError)


def hostile_messages(
    bucket: str,
    prefix: str,
    zip_name: str,
    other_names: Sequence[str],
    own_session_id: str,
    other_bucket: str,
    *,
    nested: bool = True,
) -> list[Hostile]:
    """Hostile keys and bodies about our export folder `s3://bucket/prefix`: `zip_name` is the real file name of
    one of our sessions' ZIPs, `other_names` ZIP names of another account's sessions, `own_session_id` an ID of
    ours (paired with a stream group that is not ours). None may archive anything but our own real exports.
    `nested`: with the NESTED body (a JSON array too deep for the json module: still `malformed`)."""
    match = _NAME.fullmatch(zip_name)
    assert match is not None, zip_name
    group, session = match[1], match[2]
    tail = f"-{group}-{session}.zip"
    stem = zip_name[: -len(".zip")]
    keys: list[tuple[str, str]] = [
        ("../ up and back", f"{prefix}../{prefix}{zip_name}"),
        ("../ out of the prefix", f"{prefix}../../{zip_name}"),
        ("%2F in the name", f"{prefix}..%2F..%2F{zip_name}"),
        ("%2F before the name", f"{prefix}%2F{zip_name}"),
        ("a folder of its own", f"{prefix}sub/{zip_name}"),
        ("double slash", f"{prefix}/{zip_name}"),
        ("./ in the key", f"{prefix}./{zip_name}"),
        ("unicode name, our IDs", f"{prefix}ünïcødé-🎮{tail}"),
        ("unicode in the IDs", f"{prefix}x-sg-ÄÖÜ-{session}.zip"),
        ("RTL override and zero width", f"{prefix}\u202e\u200b{tail}"),
        ("spaces, + and ?#&=", f"{prefix}a b+c?d=1&e#f{tail}"),
        ("1,024 bytes, our IDs", _pad_to(prefix, tail, MAX_KEY_BYTES)),
        ("1,024 bytes of 2-byte characters", _pad_to(prefix, tail, MAX_KEY_BYTES, "é")),
        ("1,024 bytes, unknown session", _pad_to(prefix, "-sg-NoSuchGroup1-NoSuchSession1.zip", MAX_KEY_BYTES)),
        ("stream group not ours, our session ID", f"{prefix}20260101-000000-a-x-sg-NotOurs123-{own_session_id}.zip"),
        ("the real name in upper case", f"{prefix}{stem}.ZIP"),
        ("outside the prefix", f"elsewhere/{zip_name}"),
        ("the prefix without its slash", f"{prefix.rstrip('/')}{zip_name}"),
        ("not a .zip", f"{prefix}{stem}.zip.json"),
        ("no extension", f"{prefix}{stem}"),
        ("a .tar.gz", f"{prefix}{stem}.tar.gz"),
        ("only the prefix", prefix),
        ("a name without IDs", f"{prefix}readme.zip"),
        *((f"another account's session {n + 1}", f"{prefix}{name}") for n, name in enumerate(other_names)),
    ]
    messages = [
        Hostile(label, object_created(bucket, key), storable=len(key.encode()) <= MAX_KEY_BYTES, key=key)
        for label, key in keys
    ]
    long_key = _pad_to(prefix, tail, MAX_KEY_BYTES + 1)
    deep = 50_000
    messages += [
        Hostile("1,025 bytes, our IDs (S3 would refuse it)", object_created(bucket, long_key)),
        Hostile("another bucket, our real key", object_created(other_bucket, f"{prefix}{zip_name}")),
        Hostile(
            "the event names another account",
            object_created(bucket, f"{prefix}{other_names[0]}", account="444455556666"),
        ),
        Hostile("lone surrogate in the key (JSON escape)", object_created(bucket, f"{prefix}\ud800{tail}")),
        Hostile("not JSON", "this is not JSON {"),
        Hostile("JSON null", "null"),
        Hostile("a JSON array", "[1, 2, 3]"),
        Hostile("a JSON string", json.dumps(object_created(bucket, f"{prefix}{zip_name}"))),
        Hostile("empty body", " "),
        Hostile("another source", object_created(bucket, f"{prefix}{zip_name}").replace('"aws.s3"', '"aws.ec2"', 1)),
        Hostile(
            "Object Deleted",
            object_created(bucket, f"{prefix}{zip_name}").replace('"Object Created"', '"Object Deleted"', 1),
        ),
        Hostile("no detail", json.dumps({"source": "aws.s3", "detail-type": "Object Created"})),
        Hostile("key not a string", _with_detail(bucket, 12345)),
        Hostile("empty key", _with_detail(bucket, "")),
        Hostile(
            "bucket missing",
            json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {"object": {"key": zip_name}}}),
        ),
        Hostile(
            "an S3 event notification (not EventBridge)",
            json.dumps({"Records": [{"s3": {"object": {"key": zip_name}}}]}),
        ),
    ]
    if nested:
        messages.append(Hostile(NESTED, "[" * deep + "]" * deep))
    return messages


def _with_detail(bucket: str, key: object) -> str:
    return json.dumps(
        {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
        }
    )


def emulator_facts(get: Callable[[str], Mapping[str, Any]]) -> Facts:
    """Facts from a function returning a session's detail by ARN (KeyError if unknown): the emulator's own."""

    def facts(arn: str) -> Export | None:
        try:
            detail = get(arn)
        except KeyError:
            return None
        answered = detail.get("Arn")
        named = answered if isinstance(answered, str) else None
        meta = detail.get("ExportFilesMetadata")
        if not isinstance(meta, Mapping):
            return Export(None, None, named)
        uri = meta.get("OutputUri")
        return Export(str(meta.get("Status")), uri if isinstance(uri, str) else None, named)

    return facts

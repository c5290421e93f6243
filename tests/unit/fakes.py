"""In-memory AWS for the fast tests: real boto3 clients whose calls are answered in-process, never over HTTP.

A fake answers at botocore's `before-call` event, after the client has validated and serialised the
parameters (a misspelt or mistyped parameter still fails as it would against AWS), and records what it was
asked, in one log shared by the three services so tests can assert the order of calls across them. Like
botocore's Stubber it skips HTTP, signing, retries and error parsing: an injected error is what the adapter
sees once botocore's retries are spent. Time is a fake clock, moved by the calls (each operation can take a
set number of fake seconds) and by whatever sleeps on it, so budgets and pacing are tested without waiting.
"""

from __future__ import annotations

import copy
import io
import json
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import boto3
from botocore import xform_name
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.response import StreamingBody

from archiver.budget import Budget
from archiver.exportfiles import ExportFiles
from archiver.ledger import Ledger
from archiver.ratelimit import TokenBucket
from archiver.run import RegionRun, RunReport, run_archive
from archiver.sessions import SessionSource
from archiver.settings import Settings
from archiver.store import RecordStore

REGION = "us-east-2"
OTHER_REGION = "us-west-2"
ACCOUNT = "111122223333"
GROUP = "sg-1A2b3C4d5"
TABLE = "archive"
BUCKET = "archive-bucket"
EXPORT_BUCKET = "exports"  # where the fake sessions' OutputUris point (s3://exports/<n>/files.zip)
KEY_ATTRIBUTE = "session_arn"  # the table's partition key, as the stack creates it
FIRST_CREATED = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
EPOCH = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)  # wall time at fake clock 0, for the run's `now`


def session_arn(n: int, region: str = REGION, group: str = GROUP) -> str:
    return f"arn:aws:gameliftstreams:{region}:{ACCOUNT}:streamsession/{group}/s{n:08d}"


def real_client(service: str, region: str = REGION) -> Any:
    """A real boto3 client with dummy credentials and one attempt per call (a fake answers before HTTP)."""
    return boto3.client(
        service,
        region_name=region,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


class FakeClock:
    """Monotonic seconds that move only when told to, or when something sleeps on them."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    def wall(self) -> datetime:
        """The wall time matching the fake clock (for RegionRun's `now`)."""
        return EPOCH + timedelta(seconds=self())


class CountingBucket(TokenBucket):
    """A token bucket on the fake clock that also counts how often it was asked (by default it never waits)."""

    def __init__(self, clock: FakeClock, rate: float = 1e9, burst: float = 1e9) -> None:
        super().__init__(rate, burst, clock=clock, sleep=clock.sleep)
        self.acquired = 0
        self._count_lock = threading.Lock()

    def acquire(self) -> float:
        with self._count_lock:
            self.acquired += 1
        return super().acquire()


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    region: str
    at: float  # the fake clock when the call arrived


class CallLog:
    """Every call any fake answered, in the order they arrived."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def __iter__(self) -> Iterator[Call]:
        with self._lock:
            return iter(list(self._calls))

    def of(self, operation: str) -> list[Call]:
        return [call for call in self if call.operation == operation]

    def count(self, operation: str) -> int:
        return len(self.of(operation))

    def operations(self) -> list[str]:
        return [call.operation for call in self]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


class AwsError(Exception):
    """An error response of the service: code, HTTP status, and extra members of the error body."""

    def __init__(self, code: str, status: int = 400, message: str = "", extra: Mapping[str, Any] | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status
        self.message = message or code
        self.extra = dict(extra or {})


@dataclass
class Fault:
    """What the next matching calls get instead of an answer: an error response or a raised exception."""

    operation: str
    error: AwsError | None = None
    exception: BaseException | None = None
    times: int | None = 1  # None: every matching call
    when: Callable[[dict[str, Any]], bool] | None = None  # on the call's parameters
    region: str | None = None

    def matches(self, operation: str, params: dict[str, Any], region: str) -> bool:
        return (
            self.operation == operation
            and self.times != 0
            and (self.region is None or self.region == region)
            and (self.when is None or self.when(params))
        )


class FakeService:
    """One AWS service in memory, answering any number of real clients (any Region, any thread)."""

    service_id: ClassVar[str]

    def __init__(self, log: CallLog | None = None, clock: FakeClock | None = None) -> None:
        self.log = log if log is not None else CallLog()
        self.clock = clock if clock is not None else FakeClock()
        self.latency: dict[str, float] = {}  # fake seconds an operation takes
        self.clients_built = 0
        self._faults: list[Fault] = []
        self._lock = threading.RLock()

    def client(self, region: str = REGION) -> Any:
        """A real client answered by this fake while the fake is referenced (keep it in a variable): clients
        come from a pool, as building one costs ~10 ms and a test needs several."""
        return _pooled_client(self, region)

    def attach(self, events: Any) -> None:
        """Answer every call of clients using `events` (a client's, or a session's before it builds clients)."""
        events.register_first(f"before-parameter-build.{self.service_id}", self._remember)
        events.register(f"before-call.{self.service_id}", self._answer)
        events.register(f"creating-client-class.{self.service_id}", self._built)

    def fail(
        self,
        operation: str,
        code: str | None = None,
        status: int = 500,
        *,
        exception: BaseException | None = None,
        times: int | None = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
        region: str | None = None,
        message: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """The next `times` matching calls fail with the error `code` (after botocore's retries), or raise."""
        error = AwsError(code, status, message, extra) if code is not None else None
        if error is None and exception is None:
            raise ValueError("a fault needs an error code or an exception")
        with self._lock:
            self._faults.append(Fault(operation, error, exception, times, when, region))

    def calls(self, operation: str) -> list[Call]:
        return [call for call in self.log.of(operation) if call.service == self.service_id]

    def _built(self, **_: Any) -> None:
        with self._lock:
            self.clients_built += 1

    def _remember(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["fake_params"] = copy.deepcopy(params)  # as the adapter asked, before botocore's own handlers

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        operation = model.name
        params: dict[str, Any] = context.pop("fake_params", {})
        region = str(context.get("client_region") or REGION)
        with self._lock:
            self.log.record(Call(self.service_id, operation, params, region, self.clock()))
            self.clock.advance(self.latency.get(operation, 0.0))
            try:
                fault = next((f for f in self._faults if f.matches(operation, params, region)), None)
                if fault is not None:
                    if fault.times is not None:
                        fault.times -= 1
                    if fault.exception is not None:
                        raise fault.exception
                    assert fault.error is not None
                    raise fault.error
                answer = getattr(self, xform_name(operation))
                response: dict[str, Any] = copy.deepcopy(answer(region, **params))
            except AwsError as error:
                body = {
                    "Error": {"Code": error.code, "Message": error.message},
                    "ResponseMetadata": {"HTTPStatusCode": error.status},
                    **copy.deepcopy(error.extra),
                }
                return AWSResponse(None, error.status, {}, None), body
        response["ResponseMetadata"] = {"HTTPStatusCode": 200}
        return AWSResponse(None, 200, {}, None), response


# Clients whose fake is gone are reused by the next fake of their service and Region: each has one
# dispatcher that answers for whichever fake owns it now (a weak reference, so a live fake is never shared).
_POOL: dict[tuple[str, str], list[tuple[Any, list[weakref.ref[FakeService]]]]] = {}
_POOL_LOCK = threading.Lock()


def _pooled_client(fake: FakeService, region: str) -> Any:
    with _POOL_LOCK:
        pool = _POOL.setdefault((fake.service_id, region), [])
        for client, owner in pool:
            if owner[0]() is None:
                owner[0] = weakref.ref(fake)
                return client
        client = real_client(fake.service_id, region)
        owner = [weakref.ref(fake)]

        def forward(name: str) -> Callable[..., Any]:
            def handler(**kwargs: Any) -> Any:
                current = owner[0]()
                assert current is not None, "a pooled client outlived its fake"
                return getattr(current, name)(**kwargs)

            return handler

        client.meta.events.register_first(f"before-parameter-build.{fake.service_id}", forward("_remember"))
        client.meta.events.register(f"before-call.{fake.service_id}", forward("_answer"))
        pool.append((client, owner))
        return client


def _summary(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The list item of a session: what ListStreamSessionsByAccount returns (no OutputUri, no secrets)."""
    names = ("Arn", "UserId", "Status", "StatusReason", "Protocol", "LastUpdatedAt", "CreatedAt", "ApplicationArn")
    item = {name: detail[name] for name in (*names, "Location") if name in detail}
    export = detail.get("ExportFilesMetadata")
    if isinstance(export, Mapping):
        item["ExportFilesMetadata"] = {"Status": export.get("Status")}
    return item


class FakeGameLiftStreams(FakeService):
    """The two calls the archiver makes, over sessions kept per Region in listing order."""

    service_id = "gameliftstreams"

    def __init__(self, log: CallLog | None = None, clock: FakeClock | None = None) -> None:
        super().__init__(log, clock)
        self.listed: dict[str, list[dict[str, Any]]] = {}  # Region -> details, in listing order
        self.gone: set[str] = set()  # listed, but GetStreamSession answers 404
        self.expire_tokens = 0  # the next N list calls that carry a NextToken are rejected as expired
        self._count = 0

    def add_session(self, region: str = REGION, **overrides: Any) -> dict[str, Any]:
        """A session that ended with its files exported (unless overridden); returns its full detail."""
        self._count += 1
        n = self._count
        arn = overrides.pop("Arn", session_arn(n, region))
        created = FIRST_CREATED + timedelta(minutes=n)
        detail: dict[str, Any] = {
            "Arn": arn,
            "Description": f"playtest {n}",
            "StreamGroupId": GROUP,
            "UserId": f"player/{n}",
            "Status": "TERMINATED",
            "StatusReason": "idleTimeout",
            "Protocol": "WebRTC",
            "Location": region,
            "SignalRequest": "SECRET-SIGNAL-REQUEST",
            "SignalResponse": "SECRET-SIGNAL-RESPONSE",
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/SECRET-ROLE",
            "AdditionalEnvironmentVariables": {"API_TOKEN": "SECRET-ENV-VALUE"},
            "AdditionalLaunchArgs": ["-fps", "60"],
            "CreatedAt": created,
            "LastUpdatedAt": created + timedelta(minutes=30),
            "ApplicationArn": f"arn:aws:gameliftstreams:{region}:{ACCOUNT}:application/a-9ZY8X7Wv6",
            "ExportFilesMetadata": {"Status": "SUCCEEDED", "OutputUri": f"s3://exports/{n}/files.zip"},
        }
        detail.update(overrides)
        with self._lock:
            self.listed.setdefault(region, []).append(detail)
        return detail

    def add_sessions(self, count: int, region: str = REGION, **overrides: Any) -> list[str]:
        return [self.add_session(region, **overrides)["Arn"] for _ in range(count)]

    def list_again(self, arn: str, region: str = REGION) -> None:
        """List a session a second time, at the end (a list that shifted while it was paged)."""
        with self._lock:
            detail = next(d for d in self.listed[region] if d["Arn"] == arn)
            self.listed[region].append(detail)

    def succeeded(self, region: str | None = None) -> set[str]:
        return {
            d["Arn"]
            for r, details in self.listed.items()
            if region in (None, r)
            for d in details
            if isinstance(d.get("ExportFilesMetadata"), Mapping)
            and d["ExportFilesMetadata"].get("Status") == "SUCCEEDED"
        }

    def detail(self, arn: str) -> dict[str, Any]:
        return next(d for details in self.listed.values() for d in details if d["Arn"] == arn)

    def list_stream_sessions_by_account(
        self,
        region: str,
        Status: str | None = None,  # noqa: N803 - the API's own parameter names
        ExportFilesStatus: str | None = None,  # noqa: N803
        NextToken: str | None = None,  # noqa: N803
        MaxResults: int | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        def keep(detail: Mapping[str, Any]) -> bool:
            export = detail.get("ExportFilesMetadata")
            export_status = export.get("Status") if isinstance(export, Mapping) else None
            return (Status is None or detail.get("Status") == Status) and (
                ExportFilesStatus is None or export_status == ExportFilesStatus
            )

        size = MaxResults or 25
        if not 1 <= size <= 100:
            raise AwsError("ValidationException", 400, "MaxResults must be from 1 to 100")
        matching = [d for d in self.listed.get(region, []) if keep(d)]
        start = 0
        if NextToken is not None:
            if self.expire_tokens > 0:
                self.expire_tokens -= 1
                raise AwsError("ValidationException", 400, "The NextToken has expired")
            start = int(NextToken.removeprefix("next-"))
        page: dict[str, Any] = {"Items": [_summary(d) for d in matching[start : start + size]]}
        if start + size < len(matching):
            page["NextToken"] = f"next-{start + size}"
        return page

    def get_stream_session(
        self,
        region: str,
        Identifier: str,  # noqa: N803
        StreamSessionIdentifier: str,  # noqa: N803
    ) -> dict[str, Any]:
        for detail in self.listed.get(region, []):
            arn = detail.get("Arn")
            if arn == StreamSessionIdentifier and arn not in self.gone and Identifier in (GROUP, arn.split("/")[1]):
                return detail
        raise AwsError("ResourceNotFoundException", 404, f"{StreamSessionIdentifier} not found")


class FakeDynamoDB(FakeService):
    """BatchGetItem and PutItem on tables keyed by `session_arn`, with the limits the archiver relies on."""

    service_id = "dynamodb"

    def __init__(self, log: CallLog | None = None, clock: FakeClock | None = None, tables: Sequence[str] = (TABLE,)):
        super().__init__(log, clock)
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in tables}
        self.unprocessed_calls: int | None = 0  # the next N BatchGetItem calls leave keys unprocessed (None: all)
        self.unprocessed_share = "all"  # or "half": every other key

    def leave_unprocessed(self, times: int | None = 1, share: str = "all") -> None:
        self.unprocessed_calls = times
        self.unprocessed_share = share

    def items(self, table: str = TABLE) -> dict[str, dict[str, str]]:
        """The table's items as plain strings, by session ARN."""
        return {arn: {k: v["S"] for k, v in item.items()} for arn, item in self.tables[table].items()}

    def _table(self, name: str) -> dict[str, dict[str, Any]]:
        if name not in self.tables:
            raise AwsError("ResourceNotFoundException", 400, "Requested resource not found")
        return self.tables[name]

    def batch_get_item(self, region: str, RequestItems: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        keys = [key for spec in RequestItems.values() for key in spec["Keys"]]
        if len(keys) > 100:
            raise AwsError("ValidationException", 400, "Too many items requested for the BatchGetItem call")
        responses: dict[str, list[dict[str, Any]]] = {}
        unprocessed: dict[str, Any] = {}
        leave = self.unprocessed_calls is None or self.unprocessed_calls > 0
        if self.unprocessed_calls:
            self.unprocessed_calls -= 1
        for name, spec in RequestItems.items():
            table = self._table(name)
            arns = [key[KEY_ATTRIBUTE]["S"] for key in spec["Keys"]]
            if len(set(arns)) != len(arns):
                raise AwsError("ValidationException", 400, "Provided list of item keys contains duplicates")
            left = [a for i, a in enumerate(arns) if leave and (self.unprocessed_share == "all" or i % 2 == 0)]
            if left:
                unprocessed[name] = {**spec, "Keys": [{KEY_ATTRIBUTE: {"S": a}} for a in left]}
            projection = self._projection(spec)
            responses[name] = [
                {k: v for k, v in table[a].items() if projection is None or k in projection}
                for a in arns
                if a in table and a not in left
            ]
        return {"Responses": responses, "UnprocessedKeys": unprocessed}

    @staticmethod
    def _projection(spec: Mapping[str, Any]) -> set[str] | None:
        expression = spec.get("ProjectionExpression")
        if expression is None:
            return None
        names = spec.get("ExpressionAttributeNames", {})
        return {names.get(part.strip(), part.strip()) for part in expression.split(",")}

    def put_item(
        self,
        region: str,
        TableName: str,  # noqa: N803
        Item: dict[str, Any],  # noqa: N803
        ConditionExpression: str | None = None,  # noqa: N803
        ExpressionAttributeNames: dict[str, str] | None = None,  # noqa: N803
        ReturnValuesOnConditionCheckFailure: str | None = None,  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        table = self._table(TableName)
        arn = Item[KEY_ATTRIBUTE]["S"]
        if ConditionExpression is not None:
            condition = ConditionExpression
            for placeholder, name in (ExpressionAttributeNames or {}).items():
                condition = condition.replace(placeholder, name)
            if condition != f"attribute_not_exists({KEY_ATTRIBUTE})":
                raise NotImplementedError(f"the fake DynamoDB does not evaluate {ConditionExpression!r}")
            if arn in table:
                extra = {"Item": table[arn]} if ReturnValuesOnConditionCheckFailure == "ALL_OLD" else {}
                raise AwsError("ConditionalCheckFailedException", 400, "The conditional request failed", extra)
        table[arn] = Item
        return {}


class FakeS3(FakeService):
    """PutObject (with If-None-Match: *), GetObject (Range, If-Match), HeadObject and ListObjectsV2 on buckets
    kept as dicts of key -> bytes: the archive bucket and an export bucket (`add_object` puts a ZIP there)."""

    service_id = "s3"

    def __init__(
        self,
        log: CallLog | None = None,
        clock: FakeClock | None = None,
        buckets: Sequence[str] = (BUCKET, EXPORT_BUCKET),
    ):
        super().__init__(log, clock)
        self.buckets: dict[str, dict[str, bytes]] = {name: {} for name in buckets}
        self.content_types: dict[str, str | None] = {}
        self.modified: dict[tuple[str, str], datetime] = {}
        self.etags: dict[tuple[str, str], str] = {}
        self.versions = 0  # bumped by every write: the ETag of an object is its write's number

    def objects(self, bucket: str = BUCKET) -> dict[str, dict[str, Any]]:
        """The bucket's records (the .json objects), decoded, by key."""
        return {key: json.loads(body) for key, body in self.buckets[bucket].items() if key.endswith(".json")}

    def blobs(self, bucket: str = BUCKET, suffix: str = "") -> dict[str, bytes]:
        """The bucket's objects whose keys end with `suffix`, as bytes."""
        return {key: body for key, body in self.buckets[bucket].items() if key.endswith(suffix)}

    def add_object(self, bucket: str, key: str, body: bytes, modified: datetime | None = None) -> None:
        with self._lock:
            self.buckets.setdefault(bucket, {})[key] = body
            self.versions += 1
            self.modified[(bucket, key)] = modified or EPOCH + timedelta(seconds=self.versions)
            self.etags[(bucket, key)] = f'"v{self.versions}"'

    def _etag(self, bucket: str, key: str) -> str:
        return self.etags.get((bucket, key), '"fake"')

    def put_object(
        self,
        region: str,
        Bucket: str,  # noqa: N803
        Key: str,  # noqa: N803
        Body: bytes | Any = b"",  # noqa: N803
        ContentType: str | None = None,  # noqa: N803
        IfNoneMatch: str | None = None,  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        if Bucket not in self.buckets:
            raise AwsError("NoSuchBucket", 404, "The specified bucket does not exist")
        if IfNoneMatch == "*" and Key in self.buckets[Bucket]:
            raise AwsError("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold")
        self.buckets[Bucket][Key] = Body if isinstance(Body, bytes) else Body.read()
        self.content_types[Key] = ContentType
        return {"ETag": '"fake"'}

    def _object(self, bucket: str, key: str) -> bytes:
        if bucket not in self.buckets:
            raise AwsError("NoSuchBucket", 404, "The specified bucket does not exist")
        if key not in self.buckets[bucket]:
            raise AwsError("NoSuchKey", 404, "The specified key does not exist.")
        return self.buckets[bucket][key]

    def get_object(
        self,
        region: str,
        Bucket: str,  # noqa: N803
        Key: str,  # noqa: N803
        Range: str | None = None,  # noqa: N803
        IfMatch: str | None = None,  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        body = self._object(Bucket, Key)
        if IfMatch is not None and IfMatch != self._etag(Bucket, Key):
            raise AwsError("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold")
        if Range is not None:
            first, _dash, last = Range.removeprefix("bytes=").partition("-")
            if int(first) >= len(body):
                raise AwsError("InvalidRange", 416, "The requested range is not satisfiable")
            body = body[int(first) : int(last) + 1]
        return {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentLength": len(body)}

    def head_object(self, region: str, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        try:
            body = self._object(Bucket, Key)
        except AwsError as error:  # HEAD has no body: the code is the status
            raise AwsError(str(error.status), error.status) from None
        return {"ContentLength": len(body), "ETag": self._etag(Bucket, Key)}

    def list_objects_v2(
        self,
        region: str,
        Bucket: str,  # noqa: N803
        Prefix: str = "",  # noqa: N803
        Delimiter: str | None = None,  # noqa: N803
        ContinuationToken: str | None = None,  # noqa: N803
        MaxKeys: int = 1000,  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        if Bucket not in self.buckets:
            raise AwsError("NoSuchBucket", 404, "The specified bucket does not exist")
        keys = sorted(
            key
            for key in self.buckets[Bucket]
            if key.startswith(Prefix) and not (Delimiter and Delimiter in key[len(Prefix) :])
        )
        start = int(ContinuationToken or 0)
        page = keys[start : start + MaxKeys]
        more = start + MaxKeys < len(keys)
        contents = [
            {
                "Key": key,
                "Size": len(self.buckets[Bucket][key]),
                "LastModified": self.modified.get((Bucket, key), EPOCH),
            }
            for key in page
        ]
        return {"Contents": contents, "IsTruncated": more} | (
            {"NextContinuationToken": str(start + MaxKeys)} if more else {}
        )


class FakeLambda(FakeService):
    """Invoke: asynchronous invocations recorded (FunctionName, decoded payload), never run."""

    service_id = "lambda"

    def __init__(self, log: CallLog | None = None, clock: FakeClock | None = None) -> None:
        super().__init__(log, clock)
        self.invoked: list[tuple[str, Any]] = []

    def invoke(
        self,
        region: str,
        FunctionName: str,  # noqa: N803
        InvocationType: str = "RequestResponse",  # noqa: N803
        Payload: bytes | Any = b"",  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        body = Payload if isinstance(Payload, bytes) else Payload.read()
        self.invoked.append((FunctionName, json.loads(body or b"{}")))
        return {"StatusCode": 202 if InvocationType == "Event" else 200}


@dataclass
class World:
    """One test's in-memory AWS (one clock, one call log) and the archiver's adapters over it."""

    clock: FakeClock = field(default_factory=FakeClock)
    log: CallLog = field(default_factory=CallLog)
    gls: FakeGameLiftStreams = field(init=False)
    ddb: FakeDynamoDB = field(init=False)
    s3: FakeS3 = field(init=False)
    lambda_: FakeLambda = field(init=False)
    limiters: dict[str, CountingBucket] = field(default_factory=dict)  # "list/<region>", "get/<region>"

    def __post_init__(self) -> None:
        self.gls = FakeGameLiftStreams(self.log, self.clock)
        self.ddb = FakeDynamoDB(self.log, self.clock)
        self.s3 = FakeS3(self.log, self.clock)
        self.lambda_ = FakeLambda(self.log, self.clock)

    def settings(self, regions: Sequence[str] = (REGION,), **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "table_name": TABLE,
            "bucket_name": BUCKET,
            "prefix": "sessions/",
            "source_regions": tuple(regions),
        }
        return Settings(**(values | overrides))

    def source(self, region: str = REGION, max_restarts: int = 3) -> SessionSource:
        self.limiters[f"list/{region}"] = CountingBucket(self.clock)
        self.limiters[f"get/{region}"] = CountingBucket(self.clock)
        return SessionSource(
            client=self.gls.client(region),
            region=region,
            list_limiter=self.limiters[f"list/{region}"],
            get_limiter=self.limiters[f"get/{region}"],
            max_restarts=max_restarts,
        )

    def ledger(self, table: str = TABLE) -> Ledger:
        return Ledger(self.ddb.client(), table, sleep=self.clock.sleep)

    def store(self, bucket: str = BUCKET) -> RecordStore:
        return RecordStore(self.s3.client(), bucket)

    def exports(self, **options: Any) -> ExportFiles:
        return ExportFiles(self.s3.client(), **options)

    def budget(self, seconds: float | None = None) -> Budget:
        return Budget(seconds, clock=self.clock)

    def region_run(self, budget_seconds: float | None = None, **settings: Any) -> RegionRun:
        values = self.settings(**settings)
        return RegionRun(
            self.source(values.source_regions[0], values.max_list_restarts),
            self.ledger(values.table_name),
            self.store(values.bucket_name),
            values,
            self.budget(budget_seconds),
            now=self.clock.wall,
            exports=self.exports(),
        )

    def run(
        self, regions: Sequence[str] = (REGION,), budget_seconds: float | None = None, **settings: Any
    ) -> RunReport:
        """One run of every Region through run_archive, as the handler calls it."""
        values = self.settings(regions, **settings)
        sources = [self.source(region, values.max_list_restarts) for region in values.source_regions]
        return run_archive(
            values,
            sources,
            self.ledger(values.table_name),
            self.store(values.bucket_name),
            self.budget(budget_seconds),
            exports=self.exports(),
        )

    def archived(self) -> set[str]:
        """ARNs with both an object and an item: archived as the README defines it."""
        in_s3 = {record["session_arn"] for record in self.s3.objects().values()}
        return in_s3 & set(self.ddb.items())

"""The fault proxy in front of moto, with real boto3 clients; its `/_proxy/...` control API, client and CLI."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from local.fault_proxy import FaultProxy, FaultProxyClient, ProxyControlError, s3_operation, split_batch_get
from local.stack import LocalStack
from tests.local.support import REGION, boto_client

TABLE = "ledger"
BUCKET = "archive-bucket"


def proxied(stack: LocalStack, service: str, attempts: int = 1, **config: Any) -> Any:
    return boto_client(service, stack.proxy.endpoint_url, attempts=attempts, **config)


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def key(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- plain round trips ----------------------------------------------------------------------------------


def test_s3_round_trips_through_the_proxy(fresh: LocalStack) -> None:
    s3 = proxied(fresh, "s3")
    name, bucket = f"dir/{key()} with space+plus.json", key("bucket")
    big = os.urandom(3 * 1024 * 1024 + 17)  # several streamed chunks

    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.head_bucket(Bucket=bucket)
    s3.put_object(Bucket=BUCKET, Key=name, Body=b'{"a": 1}', ContentType="application/json")
    s3.put_object(Bucket=bucket, Key="big.bin", Body=big)
    head = s3.head_object(Bucket=BUCKET, Key=name)
    got = s3.get_object(Bucket=BUCKET, Key=name)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="dir/")

    assert head["ContentLength"] == 8 and got["ContentType"] == "application/json"
    assert got["Body"].read() == b'{"a": 1}'
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == big
    assert name in [o["Key"] for o in listed["Contents"]]
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    counts = fresh.proxy.call_counts()
    for operation in ("CreateBucket", "HeadBucket", "PutObject", "HeadObject", "GetObject", "ListObjectsV2"):
        assert counts[operation] >= 1, operation
    assert counts["GetBucketVersioning"] == 1


def test_dynamodb_round_trips_through_the_proxy(fresh: LocalStack) -> None:
    ddb = proxied(fresh, "dynamodb")
    arns = [key("arn") for _ in range(3)]
    for arn in arns:
        ddb.put_item(TableName=TABLE, Item={"session_arn": {"S": arn}, "n": {"N": "1"}})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(
            TableName=TABLE,
            Item={"session_arn": {"S": arns[0]}},
            ConditionExpression="attribute_not_exists(session_arn)",
        )
    got = ddb.batch_get_item(RequestItems={TABLE: {"Keys": [{"session_arn": {"S": a}} for a in arns]}})
    assert {i["session_arn"]["S"] for i in got["Responses"][TABLE]} == set(arns)
    assert fresh.proxy.call_counts() == {"PutItem": 4, "BatchGetItem": 1}
    assert {c.region for c in fresh.proxy.calls} == {REGION}


# -- faults, as AWS would send them ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected", "status"),
    [
        ("throttle", "ProvisionedThroughputExceededException", 400),
        ("throughput", "ProvisionedThroughputExceededException", 400),
        ("internal", "InternalServerError", 500),
        ("access_denied", "AccessDeniedException", 400),
        ("not_found", "ResourceNotFoundException", 400),
    ],
)
def test_dynamodb_faults(fresh: LocalStack, kind: str, expected: str, status: int) -> None:
    ddb = proxied(fresh, "dynamodb")
    arn = key("arn")
    fresh.proxy.faults.inject("PutItem", kind, times=1)

    with pytest.raises(ClientError) as error:
        ddb.put_item(TableName=TABLE, Item={"session_arn": {"S": arn}})

    assert code(error) == expected
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert "Item" not in ddb.get_item(TableName=TABLE, Key={"session_arn": {"S": arn}})  # never forwarded
    if kind in ("throttle", "throughput", "not_found"):
        assert isinstance(error.value, getattr(ddb.exceptions, expected))


def test_dynamodb_validation_fault_needs_a_start_key(fresh: LocalStack) -> None:
    ddb = proxied(fresh, "dynamodb")
    fresh.proxy.faults.inject("Scan", "validation")
    ddb.scan(TableName=TABLE, Limit=1)
    with pytest.raises(ClientError) as error:
        ddb.scan(TableName=TABLE, Limit=1, ExclusiveStartKey={"session_arn": {"S": "x"}})
    assert code(error) == "ValidationException"


@pytest.mark.parametrize(
    ("kind", "expected", "status"),
    [
        ("slowdown", "SlowDown", 503),
        ("throttle", "SlowDown", 503),
        ("internal", "InternalError", 500),
        ("access_denied", "AccessDenied", 403),
        ("not_found", "NoSuchBucket", 404),
    ],
)
def test_s3_faults(fresh: LocalStack, kind: str, expected: str, status: int) -> None:
    s3 = proxied(fresh, "s3")
    name = key()
    fresh.proxy.faults.inject("PutObject", kind, times=1)

    with pytest.raises(ClientError) as error:
        s3.put_object(Bucket=BUCKET, Key=name, Body=b"x")

    assert code(error) == expected
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:  # the put never reached moto
        s3.head_object(Bucket=BUCKET, Key=name)
    assert code(missing) == "404"


def test_standard_retries_ride_through_throttling_and_5xx(fresh: LocalStack) -> None:
    ddb, s3 = proxied(fresh, "dynamodb", attempts=3), proxied(fresh, "s3", attempts=3)
    fresh.proxy.faults.inject("PutItem", "internal", times=2)
    fresh.proxy.faults.inject("PutObject", "slowdown", times=1)
    fresh.proxy.faults.inject("GetItem", "throttle", times=1)
    arn = key("arn")

    ddb.put_item(TableName=TABLE, Item={"session_arn": {"S": arn}})
    s3.put_object(Bucket=BUCKET, Key=arn, Body=b"x")
    assert ddb.get_item(TableName=TABLE, Key={"session_arn": {"S": arn}})["Item"]

    assert fresh.proxy.call_counts() == {"PutItem": 3, "PutObject": 2, "GetItem": 2}
    assert fresh.proxy.faults.fired == {
        ("PutItem", "internal"): 2,
        ("PutObject", "slowdown"): 1,
        ("GetItem", "throttle"): 1,
    }


def test_reset_is_not_forwarded_and_is_retried(fresh: LocalStack) -> None:
    s3 = proxied(fresh, "s3")
    name = key()
    fresh.proxy.faults.inject("PutObject", "reset", times=1)
    with pytest.raises(ConnectionClosedError):
        s3.put_object(Bucket=BUCKET, Key=name, Body=b"x")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=name)
    fresh.proxy.faults.inject("PutObject", "reset", times=1)
    proxied(fresh, "s3", attempts=2).put_object(Bucket=BUCKET, Key=name, Body=b"x")
    assert s3.head_object(Bucket=BUCKET, Key=name)["ContentLength"] == 1


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_cut_short_by_a_dying_client_is_never_forwarded(fresh: LocalStack, framing: str) -> None:
    name = key()
    head = f"PUT /{BUCKET}/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if framing == "chunked":
        request = head + "Transfer-Encoding: chunked\r\n\r\n64\r\n" + "x" * 10
    else:
        request = head + "Content-Length: 100\r\n\r\n" + "x" * 10
    host, port = fresh.proxy.endpoint_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as client:
        client.sendall(request.encode())
        client.shutdown(socket.SHUT_WR)  # the client dies mid-body
        assert client.recv(4096) == b""  # the proxy hangs up without an answer
    with pytest.raises(ClientError):
        proxied(fresh, "s3").head_object(Bucket=BUCKET, Key=name)
    assert fresh.proxy.call_counts()["PutObject"] == 0


def test_timeout_takes_effect_although_the_client_gives_up(fresh: LocalStack) -> None:
    released = threading.Event()
    held: list[float] = []

    def hold(seconds: float) -> None:  # the proxy holds the answer until the client has given up
        held.append(seconds)
        released.wait(30)

    arn = key("arn")
    with FaultProxy(fresh.moto_url, sleep=hold) as proxy:
        proxy.faults.inject("PutItem", "timeout", seconds=60, times=1)
        with pytest.raises(ReadTimeoutError):
            boto_client("dynamodb", proxy.endpoint_url, read_timeout=0.25).put_item(
                TableName=TABLE, Item={"session_arn": {"S": arn}}
            )
        released.set()
        assert proxy.log.wait_for("PutItem", 1)  # the proxy answered, late
    assert held == [60]
    assert proxied(fresh, "dynamodb").get_item(TableName=TABLE, Key={"session_arn": {"S": arn}})["Item"]


def test_base_latency_is_slept_before_every_request(fresh: LocalStack) -> None:
    slept: list[float] = []
    with FaultProxy(fresh.moto_url, sleep=slept.append) as proxy:
        FaultProxyClient(proxy.endpoint_url).latency("*", 0.01)
        ddb = boto_client("dynamodb", proxy.endpoint_url)
        ddb.put_item(TableName=TABLE, Item={"session_arn": {"S": key("arn")}})
        ddb.get_item(TableName=TABLE, Key={"session_arn": {"S": "nothing"}})
        proxy.faults.inject("GetItem", "latency", seconds=0.5, times=1)
        ddb.get_item(TableName=TABLE, Key={"session_arn": {"S": "nothing"}})
    assert slept == [0.01, 0.01, 0.51]  # a latency rule adds to the base latency


def test_quota_throttles_dynamodb_above_the_rate(fresh: LocalStack) -> None:
    now = [0.0]
    with FaultProxy(fresh.moto_url, clock=lambda: now[0]) as proxy:
        ddb = boto_client("dynamodb", proxy.endpoint_url)
        proxy.faults.rate_limit("GetItem", per_second=1, burst=2)

        def outcome() -> str:
            try:
                ddb.get_item(TableName=TABLE, Key={"session_arn": {"S": "nothing"}})
            except ddb.exceptions.ProvisionedThroughputExceededException:
                return "throttled"
            return "ok"

        at_once = [outcome() for _ in range(5)]
        now[0] += 1.0  # one second later: one more token
        later = [outcome() for _ in range(2)]
        assert proxy.faults.fired[("GetItem", "quota")] == 4
    assert at_once == ["ok", "ok", "throttled", "throttled", "throttled"]
    assert later == ["ok", "throttled"]


# -- BatchGetItem UnprocessedKeys -----------------------------------------------------------------------


def test_unprocessed_keys_have_the_dynamodb_shape_and_can_be_retried(fresh: LocalStack) -> None:
    ddb = proxied(fresh, "dynamodb")
    arns = sorted(key("arn") for _ in range(7))
    for arn in arns:
        ddb.put_item(TableName=TABLE, Item={"session_arn": {"S": arn}, "secret": {"S": "x"}})
    request = {
        TABLE: {
            "Keys": [{"session_arn": {"S": a}} for a in arns],
            "ProjectionExpression": "#k",
            "ExpressionAttributeNames": {"#k": "session_arn"},
            "ConsistentRead": True,
        }
    }
    fresh.proxy.faults.inject("BatchGetItem", "unprocessed", times=1)

    first = ddb.batch_get_item(RequestItems=request)

    got = [i["session_arn"]["S"] for i in first["Responses"][TABLE]]
    unprocessed = first["UnprocessedKeys"][TABLE]
    assert len(got) == 4 and len(unprocessed["Keys"]) == 3  # half (rounded down), at least one
    assert {k: v for k, v in unprocessed.items() if k != "Keys"} == {
        "ProjectionExpression": "#k",
        "ExpressionAttributeNames": {"#k": "session_arn"},
        "ConsistentRead": True,
    }
    assert all(set(item) == {"session_arn"} for item in first["Responses"][TABLE])  # projection honoured

    second = ddb.batch_get_item(RequestItems=first["UnprocessedKeys"])

    assert second["UnprocessedKeys"] == {}
    assert sorted(got + [i["session_arn"]["S"] for i in second["Responses"][TABLE]]) == arns


def test_unprocessed_with_one_key_leaves_nothing_processed(fresh: LocalStack) -> None:
    ddb = proxied(fresh, "dynamodb")
    fresh.proxy.faults.inject("BatchGetItem", "unprocessed", times=1)
    response = ddb.batch_get_item(RequestItems={TABLE: {"Keys": [{"session_arn": {"S": "only"}}]}})
    assert response["Responses"] == {TABLE: []}
    assert response["UnprocessedKeys"] == {TABLE: {"Keys": [{"session_arn": {"S": "only"}}]}}


def test_split_batch_get_is_deterministic() -> None:
    request = {
        "RequestItems": {
            "a": {"Keys": [{"k": {"S": str(i)}} for i in range(10)], "ConsistentRead": False},
            "b": {"Keys": [{"k": {"S": "x"}}]},
        }
    }
    forwarded, unprocessed = split_batch_get(request, 0.3)
    assert [k["k"]["S"] for k in forwarded["a"]["Keys"]] == [str(i) for i in range(7)]
    assert [k["k"]["S"] for k in unprocessed["a"]["Keys"]] == ["7", "8", "9"]
    assert unprocessed["a"]["ConsistentRead"] is False
    assert "b" not in forwarded and unprocessed["b"] == {"Keys": [{"k": {"S": "x"}}]}


# -- kills ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_between_s3_and_dynamodb_writes(fresh: LocalStack, when: str) -> None:
    s3, direct = proxied(fresh, "s3"), fresh.client("s3", direct=True)
    name = key()
    child = subprocess.Popen(["sleep", "60"])
    try:
        fresh.proxy.faults.kill(child.pid, "PutObject", when=when)
        if when == "before":
            with pytest.raises(ConnectionClosedError):
                s3.put_object(Bucket=BUCKET, Key=name, Body=b"x")
        else:
            s3.put_object(Bucket=BUCKET, Key=name, Body=b"x")
        assert child.wait(timeout=10) == -signal.SIGKILL
        listed = direct.list_objects_v2(Bucket=BUCKET, Prefix=name).get("Contents", [])
        assert len(listed) == (0 if when == "before" else 1)  # "before": the write never happened
    finally:
        child.kill()
        child.wait()
        direct.close()


# -- operation naming -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "expected"),
    [
        ("PUT", "/b/k/x.json", {}, {}, "PutObject"),
        ("PUT", "/b/k", {}, {"x-amz-copy-source": "/a/b"}, "CopyObject"),
        ("PUT", "/b/k", {"partNumber": ["1"], "uploadId": ["u"]}, {}, "UploadPart"),
        ("GET", "/b/k", {}, {}, "GetObject"),
        ("HEAD", "/b/k", {}, {}, "HeadObject"),
        ("DELETE", "/b/k", {}, {}, "DeleteObject"),
        ("POST", "/b/k", {"uploads": [""]}, {}, "CreateMultipartUpload"),
        ("GET", "/b", {"list-type": ["2"], "prefix": ["p"]}, {}, "ListObjectsV2"),
        ("GET", "/b", {}, {}, "ListObjects"),
        ("GET", "/b", {"versions": [""]}, {}, "ListObjectVersions"),
        ("HEAD", "/b", {}, {}, "HeadBucket"),
        ("PUT", "/b", {}, {}, "CreateBucket"),
        ("PUT", "/b", {"versioning": [""]}, {}, "PutBucketVersioning"),
        ("PUT", "/b", {"publicAccessBlock": [""]}, {}, "PutPublicAccessBlock"),
        ("GET", "/b", {"encryption": [""]}, {}, "GetBucketEncryption"),
        ("POST", "/b", {"delete": [""]}, {}, "DeleteObjects"),
        ("GET", "/", {}, {}, "ListBuckets"),
    ],
)
def test_s3_operation_names(method: str, path: str, query: Any, headers: Any, expected: str) -> None:
    assert s3_operation(method, path, query, headers) == expected


# -- the proxy's own paths and routes ------------------------------------------------------------------


def test_unknown_paths_still_reach_moto(fresh: LocalStack) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fresh.proxy.port, timeout=10)
    conn.request("GET", "/moto-api/data.json")
    response = conn.getresponse()
    assert response.status == 200 and response.read()
    conn.close()


def test_control_paths_are_answered_by_the_proxy_and_never_forwarded(fresh: LocalStack) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fresh.proxy.port, timeout=10)
    conn.request("GET", "/_proxy/no-such-endpoint")
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.request("GET", "/_proxy/calls")
    calls = json.loads(conn.getresponse().read())
    conn.close()

    assert response.status == 404
    assert "unknown control endpoint GET /_proxy/no-such-endpoint" in body["message"]
    assert calls == {"counts": {}, "total": 0, "fired": {}}  # control requests are not calls
    assert fresh.proxy.calls == []


def test_client_arms_faults_and_reads_what_fired(fresh: LocalStack) -> None:
    control = FaultProxyClient(fresh.proxy.endpoint_url)
    ddb = proxied(fresh, "dynamodb")
    control.inject("PutItem", "internal", times=1)
    control.rate_limit("Scan", per_second=0.001, burst=1)

    with pytest.raises(ClientError) as error:
        ddb.put_item(TableName=TABLE, Item={"session_arn": {"S": key("arn")}})
    ddb.scan(TableName=TABLE, Limit=1)
    with pytest.raises(ClientError):
        ddb.scan(TableName=TABLE, Limit=1)

    assert code(error) == "InternalServerError"
    assert control.calls() == {"PutItem": 1, "Scan": 2}
    assert control.fired() == {("PutItem", "internal"): 1, ("Scan", "quota"): 1}
    assert [(r["operation"], r["kind"], r["fired"]) for r in control.plan()["rules"]] == [("PutItem", "internal", 1)]
    control.reset_calls()
    assert control.calls() == {} and control.fired() != {}  # fired counts go with the faults, not the calls
    control.clear()
    assert control.fired() == {} and control.plan() == {"rules": [], "base_latency": {}}
    ddb.scan(TableName=TABLE, Limit=1)  # the quota went too


def test_a_bad_spec_is_refused_and_nothing_of_its_batch_is_armed(fresh: LocalStack) -> None:
    control = FaultProxyClient(fresh.proxy.endpoint_url)
    with pytest.raises(ProxyControlError, match="unknown fault kind 'bogus'") as error:
        control.apply([{"operation": "PutItem", "kind": "internal"}, {"operation": "GetItem", "kind": "bogus"}])
    with pytest.raises(ProxyControlError, match="missing 'pid'"):
        control.apply([{"kind": "kill", "operation": "PutItem"}])
    assert error.value.status == 400
    assert fresh.proxy.faults.rules == []


def test_client_set_faults_replaces_and_kill_kills(fresh: LocalStack) -> None:
    control = FaultProxyClient(fresh.proxy.endpoint_url)
    control.inject("PutObject", "internal")
    child = subprocess.Popen(["sleep", "60"])
    try:
        control.set_faults([{"kind": "kill", "pid": child.pid, "operation": "PutObject"}])
        with pytest.raises(ConnectionClosedError):
            proxied(fresh, "s3").put_object(Bucket=BUCKET, Key=key(), Body=b"x")
        assert child.wait(timeout=10) == -signal.SIGKILL
        assert control.fired() == {("PutObject", "kill"): 1}  # the internal rule was replaced
    finally:
        child.kill()
        child.wait()


def test_routes_send_a_service_to_its_own_upstream(fresh: LocalStack) -> None:
    with socket.socket() as unused:  # a port nobody listens on: S3 cannot reach its upstream
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"
    with FaultProxy(fresh.moto_url, routes={"s3": dead}) as proxy:
        ddb, s3 = boto_client("dynamodb", proxy.endpoint_url), boto_client("s3", proxy.endpoint_url)
        ddb.describe_table(TableName=TABLE)
        with pytest.raises(ClientError) as error:
            s3.head_bucket(Bucket=BUCKET)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502


def test_the_proxy_runs_as_its_own_process(fresh: LocalStack) -> None:
    command = [sys.executable, "-m", "local.fault_proxy", "--upstream", fresh.moto_url, "--latency-ms", "10"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        control = FaultProxyClient(url)
        boto_client("s3", url).head_bucket(Bucket=BUCKET)

        assert control.plan()["base_latency"] == {"*": 0.01}
        assert control.calls() == {"HeadBucket": 1}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
